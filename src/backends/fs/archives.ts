// Archives: `<root>/.stepstore/archives/<name>`, one JSON record per file
// (owner, time, content), claimed exclusively with link() like a step and
// always made durable (file and directory fsync) before the marker naming
// it is written. crabtalk and listSessions skip the dot-folder.

import fs from 'node:fs';
import { archiveNumber, decodeArchive, encodeArchive, type ArchiveRecord } from '../../compact/archive.js';
import type { Slug } from '../../sessions/slug.js';
import { ioError, type FsContext } from './context.js';
import {
  DIR_MODE,
  createFileSync,
  errnoOf,
  fsyncDirAsync,
  fdatasyncAsync,
  readRegularFileSync,
  unlinkQuietly,
} from './durable.js';
import { archivePath, archivesDir, storeDir, tempPath } from './paths.js';

/** Creates `.stepstore/` and one of its folders, mode 0700, durably; remembered once done. */
export async function ensureStoreDir(ctx: FsContext, dir: string): Promise<void> {
  if (ctx.readyDirs.has(dir)) return;
  const parent = storeDir(ctx.root);
  for (const [path, container] of [
    [parent, ctx.root],
    [dir, parent],
  ] as const) {
    try {
      fs.mkdirSync(path, DIR_MODE);
      fs.chmodSync(path, DIR_MODE);
      await fsyncDirAsync(container);
    } catch (err) {
      if (errnoOf(err) !== 'EEXIST') throw err;
    }
  }
  ctx.readyDirs.add(dir);
}

async function archiveNames(ctx: FsContext): Promise<string[]> {
  try {
    return await fs.promises.readdir(archivesDir(ctx.root));
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return [];
    throw err;
  }
}

export async function putArchive(ctx: FsContext, base: string, record: ArchiveRecord): Promise<string> {
  const dir = archivesDir(ctx.root);
  const temp = tempPath(dir);
  try {
    await ensureStoreDir(ctx, dir);
    let n = 1;
    for (const name of await archiveNames(ctx)) n = Math.max(n, (archiveNumber(name, base) ?? 0) + 1);
    const fd = createFileSync(temp, Buffer.from(encodeArchive(record), 'utf8'));
    try {
      await fdatasyncAsync(fd);
      ctx.stats.syncs += 1;
    } finally {
      fs.closeSync(fd);
    }
    for (;; n++) {
      try {
        fs.linkSync(temp, archivePath(ctx.root, `${base}-${n}`));
        break;
      } catch (err) {
        if (errnoOf(err) !== 'EEXIST') throw err;
      }
    }
    unlinkQuietly(temp);
    await fsyncDirAsync(dir);
    ctx.stats.syncs += 1;
    return `${base}-${n}`;
  } catch (err) {
    ctx.readyDirs.delete(dir);
    throw ioError(err, `storing an archive for ${record.owner}`);
  } finally {
    unlinkQuietly(temp);
  }
}

export async function getArchive(ctx: FsContext, name: string): Promise<ArchiveRecord | null> {
  let text: ReturnType<typeof readRegularFileSync>;
  try {
    text = readRegularFileSync(archivePath(ctx.root, name));
  } catch (err) {
    throw ioError(err, `reading archive ${name}`);
  }
  if (typeof text !== 'string') {
    if (text.problem !== 'missing') ctx.logger.warn(`ignoring archive ${name}: it is a ${text.problem}`, { archive: name });
    return null;
  }
  const record = decodeArchive(text);
  if (record === null) ctx.logger.warn(`ignoring archive ${name}: not an archive record`, { archive: name });
  return record;
}

/** Removes the archives `{base}-{n}` whose record names `owner`; others sharing the base stay. */
export async function removeOwnedArchives(ctx: FsContext, owner: Slug, base: string): Promise<void> {
  try {
    let removed = false;
    for (const name of await archiveNames(ctx)) {
      if (archiveNumber(name, base) === null) continue;
      const text = readRegularFileSync(archivePath(ctx.root, name));
      if (typeof text === 'string' && decodeArchive(text)?.owner === owner) {
        fs.unlinkSync(archivePath(ctx.root, name));
        removed = true;
      }
    }
    if (removed && ctx.durability === 'full') await fsyncDirAsync(archivesDir(ctx.root));
  } catch (err) {
    throw ioError(err, `removing archives of ${owner}`);
  }
}
