// The meta codec: ConversationMeta to and from its JSON text, with crabtalk's
// defaults for missing fields. Unknown fields (old files carry `topic` or
// `uptime_secs`) are kept and written back after the known ones.

import { StepStoreError } from '../errors.js';
import { isPlainObject, plainCopy } from './json.js';
import { isUnsignedLiteral, pathKey, scanJson } from './json-facts.js';
import type { ConversationMeta } from '../types.js';
import { now, sameInstant } from './time.js';

/** The fields crabtalk knows, in its order; others are kept after them. */
export const META_FIELDS = ['agent', 'created_by', 'created_at', 'title', 'updated_at', 'message_count', 'summary'] as const;
const KNOWN_FIELDS = new Set<string>(META_FIELDS);

function corrupt(why: string): StepStoreError {
  return new StepStoreError('CORRUPT_META', `meta ${why}`);
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Decodes a meta file; throws CORRUPT_META when crabtalk could not read it either. */
export function decodeMeta(text: string): ConversationMeta {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw corrupt('is not valid JSON');
  }
  // What JSON.parse forgives but crabtalk's parser does not: the session would vanish from crabtalk's list.
  const facts = scanJson(text);
  if (facts.refused !== null) throw corrupt(`cannot be read by crabtalk: it ${facts.refused}`);
  const twice = META_FIELDS.find((field) => facts.duplicates?.get(pathKey([]))?.has(field));
  if (twice !== undefined) throw corrupt(`gives "${twice}" twice`);
  const count = facts.numbers?.get(pathKey(['message_count']));
  if (count !== undefined && !isUnsignedLiteral(count)) throw corrupt(`"message_count" is ${count}, not an unsigned integer`);
  return decodeMetaObject(raw);
}

/** Like decodeMeta, for a meta already parsed (or rebuilt from a Redis hash). */
export function decodeMetaObject(raw: unknown): ConversationMeta {
  if (!isPlainObject(raw)) throw corrupt('is not a JSON object');
  for (const field of ['agent', 'created_by', 'created_at'] as const) {
    if (typeof raw[field] !== 'string') throw corrupt(`has no string "${field}"`);
  }
  for (const field of ['title', 'updated_at'] as const) {
    if (raw[field] !== undefined && typeof raw[field] !== 'string') throw corrupt(`"${field}" is not a string`);
  }
  if (raw.message_count !== undefined && !isCount(raw.message_count)) {
    throw corrupt('"message_count" is not a non-negative integer');
  }
  if (raw.summary !== undefined && raw.summary !== null && typeof raw.summary !== 'string') {
    throw corrupt('"summary" is not a string');
  }
  return normalise(raw);
}

/** Known fields first, in crabtalk's order, defaults filled, `summary` omitted when absent. */
function normalise(raw: Record<string, unknown>): ConversationMeta {
  const meta: ConversationMeta = {
    agent: raw.agent as string,
    created_by: raw.created_by as string,
    created_at: raw.created_at as string,
    title: (raw.title as string | undefined) ?? '',
    updated_at: (raw.updated_at as string | undefined) ?? '',
    message_count: (raw.message_count as number | undefined) ?? 0,
  };
  if (typeof raw.summary === 'string') meta.summary = raw.summary;
  for (const key of Object.keys(raw)) {
    // defineProperty: an unknown field named "__proto__" stays a field, never the meta's prototype.
    if (!KNOWN_FIELDS.has(key)) Object.defineProperty(meta, key, { value: raw[key], enumerable: true, writable: true, configurable: true });
  }
  return meta;
}

/**
 * The largest meta accepted (and read), in bytes of JSON: a title and a
 * summary may each be as long as a step, the rest is small.
 */
export function maxMetaBytes(maxStepBytes: number): number {
  return maxStepBytes + 64 * 1024;
}

export function encodeMeta(meta: ConversationMeta): string {
  return JSON.stringify(meta);
}

/** A fresh session's meta: created_at = updated_at = now. */
export function newMeta(agent: string, createdBy: string): ConversationMeta {
  const at = now();
  return { agent, created_by: createdBy, created_at: at, title: '', updated_at: at, message_count: 0 };
}

const invalidMeta = (why: string) => new StepStoreError('INVALID_ENTRY', `meta ${why}`);

/** True when two metas name the same session: same agent, sender and creation time. */
export function sameIdentity(a: ConversationMeta, b: ConversationMeta): boolean {
  return a.agent === b.agent && a.created_by === b.created_by && sameInstant(a.created_at, b.created_at);
}

/**
 * Checks a caller's replacement meta, already through checkMeta, against the
 * stored one: identity fields must not change (INVALID_ENTRY otherwise).
 */
export function checkMetaUpdate(current: ConversationMeta, meta: ConversationMeta): ConversationMeta {
  if (meta.agent !== current.agent) throw invalidMeta('"agent" cannot change');
  if (meta.created_by !== current.created_by) throw invalidMeta('"created_by" cannot change');
  if (!sameInstant(meta.created_at, current.created_at)) throw invalidMeta('"created_at" cannot change');
  return meta;
}

/** Checks a whole meta given by a caller (types and plain JSON); INVALID_ENTRY otherwise. */
export function checkMeta(original: unknown): ConversationMeta {
  const next = plainCopy(original, 'meta');
  if (!isPlainObject(next)) throw invalidMeta('must be a plain object');
  for (const field of ['agent', 'created_by', 'created_at'] as const) {
    if (typeof next[field] !== 'string') throw invalidMeta(`"${field}" must be a string`);
  }
  if (typeof next.title !== 'string') throw invalidMeta('"title" must be a string');
  if (typeof next.updated_at !== 'string') throw invalidMeta('"updated_at" must be a string');
  if (!isCount(next.message_count)) throw invalidMeta('"message_count" must be a non-negative integer');
  if (next.summary !== undefined && typeof next.summary !== 'string') throw invalidMeta('"summary" must be a string');
  return normalise(next);
}
