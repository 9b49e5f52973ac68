// Fork and rewind on the filesystem. A fork is a new session directory whose
// steps are hard links to the source's (no byte copied), marked `.fork`
// until its meta is written. A rewind first stores its intent (`.rewind`:
// the number to keep, the count and time for meta, the archives the retracted
// markers name) durably, then retracts the steps above it newest first until
// none is left, syncs, drops its hold on those archives, writes meta and
// drops the intent: a crash leaves the intent, which readers honour and the
// next writer finishes, so the session is as before or as after, never between.

import { setTimeout as sleep, setImmediate as yieldToLoop } from 'node:timers/promises';
import { archiveBase } from '../../format/archive.js';
import { StepStoreError, ioError } from '../../errors.js';
import { MAX_NAME_BYTES, prefixOf, type Slug } from '../../format/slug.js';
import { later } from '../../format/time.js';
import type { CountChange } from '../../backend.js';
import { liveCount } from '../../format/bump.js';
import type { ConversationMeta } from '../../types.js';
import type { PendingBump } from './bumps.js';
import { addReferences, dropReferences, heldArchives } from './archives.js';
import { readLimit, type FsContext } from './context.js';
import { createFileSync, errnoOf, kindOf, readRegularFileSync, unlinkQuietly } from './durable.js';
import { syncDir, syncFiles, syncsAt } from './durability.js';
import { LOCK_WAIT_MS, withLock } from './lock.js';
import { createdAtOf, markCountSet, readDiskMeta, replaceMeta } from './meta.js';
import { claimSession, finishCreate, takeBack } from './sessions.js';
import { archivesDir, countedPath, entryPath, forkMarkPath, metaPath, rewindPath, sessionDir, shareDir, tempPath } from './paths.js';
import { SLICE_MS, fenceConflict, listToRead, listingOf, stepNames, stepsBefore } from './steps.js';
import { sessionIdentity } from './session-dir.js';

/**
 * What a rewind under way will leave: steps up to `to`, message_count
 * `count`, updated_at at least `at`, and no hold on `archives` (named by the
 * markers it retracts).
 */
export interface RewindIntent {
  to: number;
  count: number;
  at: string;
  archives: string[];
  /** `count` was taken from the kept steps: bumps of appends placed before it are in it, or retracted. */
  counted: boolean;
  /**
   * A fenced rewind not yet confirmed: it holds only while no step above
   * `expected` exists (one that does was placed before the intent, so the
   * rewind withdraws). Confirmed, the intent is written again without it.
   */
  expected?: number;
}

/** The intent of a rewind under way in `slug`; null when none (or it is unreadable: one not yet whole was never committed). */
export function readIntent(ctx: FsContext, slug: Slug): RewindIntent | null {
  let text: ReturnType<typeof readRegularFileSync>;
  try {
    text = readRegularFileSync(ctx.fs, rewindPath(ctx.root, slug), readLimit(ctx, 'meta'));
  } catch (err) {
    throw ioError(err, `reading the rewind under way in ${slug}`);
  }
  if (typeof text !== 'string') return null;
  try {
    const { to, count, at, archives = [], counted = true, expected } = JSON.parse(text) as Partial<RewindIntent>;
    const whole = Number.isSafeInteger(to) && Number.isSafeInteger(count) && typeof at === 'string' && typeof counted === 'boolean';
    if (!whole || !Array.isArray(archives) || !archives.every((name) => typeof name === 'string')) return null;
    if (expected !== undefined && !Number.isSafeInteger(expected)) return null;
    return { to: to!, count: count!, at, archives, counted, ...(expected === undefined ? {} : { expected }) };
  } catch {
    return null;
  }
}

/**
 * Stores the intent durably (file, then its name): from here on the rewind is
 * as good as done. `replacing`: a committed intent is there, which this one
 * refines (either one carries the rewind out).
 */
async function writeIntent(ctx: FsContext, slug: Slug, intent: RewindIntent, replacing = false): Promise<void> {
  const dir = sessionDir(ctx.root, slug);
  const temp = tempPath(dir);
  const fd = createFileSync(ctx.fs, temp, Buffer.from(JSON.stringify(intent), 'utf8'));
  try {
    try {
      await syncFiles(ctx, 'history', [fd]);
    } finally {
      ctx.fs.closeSync(fd);
    }
    ctx.fs.renameSync(temp, rewindPath(ctx.root, slug));
    try {
      await syncDir(ctx, 'history', dir);
    } catch (err) {
      // A first intent not durable is not committed: no reader may honour it.
      if (!replacing) unlinkQuietly(ctx.fs, rewindPath(ctx.root, slug));
      throw err;
    }
  } finally {
    unlinkQuietly(ctx.fs, temp);
  }
}

/** `slug` holds a regular meta (IO_ERROR when that cannot be told). */
function hasMeta(ctx: FsContext, slug: Slug): boolean {
  try {
    return kindOf(ctx.fs, metaPath(ctx.root, slug)) === 'file';
  } catch (err) {
    throw ioError(err, `checking session ${slug}`);
  }
}

/**
 * Drops the session's hold on `names` (removing the archives no live session
 * holds any more), on disk at every level before the intent goes: a crash
 * before leaves the intent, and whoever finishes it drops them again.
 */
async function dropRetracted(ctx: FsContext, slug: Slug, names: string[]): Promise<void> {
  const unique = [...new Set(names)].filter((name) => Buffer.byteLength(name, 'utf8') <= MAX_NAME_BYTES);
  if (unique.length === 0) return;
  await dropReferences(ctx, slug, unique, createdAtOf(ctx, slug));
  // dropReferences syncs the archives it removed only where deletions are synced, and the references it dropped nowhere.
  const dirs = [...(syncsAt(ctx, 'deletions') ? [] : [archivesDir(ctx.root)]), ...unique.map((name) => shareDir(ctx.root, name))];
  for (const dir of dirs) if (kindOf(ctx.fs, dir) === 'dir') await syncDir(ctx, 'history', dir);
}

/**
 * Carries out `intent` (the caller holds the meta lock): removes every step
 * above `to`, newest first, listing again until none is left (appends of
 * other processes racing with it are retracted too: they came first), syncs
 * the removals, writes meta, then drops the intent. Returns the steps removed.
 */
async function applyIntent(ctx: FsContext, slug: Slug, intent: RewindIntent): Promise<number> {
  const dir = sessionDir(ctx.root, slug);
  let removed = 0;
  let since = performance.now();
  for (;;) {
    const listing = listingOf(await ctx.fs.readdir(dir));
    const above = stepNames(listing, (step) => step > intent.to).map((name) => entryPath(dir, name));
    if (above.length === 0) break;
    for (const path of above.reverse()) {
      try {
        ctx.fs.unlinkSync(path);
        removed += 1;
      } catch (err) {
        if (errnoOf(err) !== 'ENOENT') throw err;
      }
      if (performance.now() - since >= SLICE_MS) {
        await yieldToLoop();
        since = performance.now();
      }
    }
  }
  await syncDir(ctx, 'history', dir);
  await dropRetracted(ctx, slug, intent.archives);
  // Every append placed until now is retracted or in `count` (appends placed later see the intent and wait for it).
  const setAtMs = Date.now();
  if (intent.counted) await markCountSet(ctx, slug, { atMs: setAtMs, highest: intent.to });
  const disk = readDiskMeta(ctx, slug);
  if (disk !== null) await replaceMeta(ctx, slug, { ...disk, message_count: intent.count, updated_at: later(disk.updated_at, intent.at) });
  // The intent goes only once the clock has moved on: an append placed after it never shares the count's millisecond.
  while (Date.now() <= setAtMs) await sleep(1);
  ctx.fs.unlinkSync(rewindPath(ctx.root, slug));
  await syncDir(ctx, 'deletions', dir);
  ctx.sessions.delete(slug);
  return removed;
}

/** Finishes a rewind left in `slug` by a process that died, or waits for the one under way; false when its lock stayed busy. */
export async function completeRewind(ctx: FsContext, slug: Slug): Promise<void> {
  const locked = await withLock(ctx, slug, LOCK_WAIT_MS, () => finishLeftRewind(ctx, slug));
  if (!locked) throw new StepStoreError('IO_ERROR', `a rewind of ${slug} kept its meta locked`);
}

/** True when `intent` holds for a session whose highest step is `highest` (a fenced one not confirmed holds only up to its fence). */
export function intentHolds(intent: RewindIntent, highest: number): boolean {
  return intent.expected === undefined || highest <= intent.expected;
}

/** Carries out a rewind's intent left in `slug` (the caller holds the meta lock); none there: nothing. */
export async function finishLeftRewind(ctx: FsContext, slug: Slug): Promise<void> {
  if (kindOf(ctx.fs, rewindPath(ctx.root, slug)) === 'missing') return;
  const intent = readIntent(ctx, slug);
  // Not committed: its file was not whole, or a fenced rewind that found a step above its fence.
  if (intent === null || !intentHolds(intent, listingOf(await ctx.fs.readdir(sessionDir(ctx.root, slug))).highest)) {
    unlinkQuietly(ctx.fs, rewindPath(ctx.root, slug));
    return;
  }
  await applyIntent(ctx, slug, intent);
}

/** message_count of the steps up to `toStep`, read back to the last boundary among them. */
function countKept(ctx: FsContext, slug: Slug, toStep: number): Promise<number> {
  return liveCount(stepsBefore(ctx, slug, toStep + 1), ctx.messages);
}

/**
 * The count a rewind writes (the caller holds the meta lock). Taken down by
 * `less` from the meta on disk plus this store's bumps taken out
 * (`pending`), which adds up with every bump other processes write later,
 * while the highest step is the one the rules saw, no compaction is pending
 * here and no count was ever set outright; else counted from the kept steps.
 */
async function countFor(
  ctx: FsContext,
  slug: Slug,
  toStep: number,
  change: CountChange,
  pending: PendingBump | undefined,
  highest: number,
): Promise<{ count: number; counted: boolean }> {
  // Only while no count was ever set outright: the bumps that count leaves out are told by their steps, which a rewind reuses.
  if ('less' in change && change.expectedHighest === highest && pending?.compacted == null && kindOf(ctx.fs, countedPath(ctx.root, slug)) === 'missing') {
    const disk = readDiskMeta(ctx, slug);
    const count = disk === null ? -1 : disk.message_count + (pending?.messages ?? 0) - change.less;
    // Below 0, other processes hold bumps of the retracted messages not yet written: count the kept steps instead.
    if (count >= 0) return { count, counted: false };
  }
  return { count: 'count' in change ? change.count : await countKept(ctx, slug, toStep), counted: true };
}

/**
 * Retracts every step above `toStep` (all or none), drops this session's
 * references on `archives` (removing those no live session holds any more),
 * sets message_count and updated_at. Null when there is no session. Once
 * its intent is on disk the rewind is done for every reader: a failure
 * after that is a warning (the next writer or repair() finishes it).
 */
export async function rewind(
  ctx: FsContext,
  slug: Slug,
  toStep: number,
  change: CountChange,
  at: string,
  archives: string[],
  expectedStep?: number,
): Promise<number | null> {
  if (sessionIdentity(ctx, slug) === null || !hasMeta(ctx, slug)) return null;
  // This store's bumps are taken out: the rewind writes the count itself (adding them when it takes the count down).
  const pending = await ctx.bumps.settle(slug);
  let removed = 0;
  let committed = false;
  let locked: boolean;
  try {
    locked = await withLock(ctx, slug, LOCK_WAIT_MS, async () => {
      await finishLeftRewind(ctx, slug);
      const dir = sessionDir(ctx.root, slug);
      const before = listingOf(await ctx.fs.readdir(dir));
      if (expectedStep !== undefined && before.highest !== expectedStep) throw fenceConflict(expectedStep);
      removed = stepNames(before, (step) => step > toStep).length;
      let intent: RewindIntent = { to: toStep, at, archives, ...(await countFor(ctx, slug, toStep, change, pending, before.highest)) };
      if (expectedStep !== undefined) {
        // Readers honour this intent only while no step above the fence exists (intentHolds).
        await writeIntent(ctx, slug, { ...intent, expected: expectedStep });
        committed = true;
        // An append placed between the listing and the intent is acknowledged: the intent goes, nothing is retracted.
        if (listingOf(await ctx.fs.readdir(dir)).highest !== expectedStep) {
          committed = false;
          ctx.fs.unlinkSync(rewindPath(ctx.root, slug));
          await syncDir(ctx, 'history', dir);
          throw fenceConflict(expectedStep);
        }
        // Confirmed: from here on the rewind holds whatever steps appear (appends placed now wait for it).
        await writeIntent(ctx, slug, intent, true);
      } else {
        await writeIntent(ctx, slug, intent);
      }
      committed = true;
      // An append placed between the listing and the intent goes too, uncounted by `less`: count the kept steps instead.
      if (!intent.counted && listingOf(await ctx.fs.readdir(dir)).highest !== before.highest) {
        intent = { ...intent, ...(await countFor(ctx, slug, toStep, { count: await countKept(ctx, slug, toStep) }, pending, before.highest)) };
        await writeIntent(ctx, slug, intent, true);
      }
      removed = await applyIntent(ctx, slug, intent);
    });
  } catch (err) {
    if (committed) {
      ctx.logger.warn(`${slug} rewound to step ${toStep}, but finishing it failed (the next append or repair() finishes it): ${(err as Error).message}`, { session: slug });
      return removed;
    }
    ctx.bumps.restore(slug, pending);
    if (err instanceof StepStoreError && err.code === 'SESSION_NOT_FOUND') return null;
    throw ioError(err, `rewinding ${slug}`);
  } finally {
    ctx.sessions.delete(slug);
  }
  if (!locked) {
    ctx.bumps.restore(slug, pending);
    throw new StepStoreError('IO_ERROR', `meta of ${slug} stayed locked by another process`);
  }
  return removed;
}

/**
 * A new session of the source's pair holding steps 1..atStep as hard links:
 * the directory is claimed and marked `.fork`, the links made and synced,
 * references taken on the archives the source holds, and meta written last.
 * Null when `source` is not a session; CONFLICT when it no longer holds atStep.
 */
export async function fork(ctx: FsContext, source: Slug, atStep: number, meta: ConversationMeta): Promise<Slug | null> {
  // Under the source's meta lock, which a rewind holds throughout: none retracts a marker (and drops its archive) midway.
  let forked: Slug | null = null;
  let locked: boolean;
  try {
    locked = await withLock(ctx, source, LOCK_WAIT_MS, async () => {
      forked = await forkLocked(ctx, source, atStep, meta);
    });
  } catch (err) {
    if (err instanceof StepStoreError && err.code === 'SESSION_NOT_FOUND') return null;
    throw ioError(err, `forking ${source}`);
  }
  if (!locked) throw new StepStoreError('IO_ERROR', `meta of ${source} stayed locked by another process`);
  return forked;
}

async function forkLocked(ctx: FsContext, source: Slug, atStep: number, meta: ConversationMeta): Promise<Slug | null> {
  const sourceDir = sessionDir(ctx.root, source);
  const identity = sessionIdentity(ctx, source);
  const listing = identity === null ? null : await listToRead(ctx, source);
  if (listing === null || !hasMeta(ctx, source)) return null;
  if (listing.highest < atStep) throw new StepStoreError('CONFLICT', `${source} no longer holds step ${atStep}`);
  const names = stepNames(listing, (step) => step <= atStep);
  let held: string[];
  try {
    held = await heldArchives(ctx, source, archiveBase(source), createdAtOf(ctx, source));
  } catch (err) {
    throw ioError(err, `listing the archives of ${source}`);
  }
  const slug = await claimSession(ctx, prefixOf(source));
  const dir = sessionDir(ctx.root, slug);
  try {
    ctx.fs.closeSync(createFileSync(ctx.fs, forkMarkPath(ctx.root, slug), Buffer.alloc(0)));
    // The mark is on disk before any link: a directory a crash left with links in it is known for a fork cut short.
    await syncDir(ctx, 'history', dir);
    let since = performance.now();
    for (const name of names) {
      ctx.fs.linkSync(entryPath(sourceDir, name), entryPath(dir, name));
      if (performance.now() - since >= SLICE_MS) {
        await yieldToLoop();
        since = performance.now();
      }
    }
    // The links are durable before the meta that makes them a session, at every level: a fork appears whole or not at all.
    await syncDir(ctx, 'history', dir);
    await addReferences(ctx, slug, held);
    // Checked once the references are there: a delete of the source from now on leaves its archives to the fork.
    if (sessionIdentity(ctx, source) !== identity) throw Object.assign(new Error(`${source} was deleted while it was forked`), { code: 'ENOENT' });
  } catch (err) {
    await takeBack(ctx, slug);
    await dropReferences(ctx, slug, held, null).catch(() => undefined);
    if (errnoOf(err) === 'ENOENT') {
      if (sessionIdentity(ctx, source) !== identity) return null;
      throw new StepStoreError('CONFLICT', `${source} no longer holds step ${atStep}`);
    }
    throw ioError(err, `forking ${source}`);
  }
  try {
    await finishCreate(ctx, slug, meta);
  } catch (err) {
    await dropReferences(ctx, slug, held, null).catch(() => undefined);
    throw err;
  }
  unlinkQuietly(ctx.fs, forkMarkPath(ctx.root, slug));
  ctx.sessions.delete(slug);
  return slug;
}
