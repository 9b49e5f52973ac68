// Steps in Redis: one list per session (step n at index n-1), appended by one
// script that also moves the boundary pointer and bumps meta (a compaction's
// bump restarts message_count in the same script), fenced on the list's
// length when asked. Loads start at the boundary pointer, so they read only
// the live tail; reads go in chunks, the first as large as the consumer expects.

import type { RawStep } from '../../backend.js';
import type { MetaBump } from '../../format/bump.js';
import { timeOf } from '../../format/time.js';
import type { Slug } from '../../format/slug.js';
import type { EncodedStep } from '../../format/encode.js';
import { sessionNotFound } from '../../errors.js';
import type { Reply } from './client.js';
import { indexAfter, indexKeys, notAtStep, requestId, type RedisContext } from './context.js';
import { pairKeysOf, sessionKeys } from './keys.js';
import { APPEND } from './scripts.js';

const READ_CHUNK = 512;
/** Steps read per round trip when paging back: small first, since a reader back often wants a few. */
const FIRST_BACK_CHUNK = 16;

const KIND_CHARS: Record<EncodedStep['kind'], string> = { compact: 'b', 'legacy-compact': 'b', entry: 'm', event: 'e' };

/** The keys one append names, before the request id and the index; built once per session and kept for the next appends. */
interface AppendKeys {
  meta: string;
  steps: string;
  state: string;
  /** The request key is this + the request's id. */
  requests: string;
}

/** Sessions whose append keys a store keeps; past this it starts over (a key is only a string concatenation). */
const KEPT_APPEND_KEYS = 1024;
const appendKeysByStore = new WeakMap<RedisContext, Map<Slug, AppendKeys>>();

function appendKeysOf(ctx: RedisContext, slug: Slug): AppendKeys {
  let kept = appendKeysByStore.get(ctx);
  if (kept === undefined) appendKeysByStore.set(ctx, (kept = new Map()));
  let keys = kept.get(slug);
  if (keys === undefined) {
    const session = sessionKeys(ctx.prefix, slug);
    keys = { meta: session.meta, steps: session.steps, state: session.state, requests: pairKeysOf(ctx.prefix, slug).requests };
    if (kept.size >= KEPT_APPEND_KEYS) kept.clear();
    kept.set(slug, keys);
  }
  return keys;
}

/** timeOf of the last bump time seen: appends in the same millisecond share one `at`, so most calls skip the parse. */
let lastAt = '';
let lastMs = Number.NaN;
function msOf(at: string): number {
  if (at !== lastAt) {
    lastMs = timeOf(at);
    lastAt = at;
  }
  return lastMs;
}

export async function appendSteps(
  ctx: RedisContext,
  slug: Slug,
  steps: EncodedStep[],
  bump: MetaBump | null,
  expectedStep?: number,
): Promise<number[]> {
  if (steps.length === 0) {
    const highest = await highestStep(ctx, slug);
    if (highest === null) throw sessionNotFound(slug);
    if (expectedStep !== undefined && highest !== expectedStep) throw notAtStep(slug, expectedStep);
    return [];
  }
  const keys = appendKeysOf(ctx, slug);
  let kinds = '';
  let entries = 0;
  for (const step of steps) {
    kinds += KIND_CHARS[step.kind];
    if (step.kind === 'entry') entries += 1;
  }
  const messages = bump === null ? 0 : entries;
  // Only messages move updated_at (a compaction alone carries no time).
  const ms = messages === 0 ? 0 : msOf(bump!.at);
  const scriptKeys = [keys.meta, keys.steps, keys.state, keys.requests + requestId(), ...indexKeys(ctx)];
  const args: string[] = [String(ctx.conn.rememberForMs), kinds, String(messages), bump?.compacted === true ? '1' : '0'];
  args.push(JSON.stringify(bump?.at ?? ''), String(ms), slug, expectedStep === undefined ? '' : String(expectedStep));
  for (const step of steps) args.push(step.json);
  // One script for the whole batch: it lands whole or not at all.
  const first = (await ctx.conn.script(APPEND, scriptKeys, args)) as number;
  const numbers = steps.map((_, i) => first + i);
  if (messages > 0 && ctx.conn.clustered) await indexAfter(ctx, 'ZADD', 'XX', 'GT', String(ms), slug);
  ctx.stats.stepsWritten += numbers.length;
  return numbers;
}

/** The boundary pointer and the length of the steps list. */
async function extent(ctx: RedisContext, slug: Slug): Promise<{ boundary: number; length: number }> {
  const keys = sessionKeys(ctx.prefix, slug);
  const [boundary, length] = await Promise.all([
    ctx.conn.read(keys.state, ['HGET', keys.state, 'boundary']),
    ctx.conn.read(keys.steps, ['LLEN', keys.steps]),
  ]);
  return { boundary: Number(boundary ?? 0), length: Number(length) };
}

async function readRange(ctx: RedisContext, slug: Slug, from: number, to: number): Promise<RawStep[]> {
  const keys = sessionKeys(ctx.prefix, slug);
  const texts = (await ctx.conn.read(keys.steps, ['LRANGE', keys.steps, String(from - 1), String(to - 1)])) as Reply[];
  ctx.stats.stepsRead += texts.length;
  return texts.map((text, i) => ({ step: from + i, text: String(text) }));
}

/** The size of the first slice: `expected` when the consumer said, else `otherwise`. */
const firstChunk = (expected: number | undefined, otherwise: number) => Math.max(1, Math.min(expected ?? otherwise, READ_CHUNK));
/** Each slice after the first twice as large, up to READ_CHUNK. */
const nextChunk = (chunk: number) => Math.min(chunk * 2, READ_CHUNK);

/** From the newest step back to the last boundary (the pointer), newest first. */
export async function* stepsNewestFirst(ctx: RedisContext, slug: Slug, expected?: number): AsyncGenerator<RawStep[]> {
  const { boundary, length } = await extent(ctx, slug);
  const oldest = Math.max(boundary, 1);
  for (let to = length, chunk = firstChunk(expected, READ_CHUNK); to >= oldest; to -= chunk, chunk = nextChunk(chunk)) {
    yield (await readRange(ctx, slug, Math.max(oldest, to - chunk + 1), to)).reverse();
  }
}

export async function* stepsAfter(ctx: RedisContext, slug: Slug, after: number, expected?: number): AsyncGenerator<RawStep[]> {
  const { length } = await extent(ctx, slug);
  for (let from = after + 1, chunk = firstChunk(expected, READ_CHUNK); from <= length; from += chunk, chunk = nextChunk(chunk)) {
    yield await readRange(ctx, slug, from, Math.min(length, from + chunk - 1));
  }
}

/** Every step below `before` (which may pass the highest), boundaries included, newest first, read as pulled. */
export async function* stepsBefore(ctx: RedisContext, slug: Slug, before: number, expected?: number): AsyncGenerator<RawStep[]> {
  const key = sessionKeys(ctx.prefix, slug).steps;
  const length = Number(await ctx.conn.read(key, ['LLEN', key]));
  for (let to = Math.min(length, before - 1), chunk = firstChunk(expected, FIRST_BACK_CHUNK); to >= 1; to -= chunk, chunk = nextChunk(chunk)) {
    yield (await readRange(ctx, slug, Math.max(1, to - chunk + 1), to)).reverse();
  }
}

/** The length of the steps list; null when the session's meta is gone. */
export async function highestStep(ctx: RedisContext, slug: Slug): Promise<number | null> {
  const keys = sessionKeys(ctx.prefix, slug);
  const [exists, length] = await Promise.all([
    ctx.conn.read(keys.meta, ['EXISTS', keys.meta]),
    ctx.conn.read(keys.steps, ['LLEN', keys.steps]),
  ]);
  return exists === 1 ? Number(length) : null;
}
