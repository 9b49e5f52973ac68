// File primitives over an FsLayer: exclusive temp files written in full,
// fsyncs as promises, reads that refuse symlinks, FIFOs, sockets, devices and
// oversized files, and the atomic meta replacement. When to sync is decided in durability.ts, not here. The FsLayer is
// every filesystem call the backend makes; the default is node:fs (with
// fs-extra and write-file-atomic, imported here only), and tests may inject
// one that records writes or fails on cue. Errors leave as raw errno errors.

import { isUtf8 } from 'node:buffer';
import fs from 'node:fs';
import fse from 'fs-extra';
import writeFileAtomic from 'write-file-atomic';

export const FILE_MODE = 0o600;
export const DIR_MODE = 0o700;

const { O_CREAT, O_EXCL, O_WRONLY, O_RDONLY, O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY } = fs.constants;
const CREATE_EXCLUSIVE = O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW;
const READ_SAFELY = O_RDONLY | O_NOFOLLOW | O_NONBLOCK;
export const OPEN_DIR = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;
export const OPEN_DIR_TO_SYNC = O_RDONLY | O_DIRECTORY;

type Callback = (err: NodeJS.ErrnoException | null) => void;

/** Every filesystem call the fs backend makes, so a test can stand in for the disk. */
export interface FsLayer {
  openSync(path: string, flags: number, mode?: number): number;
  closeSync(fd: number): void;
  writeSync(fd: number, buffer: Buffer, offset: number, length: number, position: number): number;
  fchmodSync(fd: number, mode: number): void;
  fdatasyncSync(fd: number): void;
  fsyncSync(fd: number): void;
  fdatasync(fd: number, callback: Callback): void;
  fsync(fd: number, callback: Callback): void;
  linkSync(existingPath: string, newPath: string): void;
  unlinkSync(path: string): void;
  renameSync(oldPath: string, newPath: string): void;
  /** Never recursive: it must fail with EEXIST on an existing directory. */
  mkdirSync(path: string, mode: number): void;
  chmodSync(path: string, mode: number): void;
  lstatSync(path: string): fs.Stats;
  /** lstatSync, but undefined when nothing is there (ENOENT, ENOTDIR) instead of throwing: the checks on every append use it. */
  lstatIfAny(path: string): fs.Stats | undefined;
  fstatSync(fd: number): fs.Stats;
  readdirSync(path: string): string[];
  readdir(path: string): Promise<string[]>;
  /** Entries with their types (d_type), for listing the root. */
  readdirTyped(path: string): Promise<fs.Dirent[]>;
  readSync(fd: number, buffer: Buffer, offset: number, length: number, position: number): number;
  /** The entries of a directory read a batch at a time (the root's index reads it in slices). */
  opendir(path: string): Promise<fs.Dir>;
  /**
   * Reports the name of every entry of `path` created, removed, renamed or
   * changed (inotify on Linux; null: a change whose name is unknown). Throws
   * when the platform cannot watch; `onError` when the watch stops.
   */
  watch(path: string, onName: (name: string | null) => void, onError: (err: Error) => void): { close(): void };
  /** Sets the times of `path` to now: a watch of its directory reports the change (a meta was replaced inside it). */
  touchSync(path: string): void;
  /** Atomic replace: temp file, fsync (unless `fsync` is false), rename over `path`; mode 0600. */
  replaceFile(path: string, data: Buffer, fsync?: boolean): Promise<void>;
  /** rm -rf. */
  removeTree(path: string): Promise<void>;
  /** mkdir -p with `mode` for what it creates. */
  ensureDir(path: string, mode: number): Promise<void>;
}

export const nodeFs: FsLayer = {
  openSync: (path, flags, mode) => fs.openSync(path, flags, mode),
  closeSync: (fd) => fs.closeSync(fd),
  writeSync: (fd, buffer, offset, length, position) => fs.writeSync(fd, buffer, offset, length, position),
  fchmodSync: (fd, mode) => fs.fchmodSync(fd, mode),
  fdatasyncSync: (fd) => fs.fdatasyncSync(fd),
  fsyncSync: (fd) => fs.fsyncSync(fd),
  fdatasync: (fd, callback) => fs.fdatasync(fd, callback),
  fsync: (fd, callback) => fs.fsync(fd, callback),
  linkSync: (existingPath, newPath) => fs.linkSync(existingPath, newPath),
  unlinkSync: (path) => fs.unlinkSync(path),
  renameSync: (oldPath, newPath) => fs.renameSync(oldPath, newPath),
  mkdirSync: (path, mode) => void fs.mkdirSync(path, mode),
  chmodSync: (path, mode) => fs.chmodSync(path, mode),
  lstatSync: (path) => fs.lstatSync(path),
  lstatIfAny: (path) => fs.lstatSync(path, { throwIfNoEntry: false }),
  fstatSync: (fd) => fs.fstatSync(fd),
  readdirSync: (path) => fs.readdirSync(path),
  readdir: (path) => fs.promises.readdir(path),
  readdirTyped: (path) => fs.promises.readdir(path, { withFileTypes: true }),
  readSync: (fd, buffer, offset, length, position) => fs.readSync(fd, buffer, offset, length, position),
  opendir: (path) => fs.promises.opendir(path, { bufferSize: 1024 }),
  watch: (path, onName, onError) => {
    // Only inotify queues an event before the change returns; elsewhere (FSEvents, kqueue) events may lag.
    if (process.platform !== 'linux') throw new Error(`watching is trusted on Linux (inotify) only, not on ${process.platform}`);
    const watcher = fs.watch(path, { persistent: false, encoding: 'utf8' }, (_event, name) => onName(name));
    watcher.on('error', onError);
    return watcher;
  },
  touchSync: (path) => {
    const now = new Date();
    fs.utimesSync(path, now, now);
  },
  replaceFile: (path, data, fsync = true) =>
    writeFileAtomic(path, data, {
      mode: FILE_MODE,
      fsync,
      // write-file-atomic does not check for short writes: fill its temp file in
      // full first, so its own write of the same bytes cannot come up short.
      tmpfileCreated: (tmpfile: string) => {
        const fd = fs.openSync(tmpfile, O_WRONLY | O_NOFOLLOW);
        try {
          writeAllSync(nodeFs, fd, data, tmpfile);
        } finally {
          fs.closeSync(fd);
        }
      },
    }),
  removeTree: (path) => fse.remove(path),
  ensureDir: (path, mode) => fse.ensureDir(path, mode),
};

export function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

function shortWrite(path: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`write to ${path} made no progress`);
  err.code = 'EIO';
  return err;
}

/** Writes every byte of `data` at the start of `fd`; a write that makes no progress is EIO. */
export function writeAllSync(io: FsLayer, fd: number, data: Buffer, path: string): void {
  let offset = 0;
  while (offset < data.length) {
    const written = io.writeSync(fd, data, offset, data.length - offset, offset);
    if (written <= 0) throw shortWrite(path);
    offset += written;
  }
}

/** Creates `path` exclusively with mode 0600 whatever the umask, and writes `data` to it in full. */
export function createFileSync(io: FsLayer, path: string, data: Buffer): number {
  const fd = io.openSync(path, CREATE_EXCLUSIVE, FILE_MODE);
  try {
    io.fchmodSync(fd, FILE_MODE);
    writeAllSync(io, fd, data, path);
    return fd;
  } catch (err) {
    closeQuietly(io, fd);
    unlinkQuietly(io, path);
    throw err;
  }
}

/**
 * Creates the exclusive lock file `path` holding this process's pid (left
 * empty when even that cannot be written, say on a full disk); EEXIST when it is held.
 */
export function createLockSync(io: FsLayer, path: string): void {
  const fd = io.openSync(path, CREATE_EXCLUSIVE, FILE_MODE);
  try {
    const pid = Buffer.from(String(process.pid), 'utf8');
    io.writeSync(fd, pid, 0, pid.length, 0);
  } catch {
    // An empty lock is a lock too: it is only broken once old.
  } finally {
    io.closeSync(fd);
  }
}

export function fdatasyncAsync(io: FsLayer, fd: number): Promise<void> {
  return new Promise((resolve, reject) => io.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

export function fsyncAsync(io: FsLayer, fd: number): Promise<void> {
  return new Promise((resolve, reject) => io.fsync(fd, (err) => (err ? reject(err) : resolve())));
}

export function closeQuietly(io: FsLayer, fd: number): void {
  try {
    io.closeSync(fd);
  } catch {
    // Nothing was written through this descriptor that depends on it.
  }
}

export function unlinkQuietly(io: FsLayer, path: string): void {
  try {
    io.unlinkSync(path);
  } catch {
    // Already gone, or unremovable: a leftover temp is ignored by readers and cleaned by repair.
  }
}

/** Why a path could not be read as a regular file, as it reads after "is": "step is a symlink". */
export type ReadProblem = { problem: 'missing' | 'a symlink' | 'not a regular file' | 'not valid UTF-8' | `${number} bytes, over the limit of ${number}` };

/** Most files (steps, metas) fit here: read in one call, with no fstat. */
const SMALL_READ = 64 * 1024;
const smallBuffer = Buffer.allocUnsafe(SMALL_READ);

/**
 * Reads a regular file of at most `maxBytes` without following a symlink or
 * blocking on a FIFO. A small file is read in one call into a shared buffer,
 * so no more than SMALL_READ bytes are ever read before the file is known; one
 * that fills it, or reads empty, is checked with fstat first, so a socket, a
 * FIFO, a device or a huge (or sparse) file is reported, never read whole.
 * Returns the text, or the problem; other errors (EIO, EACCES) are thrown.
 */
/** The text of `bytes`; not valid UTF-8 is a problem (crabtalk cannot read it; decoding would hide it). */
function utf8Text(bytes: Buffer): string | ReadProblem {
  return isUtf8(bytes) ? bytes.toString('utf8') : { problem: 'not valid UTF-8' };
}

export function readRegularFileSync(io: FsLayer, path: string, maxBytes: number): string | ReadProblem {
  let fd: number;
  try {
    fd = io.openSync(path, READ_SAFELY);
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return { problem: 'missing' };
    if (code === 'ELOOP') return { problem: 'a symlink' };
    // ENXIO: a socket; EISDIR: a directory opened for reading elsewhere.
    if (code === 'EISDIR' || code === 'ENXIO' || code === 'EAGAIN') return { problem: 'not a regular file' };
    throw err;
  }
  try {
    let first: number;
    try {
      first = io.readSync(fd, smallBuffer, 0, SMALL_READ, 0);
    } catch (err) {
      // EISDIR: a directory; ESPIPE or EAGAIN: a FIFO.
      const code = errnoOf(err);
      if (code === 'EISDIR' || code === 'ESPIPE' || code === 'EAGAIN') return { problem: 'not a regular file' };
      throw err;
    }
    if (first > 0 && first < SMALL_READ) {
      return first > maxBytes ? { problem: `${first} bytes, over the limit of ${maxBytes}` } : utf8Text(smallBuffer.subarray(0, first));
    }
    const stat = io.fstatSync(fd);
    if (!stat.isFile()) return { problem: 'not a regular file' };
    if (stat.size > maxBytes) return { problem: `${stat.size} bytes, over the limit of ${maxBytes}` };
    const buffer = Buffer.allocUnsafe(stat.size);
    let length = 0;
    // Up to the size fstat saw; a file growing meanwhile is read as it was.
    while (length < buffer.length) {
      const read = io.readSync(fd, buffer, length, buffer.length - length, length);
      if (read === 0) break;
      length += read;
    }
    return utf8Text(buffer.subarray(0, length));
  } finally {
    closeQuietly(io, fd);
  }
}

/** What sits at `path` without following symlinks: a real directory, a regular file, something else, or nothing. */
export function kindOf(io: FsLayer, path: string): 'dir' | 'file' | 'other' | 'missing' {
  // No exception for a missing entry: building one costs more than the lstat.
  const stat = io.lstatIfAny(path);
  return stat === undefined ? 'missing' : stat.isDirectory() ? 'dir' : stat.isFile() ? 'file' : 'other';
}
