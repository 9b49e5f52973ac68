// Session metas on disk: `<root>/<slug>/meta`, replaced atomically, never
// followed through a symlink. Bumps from appendMessages are written behind
// the acknowledgement: coalesced per session and flushed by one store-wide
// timer, so a crash can leave the counters behind by at most the bumps still
// pending, never a torn or missing meta.

import { StepStoreError } from '../../errors.js';
import { applyBump, mergeBumps, type MetaBump } from '../../meta/bump.js';
import { decodeMeta, encodeMeta } from '../../meta/codec.js';
import type { Slug } from '../../sessions/slug.js';
import type { ConversationMeta } from '../../types.js';
import { ioError, type FsContext } from './context.js';
import { fsyncDirAsync, kindOf, readRegularFileSync, replaceFileAtomically } from './durable.js';
import { metaPath, sessionDir } from './paths.js';

/** How long a bump may wait before it is written; other processes see it after about this long. */
export const FLUSH_DELAY_MS = 50;
const RETRY_DELAY_MS = 1000;
const MAX_CONCURRENT_FLUSHES = 4;

const notFound = (slug: Slug) => new StepStoreError('SESSION_NOT_FOUND', `no session ${slug}`);

/** Throws SESSION_NOT_FOUND unless `slug` is a real directory with a `meta`; CORRUPT_META when meta is not a regular file. */
export function verifySession(ctx: FsContext, slug: Slug): void {
  try {
    if (kindOf(sessionDir(ctx.root, slug)) !== 'dir') throw notFound(slug);
    const meta = kindOf(metaPath(ctx.root, slug));
    if (meta === 'missing') throw notFound(slug);
    if (meta !== 'file') throw new StepStoreError('CORRUPT_META', `meta of ${slug} is not a regular file`);
  } catch (err) {
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
    if (!knownDir && kindOf(sessionDir(ctx.root, slug)) !== 'dir') return null;
    text = readRegularFileSync(metaPath(ctx.root, slug));
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
  const base = ctx.meta.inflight.get(slug)?.target ?? disk;
  const bump = ctx.meta.pending.get(slug);
  return bump === undefined ? base : applyBump(base, bump);
}

export async function readMeta(ctx: FsContext, slug: Slug): Promise<ConversationMeta | null> {
  const disk = readDiskMeta(ctx, slug);
  return disk === null ? null : withPending(ctx, slug, disk);
}

/** Replaces meta: checks it is not a symlink, writes atomically, fsyncs the directory at `full`. */
async function replaceMeta(ctx: FsContext, slug: Slug, meta: ConversationMeta): Promise<void> {
  const dir = sessionDir(ctx.root, slug);
  try {
    if (kindOf(dir) !== 'dir') throw notFound(slug);
    const existing = kindOf(metaPath(ctx.root, slug));
    if (existing !== 'file' && existing !== 'missing') {
      throw new StepStoreError('CORRUPT_META', `meta of ${slug} is not a regular file`);
    }
    await replaceFileAtomically(metaPath(ctx.root, slug), encodeMeta(meta));
    ctx.stats.metaWrites += 1;
    ctx.stats.syncs += 1;
    if (ctx.durability === 'full') {
      await fsyncDirAsync(dir);
      ctx.stats.syncs += 1;
    }
  } catch (err) {
    throw ioError(err, `writing meta of ${slug}`);
  }
}

/** Writes a new session's meta. */
export const writeNewMeta = replaceMeta;

/** Waits for a meta write under way and drops the pending bumps: what follows supersedes them. */
export async function settle(ctx: FsContext, slug: Slug): Promise<void> {
  await ctx.meta.inflight.get(slug)?.done;
  ctx.meta.pending.delete(slug);
}

export async function writeMeta(ctx: FsContext, slug: Slug, meta: ConversationMeta): Promise<void> {
  await settle(ctx, slug);
  await replaceMeta(ctx, slug, meta);
}

export function queueBump(ctx: FsContext, slug: Slug, bump: MetaBump): void {
  const pending = ctx.meta.pending.get(slug);
  ctx.meta.pending.set(slug, pending === undefined ? bump : mergeBumps(pending, bump));
  armFlush(ctx, FLUSH_DELAY_MS);
}

function armFlush(ctx: FsContext, delay: number): void {
  if (ctx.meta.timer !== null) return;
  ctx.meta.timer = setTimeout(() => {
    ctx.meta.timer = null;
    void flushPending(ctx, true);
  }, delay);
}

/** Writes one session's pending bumps on top of its meta on disk (another process may have bumped it too). */
async function flushSession(ctx: FsContext, slug: Slug, retry: boolean): Promise<void> {
  await ctx.meta.inflight.get(slug)?.done;
  const bump = ctx.meta.pending.get(slug);
  if (bump === undefined || ctx.meta.inflight.has(slug)) return;
  ctx.meta.pending.delete(slug);
  let target: ConversationMeta;
  try {
    const disk = readDiskMeta(ctx, slug);
    if (disk === null) return; // deleted meanwhile: nothing to count
    target = applyBump(disk, bump);
  } catch (err) {
    ctx.logger.warn(`dropping meta bump of ${slug}: ${(err as Error).message}`, { session: slug });
    return;
  }
  const done = replaceMeta(ctx, slug, target).catch((err: unknown) => {
    ctx.logger.warn(`meta bump of ${slug} not written: ${(err as Error).message}`, { session: slug });
    if (!retry) return;
    const since = ctx.meta.pending.get(slug);
    ctx.meta.pending.set(slug, since === undefined ? bump : mergeBumps(bump, since));
    armFlush(ctx, RETRY_DELAY_MS);
  });
  ctx.meta.inflight.set(slug, { target, done });
  await done;
  ctx.meta.inflight.delete(slug);
}

/** Flushes every pending bump, a few sessions at a time. */
export async function flushPending(ctx: FsContext, retry: boolean): Promise<void> {
  const slugs = [...ctx.meta.pending.keys()];
  const worker = async () => {
    for (let slug = slugs.pop(); slug !== undefined; slug = slugs.pop()) await flushSession(ctx, slug, retry);
  };
  await Promise.all(Array.from({ length: Math.min(MAX_CONCURRENT_FLUSHES, slugs.length) }, worker));
}

/** Stops the timer and writes everything pending; a failure now is reported and dropped. */
export async function closeMeta(ctx: FsContext): Promise<void> {
  if (ctx.meta.timer !== null) clearTimeout(ctx.meta.timer);
  ctx.meta.timer = null;
  await Promise.all([...ctx.meta.inflight.values()].map((write) => write.done));
  await flushPending(ctx, false);
}
