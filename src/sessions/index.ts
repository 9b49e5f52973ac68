// Session operations behind the public store: each validates its input
// completely, then hands exact arguments to the backend. Writes to one
// session go through the per-session queue.

import { archiveBase } from '../format/archive.js';
import { StepStoreError, invalidOption, sessionNotFound } from '../errors.js';
import { META_FIELDS, checkMeta, encodeMeta, maxMetaBytes, newMeta } from '../format/meta.js';
import { now } from '../format/time.js';
import { firstInOrder } from '../format/listing.js';
import type { ListedSession } from '../format/records.js';
import type { ConversationMeta, CreateOptions, EventLine, HistoryEntry, RepairOptions, RepairReport, SessionSnapshot, SessionSummary, StepRecord } from '../types.js';
import { assertOpen, checkCursor, expectedStepOf, optionsOf, type StoreContext } from './context.js';
import { replay, skipStep } from './replay.js';
import { checkName, findPrefixes, listPrefix, parseHandle, sessionPrefix, type Slug } from '../format/slug.js';
import { classifyStep } from '../format/step-line.js';
import { checkStepSize, encodeBatch } from '../format/encode.js';
import { isPlainObject } from '../format/json.js';

export async function create(ctx: StoreContext, agent: string, createdBy: string, options?: CreateOptions): Promise<string> {
  assertOpen(ctx);
  checkName('agent', agent);
  checkName('createdBy', createdBy);
  const { title = '', fields = {} } = optionsOf(options, 'createSession');
  if (typeof title !== 'string') throw invalidOption('title must be a string');
  if (!isPlainObject(fields)) throw invalidOption('fields must be a plain object');
  const taken = Object.keys(fields).find((name) => (META_FIELDS as readonly string[]).includes(name));
  if (taken !== undefined) throw invalidOption(`fields cannot set the meta's own field "${taken}"`);
  const meta = checkMeta({ ...fields, ...newMeta(agent, createdBy), title });
  checkStepSize(encodeMeta(meta), 'meta', maxMetaBytes(ctx.maxStepBytes));
  return ctx.backend.createSession(sessionPrefix(agent, createdBy), meta);
}

/**
 * Newest session whose meta names exactly this agent and sender; slug
 * collisions never match. Under the prefix create uses first, then under
 * crabtalk's whole name of a pair stepstore cuts (see findPrefixes).
 */
export async function findLatest(ctx: StoreContext, agent: string, createdBy: string): Promise<string | null> {
  assertOpen(ctx);
  checkName('agent', agent);
  checkName('createdBy', createdBy);
  for (const prefix of findPrefixes(agent, createdBy)) {
    for await (const { slug, meta } of ctx.backend.sessionsBySeq(prefix)) {
      if (meta.agent === agent && meta.created_by === createdBy) return slug;
    }
  }
  return null;
}

/** How often a read is tried when its session keeps being replaced under its handle. */
const READ_TRIES = 3;

/**
 * Runs `read` on one conversation: the session's identity is taken before
 * and after, and a read during which the handle came to name another
 * conversation is thrown away and tried again, so a result never mixes two.
 * Null when there is no session, or it was deleted meanwhile.
 */
async function readOne<T>(ctx: StoreContext, slug: Slug, read: () => Promise<T | null>): Promise<T | null> {
  for (let attempt = 1; ; attempt++) {
    const before = await ctx.backend.identity(slug);
    if (before === null) return null;
    const result = await read();
    const after = await ctx.backend.identity(slug);
    if (after === null) return null;
    if (after === before) return result;
    if (attempt === READ_TRIES) {
      throw new StepStoreError('IO_ERROR', `${slug} was replaced by another conversation ${READ_TRIES} times while it was being read`);
    }
  }
}

export async function load(
  ctx: StoreContext,
  handle: string,
  options?: { withArchive?: boolean; last?: number },
): Promise<SessionSnapshot | null> {
  assertOpen(ctx);
  const slug = parseHandle(handle);
  const opts = optionsOf(options, 'loadSession');
  const last = checkCursor('last', opts.last, 1);
  const snapshot = await readOne<SessionSnapshot>(ctx, slug, async () => {
    const meta = await ctx.backend.readMeta(slug);
    if (meta === null) return null;
    return { meta, ...(await replay(slug, ctx.backend.stepsNewestFirst(slug, last === undefined ? undefined : last + 1), ctx.logger, ctx.messages, last)) };
  });
  if (snapshot === null) return null;
  const { archive } = snapshot;
  if (opts.withArchive === true) {
    snapshot.archiveContent = archive === null ? null : ((await ctx.backend.getArchive(archive))?.content ?? null);
  }
  return snapshot;
}

/**
 * Raw steps, oldest first; unparsable steps are skipped with a warning.
 * `after` / `limit`: the first `limit` above `after`. `last`: the last n.
 * `before` / `limit`: the newest `limit` below `before` (paging back).
 * Each reads only the steps it returns (and those skipped among them).
 */
export async function readSteps(
  ctx: StoreContext,
  handle: string,
  options?: { after?: number; limit?: number; last?: number; before?: number },
): Promise<StepRecord[]> {
  assertOpen(ctx);
  const slug = parseHandle(handle);
  const opts = optionsOf(options, 'readSteps');
  const after = checkCursor('after', opts.after, 0);
  const limit = checkCursor('limit', opts.limit, 1);
  const last = checkCursor('last', opts.last, 1);
  const before = checkCursor('before', opts.before, 1);
  if (last !== undefined && (after !== undefined || before !== undefined || limit !== undefined)) {
    throw invalidOption('last cannot be combined with after, before or limit');
  }
  if (before !== undefined && after !== undefined) throw invalidOption('before cannot be combined with after');
  const backwards = last !== undefined || before !== undefined;
  const wanted = last ?? limit ?? Number.POSITIVE_INFINITY;
  const records = await readOne(ctx, slug, async () => {
    if ((await ctx.backend.readMeta(slug)) === null) return null;
    const slices = backwards
      ? ctx.backend.stepsBefore(slug, before ?? Number.POSITIVE_INFINITY, wanted)
      : ctx.backend.stepsAfter(slug, after ?? 0, limit);
    const read: StepRecord[] = [];
    for await (const slice of slices) {
      for (const raw of slice) {
        if ('problem' in raw) {
          skipStep(null, ctx.logger, slug, raw.step, raw.problem);
          continue;
        }
        const classified = classifyStep(raw.text, ctx.messages);
        if (classified.kind === null) {
          skipStep(null, ctx.logger, slug, raw.step, classified.reason);
          continue;
        }
        read.push({ step: raw.step, kind: classified.kind, line: classified.line, text: raw.text });
        if (read.length >= wanted) return read;
      }
    }
    return read;
  });
  if (records === null) throw sessionNotFound(slug);
  return backwards ? records.reverse() : records;
}

/** Sessions with a readable meta, newest `updated_at` first (compared as times). */
export async function list(
  ctx: StoreContext,
  options?: { agent?: string; createdBy?: string; limit?: number },
): Promise<SessionSummary[]> {
  assertOpen(ctx);
  const opts = optionsOf(options, 'listSessions');
  const { agent, createdBy } = opts;
  if (agent !== undefined) checkName('agent', agent);
  if (createdBy !== undefined) checkName('createdBy', createdBy);
  const limit = checkCursor('limit', opts.limit, 1) ?? Number.POSITIVE_INFINITY;
  const namePrefix = listPrefix(agent, createdBy);
  for (let attempt = 1; ; attempt++) {
    // The first `limit` in order, and a few more, kept as the slices arrive: the rest is garbage at once.
    const keep = limit + SPARE_LISTED;
    let first: ListedSession[] = [];
    let matched = 0;
    for await (const slice of ctx.backend.listSessions(namePrefix, limit)) {
      const matches = slice.filter((s) => (agent === undefined || s.agent === agent) && (createdBy === undefined || s.createdBy === createdBy));
      matched += matches.length;
      if (keep === Number.POSITIVE_INFINITY) for (const session of matches) first.push(session);
      else first = firstInOrder(first.concat(matches), keep);
    }
    if (keep === Number.POSITIVE_INFINITY) first = firstInOrder(first, first.length);
    // Read the metas the backend did not give; one may be gone by now: the next in order stands in.
    const listed: SessionSummary[] = [];
    for (const session of first) {
      if (listed.length >= limit) break;
      const meta = session.meta ?? (await metaForList(ctx, session.slug));
      if (meta !== null) listed.push({ handle: session.slug, meta });
    }
    // More gone than the spares cover (sessions deleted while listing): list again.
    if (listed.length >= limit || first.length === matched || attempt === LIST_TRIES) return listed;
  }
}

/** Sessions kept beyond `limit` to stand in for ones deleted before their metas are read. */
const SPARE_LISTED = 16;
/** Listings made before giving what was found when more sessions vanish than the spares cover. */
const LIST_TRIES = 3;

/** A meta a listing knew unchanged, read now; null (with a warning when unreadable) to skip it. */
async function metaForList(ctx: StoreContext, slug: Slug): Promise<ConversationMeta | null> {
  try {
    return await ctx.backend.readMeta(slug);
  } catch (err) {
    if (!(err instanceof StepStoreError) || err.code !== 'CORRUPT_META') throw err;
    ctx.logger.warn(`skipping session ${slug}: ${err.message}`, { session: slug });
    return null;
  }
}

export async function append(
  ctx: StoreContext,
  handle: string,
  items: HistoryEntry[] | EventLine[],
  kind: 'entry' | 'event',
  options?: { expectedStep?: number },
): Promise<number[]> {
  assertOpen(ctx);
  const slug = parseHandle(handle);
  const expectedStep = expectedStepOf(options, kind === 'entry' ? 'appendMessages' : 'appendEvents');
  const steps = encodeBatch(items, kind, ctx.maxStepBytes, ctx.messages);
  const bump = kind === 'entry' && steps.length > 0 ? { messages: steps.length, at: now() } : null;
  return ctx.queue.run(slug, () => ctx.backend.appendSteps(slug, steps, bump, expectedStep));
}

export async function remove(ctx: StoreContext, handle: string): Promise<boolean> {
  assertOpen(ctx);
  const slug = parseHandle(handle);
  return ctx.queue.run(slug, () => ctx.backend.deleteSession(slug, archiveBase(slug)));
}

export async function repair(ctx: StoreContext, options?: RepairOptions): Promise<RepairReport> {
  assertOpen(ctx);
  const opts = optionsOf(options, 'repair');
  if (opts.dryRun !== undefined && typeof opts.dryRun !== 'boolean') throw invalidOption('dryRun must be a boolean');
  if (opts.fixModes !== undefined && typeof opts.fixModes !== 'boolean') throw invalidOption('fixModes must be a boolean');
  return ctx.backend.repair({ dryRun: opts.dryRun === true, fixModes: opts.fixModes === true });
}

export async function close(ctx: StoreContext): Promise<void> {
  if (ctx.closed) return;
  ctx.closed = true;
  await ctx.queue.drain();
  await ctx.backend.close();
}
