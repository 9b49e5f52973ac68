// Fork and rewind in Redis: each one script (FORK, REWIND) over the pair's
// keys. Both must set the boundary pointer to the last boundary at or below a
// step; the state hash keeps only the last one, so when that lies above the
// step, the last one below is found by reading steps back from the step
// (no further than a load of the result would read) and handed to the script,
// which trusts it only while no rewind has changed those steps since.

import type { CountChange } from '../../backend.js';
import { liveCount } from '../../format/bump.js';
import type { ConversationMeta } from '../../types.js';
import { StepStoreError } from '../../errors.js';
import { isBoundary, classifyStep } from '../../format/step-line.js';
import { prefixOf, seqOf, slugOf, type Slug } from '../../format/slug.js';
import { timeOf } from '../../format/time.js';
import { forgetNames } from './archives.js';
import type { Reply } from './client.js';
import { indexAfter, indexKeys, metaFields, requestId, updatedMs, type RedisContext } from './context.js';
import { archiveKey, holdersKey, pairKeysOf, sessionKeys } from './keys.js';
import { FORK, MOVED, REREAD, RESCAN, RESEQ, REWIND } from './scripts.js';
import { stepsBefore } from './steps.js';

/** Scans tolerated while rewinds keep changing the steps under them, before CONFLICT. */
const SCAN_ROUNDS = 8;

/** The script arguments of BOUNDARY: the last boundary at or below a step as found, and what it was found under. */
type Found = [found: string, rewinds: string, createdAt: string];

const UNSCANNED: Found = ['', '', ''];

/**
 * Reads steps back from `at` to the last boundary (0: none). The rewind count
 * and created_at are read first: steps 1..at are as scanned while both stay.
 * UNSCANNED when the session no longer holds step `at` (the script decides).
 */
async function scanBoundary(ctx: RedisContext, slug: Slug, at: number): Promise<Found> {
  const keys = sessionKeys(ctx.prefix, slug);
  const [rewinds, createdAt] = await Promise.all([
    ctx.conn.read(keys.state, ['HGET', keys.state, 'rewinds']),
    ctx.conn.read(keys.meta, ['HGET', keys.meta, 'created_at']),
  ]);
  const under = (found: number): Found => [String(found), String(rewinds ?? '0'), String(createdAt ?? '')];
  if (at === 0) return under(0);
  let newest = true;
  for await (const slice of stepsBefore(ctx, slug, at + 1)) {
    for (const raw of slice) {
      if (newest && raw.step !== at) return UNSCANNED;
      newest = false;
      if ('problem' in raw) continue;
      const { kind } = classifyStep(raw.text, ctx.messages);
      if (kind !== null && isBoundary(kind)) return under(raw.step);
    }
  }
  return newest ? UNSCANNED : under(0);
}

function tooManyRewinds(slug: Slug): StepStoreError {
  return new StepStoreError('CONFLICT', `${slug} kept being rewound while its steps were read`);
}

export async function fork(ctx: RedisContext, source: Slug, atStep: number, meta: ConversationMeta): Promise<Slug | null> {
  const keys = sessionKeys(ctx.prefix, source);
  const pair = pairKeysOf(ctx.prefix, source);
  const prefix = prefixOf(source);
  const ms = updatedMs(meta);
  const request = pair.requests + requestId();
  const fields = metaFields(meta);
  let found = UNSCANNED;
  // The script's keys are declared: the seq to claim and the archives held are read here, again when the script says they changed.
  let counter = Number((await ctx.conn.read(pair.seq, ['GET', pair.seq])) ?? 0);
  let held = ((await ctx.conn.read(keys.archives, ['SMEMBERS', keys.archives])) as Reply[]).map(String);
  for (let round = 0; round < SCAN_ROUNDS; ) {
    const target = sessionKeys(ctx.prefix, slugOf(prefix, counter + 1));
    const reply = await ctx.conn.script(
      FORK,
      [
        keys.meta,
        keys.steps,
        keys.state,
        keys.archives,
        pair.seq,
        pair.sessions,
        request,
        pair.deleted,
        target.meta,
        target.steps,
        target.state,
        target.archives,
        ...held.flatMap((name) => {
          const archive = archiveKey(ctx.prefix, source, name);
          return [archive, holdersKey(archive)];
        }),
        ...indexKeys(ctx),
      ],
      [String(counter + 1), held.length, ctx.conn.rememberForMs, ms, prefix, atStep, seqOf(source), ...found, ...held, ...fields],
    );
    if (reply === RESCAN) {
      round += 1;
      found = await scanBoundary(ctx, source, atStep);
      continue;
    }
    if (typeof reply === 'string' && reply.startsWith(RESEQ)) {
      counter = Number(reply.slice(RESEQ.length + 1));
      continue;
    }
    if (reply === REREAD) {
      held = ((await ctx.conn.read(keys.archives, ['SMEMBERS', keys.archives])) as Reply[]).map(String);
      continue;
    }
    if (reply === null) return null;
    const forked = slugOf(prefix, Number(reply));
    ctx.stats.metaWrites += 1;
    ctx.stats.stepsWritten += atStep;
    await indexAfter(ctx, 'ZADD', String(ms), forked);
    return forked;
  }
  throw tooManyRewinds(source);
}

export async function rewind(
  ctx: RedisContext,
  slug: Slug,
  toStep: number,
  change: CountChange,
  at: string,
  archives: string[],
  expectedStep?: number,
): Promise<number | null> {
  const keys = sessionKeys(ctx.prefix, slug);
  const pair = pairKeysOf(ctx.prefix, slug);
  const ms = timeOf(at);
  const atMs = Number.isNaN(ms) ? 0 : ms;
  const request = pair.requests + requestId();
  const archiveKeys = archives.flatMap((name) => {
    const archive = archiveKey(ctx.prefix, slug, name);
    return [archive, holdersKey(archive)];
  });
  let found = UNSCANNED;
  // Redis counts are exact at once: taking one down by the messages that go is exact while nothing else was appended.
  let counting = 'less' in change ? `-${change.less}:${change.expectedHighest}` : `=${change.count}`;
  for (let round = 0; round < SCAN_ROUNDS; round++) {
    const reply = await ctx.conn.script(
      REWIND,
      [keys.meta, keys.steps, keys.state, keys.archives, request, ...archiveKeys, ...indexKeys(ctx)],
      [ctx.conn.rememberForMs, toStep, counting, JSON.stringify(at), atMs, slug, seqOf(slug), '', ...found, expectedStep ?? '', ...archives],
    );
    if (reply === RESCAN) {
      found = await scanBoundary(ctx, slug, toStep);
      continue;
    }
    if (reply === MOVED) {
      counting = `=${await liveCount(stepsBefore(ctx, slug, toStep + 1), ctx.messages)}`;
      continue;
    }
    if (reply === null) return null;
    const [removed, ...names] = reply as Reply[];
    if (Number(removed) > 0) {
      ctx.stats.metaWrites += 1;
      await forgetNames(ctx, names.map(String));
      await indexAfter(ctx, 'ZADD', 'XX', 'GT', String(atMs), slug);
    }
    return Number(removed);
  }
  throw tooManyRewinds(slug);
}
