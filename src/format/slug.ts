// Names: senderSlug (crabtalk's rule, the README's Format section), session
// prefixes, and handle / archive-name validation. A handle is exactly
// crabtalk's `{senderSlug(agent)}_{senderSlug(createdBy)}_{seq}` whenever
// that fits in a file name with any seq; only longer pairs are cut (see
// pairPrefix). A `Slug` can only be made here, so backends only ever join
// paths or keys from checked names.

import { createHash } from 'node:crypto';
import { StepStoreError } from '../errors.js';

/** A validated session handle (`{agent}_{sender}_{seq}`), safe to use as a directory or key name. */
export type Slug = string & { readonly __slug: unique symbol };

/** `{agentSlug}_{senderSlug}_`: every session of one (agent, sender) pair starts with it. */
export type SessionPrefix = string & { readonly __prefix: unique symbol };

const ALPHANUMERIC = /[\p{Alphabetic}\p{N}]/u;
const LONE_SURROGATE = /\p{Cs}/u;
/** A seq (or an archive's n): canonical decimal, no leading zero, at most 16 digits (and at most 2^53 - 1). */
const SEQ = /^[1-9][0-9]{0,15}$/;

/** Longest name a filesystem entry may have. */
export const MAX_NAME_BYTES = 255;
/** Digits of the largest seq or archive n, 2^53 - 1: every name leaves room for them. */
const MAX_SEQ_DIGITS = 16;
/**
 * The two slugs of a session prefix together: 255 bytes less the two `_` and
 * the largest seq. Pairs up to this length keep their whole slugs.
 */
export const MAX_PAIR_BYTES = MAX_NAME_BYTES - 2 - MAX_SEQ_DIGITS;
/** What a part is always allowed when both must be cut: the agent gets the smaller half. */
const AGENT_SHARE = Math.floor(MAX_PAIR_BYTES / 2);
/** Longest archive base: with `-` and the largest n, an archive name stays within 255 bytes. */
const MAX_ARCHIVE_BASE_BYTES = MAX_NAME_BYTES - 1 - MAX_SEQ_DIGITS;
const HASH_HEX_CHARS = 16;

/**
 * crabtalk's sender_slug: alphanumerics (Rust `char::is_alphanumeric`) and `-`
 * are kept, ASCII letters lowercased; every other character becomes `-`; runs
 * of `-` collapse and leading/trailing `-` are dropped. A name with no letter
 * or digit has the empty slug.
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

/** True for anything senderSlug can return, the empty slug included. */
function isSlugPart(part: string): boolean {
  return senderSlug(part) === part;
}

/**
 * Throws INVALID_NAME unless `name` is a string crabtalk could store in a
 * meta. Any string is a name (empty, emoji only, newlines and NUL included:
 * the meta keeps it verbatim, the handle holds only its slug) except one with
 * a lone UTF-16 surrogate, which UTF-8 cannot carry and crabtalk's JSON parser
 * refuses, so such a session would be invisible to crabtalk.
 */
export function checkName(what: string, name: unknown): asserts name is string {
  if (typeof name !== 'string') {
    throw new StepStoreError('INVALID_NAME', `${what} must be a string, got ${typeof name}`);
  }
  if (LONE_SURROGATE.test(name)) {
    throw new StepStoreError('INVALID_NAME', `${what} holds a lone UTF-16 surrogate, which UTF-8 (and so a meta) cannot carry`);
  }
}

/** The longest head of `part` within `budget` bytes, whole code points only, without trailing `-`. */
function headOf(part: string, budget: number): string {
  let head = '';
  let used = 0;
  for (const ch of part) {
    const size = byteLength(ch);
    if (used + size > budget) break;
    head += ch;
    used += size;
  }
  return head.replace(/-+$/, '');
}

/**
 * `part` cut to at most `budget` bytes: a readable head, `-`, then 16 hex
 * digits of the SHA-256 of the whole part, so parts with a common head stay
 * apart. The result is itself a slug. Budgets are never below AGENT_SHARE.
 */
function cutPart(part: string, budget: number): string {
  if (byteLength(part) <= budget) return part;
  const hash = createHash('sha256').update(part).digest('hex').slice(0, HASH_HEX_CHARS);
  const head = headOf(part, budget - 1 - HASH_HEX_CHARS);
  return head === '' ? hash : `${head}-${hash}`;
}

/**
 * `{agent}_{sender}_` from two slugs. Kept whole while the two fit in
 * MAX_PAIR_BYTES, so every seq up to 2^53 - 1 still gives a name within 255
 * bytes (crabtalk keeps them whole too, and fails with ENAMETOOLONG past 255).
 * A longer pair is cut, the same way for create and find: a part that fits in
 * its half is kept and the other gets the rest; when both are longer, each is
 * cut to its half (agent AGENT_SHARE bytes, sender the rest).
 */
function pairPrefix(agent: string, sender: string): SessionPrefix {
  const agentBytes = byteLength(agent);
  const senderBytes = byteLength(sender);
  if (agentBytes + senderBytes > MAX_PAIR_BYTES) {
    if (agentBytes <= AGENT_SHARE) {
      sender = cutPart(sender, MAX_PAIR_BYTES - agentBytes);
    } else if (senderBytes <= MAX_PAIR_BYTES - AGENT_SHARE) {
      agent = cutPart(agent, MAX_PAIR_BYTES - senderBytes);
    } else {
      agent = cutPart(agent, AGENT_SHARE);
      sender = cutPart(sender, MAX_PAIR_BYTES - AGENT_SHARE);
    }
  }
  return `${agent}_${sender}_` as SessionPrefix;
}

/** The directory-name prefix of (agent, createdBy) that create uses; find and list look there first. */
export function sessionPrefix(agent: string, createdBy: string): SessionPrefix {
  return pairPrefix(senderSlug(agent), senderSlug(createdBy));
}

/**
 * Where find looks for the sessions of (agent, createdBy), in order: the
 * prefix create uses, then, for a cut pair whose whole name still fits in 255
 * bytes with a one-digit seq, crabtalk's whole prefix (crabtalk makes such
 * directories, stepstore never does).
 */
export function findPrefixes(agent: string, createdBy: string): SessionPrefix[] {
  const prefix = sessionPrefix(agent, createdBy);
  const whole = `${senderSlug(agent)}_${senderSlug(createdBy)}_` as SessionPrefix;
  return whole === prefix || byteLength(whole) + 1 > MAX_NAME_BYTES ? [prefix] : [prefix, whole];
}

/** What every handle of the sessions a listing filtered by agent (and sender) wants starts with; '' for all. */
export function listPrefix(agent: string | undefined, createdBy: string | undefined): string {
  if (agent === undefined) return '';
  if (createdBy === undefined) return agentPrefix(agent);
  return findPrefixes(agent, createdBy).length === 1 ? sessionPrefix(agent, createdBy) : agentPrefix(agent);
}

/**
 * A string every handle of `agent` starts with, whatever the sender: its
 * `{slug}_` when the slug is never cut, else the head every cut of it (and the
 * whole slug) begins with. A filter only: other agents' handles may match too.
 */
export function agentPrefix(agent: string): string {
  const slug = senderSlug(agent);
  return byteLength(slug) <= AGENT_SHARE ? `${slug}_` : headOf(slug, AGENT_SHARE - 1 - HASH_HEX_CHARS);
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

/**
 * True for names of the form `{slug}_{slug}_{seq}` within 255 bytes, either
 * slug possibly empty (`crab__1`, `__1`): never `.`, `/`, `\` or NUL. Names
 * crabtalk made whole are handles even where stepstore would have cut them.
 */
export function isHandle(name: string): boolean {
  if (byteLength(name) > MAX_NAME_BYTES) return false;
  const parts = name.split('_');
  return parts.length === 3 && isSlugPart(parts[0]!) && isSlugPart(parts[1]!) && parseSeq(parts[2]!) !== null;
}

/** `name` as a Slug when it is a well-formed handle (for backends recognising stored sessions), else null. */
export function toSlug(name: string): Slug | null {
  return isHandle(name) ? (name as Slug) : null;
}

/**
 * The base a session's archives are named from: crabtalk's `senderSlug(handle)`
 * (`crab_tg-1_2` -> `crab-tg-1-2`, `crab__1` -> `crab-1`), cut like a slug part
 * when `{base}-{n}` could pass 255 bytes (handles over 238 bytes only), so an
 * archive file can always be created. Never empty: a handle ends in digits.
 */
export function archiveBaseOf(slug: Slug): string {
  return cutPart(senderSlug(slug), MAX_ARCHIVE_BASE_BYTES);
}

/** Throws INVALID_NAME unless `name` is a non-empty string senderSlug could produce, within 255 bytes. */
export function checkArchiveName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name === '' || !isSlugPart(name) || byteLength(name) > MAX_NAME_BYTES) {
    const shown = typeof name === 'string' ? JSON.stringify(name.slice(0, 300)) : typeof name;
    throw new StepStoreError('INVALID_NAME', `not an archive name: ${shown}`);
  }
}
