// Session directories under the root: exclusive creation (a non-recursive
// mkdir claims the seq; EEXIST means take the next), lookups by seq, listing
// in time-bounded slices, and deletion by renaming into the trash first so a
// session disappears at once, then removing it and its own archives.

import type { Dirent } from 'node:fs';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { StoredSession } from '../../backend.js';
import { seqAfterPrefix, slugOf, toSlug, type SessionPrefix, type Slug } from '../../format/slug.js';
import type { ConversationMeta } from '../../types.js';
import { removeOwnedArchives, ensureStoreDir } from './archives.js';
import { ioError } from '../../errors.js';
import { cacheState, type FsContext } from './context.js';
import { DIR_MODE, errnoOf, kindOf } from './durable.js';
import { syncDir } from './durability.js';
import { readDiskMeta, replaceMeta } from './meta.js';
import { metaPath, sessionDir, trashDir, trashPath } from './paths.js';
import { SLICE_MS } from './steps.js';

async function rootNames(ctx: FsContext): Promise<string[]> {
  try {
    return await ctx.fs.readdir(ctx.root);
  } catch (err) {
    throw ioError(err, `listing ${ctx.root}`);
  }
}

export async function createSession(ctx: FsContext, prefix: SessionPrefix, meta: ConversationMeta): Promise<Slug> {
  let seq = 1;
  for (const name of await rootNames(ctx)) {
    const taken = seqAfterPrefix(name, prefix);
    if (taken !== null && taken >= seq) seq = taken + 1;
  }
  let slug: Slug;
  for (;;) {
    slug = slugOf(prefix, seq);
    try {
      ctx.fs.mkdirSync(sessionDir(ctx.root, slug), DIR_MODE);
      break;
    } catch (err) {
      if (errnoOf(err) !== 'EEXIST') throw ioError(err, `creating session ${slug}`);
      seq += 1;
    }
  }
  await finishCreate(ctx, slug, meta);
  return slug;
}

/** Writes the meta of a directory this store just claimed; on failure takes the directory back. */
async function finishCreate(ctx: FsContext, slug: Slug, meta: ConversationMeta): Promise<void> {
  const dir = sessionDir(ctx.root, slug);
  try {
    ctx.fs.chmodSync(dir, DIR_MODE);
    await replaceMeta(ctx, slug, meta);
    await syncDir(ctx, 'newEntries', ctx.root);
  } catch (err) {
    // Not acknowledged: take the claimed directory back so nothing half-made is left.
    await ctx.fs.removeTree(dir).catch(() => undefined);
    throw ioError(err, `creating session ${slug}`);
  }
  cacheState(ctx, slug, { nextStep: 1, createdAt: meta.created_at });
}

/** Creates exactly `slug`; an existing session is returned untouched (a directory without meta is finished). */
export async function importSession(ctx: FsContext, slug: Slug, meta: ConversationMeta): Promise<ConversationMeta | null> {
  try {
    ctx.fs.mkdirSync(sessionDir(ctx.root, slug), DIR_MODE);
  } catch (err) {
    if (errnoOf(err) !== 'EEXIST') throw ioError(err, `importing session ${slug}`);
    const existing = readDiskMeta(ctx, slug);
    if (existing !== null) return existing;
    if (kindOf(ctx.fs, sessionDir(ctx.root, slug)) !== 'dir') throw ioError(err, `importing session ${slug}`);
  }
  await finishCreate(ctx, slug, meta);
  return null;
}

/**
 * The meta of `slug` as this store sees it, or null (with a warning when
 * corrupt) so scans skip it. `knownDir`: a listing already saw a real directory.
 */
function sessionMeta(ctx: FsContext, slug: Slug, knownDir = false): ConversationMeta | null {
  try {
    const disk = readDiskMeta(ctx, slug, knownDir);
    return disk === null ? null : ctx.bumps.applyTo(slug, disk);
  } catch (err) {
    ctx.logger.warn(`skipping session ${slug}: ${(err as Error).message}`, { session: slug });
    return null;
  }
}

export async function* sessionsBySeq(ctx: FsContext, prefix: SessionPrefix): AsyncGenerator<StoredSession> {
  const candidates: number[] = [];
  for (const name of await rootNames(ctx)) {
    const seq = seqAfterPrefix(name, prefix);
    if (seq !== null) candidates.push(seq);
  }
  candidates.sort((a, b) => b - a);
  for (const seq of candidates) {
    const slug = slugOf(prefix, seq);
    const meta = sessionMeta(ctx, slug);
    if (meta !== null) yield { slug, meta };
  }
}

/** Reads metas of the directories whose names are handles starting with `namePrefix`, yielding between slices. */
export async function* listSessions(ctx: FsContext, namePrefix: string): AsyncGenerator<StoredSession[]> {
  let entries: Dirent[];
  try {
    entries = await ctx.fs.readdirTyped(ctx.root);
  } catch (err) {
    throw ioError(err, `listing ${ctx.root}`);
  }
  let slice: StoredSession[] = [];
  let since = performance.now();
  for (const entry of entries) {
    if (!entry.isDirectory() || !entry.name.startsWith(namePrefix)) continue;
    const slug = toSlug(entry.name);
    if (slug === null) continue;
    const meta = sessionMeta(ctx, slug, true);
    if (meta !== null) slice.push({ slug, meta });
    if (performance.now() - since >= SLICE_MS) {
      yield slice;
      slice = [];
      await yieldToLoop();
      since = performance.now();
    }
  }
  if (slice.length > 0) yield slice;
}

/**
 * Deletes a session: false unless `slug` is a real directory holding a regular
 * `meta` (a directory without one is left for repair). The rename into the
 * trash makes it vanish at once for every process; appends racing with it
 * fail with SESSION_NOT_FOUND.
 */
export async function deleteSession(ctx: FsContext, slug: Slug, archiveBase: string): Promise<boolean> {
  const pending = await ctx.bumps.settle(slug);
  const dir = sessionDir(ctx.root, slug);
  const trash = trashPath(ctx.root, slug);
  try {
    if (kindOf(ctx.fs, dir) !== 'dir' || kindOf(ctx.fs, metaPath(ctx.root, slug)) !== 'file') {
      ctx.bumps.restore(slug, pending);
      return false;
    }
    await ensureStoreDir(ctx, trashDir(ctx.root));
    ctx.fs.renameSync(dir, trash);
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
  await removeOwnedArchives(ctx, slug, archiveBase).catch((err: unknown) => warn('its archives remain until repair()', err));
  return true;
}
