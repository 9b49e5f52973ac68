// Names: senderSlug (crabtalk's rule, the README's Format section), session prefixes with
// deterministic shortening, and handle / archive-name validation. A `Slug` can
// only be made here, so backends only ever join paths or keys from checked names.

import { createHash } from 'node:crypto';
import { StepStoreError } from '../errors.js';

/** A validated session handle (`{agent}_{sender}_{seq}`), safe to use as a directory or key name. */
export type Slug = string & { readonly __slug: unique symbol };

/** `{agentSlug}_{senderSlug}_`: every session of one (agent, sender) pair starts with it. */
export type SessionPrefix = string & { readonly __prefix: unique symbol };

const ALPHANUMERIC = /[\p{Alphabetic}\p{N}]/u;
const CONTROL = /\p{Cc}/u;
/** A seq (or an archive's n): canonical decimal, no leading zero, at most 16 digits (and at most 2^53 - 1). */
const SEQ = /^[1-9][0-9]{0,15}$/;

/** Longest name a filesystem entry may have. */
export const MAX_NAME_BYTES = 255;
/** Slug parts longer than this are shortened, so handles and archive names stay within 255 bytes. */
const MAX_PART_BYTES = 98;
const HASH_HEX_CHARS = 16;

/**
 * crabtalk's sender_slug: alphanumerics (Rust `char::is_alphanumeric`) and `-`
 * are kept, ASCII letters lowercased; every other character becomes `-`; runs
 * of `-` collapse and leading/trailing `-` are dropped.
 */
export function senderSlug(name: string): string {
  let out = '';
  let lastDash = true; // suppresses a leading dash
  for (const ch of name) {
    const code = ch.codePointAt(0)!;
    let kept: string | null = null;
    if (code < 128) {
      if ((code >= 97 && code <= 122) || (code >= 48 && code <= 57)) kept = ch;
      else if (code >= 65 && code <= 90) kept = String.fromCharCode(code + 32);
    } else if (ALPHANUMERIC.test(ch)) {
      kept = ch;
    }
    if (kept === null) {
      if (!lastDash) out += '-';
      lastDash = true;
    } else {
      out += kept;
      lastDash = false;
    }
  }
  return lastDash && out.endsWith('-') ? out.slice(0, -1) : out;
}

function byteLength(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

function isSlugPart(part: string): boolean {
  return part.length > 0 && senderSlug(part) === part;
}

/** Throws INVALID_NAME unless `name` is a string with a non-empty slug and no control characters. */
export function checkName(what: string, name: unknown): asserts name is string {
  if (typeof name !== 'string') {
    throw new StepStoreError('INVALID_NAME', `${what} must be a string, got ${typeof name}`);
  }
  if (CONTROL.test(name)) {
    throw new StepStoreError('INVALID_NAME', `${what} contains NUL or control characters`);
  }
  if (senderSlug(name) === '') {
    throw new StepStoreError('INVALID_NAME', `${what} ${JSON.stringify(name)} has an empty slug: it needs a letter or digit`);
  }
}

/** Cuts a slug part to MAX_PART_BYTES: a readable head, then a hash of the whole part. */
function shortenPart(part: string): string {
  if (byteLength(part) <= MAX_PART_BYTES) return part;
  const hash = createHash('sha256').update(part).digest('hex').slice(0, HASH_HEX_CHARS);
  const headBudget = MAX_PART_BYTES - 1 - HASH_HEX_CHARS;
  let head = '';
  let used = 0;
  for (const ch of part) {
    const size = byteLength(ch);
    if (used + size > headBudget) break;
    head += ch;
    used += size;
  }
  head = head.replace(/-+$/, '');
  return head === '' ? hash : `${head}-${hash}`;
}

/** The directory-name prefix of (agent, createdBy); the same for create and find. */
export function sessionPrefix(agent: string, createdBy: string): SessionPrefix {
  return `${agentPrefix(agent)}${shortenPart(senderSlug(createdBy))}_` as SessionPrefix;
}

/** Prefix of every session of `agent`, whatever the sender. */
export function agentPrefix(agent: string): string {
  return `${shortenPart(senderSlug(agent))}_`;
}

export function slugOf(prefix: SessionPrefix, seq: number): Slug {
  return `${prefix}${seq}` as Slug;
}

/** `text` as a seq (or an archive's n) when it is one in canonical decimal, else null. */
export function parseSeq(text: string): number | null {
  if (!SEQ.test(text)) return null;
  const seq = Number(text);
  // Above 2^53 - 1 two spellings could name one number: such names are no seqs.
  return Number.isSafeInteger(seq) ? seq : null;
}

/** The seq of `name` when it is exactly `prefix` + canonical decimal digits, else null. */
export function seqAfterPrefix(name: string, prefix: string): number | null {
  return name.startsWith(prefix) ? parseSeq(name.slice(prefix.length)) : null;
}

/** The prefix of a handle: all of it but its seq. */
export function prefixOf(slug: Slug): SessionPrefix {
  return slug.slice(0, slug.lastIndexOf('_') + 1) as SessionPrefix;
}

/** The seq of a handle: what follows its last `_`. */
export function seqOf(slug: Slug): number {
  return Number(slug.slice(slug.lastIndexOf('_') + 1));
}

/** Parses a handle; throws INVALID_HANDLE for anything that is not `{slug}_{slug}_{seq}`. */
export function parseHandle(handle: unknown): Slug {
  if (typeof handle !== 'string') {
    throw new StepStoreError('INVALID_HANDLE', `handle must be a string, got ${typeof handle}`);
  }
  if (!isHandle(handle)) {
    throw new StepStoreError('INVALID_HANDLE', `not a session handle: ${JSON.stringify(handle.slice(0, 300))}`);
  }
  return handle as Slug;
}

/** True for names of the form `{slug}_{slug}_{seq}` within 255 bytes: never `.`, `/`, `\` or NUL. */
export function isHandle(name: string): boolean {
  if (name.length === 0 || byteLength(name) > MAX_NAME_BYTES) return false;
  const parts = name.split('_');
  return parts.length === 3 && isSlugPart(parts[0]!) && isSlugPart(parts[1]!) && parseSeq(parts[2]!) !== null;
}

/** `name` as a Slug when it is a well-formed handle (for backends recognising stored sessions), else null. */
export function toSlug(name: string): Slug | null {
  return isHandle(name) ? (name as Slug) : null;
}

/** Throws INVALID_NAME unless `name` is something senderSlug could produce, within 255 bytes. */
export function checkArchiveName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || !isSlugPart(name) || byteLength(name) > MAX_NAME_BYTES) {
    const shown = typeof name === 'string' ? JSON.stringify(name.slice(0, 300)) : typeof name;
    throw new StepStoreError('INVALID_NAME', `not an archive name: ${shown}`);
  }
}
