// Durable file primitives: exclusive temp files written in full, fsyncs on
// the thread pool or inline, directory fsyncs, refusing reads of symlinks and
// special files, and the atomic meta replacement (the one write-file-atomic
// import). Errors leave here as raw errno errors; callers map them.

import fs from 'node:fs';
import writeFileAtomic from 'write-file-atomic';

export const FILE_MODE = 0o600;
export const DIR_MODE = 0o700;

const { O_CREAT, O_EXCL, O_WRONLY, O_RDONLY, O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY } = fs.constants;
const CREATE_EXCLUSIVE = O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW;
const READ_SAFELY = O_RDONLY | O_NOFOLLOW | O_NONBLOCK;

export function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

function shortWrite(path: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`write to ${path} made no progress`);
  err.code = 'EIO';
  return err;
}

/** Writes every byte of `data` at the start of `fd`; a write that makes no progress is EIO. */
export function writeAllSync(fd: number, data: Buffer, path: string): void {
  let offset = 0;
  while (offset < data.length) {
    const written = fs.writeSync(fd, data, offset, data.length - offset, offset);
    if (written <= 0) throw shortWrite(path);
    offset += written;
  }
}

/** Creates `path` exclusively with mode 0600 whatever the umask, and writes `data` to it in full. */
export function createFileSync(path: string, data: Buffer): number {
  const fd = fs.openSync(path, CREATE_EXCLUSIVE, FILE_MODE);
  try {
    fs.fchmodSync(fd, FILE_MODE);
    writeAllSync(fd, data, path);
    return fd;
  } catch (err) {
    fs.closeSync(fd);
    unlinkQuietly(path);
    throw err;
  }
}

export function fdatasyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

export function fsyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fsync(fd, (err) => (err ? reject(err) : resolve())));
}

/** fsync of a directory on the thread pool; opening and closing it are cheap and stay inline. */
export async function fsyncDirAsync(dir: string): Promise<void> {
  const fd = fs.openSync(dir, O_RDONLY | O_DIRECTORY);
  try {
    await fsyncAsync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export function unlinkQuietly(path: string): void {
  try {
    fs.unlinkSync(path);
  } catch {
    // Already gone, or unremovable: a leftover temp is ignored by readers and cleaned by repair.
  }
}

/** Why a path could not be read as a regular file, for a diagnostic. */
export type ReadProblem = 'missing' | 'symlink' | 'not a regular file';

/**
 * Reads a file without following a symlink or blocking on a FIFO (readFileSync's
 * one-call UTF-8 path). Returns the text, or the problem; other errors (EIO,
 * EACCES) are thrown. A FIFO without a writer reads as empty.
 */
export function readRegularFileSync(path: string): string | { problem: ReadProblem } {
  try {
    // Node accepts numeric flags here; @types/node only declares strings.
    return fs.readFileSync(path, { encoding: 'utf8', flag: READ_SAFELY as unknown as string });
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return { problem: 'missing' };
    if (code === 'ELOOP') return { problem: 'symlink' };
    if (code === 'EISDIR' || code === 'EAGAIN') return { problem: 'not a regular file' };
    throw err;
  }
}

/** What sits at `path` without following symlinks: a real directory, a regular file, something else, or nothing. */
export function kindOf(path: string): 'dir' | 'file' | 'other' | 'missing' {
  try {
    const stat = fs.lstatSync(path);
    return stat.isDirectory() ? 'dir' : stat.isFile() ? 'file' : 'other';
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return 'missing';
    throw err;
  }
}

/**
 * Replaces `path` atomically (temp, fsync, rename) with mode 0600. write-file-atomic
 * does not check for short writes, so the temp file is first filled in full by
 * us: its blocks are then allocated and its own write of the same bytes cannot
 * come up short on a full disk.
 */
export async function replaceFileAtomically(path: string, text: string): Promise<void> {
  const data = Buffer.from(text, 'utf8');
  await writeFileAtomic(path, data, {
    mode: FILE_MODE,
    fsync: true,
    tmpfileCreated: (tmpfile: string) => {
      const fd = fs.openSync(tmpfile, O_WRONLY | O_NOFOLLOW);
      try {
        writeAllSync(fd, data, tmpfile);
      } finally {
        fs.closeSync(fd);
      }
    },
  });
}
