// Archives: `<root>/.stepstore/archives/<name>`, one JSON record per file
// (owner, time, content), claimed exclusively with link() like a step and
// made durable (file and directory synced, at every level) before the marker
// naming it is written. crabtalk and listSessions skip the dot-folder.
// With `crabtalkMemory`, crabtalk's archives (its memory file, read only) are
// found too, after this store's own, and a new name skips every one it holds.
// A fork references the archives of its source in `.stepstore/shares/`: an
// archive lives while its owner or any session referencing it does.

import { archiveNumber, decodeArchive, encodeArchive, ownedBy, type ArchiveRecord } from '../../format/archive.js';
import { highestNumber, markerFloor } from '../../format/crabtalk-memory.js';
import { StepStoreError, ioError } from '../../errors.js';
import { COMPACTION_BUMP } from '../../format/bump.js';
import { MAX_NAME_BYTES, toSlug, type Slug } from '../../format/slug.js';
import { encodeMarker } from '../../format/encode.js';
import { readLimit, type FsContext } from './context.js';
import { lookAtMemory } from './crabtalk-memory.js';
import { readNow } from './descriptors.js';
import { createFileSync, errnoOf, kindOf, readRegularFileSync, unlinkQuietly } from './durable.js';
import { syncDir, syncFiles } from './durability.js';
import { createdAtOf } from './meta.js';
import { verifySession } from './session-dir.js';
import { ARCHIVES_CHAIN, archivePath, archivesDir, forkMarkPath, metaPath, ownerReleasedPath, sessionDir, shareDir, sharePath, sharesChain, sharesDir, tempPath } from './paths.js';
import { ensureStoreDir, forgetStoreDirs } from './store-dirs.js';
import { appendSteps, highestStep, stepsNewestFirst } from './steps.js';

/** The archives folder, when it is a real directory (never followed through a symlink). */
function archivesPresent(ctx: FsContext): boolean {
  return kindOf(ctx.fs, archivesDir(ctx.root)) === 'dir';
}

async function archiveNames(ctx: FsContext): Promise<string[]> {
  return archivesPresent(ctx) ? ctx.fs.readdir(archivesDir(ctx.root)) : [];
}

/** Writes `record` to a temp file in the archives folder, synced; returns its path. */
async function writeTemp(ctx: FsContext, record: ArchiveRecord): Promise<string> {
  const dir = await ensureStoreDir(ctx, ARCHIVES_CHAIN);
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
    forgetStoreDirs(ctx);
    throw ioError(err, `storing an archive for ${record.owner}`);
  } finally {
    if (temp !== null) unlinkQuietly(ctx.fs, temp);
  }
}

/** The highest n of `{base}-{n}` among crabtalk's archive names; its memory file must be whole to know it. */
async function highestInMemory(ctx: FsContext, base: string): Promise<number> {
  const look = await lookAtMemory(ctx);
  if (look.state === 'missing') return 0;
  if (look.state === 'unreadable') {
    throw new StepStoreError(
      'IO_ERROR',
      `cannot name a new archive: crabtalk's memory file ${look.path} is unreadable (${look.problem}), and a name it holds must not be given twice`,
    );
  }
  return highestNumber(look.archives.names, base);
}

/**
 * Stores the archive as `{base}-{n}`, n one more than the highest taken here,
 * in crabtalk's memory, or by the session's markers (`floor`), and past any
 * claimed meanwhile.
 */
async function putArchive(ctx: FsContext, base: string, record: ArchiveRecord, floor: number): Promise<string> {
  let n = 1;
  try {
    for (const name of await archiveNames(ctx)) n = Math.max(n, (archiveNumber(name, base) ?? 0) + 1);
    n = Math.max(n, (await highestInMemory(ctx, base)) + 1, floor + 1);
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
export async function compact(ctx: FsContext, slug: Slug, base: string, record: ArchiveRecord, fence?: number): Promise<string> {
  verifySession(ctx, slug);
  // A fenced compaction that cannot land stores no archive, even for a moment.
  if (fence !== undefined && (await highestStep(ctx, slug)) !== fence) throw new StepStoreError('CONFLICT', `the highest step of ${slug} is not ${fence}: nothing was written`);
  const createdAt = createdAtOf(ctx, slug);
  const owned = createdAt === null ? record : { ...record, owner_created_at: createdAt };
  let floor: number;
  try {
    floor = await markerFloor(stepsNewestFirst(ctx, slug), base, async (name) => mintedFor(await readOwnNow(ctx, name), slug, createdAt));
  } catch (err) {
    throw ioError(err, `reading the compact markers of ${slug}`);
  }
  const name = await putArchive(ctx, base, owned, floor);
  const markerLeft: number[] = [];
  try {
    // The count restarts at 1 through the bump queue, after any bump still pending there.
    await appendSteps(ctx, slug, [encodeMarker(name, record.archived_at)], COMPACTION_BUMP, fence, markerLeft);
  } catch (err) {
    if (markerLeft.length === 0) unlinkQuietly(ctx.fs, archivePath(ctx.root, name));
    throw err;
  }
  return name;
}

/**
 * True when `record` is an archive compact() minted for the conversation
 * `slug` created at `createdAt`: only compact() stamps owner_created_at
 * (importArchive never does), so an imported archive, whose name was chosen
 * elsewhere, never counts.
 */
function mintedFor(record: ArchiveRecord | null, slug: Slug, createdAt: string | null): boolean {
  return record !== null && record.owner_created_at !== undefined && createdAt !== null && ownedBy(record, slug, createdAt);
}

export async function importArchive(ctx: FsContext, name: string, record: ArchiveRecord): Promise<ArchiveRecord | null> {
  const stored = await storeArchive(ctx, record, name, null);
  if (stored !== null) return null;
  // Taken by a file that is no archive of a live session (orphaned, unreadable): a conflict, as on Redis.
  return (await readOwnNow(ctx, name)) ?? { owner: '', archived_at: '', content: '' };
}

/**
 * The archive `name`: this store's own first, else crabtalk's (its memory
 * file, when one was given; such a record has no owner and no archived_at).
 */
export async function getArchive(ctx: FsContext, name: string): Promise<ArchiveRecord | null> {
  const own = await readOwnNow(ctx, name);
  if (own !== null) return own;
  const look = await lookAtMemory(ctx);
  const entry = look.state === 'read' ? look.archives.byName.get(name) : undefined;
  return entry === undefined ? null : { owner: '', archived_at: '', content: entry.content };
}

function readOwnNow(ctx: FsContext, name: string): ArchiveRecord | null | Promise<ArchiveRecord | null> {
  return readNow(ctx.descriptors, 1, () => readArchive(ctx, name));
}

/** An archive of this store's own folder, read synchronously: one descriptor at a time. */
function readArchive(ctx: FsContext, name: string): ArchiveRecord | null {
  // A marker crabtalk wrote may name an archive longer than any file name (its handle
  // took up to 255 bytes): no file holds it, though crabtalk's memory may.
  if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES) return null;
  let text: ReturnType<typeof readRegularFileSync>;
  try {
    if (!archivesPresent(ctx)) return null;
    text = readRegularFileSync(ctx.fs, archivePath(ctx.root, name), readLimit(ctx, 'archive'));
  } catch (err) {
    throw ioError(err, `reading archive ${name}`);
  }
  if (typeof text !== 'string') {
    if (text.problem !== 'missing') ctx.logger.warn(`ignoring archive ${name}: it is ${text.problem}`, { archive: name });
    return null;
  }
  const record = decodeArchive(text);
  if (record === null) ctx.logger.warn(`ignoring archive ${name}: not an archive record`, { archive: name });
  // An archive lives as long as its owner: once the session is deleted (renamed away, in one step),
  // its archives are gone too, even while their files wait for removal or repair().
  return record !== null && (ownerHolds(ctx, record, name) || hasLiveReferrer(ctx, name)) ? record : null;
}

/** The owner of `record` exists and has not released archive `name` (by rewinding past the marker naming it). */
export function ownerHolds(ctx: FsContext, record: ArchiveRecord, name: string): boolean {
  return ownerExists(ctx, record) && kindOf(ctx.fs, ownerReleasedPath(ctx.root, name)) === 'missing';
}

/** The conversation that owns `record` is still there (not deleted, and not replaced by another under its handle). */
function ownerExists(ctx: FsContext, record: ArchiveRecord): boolean {
  const owner = toSlug(record.owner);
  if (owner === null || kindOf(ctx.fs, sessionDir(ctx.root, owner)) !== 'dir' || kindOf(ctx.fs, metaPath(ctx.root, owner)) !== 'file') return false;
  return record.owner_created_at === undefined || ownedBy(record, owner, createdAtOf(ctx, owner));
}

/** True when `slug` is a live session: a real directory holding a regular meta. */
function isLive(ctx: FsContext, slug: Slug): boolean {
  return kindOf(ctx.fs, sessionDir(ctx.root, slug)) === 'dir' && kindOf(ctx.fs, metaPath(ctx.root, slug)) === 'file';
}

/**
 * Some session other than `except` references archive `name`: a live fork
 * of its owner, or one being made (its references come before its meta).
 */
export function hasLiveReferrer(ctx: FsContext, name: string, except: Slug | null = null): boolean {
  if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES || kindOf(ctx.fs, shareDir(ctx.root, name)) !== 'dir') return false;
  for (const entry of ctx.fs.readdirSync(shareDir(ctx.root, name))) {
    const slug = toSlug(entry);
    if (slug !== null && slug !== except && (isLive(ctx, slug) || kindOf(ctx.fs, forkMarkPath(ctx.root, slug)) === 'file')) return true;
  }
  return false;
}

/** The archives `slug` holds: those it owns (named from `base`, minted for it) and those it references. */
export async function heldArchives(ctx: FsContext, slug: Slug, base: string, createdAt: string | null): Promise<string[]> {
  const held: string[] = [];
  for (const name of await archiveNames(ctx)) {
    if (archiveNumber(name, base) === null) continue;
    const text = readRegularFileSync(ctx.fs, archivePath(ctx.root, name), readLimit(ctx, 'archive'));
    const record = typeof text === 'string' ? decodeArchive(text) : null;
    if (record !== null && ownedBy(record, slug, createdAt)) held.push(name);
  }
  if (kindOf(ctx.fs, sharesDir(ctx.root)) === 'dir') {
    for (const name of await ctx.fs.readdir(sharesDir(ctx.root))) {
      if (kindOf(ctx.fs, sharePath(ctx.root, name, slug)) === 'file') held.push(name);
    }
  }
  return held;
}

/** Records durably that `slug` references each archive of `names`. */
export async function addReferences(ctx: FsContext, slug: Slug, names: string[]): Promise<void> {
  for (const name of names) {
    const dir = await ensureStoreDir(ctx, sharesChain(name));
    try {
      ctx.fs.closeSync(createFileSync(ctx.fs, sharePath(ctx.root, name, slug), Buffer.alloc(0)));
    } catch (err) {
      if (errnoOf(err) !== 'EEXIST') throw err;
    }
    await syncDir(ctx, 'archives', dir);
  }
}

/**
 * Drops the hold `slug` (created at `createdAt`) has on each archive of
 * `names`, as owner or as referrer, and removes each one no live session
 * holds any more: its owner gone (or `slug` itself), and no other referrer.
 */
export async function dropReferences(ctx: FsContext, slug: Slug, names: string[], createdAt: string | null): Promise<void> {
  let removed = false;
  for (const name of names) {
    if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES) continue;
    unlinkQuietly(ctx.fs, sharePath(ctx.root, name, slug));
    const text = readRegularFileSync(ctx.fs, archivePath(ctx.root, name), readLimit(ctx, 'archive'));
    const record = typeof text === 'string' ? decodeArchive(text) : null;
    if (record === null) continue;
    const owned = ownedBy(record, slug, createdAt);
    if (!owned && ownerHolds(ctx, record, name)) continue;
    if (hasLiveReferrer(ctx, name, slug)) {
      // Forks still hold it; the owner, alive or not, no longer does.
      if (owned) await releaseByOwner(ctx, name);
      continue;
    }
    // The shares first: a name given out again must not find its predecessor's `.owner-released`.
    await ctx.fs.removeTree(shareDir(ctx.root, name));
    ctx.fs.unlinkSync(archivePath(ctx.root, name));
    removed = true;
  }
  if (removed) await syncDir(ctx, 'deletions', archivesDir(ctx.root));
}

async function releaseByOwner(ctx: FsContext, name: string): Promise<void> {
  try {
    ctx.fs.closeSync(createFileSync(ctx.fs, ownerReleasedPath(ctx.root, name), Buffer.alloc(0)));
  } catch (err) {
    if (errnoOf(err) !== 'EEXIST') throw err;
  }
  await syncDir(ctx, 'archives', shareDir(ctx.root, name));
}

/**
 * Releases what the deleted conversation `owner` created at `createdAt`
 * held: its references, and the archives `{base}-{n}` it owned that no live
 * fork references (others sharing the base stay).
 */
export async function releaseArchives(ctx: FsContext, owner: Slug, base: string, createdAt: string | null): Promise<void> {
  try {
    await dropReferences(ctx, owner, await heldArchives(ctx, owner, base, createdAt), createdAt);
  } catch (err) {
    throw ioError(err, `removing archives of ${owner}`);
  }
}
