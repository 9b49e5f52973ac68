// Session metas on disk: `<root>/<slug>/meta`, replaced atomically, never
// followed through a symlink. Every read-and-replace of an existing meta
// holds the meta lock (lock.ts); bumps from appendMessages reach meta through
// the write-behind queue (bumps.ts), which writes them with writeBump.
// Reads and writes of meta take their descriptors from the store's budget
// (descriptors.ts); a write takes them before the lock, never waiting while
// holding it. A bump write that meets EMFILE waits its turn and runs again.

import { StepStoreError, ioError, sessionNotFound } from '../../errors.js';
import { applyBump, liveCount } from '../../format/bump.js';
import { decodeMeta, encodeMeta } from '../../format/meta.js';
import type { Slug } from '../../format/slug.js';
import { sameInstant } from '../../format/time.js';
import type { ConversationMeta } from '../../types.js';
import type { PendingBump } from './bumps.js';
import type { RawStep } from '../../format/records.js';
import { readLimit, type FsContext } from './context.js';
import { holding, isShortage, readNow } from './descriptors.js';
import { errnoOf, kindOf, readRegularFileSync } from './durable.js';
import { syncDir, syncsAt } from './durability.js';
import { LOCK_WAIT_MS, withLock } from './lock.js';
import { COUNTED_CHAIN, countedPath, metaPath, sessionDir } from './paths.js';
import { ensureStoreDir } from './store-dirs.js';
import { finishLeftRewind } from './history.js';
import { stepsNewestFirst } from './steps.js';

/**
 * The meta on disk; null when `slug` is not a session (a symlinked directory is
 * not one). Throws CORRUPT_META, IO_ERROR. `knownDir`: the caller saw a real directory.
 */
export function readDiskMeta(ctx: FsContext, slug: Slug, knownDir = false): ConversationMeta | null {
  let text: ReturnType<typeof readRegularFileSync>;
  try {
    if (!knownDir && kindOf(ctx.fs, sessionDir(ctx.root, slug)) !== 'dir') return null;
    text = readRegularFileSync(ctx.fs, metaPath(ctx.root, slug), readLimit(ctx, 'meta'));
  } catch (err) {
    throw ioError(err, `reading meta of ${slug}`);
  }
  if (typeof text !== 'string') {
    if (text.problem === 'missing') return null;
    throw new StepStoreError('CORRUPT_META', `meta of ${slug} is ${text.problem}`);
  }
  return decodeMeta(text);
}

/**
 * The session's created_at, which names the conversation; null when its meta
 * cannot be read. A shortage of descriptors (EMFILE) is thrown as IO_ERROR:
 * it says nothing about the meta.
 */
export function createdAtOf(ctx: FsContext, slug: Slug): string | null {
  try {
    return readDiskMeta(ctx, slug, true)?.created_at ?? null;
  } catch (err) {
    if (isShortage(err)) throw err;
    return null; // a corrupt meta: its bumps will be dropped with a warning when flushed
  }
}

export async function readMeta(ctx: FsContext, slug: Slug): Promise<ConversationMeta | null> {
  const disk = await readNow(ctx.descriptors, 1, () => readDiskMeta(ctx, slug));
  return disk === null ? null : ctx.bumps.applyTo(slug, disk);
}

/** Descriptors a meta write holds at once: write-file-atomic's temp (opened twice), then the directory for its sync. */
export const META_WRITE_UNITS = 2;

/**
 * withLock, holding the descriptors of a meta write (taken first); `again`:
 * after EMFILE or ENFILE, which leaves meta as it was (replaceMeta), wait the
 * turn and run `write` again, lock and all.
 */
function withLockHeld(ctx: FsContext, slug: Slug, waitMs: number, write: () => Promise<void>, again = false): Promise<boolean> {
  return holding(ctx.descriptors, META_WRITE_UNITS, again, () => withLock(ctx, slug, waitMs, write));
}

/**
 * Replaces meta: checks it is not a symlink, writes atomically, syncs the
 * directory as durability asks. When that last sync fails, the previous meta
 * is put back (best effort) before rejecting, so a failed write leaves no
 * visible change. It rejects with EMFILE or ENFILE (as cause) only when meta
 * is as it was: one that could not be put back is reported otherwise.
 */
export async function replaceMeta(ctx: FsContext, slug: Slug, meta: ConversationMeta): Promise<void> {
  const dir = sessionDir(ctx.root, slug);
  const path = metaPath(ctx.root, slug);
  const syncData = syncsAt(ctx, 'metaData');
  try {
    if (kindOf(ctx.fs, dir) !== 'dir') throw sessionNotFound(slug);
    const existing = kindOf(ctx.fs, path);
    if (existing !== 'file' && existing !== 'missing') {
      throw new StepStoreError('CORRUPT_META', `meta of ${slug} is not a regular file`);
    }
    const previous = existing === 'file' ? readRegularFileSync(ctx.fs, path, readLimit(ctx, 'meta')) : null;
    await ctx.fs.replaceFile(path, Buffer.from(encodeMeta(meta), 'utf8'), syncData);
    ctx.stats.metaWrites += 1;
    if (syncData) ctx.stats.syncs += 1;
    try {
      await syncDir(ctx, 'newEntries', dir);
    } catch (err) {
      const restored =
        typeof previous === 'string' && (await ctx.fs.replaceFile(path, Buffer.from(previous, 'utf8'), syncData).then(() => true, () => false));
      if (restored || !isShortage(err)) throw err;
      throw new StepStoreError('IO_ERROR', `syncing the new meta of ${slug} failed (${errnoOf(err)}), and the previous meta could not be put back`);
    }
  } catch (err) {
    throw ioError(err, `writing meta of ${slug}`);
  }
  announceMeta(ctx, slug);
}

/**
 * Tells this store's index, and touches the session directory so every store
 * watching the root (root-index.ts) hears of it: listings read the new meta.
 * Only a hint: a failed touch is ignored (listings check every meta now and then).
 */
function announceMeta(ctx: FsContext, slug: Slug): void {
  ctx.rootIndex.add(slug);
  try {
    ctx.fs.touchSync(sessionDir(ctx.root, slug));
  } catch {
    // The next check of every meta finds the change.
  }
}

export async function writeMeta(ctx: FsContext, slug: Slug, meta: ConversationMeta): Promise<void> {
  const pending = await ctx.bumps.settle(slug);
  let locked: boolean;
  try {
    locked = await withLockHeld(ctx, slug, LOCK_WAIT_MS, () => replaceMeta(ctx, slug, meta));
  } catch (err) {
    ctx.bumps.restore(slug, pending);
    throw ioError(err, `writing meta of ${slug}`);
  }
  if (!locked) {
    ctx.bumps.restore(slug, pending);
    throw new StepStoreError('IO_ERROR', `meta of ${slug} stayed locked by another process`);
  }
}

/**
 * The last count set outright: it holds every append placed before `atMs`
 * (a rewind: or retracted them) and every step up to `highest`. Null when never.
 */
interface CountSet {
  atMs: number;
  highest: number;
}

function countSetOf(ctx: FsContext, slug: Slug): CountSet | null {
  const text = readRegularFileSync(ctx.fs, countedPath(ctx.root, slug), 256);
  if (typeof text !== 'string') return null;
  try {
    const set = JSON.parse(text) as CountSet;
    return Number.isFinite(set.atMs) && Number.isSafeInteger(set.highest) ? set : null;
  } catch {
    return null;
  }
}

/**
 * Records the count written next as set outright (the caller holds the
 * lock). Not synced: after a power cut no bump of before it is pending anywhere.
 */
export async function markCountSet(ctx: FsContext, slug: Slug, set: CountSet): Promise<void> {
  await ensureStoreDir(ctx, COUNTED_CHAIN);
  await ctx.fs.replaceFile(countedPath(ctx.root, slug), Buffer.from(JSON.stringify(set), 'utf8'), false);
}

/**
 * The meta `bump` makes of `disk` (the caller holds the lock). Processes
 * write their bumps in any order, so a compaction's restart is not applied
 * as is (it would drop what other processes appended after the marker and
 * wrote first): the count is taken again from the steps, back to the last
 * boundary, and set outright. A message of a bump counts only when placed
 * after the last count set outright, and above the steps that count read.
 */
async function countedBump(ctx: FsContext, slug: Slug, disk: ConversationMeta, bump: PendingBump): Promise<ConversationMeta> {
  const set = countSetOf(ctx, slug);
  const compacted = bump.compacted;
  if (compacted !== null && (set === null || (compacted.atMs > set.atMs && compacted.step > set.highest))) {
    let highest = 0;
    const count = await liveCount(noting(stepsNewestFirst(ctx, slug), (step) => (highest = Math.max(highest, step))), ctx.messages);
    await markCountSet(ctx, slug, { atMs: set?.atMs ?? 0, highest });
    return { ...applyBump(disk, { messages: 0, at: bump.at }), message_count: count };
  }
  let messages = 0;
  for (const part of bump.parts) {
    if (set === null || part.atMs > set.atMs) messages += set === null ? part.steps.length : part.steps.filter((step) => step > set.highest).length;
  }
  return applyBump(disk, { messages, at: bump.at });
}

/** `slices`, telling `see` each step number as it passes. */
async function* noting(slices: AsyncIterable<RawStep[]>, see: (step: number) => void): AsyncGenerator<RawStep[]> {
  for await (const slice of slices) {
    for (const raw of slice) see(raw.step);
    yield slice;
  }
}

/**
 * Writes one queued bump onto the meta on disk, holding the lock (another
 * process may be bumping it too); after EMFILE it runs again, reading the disk anew.
 */
export function writeBump(
  ctx: FsContext,
  slug: Slug,
  bump: PendingBump,
  waitForLock: boolean,
  onTarget: (meta: ConversationMeta) => void,
): Promise<boolean> {
  return withLockHeld(ctx, slug, waitForLock ? LOCK_WAIT_MS : 0, async () => {
    // A rewind whose process died holding this lock first: its count does not hold this bump.
    await finishLeftRewind(ctx, slug);
    const disk = readDiskMeta(ctx, slug);
    // Deleted meanwhile, or deleted and created anew under the same name: nothing of this bump to count.
    if (disk === null || (bump.createdAt !== null && !sameInstant(disk.created_at, bump.createdAt))) return;
    const target = await countedBump(ctx, slug, disk, bump);
    onTarget(target);
    await replaceMeta(ctx, slug, target);
  }, true);
}

/**
 * Sets message_count from `expected` to `count` under the meta lock (repair);
 * false when the lock stayed busy, the meta is gone, its count moved since
 * it was read, or `unchanged` (checked under the lock) says the steps may have
 * (a write landed while repair counted: counting again is the caller's call).
 */
export async function setMessageCount(
  ctx: FsContext,
  slug: Slug,
  expected: number,
  count: number,
  unchanged: () => boolean = () => true,
): Promise<boolean> {
  let written = false;
  const locked = await withLockHeld(ctx, slug, LOCK_WAIT_MS, async () => {
    const disk = readDiskMeta(ctx, slug);
    if (disk === null || disk.message_count !== expected || !unchanged()) return;
    await replaceMeta(ctx, slug, { ...disk, message_count: count });
    written = true;
  });
  return locked && written;
}
