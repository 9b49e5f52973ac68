// Steps in Redis: one list per session (step n at index n-1), appended by one
// script that also moves the boundary pointer and bumps meta (a compaction's
// bump restarts message_count in the same script). Loads start at
// the boundary pointer, so they read only the live tail; reads go in chunks.

import type { RawStep } from '../../backend.js';
import type { MetaBump } from '../../format/bump.js';
import { timeOf } from '../../format/time.js';
import type { Slug } from '../../format/slug.js';
import type { EncodedStep } from '../../format/encode.js';
import { sessionNotFound } from '../../errors.js';
import type { Reply } from './client.js';
import { indexAfter, indexKeys, requestId, type RedisContext } from './context.js';
import { pairKeysOf, sessionKeys } from './keys.js';
import { APPEND } from './scripts.js';

const READ_CHUNK = 512;

const KIND_CHARS: Record<EncodedStep['kind'], string> = { compact: 'b', 'legacy-compact': 'b', entry: 'm', event: 'e' };

export async function appendSteps(ctx: RedisContext, slug: Slug, steps: EncodedStep[], bump: MetaBump | null): Promise<number[]> {
  const keys = sessionKeys(ctx.prefix, slug);
  if (steps.length === 0) {
    if ((await ctx.conn.read(keys.meta, ['EXISTS', keys.meta])) === 0) throw sessionNotFound(slug);
    return [];
  }
  const at = JSON.stringify(bump?.at ?? '');
  const kinds = steps.map((step) => KIND_CHARS[step.kind]).join('');
  const messages = bump === null ? 0 : steps.filter((step) => step.kind === 'entry').length;
  // Only messages move updated_at (a compaction alone carries no time).
  const ms = messages === 0 ? 0 : timeOf(bump!.at);
  const compacted = bump?.compacted === true ? '1' : '0';
  // One script for the whole batch: it lands whole or not at all.
  const first = (await ctx.conn.script(
    APPEND,
    [keys.meta, keys.steps, keys.state, pairKeysOf(ctx.prefix, slug).requests + requestId(), ...indexKeys(ctx)],
    [ctx.conn.rememberForMs, kinds, messages, compacted, at, ms, slug, ...steps.map((step) => step.json)],
  )) as number;
  const numbers = steps.map((_, i) => first + i);
  if (messages > 0) await indexAfter(ctx, 'ZADD', 'XX', 'GT', String(ms), slug);
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

/** From the newest step back to the last boundary (the pointer), newest first. */
export async function* stepsNewestFirst(ctx: RedisContext, slug: Slug): AsyncGenerator<RawStep[]> {
  const { boundary, length } = await extent(ctx, slug);
  const oldest = Math.max(boundary, 1);
  for (let to = length; to >= oldest; to -= READ_CHUNK) {
    yield (await readRange(ctx, slug, Math.max(oldest, to - READ_CHUNK + 1), to)).reverse();
  }
}

export async function* stepsAfter(ctx: RedisContext, slug: Slug, after: number): AsyncGenerator<RawStep[]> {
  const { length } = await extent(ctx, slug);
  for (let from = after + 1; from <= length; from += READ_CHUNK) {
    yield await readRange(ctx, slug, from, Math.min(length, from + READ_CHUNK - 1));
  }
}
