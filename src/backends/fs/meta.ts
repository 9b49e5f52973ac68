// Session metas on disk: `<root>/<slug>/meta`, replaced atomically, never
// followed through a symlink. Bumps from appendMessages are written behind
// the acknowledgement: coalesced per session and flushed by one store-wide
// timer, so a crash can leave the counters behind by at most the bumps still
// pending, never a torn or missing meta. Every read-and-replace of an existing
// meta holds `<slug>/.meta.lock`, so processes bumping one session never lose
// each other's counts.

import { StepStoreError, isStepStoreError } from '../../errors.js';
import { applyBump, mergeBumps } from '../../meta/bump.js';
import { decodeMeta, encodeMeta } from '../../meta/codec.js';
import { sameInstant } from '../../meta/time.js';
import type { Slug } from '../../sessions/slug.js';
import type { ConversationMeta } from '../../types.js';
import { ioError, type FsContext, type PendingBump } from './context.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { OPEN_DIR, createLockSync, errnoOf, fsyncDirAsync, kindOf, readRegularFileSync, unlinkQuietly } from './durable.js';
import { metaLockPath, metaPath, sessionDir } from './paths.js';


/** How long a bump may wait before it is written; other processes see it after about this long. */
export const FLUSH_DELAY_MS = 50;
const RETRY_DELAY_MS = 1000;
const MAX_CONCURRENT_FLUSHES = 4;
/** A lock older than this was left by a process that died holding it, and is broken. */
export const LOCK_STALE_MS = 10_000;
/** How long a meta write that must not be dropped waits for the lock. */
const LOCK_WAIT_MS = LOCK_STALE_MS + 2_000;

const notFound = (slug: Slug) => new StepStoreError('SESSION_NOT_FOUND', `no session ${slug}`);

function checkMetaFile(ctx: FsContext, slug: Slug): void {
  const meta = kindOf(ctx.fs, metaPath(ctx.root, slug));
  if (meta === 'missing') throw notFound(slug);
  if (meta !== 'file') throw new StepStoreError('CORRUPT_META', `meta of ${slug} is not a regular file`);
}

/** Throws SESSION_NOT_FOUND unless `slug` is a real directory with a `meta`; CORRUPT_META when meta is not a regular file. */
export function verifySession(ctx: FsContext, slug: Slug): void {
  try {
    if (kindOf(ctx.fs, sessionDir(ctx.root, slug)) !== 'dir') throw notFound(slug);
    checkMetaFile(ctx, slug);
  } catch (err) {
    throw ioError(err, `checking session ${slug}`);
  }
}

/**
 * verifySession for an append: opens the session directory itself without
 * following a symlink and returns the descriptor (for its fsync); the caller closes it.
 */
export function openSession(ctx: FsContext, slug: Slug): number {
  let fd: number;
  try {
    fd = ctx.fs.openSync(sessionDir(ctx.root, slug), OPEN_DIR);
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'ENOENT' || code === 'ELOOP' || code === 'ENOTDIR') throw notFound(slug);
    throw ioError(err, `opening session ${slug}`);
  }
  try {
    checkMetaFile(ctx, slug);
    return fd;
  } catch (err) {
    ctx.fs.closeSync(fd);
    throw ioError(err, `checking session ${slug}`);
  }
}

/**
 * The meta on disk; null when `slug` is not a session (a symlinked directory is
 * not one). Throws CORRUPT_META, IO_ERROR. `knownDir`: the caller saw a real directory.
 */
export function readDiskMeta(ctx: FsContext, slug: Slug, knownDir = false): ConversationMeta | null {
  let text: ReturnType<typeof readRegularFileSync>;
  try {
    if (!knownDir && kindOf(ctx.fs, sessionDir(ctx.root, slug)) !== 'dir') return null;
    text = readRegularFileSync(ctx.fs, metaPath(ctx.root, slug));
  } catch (err) {
    throw ioError(err, `reading meta of ${slug}`);
  }
  if (typeof text !== 'string') {
    if (text.problem === 'missing') return null;
    throw new StepStoreError('CORRUPT_META', `meta of ${slug} is a ${text.problem}`);
  }
  return decodeMeta(text);
}

/** What this store knows meta to be: the disk (or the write under way) plus pending bumps. */
export function withPending(ctx: FsContext, slug: Slug, disk: ConversationMeta): ConversationMeta {
  const inflight = ctx.meta.inflight.get(slug);
  // Before the write under way has read the disk, its bump is not on disk yet either.
  let base = inflight === undefined ? disk : (inflight.target ?? applyBump(disk, inflight.bump));
  const bump = ctx.meta.pending.get(slug);
  if (bump !== undefined) base = applyBump(base, bump);
  return base;
}

export async function readMeta(ctx: FsContext, slug: Slug): Promise<ConversationMeta | null> {
  const disk = readDiskMeta(ctx, slug);
  return disk === null ? null : withPending(ctx, slug, disk);
}

/**
 * Replaces meta: checks it is not a symlink, writes atomically, fsyncs the
 * directory at `full`. When that last fsync fails, the previous meta is put
 * back (best effort) before rejecting, so a failed write leaves no visible change.
 */
export async function replaceMeta(ctx: FsContext, slug: Slug, meta: ConversationMeta): Promise<void> {
  const dir = sessionDir(ctx.root, slug);
  const path = metaPath(ctx.root, slug);
  try {
    if (kindOf(ctx.fs, dir) !== 'dir') throw notFound(slug);
    const existing = kindOf(ctx.fs, path);
    if (existing !== 'file' && existing !== 'missing') {
      throw new StepStoreError('CORRUPT_META', `meta of ${slug} is not a regular file`);
    }
    const previous = existing === 'file' ? readRegularFileSync(ctx.fs, path) : null;
    await ctx.fs.replaceFile(path, Buffer.from(encodeMeta(meta), 'utf8'));
    ctx.stats.metaWrites += 1;
    ctx.stats.syncs += 1;
    if (ctx.durability !== 'full') return;
    try {
      await fsyncDirAsync(ctx.fs, dir);
      ctx.stats.syncs += 1;
    } catch (err) {
      if (typeof previous === 'string') await ctx.fs.replaceFile(path, Buffer.from(previous, 'utf8')).catch(() => undefined);
      throw err;
    }
  } catch (err) {
    throw ioError(err, `writing meta of ${slug}`);
  }
}


/** Takes the session's meta lock, or returns false when another process holds it. */
function tryLock(ctx: FsContext, slug: Slug): boolean {
  const path = metaLockPath(ctx.root, slug);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      createLockSync(ctx.fs, path);
      return true;
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') throw notFound(slug); // deleted meanwhile
      if (code !== 'EEXIST') throw err;
    }
    try {
      if (Date.now() - ctx.fs.lstatSync(path).mtimeMs <= LOCK_STALE_MS) return false;
      unlinkQuietly(ctx.fs, path);
    } catch {
      // Released meanwhile: try again.
    }
  }
  return false;
}

/** Runs `write` holding the meta lock; waits up to `waitMs` for it, else resolves to false without running. */
async function withLock(ctx: FsContext, slug: Slug, waitMs: number, write: () => Promise<void>): Promise<boolean> {
  const deadline = Date.now() + waitMs;
  while (!tryLock(ctx, slug)) {
    if (Date.now() >= deadline) return false;
    await sleep(10);
  }
  try {
    await write();
    return true;
  } finally {
    unlinkQuietly(ctx.fs, metaLockPath(ctx.root, slug));
  }
}

/**
 * Takes the pending bumps out and waits until no meta write is under way
 * (one that fails puts its bump back: taken too): what follows supersedes
 * them. Returns them, for `restorePending` should that fail.
 */
export async function settle(ctx: FsContext, slug: Slug): Promise<PendingBump | undefined> {
  let taken: PendingBump | undefined;
  for (;;) {
    const pending = ctx.meta.pending.get(slug);
    ctx.meta.pending.delete(slug);
    if (pending !== undefined) taken = taken === undefined ? pending : mergePending(taken, pending);
    const inflight = ctx.meta.inflight.get(slug);
    if (inflight === undefined) return taken;
    await inflight.done;
  }
}

/** Puts back bumps `settle` took, when what was to supersede them did not happen. */
export function restorePending(ctx: FsContext, slug: Slug, bump: PendingBump | undefined): void {
  if (bump !== undefined) queueBump(ctx, slug, bump);
}

/** Two bumps of one session add up; a bump for a newer session of the same name replaces the older one's. */
function mergePending(older: PendingBump, newer: PendingBump): PendingBump {
  return older.createdAt === newer.createdAt ? { ...mergeBumps(older, newer), createdAt: newer.createdAt } : newer;
}

export async function writeMeta(ctx: FsContext, slug: Slug, meta: ConversationMeta): Promise<void> {
  const pending = await settle(ctx, slug);
  let locked: boolean;
  try {
    locked = await withLock(ctx, slug, LOCK_WAIT_MS, () => replaceMeta(ctx, slug, meta));
  } catch (err) {
    restorePending(ctx, slug, pending);
    throw ioError(err, `writing meta of ${slug}`);
  }
  if (!locked) {
    restorePending(ctx, slug, pending);
    throw new StepStoreError('IO_ERROR', `meta of ${slug} stayed locked by another process`);
  }
}

/**
 * Sets message_count from `expected` to `count` under the meta lock (repair);
 * false when the lock stayed busy, the meta is gone, or its count moved since
 * it was read (a bump landed while repair counted: counting again is the caller's call).
 */
export async function setMessageCount(ctx: FsContext, slug: Slug, expected: number, count: number): Promise<boolean> {
  let written = false;
  const locked = await withLock(ctx, slug, LOCK_WAIT_MS, async () => {
    const disk = readDiskMeta(ctx, slug);
    if (disk === null || disk.message_count !== expected) return;
    await replaceMeta(ctx, slug, { ...disk, message_count: count });
    written = true;
  });
  return locked && written;
}

export function queueBump(ctx: FsContext, slug: Slug, bump: PendingBump): void {
  const pending = ctx.meta.pending.get(slug);
  ctx.meta.pending.set(slug, pending === undefined ? bump : mergePending(pending, bump));
  armFlush(ctx, FLUSH_DELAY_MS);
}

function armFlush(ctx: FsContext, delay: number): void {
  if (ctx.meta.timer !== null) return;
  ctx.meta.timer = setTimeout(() => {
    ctx.meta.timer = null;
    void flushPending(ctx, false);
  }, delay);
}

/**
 * Writes one session's pending bumps on top of its meta on disk, holding the
 * lock (another process may be bumping it too). The timer does not wait for a
 * busy lock: the bumps go back to pending for a later tick. `closing`: wait
 * for the lock, and report a failure rather than retry it.
 */
async function flushSession(ctx: FsContext, slug: Slug, closing: boolean): Promise<void> {
  await ctx.meta.inflight.get(slug)?.done;
  const bump = ctx.meta.pending.get(slug);
  if (bump === undefined || ctx.meta.inflight.has(slug)) return;
  ctx.meta.pending.delete(slug);
  const putBack = (delay: number) => {
    const since = ctx.meta.pending.get(slug);
    ctx.meta.pending.set(slug, since === undefined ? bump : mergePending(bump, since));
    armFlush(ctx, delay);
  };
  const entry: { bump: PendingBump; target: ConversationMeta | null; done: Promise<void> } = { bump, target: null, done: Promise.resolve() };
  // Until the write lands, this store's readers see the meta being written (the bump applied).
  ctx.meta.inflight.set(slug, entry);
  const finished = () => {
    if (ctx.meta.inflight.get(slug) === entry) ctx.meta.inflight.delete(slug);
  };
  const write = async () => {
    const disk = readDiskMeta(ctx, slug);
    // Deleted meanwhile, or deleted and created anew under the same name: nothing of this bump to count.
    if (disk === null || (bump.createdAt !== null && !sameInstant(disk.created_at, bump.createdAt))) return;
    entry.target = applyBump(disk, bump);
    await replaceMeta(ctx, slug, entry.target);
  };
  entry.done = withLock(ctx, slug, closing ? LOCK_WAIT_MS : 0, write).then(
    (locked) => {
      finished();
      if (!locked && !closing) putBack(FLUSH_DELAY_MS);
      else if (!locked) ctx.logger.warn(`meta bump of ${slug} not written: its meta stayed locked`, { session: slug });
    },
    (err: unknown) => {
      finished();
      ctx.logger.warn(`meta bump of ${slug} not written: ${(err as Error).message}`, { session: slug });
      // A session gone or unreadable will not become countable by retrying.
      if (!closing && !isStepStoreError(err, 'CORRUPT_META') && !isStepStoreError(err, 'SESSION_NOT_FOUND')) putBack(RETRY_DELAY_MS);
    },
  );
  await entry.done;
}

/** Flushes every pending bump, a few sessions at a time. */
export async function flushPending(ctx: FsContext, closing: boolean): Promise<void> {
  const slugs = [...ctx.meta.pending.keys()];
  const worker = async () => {
    for (let slug = slugs.pop(); slug !== undefined; slug = slugs.pop()) await flushSession(ctx, slug, closing);
  };
  await Promise.all(Array.from({ length: Math.min(MAX_CONCURRENT_FLUSHES, slugs.length) }, worker));
}

/** Stops the timer and writes everything pending, waiting for writes under way. */
export async function closeMeta(ctx: FsContext): Promise<void> {
  if (ctx.meta.timer !== null) clearTimeout(ctx.meta.timer);
  ctx.meta.timer = null;
  while (ctx.meta.pending.size > 0 || ctx.meta.inflight.size > 0) {
    await Promise.all([...ctx.meta.inflight.values()].map((write) => write.done));
    await flushPending(ctx, true);
  }
  if (ctx.meta.timer !== null) clearTimeout(ctx.meta.timer);
  ctx.meta.timer = null;
}
