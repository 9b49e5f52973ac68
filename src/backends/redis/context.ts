// What one RedisBackend keeps: the connection, the key prefix, the logger and
// the work counters; plus the codecs between our types and Redis replies.

import { randomBytes } from 'node:crypto';
import { StepStoreError } from '../../errors.js';
import { META_FIELDS, decodeMetaObject } from '../../format/meta.js';
import { timeOf } from '../../format/time.js';
import type { ConversationMeta, Logger, MessageMode, StoreStats } from '../../types.js';
import type { Connection, Reply } from './client.js';
import { indexKey } from './keys.js';

export interface RedisContext {
  conn: Connection;
  prefix: string;
  logger: Logger;
  /** The store's message mode: how repair reads steps. */
  messages: MessageMode;
  stats: StoreStats;
}

/** The list index as a script's last key on a standalone server; none on a Cluster (another slot). */
export function indexKeys(ctx: RedisContext): string[] {
  return ctx.conn.clustered ? [] : [indexKey(ctx.prefix)];
}

/** On a Cluster, the list index change a script could not make: `[command, ...args]` after the key. */
export async function indexAfter(ctx: RedisContext, command: string, ...args: string[]): Promise<void> {
  if (ctx.conn.clustered) await ctx.conn.write(indexKey(ctx.prefix), [command, indexKey(ctx.prefix), ...args]);
}

/** Random once per process; request ids add a counter, so they are unique across processes and cheap. */
const PROCESS_TAG = randomBytes(12).toString('base64url');
let requests = 0;

/** A fresh id for one write request, so a retry after a lost reply is recognised. */
export function requestId(): string {
  return PROCESS_TAG + (++requests).toString(36);
}

/** A fenced write that found the session past (or short of) the step it expected. */
export function notAtStep(slug: string, expectedStep: number): StepStoreError {
  return new StepStoreError('CONFLICT', `${slug} is not at step ${expectedStep}`);
}

/** A hash reply (an array of pairs under RESP2, an object under RESP3) as an object. */
export function toRecord(reply: Reply): Record<string, string> {
  if (Array.isArray(reply)) {
    const record: Record<string, string> = {};
    for (let i = 0; i + 1 < reply.length; i += 2) record[String(reply[i])] = String(reply[i + 1]);
    return record;
  }
  if (reply !== null && typeof reply === 'object') {
    return Object.fromEntries(Object.entries(reply).map(([k, v]) => [k, String(v)]));
  }
  return {};
}

const HASH_FIELDS = new Set<string>(META_FIELDS);

/**
 * Meta as hash fields: each known one JSON-encoded (so any string, lone
 * surrogates included, survives UTF-8), unknown ones together in `extra`.
 * message_count is a plain integer, which HINCRBY can bump.
 */
export function metaFields(meta: ConversationMeta): string[] {
  const fields: string[] = [];
  const extra: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(meta)) {
    if (HASH_FIELDS.has(key)) fields.push(key, JSON.stringify(value));
    else extra[key] = value;
  }
  if (Object.keys(extra).length > 0) fields.push('extra', JSON.stringify(extra));
  return fields;
}

/** The meta stored in a hash reply; null when the hash is empty (no session). Throws CORRUPT_META. */
export function metaFromHash(reply: Reply): ConversationMeta | null {
  const hash = toRecord(reply);
  if (Object.keys(hash).length === 0) return null;
  let raw: Record<string, unknown> = {};
  try {
    if (hash.extra !== undefined) raw = JSON.parse(hash.extra) as Record<string, unknown>;
    for (const key of HASH_FIELDS) if (hash[key] !== undefined) raw[key] = JSON.parse(hash[key]);
  } catch {
    throw new StepStoreError('CORRUPT_META', 'meta hash holds a field that is not valid JSON');
  }
  return decodeMetaObject(raw);
}

/** updated_at as a sortable number (0 when unparsable). */
export function updatedMs(meta: ConversationMeta): number {
  const ms = timeOf(meta.updated_at);
  return Number.isNaN(ms) ? 0 : ms;
}
