// Archives: `<root>/.stepstore/archives/<name>`, one JSON record per file
// (owner, time, content), claimed exclusively with link() like a step and
// made durable (file and directory synced, at every level) before the marker
// naming it is written. crabtalk and listSessions skip the dot-folder.

import { archiveNumber, decodeArchive, encodeArchive, type ArchiveRecord } from '../../format/archive.js';
import { StepStoreError, ioError } from '../../errors.js';
import { toSlug, type Slug } from '../../format/slug.js';
import { encodeMarker } from '../../format/encode.js';
import type { FsContext } from './context.js';
import { DIR_MODE, createFileSync, errnoOf, kindOf, readRegularFileSync, unlinkQuietly } from './durable.js';
import { syncDir, syncFiles } from './durability.js';
import { verifySession } from './session-dir.js';
import { archivePath, archivesDir, metaPath, sessionDir, storeDir, tempPath } from './paths.js';
import { appendSteps } from './steps.js';

/** Creates `.stepstore/` and one of its folders, mode 0700, durably; remembered once done. */
export async function ensureStoreDir(ctx: FsContext, dir: string): Promise<void> {
  if (ctx.readyDirs.has(dir)) return;
  const parent = storeDir(ctx.root);
  for (const [path, container] of [
    [parent, ctx.root],
    [dir, parent],
  ] as const) {
    try {
      ctx.fs.mkdirSync(path, DIR_MODE);
      ctx.fs.chmodSync(path, DIR_MODE);
    } catch (err) {
      if (errnoOf(err) !== 'EEXIST') throw err;
      // Ours only if it is a real directory: a planted symlink would lead writes out of the root.
      const stat = ctx.fs.lstatSync(path);
      if (stat.isSymbolicLink()) throw new StepStoreError('UNSAFE_ROOT', `refusing ${path}: it is a symlink`);
      if (!stat.isDirectory()) throw Object.assign(new Error(`${path} is not a directory`), { code: 'ENOTDIR' });
    }
    // Also when it was there: whoever made it may have crashed, or failed, before this sync.
    await syncDir(ctx, 'storeFolders', container);
  }
  ctx.readyDirs.add(dir);
}

/** The archives folder, when it is a real directory (never followed through a symlink). */
function archivesPresent(ctx: FsContext): boolean {
  return kindOf(ctx.fs, archivesDir(ctx.root)) === 'dir';
}

async function archiveNames(ctx: FsContext): Promise<string[]> {
  return archivesPresent(ctx) ? ctx.fs.readdir(archivesDir(ctx.root)) : [];
}

/** Writes `record` to a temp file in the archives folder, synced; returns its path. */
async function writeTemp(ctx: FsContext, record: ArchiveRecord): Promise<string> {
  const dir = archivesDir(ctx.root);
  await ensureStoreDir(ctx, dir);
  const temp = tempPath(dir);
  const fd = createFileSync(ctx.fs, temp, Buffer.from(encodeArchive(record), 'utf8'));
  try {
    await syncFiles(ctx, 'archives', [fd]);
  } finally {
    ctx.fs.closeSync(fd);
  }
  return temp;
}

/**
 * Stores `record` durably under `firstTry`, claimed exclusively with link();
 * when that name is taken, tries `next(taken)`, or resolves to null without `next`.
 */
async function storeArchive(
  ctx: FsContext,
  record: ArchiveRecord,
  firstTry: string,
  next: ((taken: string) => string) | null,
): Promise<string | null> {
  let temp: string | null = null;
  try {
    temp = await writeTemp(ctx, record);
    let name = firstTry;
    for (;;) {
      try {
        ctx.fs.linkSync(temp, archivePath(ctx.root, name));
        break;
      } catch (err) {
        if (errnoOf(err) !== 'EEXIST') throw err;
        if (next === null) return null;
        name = next(name);
      }
    }
    unlinkQuietly(ctx.fs, temp);
    try {
      await syncDir(ctx, 'archives', archivesDir(ctx.root));
    } catch (err) {
      unlinkQuietly(ctx.fs, archivePath(ctx.root, name)); // not durable, so not stored
      throw err;
    }
    return name;
  } catch (err) {
    ctx.readyDirs.delete(archivesDir(ctx.root));
    throw ioError(err, `storing an archive for ${record.owner}`);
  } finally {
    if (temp !== null) unlinkQuietly(ctx.fs, temp);
  }
}

/** Stores the archive as `{base}-{n}`, n one more than the highest taken (and past any claimed meanwhile). */
async function putArchive(ctx: FsContext, base: string, record: ArchiveRecord): Promise<string> {
  let n = 1;
  try {
    for (const name of await archiveNames(ctx)) n = Math.max(n, (archiveNumber(name, base) ?? 0) + 1);
  } catch (err) {
    throw ioError(err, `listing archives for ${record.owner}`);
  }
  const name = await storeArchive(ctx, record, `${base}-${n}`, (taken) => `${base}-${(archiveNumber(taken, base) ?? n) + 1}`);
  return name!;
}

/**
 * The archive first, durably; only then the marker naming it. A marker that
 * fails takes its archive back, unless the marker could not be taken back
 * either: a marker must never name a missing archive.
 */
export async function compact(ctx: FsContext, slug: Slug, base: string, record: ArchiveRecord): Promise<string> {
  verifySession(ctx, slug);
  const name = await putArchive(ctx, base, record);
  const markerLeft: number[] = [];
  try {
    await appendSteps(ctx, slug, [encodeMarker(name, record.archived_at)], null, markerLeft);
  } catch (err) {
    if (markerLeft.length === 0) unlinkQuietly(ctx.fs, archivePath(ctx.root, name));
    throw err;
  }
  return name;
}

export async function importArchive(ctx: FsContext, name: string, record: ArchiveRecord): Promise<ArchiveRecord | null> {
  const stored = await storeArchive(ctx, record, name, null);
  if (stored !== null) return null;
  // Taken by a file that is no archive of a live session (orphaned, unreadable): a conflict, as on Redis.
  return (await getArchive(ctx, name)) ?? { owner: '', archived_at: '', content: '' };
}

export async function getArchive(ctx: FsContext, name: string): Promise<ArchiveRecord | null> {
  let text: ReturnType<typeof readRegularFileSync>;
  try {
    if (!archivesPresent(ctx)) return null;
    text = readRegularFileSync(ctx.fs, archivePath(ctx.root, name));
  } catch (err) {
    throw ioError(err, `reading archive ${name}`);
  }
  if (typeof text !== 'string') {
    if (text.problem !== 'missing') ctx.logger.warn(`ignoring archive ${name}: it is a ${text.problem}`, { archive: name });
    return null;
  }
  const record = decodeArchive(text);
  if (record === null) ctx.logger.warn(`ignoring archive ${name}: not an archive record`, { archive: name });
  // An archive lives as long as its owner: once the session is deleted (renamed away, in one step),
  // its archives are gone too, even while their files wait for removal or repair().
  return record !== null && ownerExists(ctx, record) ? record : null;
}

function ownerExists(ctx: FsContext, record: ArchiveRecord): boolean {
  const owner = toSlug(record.owner);
  return owner !== null && kindOf(ctx.fs, sessionDir(ctx.root, owner)) === 'dir' && kindOf(ctx.fs, metaPath(ctx.root, owner)) === 'file';
}

/** Removes the archives `{base}-{n}` whose record names `owner`; others sharing the base stay. */
export async function removeOwnedArchives(ctx: FsContext, owner: Slug, base: string): Promise<void> {
  try {
    let removed = false;
    for (const name of await archiveNames(ctx)) {
      if (archiveNumber(name, base) === null) continue;
      const text = readRegularFileSync(ctx.fs, archivePath(ctx.root, name));
      if (typeof text === 'string' && decodeArchive(text)?.owner === owner) {
        ctx.fs.unlinkSync(archivePath(ctx.root, name));
        removed = true;
      }
    }
    if (removed) await syncDir(ctx, 'deletions', archivesDir(ctx.root));
  } catch (err) {
    throw ioError(err, `removing archives of ${owner}`);
  }
}
