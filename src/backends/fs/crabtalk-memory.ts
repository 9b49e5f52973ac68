// crabtalk's memory file (openStore's `crabtalkMemory`), read-only: a running
// crabtalk rewrites it whole from RAM, so nothing here ever writes, locks or
// holds it open. Each look opens it, fstats the descriptor and closes it; the
// parsed archives are kept and read again only when the file's identity
// (device, inode, size, mtime, ctime) changed, so a snapshot renamed over it,
// a rewrite or a deletion is seen at the next look.

import fs from 'node:fs';
import { ioError } from '../../errors.js';
import { memoryArchives, parseCrabtalkMemory, type MemoryArchives } from '../../format/crabtalk-memory.js';
import type { FsContext } from './context.js';
import { readNow } from './descriptors.js';
import { closeQuietly, errnoOf, type FsLayer } from './durable.js';

/** Larger memory files are reported unreadable, never read. */
export const MAX_MEMORY_FILE_BYTES = 1024 * 1024 * 1024;

/** No file: no archives. Unreadable: warned about once per version of the file, and never read in part. */
export type MemoryLook = { state: 'missing' } | { state: 'read'; archives: MemoryArchives } | { state: 'unreadable'; path: string; problem: string };

export interface MemoryFileState {
  path: string;
  /** The last version read, by identity; unreadable versions too, so each is warned about once. */
  seen: { identity: string; look: MemoryLook } | null;
}

const { O_RDONLY, O_NONBLOCK } = fs.constants;
const MISSING: MemoryLook = { state: 'missing' };

function identityOf(stat: fs.Stats): string {
  return `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeMs}:${stat.ctimeMs}`;
}

/** Reads the open file in full, up to the size fstat saw. */
function readAll(io: FsLayer, fd: number, size: number): Buffer {
  const buffer = Buffer.allocUnsafe(size);
  let length = 0;
  while (length < size) {
    const read = io.readSync(fd, buffer, length, size - length, length);
    if (read === 0) break;
    length += read;
  }
  return buffer.subarray(0, length);
}

/** The look at version `identity`: the one kept when it is that version, else `read()`'s, warned about when unreadable. */
function remember(ctx: FsContext, file: MemoryFileState, identity: string, read: () => MemoryLook): MemoryLook {
  if (file.seen !== null && file.seen.identity === identity) return file.seen.look;
  const look = read();
  if (look.state === 'unreadable') {
    ctx.logger.warn(`ignoring crabtalk's memory file ${file.path}: ${look.problem}`, { crabtalkMemory: file.path, reason: look.problem });
  }
  file.seen = { identity, look };
  return look;
}

/** One look at the file, synchronous, one descriptor at most. Errors other than "cannot be read" are thrown. */
function lookNow(ctx: FsContext, file: MemoryFileState): MemoryLook {
  const unreadable = (problem: string): MemoryLook => ({ state: 'unreadable', path: file.path, problem });
  let fd: number;
  try {
    // Symlinks are followed: the user named this file. O_NONBLOCK: a FIFO must not block the store.
    fd = ctx.fs.openSync(file.path, O_RDONLY | O_NONBLOCK);
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      file.seen = null;
      return MISSING;
    }
    if (code === 'EACCES' || code === 'EPERM' || code === 'ELOOP' || code === 'ENXIO' || code === 'EISDIR') {
      return remember(ctx, file, `error:${code}`, () => unreadable(`not readable (${code})`));
    }
    throw err;
  }
  try {
    const stat = ctx.fs.fstatSync(fd);
    return remember(ctx, file, identityOf(stat), () => {
      if (!stat.isFile()) return unreadable('not a regular file');
      if (stat.size > MAX_MEMORY_FILE_BYTES) return unreadable(`${stat.size} bytes, over the limit of ${MAX_MEMORY_FILE_BYTES}`);
      const parsed = parseCrabtalkMemory(readAll(ctx.fs, fd, stat.size));
      return 'problem' in parsed ? unreadable(parsed.problem) : { state: 'read', archives: memoryArchives(parsed.memory) };
    });
  } finally {
    closeQuietly(ctx.fs, fd);
  }
}

/** The memory file's archives as they are now; `missing` when the store has none configured. */
export async function lookAtMemory(ctx: FsContext): Promise<MemoryLook> {
  const file = ctx.crabtalkMemory;
  if (file === null) return MISSING;
  try {
    return await readNow(ctx.descriptors, 1, () => lookNow(ctx, file));
  } catch (err) {
    throw ioError(err, `reading crabtalk's memory file ${file.path}`);
  }
}
