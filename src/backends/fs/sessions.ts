// Session directories under the root: exclusive creation (a non-recursive
// mkdir claims the seq; EEXIST means take the next; a deleted seq is never
// taken again), lookups by seq from the root's index, and deletion
// by marking the seq deleted, then renaming into the trash so a session
// disappears at once, then removing it and its own archives.

import type { StoredSession } from '../../backend.js';
import { StepStoreError, handleDeleted, ioError } from '../../errors.js';
import { prefixOf, seqOf, slugOf, type SessionPrefix, type Slug } from '../../format/slug.js';
import { sameInstant } from '../../format/time.js';
import type { ConversationMeta } from '../../types.js';
import { releaseArchives } from './archives.js';
import { cacheState, type FsContext } from './context.js';
import { DIR_MODE, createFileSync, errnoOf, kindOf, unlinkQuietly } from './durable.js';
import { syncDir } from './durability.js';
import { holding } from './descriptors.js';
import { META_WRITE_UNITS, createdAtOf, readDiskMeta, replaceMeta } from './meta.js';
import { TRASH_CHAIN, countedPath, deletedChain, deletedDir, deletedPath, metaPath, parseDeletedName, sessionDir, trashPath } from './paths.js';
import { currentIndex } from './root-index.js';
import { identityOf } from './session-dir.js';
import { ensureStoreDir } from './store-dirs.js';

/** This pair's deleted sessions: their seqs are never handed out again. */
async function deletedOf(ctx: FsContext, prefix: SessionPrefix): Promise<{ seq: number; createdAt: string }[]> {
  const dir = deletedDir(ctx.root, prefix);
  try {
    if (kindOf(ctx.fs, dir) !== 'dir') return [];
    return (await ctx.fs.readdir(dir)).map(parseDeletedName).filter((entry) => entry !== null);
  } catch (err) {
    throw ioError(err, `listing the deleted sessions of ${prefix}`);
  }
}

/** The created_ats recorded when `slug` was deleted ('' for an unknown one); empty when it never was. */
async function deletedAs(ctx: FsContext, slug: Slug): Promise<string[]> {
  const seq = seqOf(slug);
  return (await deletedOf(ctx, prefixOf(slug))).filter((entry) => entry.seq === seq).map((entry) => entry.createdAt);
}

/**
 * Claims the next seq: above every session of the pair in the root and every
 * one deleted (so a handle never names a second conversation), with a
 * non-recursive mkdir that fails on an existing directory.
 */
export async function createSession(ctx: FsContext, prefix: SessionPrefix, meta: ConversationMeta): Promise<Slug> {
  const slug = await claimSession(ctx, prefix);
  await finishCreate(ctx, slug, meta);
  return slug;
}

/** Claims the next seq of `prefix` (see createSession) as an empty directory; the caller finishes it or takes it back. */
export async function claimSession(ctx: FsContext, prefix: SessionPrefix): Promise<Slug> {
  const index = await currentIndex(ctx);
  let seq = (index.seqsOf(prefix).at(-1) ?? 0) + 1;
  // Read after the root: a delete marks the seq before its directory goes, so no seq slips between the two.
  for (const { seq: taken } of await deletedOf(ctx, prefix)) if (taken >= seq) seq = taken + 1;
  let slug: Slug;
  for (;;) {
    if (!Number.isSafeInteger(seq)) throw new StepStoreError('CONFLICT', `no seq is left for ${prefix}<seq>: the highest one is taken`);
    slug = slugOf(prefix, seq);
    try {
      ctx.fs.mkdirSync(sessionDir(ctx.root, slug), DIR_MODE);
    } catch (err) {
      if (errnoOf(err) !== 'EEXIST') throw ioError(err, `creating session ${slug}`);
      seq += 1;
      continue;
    }
    index.add(slug);
    try {
      // Created, and deleted, by others since we listed: give the seq up.
      if ((await deletedAs(ctx, slug)).length === 0) break;
    } catch (err) {
      await takeBack(ctx, slug);
      throw ioError(err, `creating session ${slug}`);
    }
    await takeBack(ctx, slug);
    seq += 1;
  }
  return slug;
}

/** Removes a directory this store claimed and did not finish. */
export async function takeBack(ctx: FsContext, slug: Slug): Promise<void> {
  await ctx.fs.removeTree(sessionDir(ctx.root, slug)).catch(() => undefined);
  ctx.rootIndex.remove(slug);
}

/** Writes the meta of a directory this store just claimed; on failure takes the directory back. */
export async function finishCreate(ctx: FsContext, slug: Slug, meta: ConversationMeta): Promise<void> {
  const dir = sessionDir(ctx.root, slug);
  let identity: string;
  try {
    ctx.fs.chmodSync(dir, DIR_MODE);
    identity = identityOf(ctx.fs.lstatSync(dir));
    await holding(ctx.descriptors, META_WRITE_UNITS, false, async () => {
      await replaceMeta(ctx, slug, meta);
      await syncDir(ctx, 'newEntries', ctx.root);
    });
  } catch (err) {
    // Not acknowledged: take the claimed directory back so nothing half-made is left.
    await takeBack(ctx, slug);
    throw ioError(err, `creating session ${slug}`);
  }
  cacheState(ctx, slug, { nextStep: 1, createdAt: meta.created_at, identity, placedAtMs: 0 });
}

/**
 * Creates exactly `slug`; an existing session is returned untouched (a
 * directory without meta is finished). CONFLICT when `slug` was deleted as
 * another conversation: a handle never names a second one.
 */
export async function importSession(ctx: FsContext, slug: Slug, meta: ConversationMeta): Promise<ConversationMeta | null> {
  const deleted = await deletedAs(ctx, slug);
  if (deleted.length > 0 && !deleted.some((createdAt) => createdAt !== '' && sameInstant(createdAt, meta.created_at))) {
    throw handleDeleted(slug);
  }
  try {
    ctx.fs.mkdirSync(sessionDir(ctx.root, slug), DIR_MODE);
  } catch (err) {
    if (errnoOf(err) !== 'EEXIST') throw ioError(err, `importing session ${slug}`);
    const existing = readDiskMeta(ctx, slug);
    if (existing !== null) return existing;
    if (kindOf(ctx.fs, sessionDir(ctx.root, slug)) !== 'dir') throw ioError(err, `importing session ${slug}`);
  }
  ctx.rootIndex.add(slug);
  // Deleted by another process since the check above (its mark comes before its rename): give the name up.
  if ((await deletedAs(ctx, slug)).length > deleted.length) {
    await takeBack(ctx, slug);
    throw handleDeleted(slug);
  }
  await finishCreate(ctx, slug, meta);
  return null;
}

/**
 * The meta of `slug` on disk, or null (with a warning when corrupt) so scans
 * skip it. `knownDir`: a listing already saw a real directory.
 */
export function diskMetaOrSkip(ctx: FsContext, slug: Slug, knownDir = false): ConversationMeta | null {
  try {
    return readDiskMeta(ctx, slug, knownDir);
  } catch (err) {
    ctx.logger.warn(`skipping session ${slug}: ${(err as Error).message}`, { session: slug });
    return null;
  }
}

/** As diskMetaOrSkip, with the bumps this store has not written yet. */
export function sessionMeta(ctx: FsContext, slug: Slug, knownDir = false): ConversationMeta | null {
  const disk = diskMetaOrSkip(ctx, slug, knownDir);
  return disk === null ? null : ctx.bumps.applyTo(slug, disk);
}

export async function* sessionsBySeq(ctx: FsContext, prefix: SessionPrefix): AsyncGenerator<StoredSession> {
  const seqs = (await currentIndex(ctx)).seqsOf(prefix);
  for (let i = seqs.length - 1; i >= 0; i--) {
    const slug = slugOf(prefix, seqs[i]!);
    const meta = sessionMeta(ctx, slug);
    if (meta !== null) yield { slug, meta };
  }
}

/**
 * Records that `slug` is deleted, before it goes: its seq is never handed
 * out again, and the name holds its created_at (so only the same
 * conversation can be imported back under it).
 */
async function markDeleted(ctx: FsContext, slug: Slug, createdAt: string | null): Promise<void> {
  const dir = await ensureStoreDir(ctx, deletedChain(prefixOf(slug)));
  try {
    ctx.fs.closeSync(createFileSync(ctx.fs, deletedPath(ctx.root, prefixOf(slug), slug, createdAt), Buffer.alloc(0)));
  } catch (err) {
    if (errnoOf(err) !== 'EEXIST') throw err; // marked by a delete that did not finish
  }
  await syncDir(ctx, 'deletions', dir);
}

/** A full disk: the mark cannot be made before the session goes, so it is made once its files are freed. */
const isOutOfSpace = (err: unknown) => errnoOf(err) === 'ENOSPC' || errnoOf(err) === 'EDQUOT';

/**
 * Deletes a session: false unless `slug` is a real directory holding a regular
 * `meta` (a directory without one is left for repair). The rename into the
 * trash makes it vanish at once for every process; appends racing with it
 * fail with SESSION_NOT_FOUND. Its archives go with it: those whose record
 * names this very conversation (handle and created_at).
 */
export async function deleteSession(ctx: FsContext, slug: Slug, archiveBase: string): Promise<boolean> {
  const pending = await ctx.bumps.settle(slug);
  const dir = sessionDir(ctx.root, slug);
  const trash = trashPath(ctx.root, slug);
  let createdAt: string | null;
  let markLater = false;
  try {
    if (kindOf(ctx.fs, dir) !== 'dir' || kindOf(ctx.fs, metaPath(ctx.root, slug)) !== 'file') {
      ctx.bumps.restore(slug, pending);
      return false;
    }
    createdAt = createdAtOf(ctx, slug);
    await markDeleted(ctx, slug, createdAt).catch((err: unknown) => {
      if (!isOutOfSpace(err)) throw err;
      markLater = true;
    });
    await ensureStoreDir(ctx, TRASH_CHAIN);
    ctx.fs.renameSync(dir, trash);
    ctx.rootIndex.remove(slug);
  } catch (err) {
    ctx.bumps.restore(slug, pending);
    if (errnoOf(err) === 'ENOENT') return false;
    throw ioError(err, `deleting session ${slug}`);
  } finally {
    ctx.sessions.delete(slug);
  }
  // The session is gone for every process now; nothing below can undo that, so its failures are warnings.
  const warn = (what: string, err: unknown) =>
    ctx.logger.warn(`session ${slug} deleted, but ${what}: ${(err as Error).message}`, { session: slug });
  await syncDir(ctx, 'deletions', ctx.root).catch((err: unknown) => warn('the deletion may not survive a power loss', err));
  await ctx.fs.removeTree(trash).catch((err: unknown) => warn(`its files remain in ${trash} until repair()`, err));
  unlinkQuietly(ctx.fs, countedPath(ctx.root, slug));
  if (markLater) await markDeleted(ctx, slug, createdAt).catch((err: unknown) => warn('its seq could not be marked as used (the disk is full)', err));
  await releaseArchives(ctx, slug, archiveBase, createdAt).catch((err: unknown) => warn('its archives remain until repair()', err));
  return true;
}
