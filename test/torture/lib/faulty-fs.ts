// A test-only FsLayer over node:fs that fails call number N (counted from
// arm()) with an errno, once or from then on ("forever"), or makes writeSync
// write fewer bytes than asked; and logs every call, with the path behind each
// descriptor, so a test can check the order of calls after a failure.
//
// A fault only hits calls that can really return that errno (ENOSPC never
// comes from unlink or close, EMFILE only from calls that open a descriptor,
// EACCES only from calls that resolve a path), so "forever" models a disk
// that stays full, a descriptor table that stays full, a permission that stays
// wrong, or a device that stays dead (EIO: every call fails).
//
// replaceFile is the one call the real layer hands to write-file-atomic. Here
// it is counted as a call of its own (a fault there fails it before it starts)
// and then performed as write-file-atomic 7 does it, through this layer's own
// counted calls: exclusive temp `<path>.<hex>` with mode 0600, write in full,
// fsync, close, rename over `path`; the temp is unlinked if any of that fails.
// So faults also land between its steps.

import crypto from 'node:crypto';
import fs from 'node:fs';
import { nodeFs, type FsLayer } from '../../../src/backends/fs/durable.js';

export const FAULT_KINDS = ['EIO', 'ENOSPC', 'EACCES', 'EMFILE', 'short-write'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export type CallName = keyof FsLayer;

export interface Fault {
  kind: FaultKind;
  /** 1-based number of the call (counted from arm()) that fails first. */
  at: number;
  forever: boolean;
}

export interface CallRecord {
  /** 1-based since arm(); 0 for calls made while disarmed. */
  n: number;
  call: CallName;
  /** The path, or for a descriptor call the path it was opened with. */
  path: string;
  /** For linkSync and renameSync: the new path. */
  to?: string;
  /** For openSync: the flags. */
  flags?: number;
  /** The errno it failed with, when it failed (injected or real). */
  failed?: string;
  injected?: boolean;
}

const { O_CREAT, O_EXCL, O_WRONLY } = fs.constants;

const PATH_CALLS = new Set<CallName>([
  'openSync', 'linkSync', 'unlinkSync', 'renameSync', 'mkdirSync', 'chmodSync', 'lstatSync', 'lstatIfAny', 'touchSync',
  'readdirSync', 'readdir', 'readdirTyped', 'opendir', 'replaceFile', 'removeTree', 'ensureDir',
]);
const OPENS_FD = new Set<CallName>(['openSync', 'readdirSync', 'readdir', 'readdirTyped', 'opendir', 'replaceFile', 'removeTree', 'ensureDir']);
const ALLOCATES = new Set<CallName>([
  'writeSync', 'fsyncSync', 'fdatasyncSync', 'fsync', 'fdatasync', 'linkSync', 'renameSync', 'mkdirSync', 'replaceFile', 'ensureDir',
]);

/** Whether `call` (with `flags`, for openSync) can fail with `kind` on a real system. */
export function canFail(kind: FaultKind, call: CallName, flags?: number): boolean {
  switch (kind) {
    case 'EIO':
      return true;
    case 'ENOSPC':
      return ALLOCATES.has(call) || (call === 'openSync' && flags !== undefined && (flags & O_CREAT) !== 0);
    case 'EACCES':
      return PATH_CALLS.has(call);
    case 'EMFILE':
      return OPENS_FD.has(call);
    case 'short-write':
      return call === 'writeSync';
  }
}

function errnoError(code: string, call: string, path: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`${code}: injected fault, ${call} '${path}'`);
  err.code = code;
  err.syscall = call;
  err.path = path;
  return err;
}

export class FaultyFs implements FsLayer {
  readonly log: CallRecord[] = [];
  #fault: Fault | null = null;
  #count = 0;
  #counting = false;
  /** Faults actually injected since construction. */
  injected = 0;
  readonly #paths = new Map<number, string>();

  constructor(private readonly base: FsLayer = nodeFs) {}

  /** Starts counting calls from 1, injecting `fault` when given. */
  arm(fault: Fault | null): void {
    this.#fault = fault;
    this.#count = 0;
    this.#counting = true;
  }

  /** Stops injecting (and counting); returns the number of calls counted since arm(). */
  disarm(): number {
    this.#fault = null;
    this.#counting = false;
    return this.#count;
  }

  get calls(): number {
    return this.#count;
  }

  /** Counts the call, logs it, and returns the error to inject, or a short-write marker, or null. */
  #enter(call: CallName, path: string, extra: { to?: string; flags?: number } = {}): { record: CallRecord; inject: NodeJS.ErrnoException | 'short' | null } {
    const n = this.#counting ? ++this.#count : 0;
    const record: CallRecord = { n, call, path };
    if (extra.to !== undefined) record.to = extra.to;
    if (extra.flags !== undefined) record.flags = extra.flags;
    this.log.push(record);
    const fault = this.#fault;
    if (fault === null || n === 0 || n < fault.at || (!fault.forever && n !== fault.at)) return { record, inject: null };
    if (!canFail(fault.kind, call, extra.flags)) {
      if (n === fault.at) throw new Error(`test bug: ${fault.kind} armed at call ${n}, which is ${call} and cannot fail so`);
      return { record, inject: null };
    }
    this.injected += 1;
    record.injected = true;
    if (fault.kind === 'short-write') return { record, inject: 'short' };
    record.failed = fault.kind;
    return { record, inject: errnoError(fault.kind, call, path) };
  }

  /** Runs a synchronous call through the fault point and the log. */
  #sync<T>(call: CallName, path: string, run: () => T, extra: { to?: string; flags?: number } = {}): T {
    const { record, inject } = this.#enter(call, path, extra);
    if (inject instanceof Error) throw inject;
    try {
      return run();
    } catch (err) {
      record.failed = (err as NodeJS.ErrnoException).code ?? 'unknown';
      throw err;
    }
  }

  async #async<T>(call: CallName, path: string, run: () => Promise<T>): Promise<T> {
    const { record, inject } = this.#enter(call, path);
    if (inject instanceof Error) {
      await new Promise((resolve) => setImmediate(resolve));
      throw inject;
    }
    try {
      return await run();
    } catch (err) {
      record.failed = (err as NodeJS.ErrnoException).code ?? 'unknown';
      throw err;
    }
  }

  #callback(call: 'fsync' | 'fdatasync', fd: number, callback: (err: NodeJS.ErrnoException | null) => void): void {
    const { record, inject } = this.#enter(call, this.pathOf(fd));
    if (inject instanceof Error) {
      setImmediate(() => callback(inject));
      return;
    }
    this.base[call](fd, (err) => {
      if (err) record.failed = err.code ?? 'unknown';
      callback(err);
    });
  }

  /** The path `fd` was opened with, for the log. */
  pathOf(fd: number): string {
    return this.#paths.get(fd) ?? `fd ${fd}`;
  }

  openSync(path: string, flags: number, mode?: number): number {
    const fd = this.#sync('openSync', path, () => this.base.openSync(path, flags, mode), { flags });
    this.#paths.set(fd, path);
    return fd;
  }

  closeSync(fd: number): void {
    const path = this.pathOf(fd);
    const { record, inject } = this.#enter('closeSync', path);
    // Like Linux: the descriptor is released even when close reports an error.
    this.#paths.delete(fd);
    this.base.closeSync(fd);
    if (inject instanceof Error) {
      record.failed = inject.code!;
      throw inject;
    }
  }

  writeSync(fd: number, buffer: Buffer, offset: number, length: number, position: number): number {
    const { record, inject } = this.#enter('writeSync', this.pathOf(fd));
    if (inject instanceof Error) throw inject;
    // A short write writes half of what was asked (nothing, when one byte was).
    const asked = inject === 'short' ? Math.floor(length / 2) : length;
    if (asked === 0) return 0;
    try {
      return this.base.writeSync(fd, buffer, offset, asked, position);
    } catch (err) {
      record.failed = (err as NodeJS.ErrnoException).code ?? 'unknown';
      throw err;
    }
  }

  fchmodSync(fd: number, mode: number): void {
    this.#sync('fchmodSync', this.pathOf(fd), () => this.base.fchmodSync(fd, mode));
  }

  fdatasyncSync(fd: number): void {
    this.#sync('fdatasyncSync', this.pathOf(fd), () => this.base.fdatasyncSync(fd));
  }

  fsyncSync(fd: number): void {
    this.#sync('fsyncSync', this.pathOf(fd), () => this.base.fsyncSync(fd));
  }

  fdatasync(fd: number, callback: (err: NodeJS.ErrnoException | null) => void): void {
    this.#callback('fdatasync', fd, callback);
  }

  fsync(fd: number, callback: (err: NodeJS.ErrnoException | null) => void): void {
    this.#callback('fsync', fd, callback);
  }

  linkSync(existingPath: string, newPath: string): void {
    this.#sync('linkSync', existingPath, () => this.base.linkSync(existingPath, newPath), { to: newPath });
  }

  unlinkSync(path: string): void {
    this.#sync('unlinkSync', path, () => this.base.unlinkSync(path));
  }

  renameSync(oldPath: string, newPath: string): void {
    this.#sync('renameSync', oldPath, () => this.base.renameSync(oldPath, newPath), { to: newPath });
  }

  mkdirSync(path: string, mode: number): void {
    this.#sync('mkdirSync', path, () => this.base.mkdirSync(path, mode));
  }

  chmodSync(path: string, mode: number): void {
    this.#sync('chmodSync', path, () => this.base.chmodSync(path, mode));
  }

  lstatSync(path: string): fs.Stats {
    return this.#sync('lstatSync', path, () => this.base.lstatSync(path));
  }

  lstatIfAny(path: string): fs.Stats | undefined {
    return this.#sync('lstatIfAny', path, () => this.base.lstatIfAny(path));
  }

  fstatSync(fd: number): fs.Stats {
    return this.#sync('fstatSync', this.pathOf(fd), () => this.base.fstatSync(fd));
  }

  readdirSync(path: string): string[] {
    return this.#sync('readdirSync', path, () => this.base.readdirSync(path));
  }

  readdir(path: string): Promise<string[]> {
    return this.#async('readdir', path, () => this.base.readdir(path));
  }

  readdirTyped(path: string): Promise<fs.Dirent[]> {
    return this.#async('readdirTyped', path, () => this.base.readdirTyped(path));
  }

  opendir(path: string): Promise<fs.Dir> {
    return this.#async('opendir', path, () => this.base.opendir(path));
  }

  /** Not a fault point: a store whose watch fails works without it (a root listing per change). */
  watch(path: string, onName: (name: string | null) => void, onError: (err: Error) => void): { close(): void } {
    return this.base.watch(path, onName, onError);
  }

  touchSync(path: string): void {
    this.#sync('touchSync', path, () => this.base.touchSync(path));
  }

  readSync(fd: number, buffer: Buffer, offset: number, length: number, position: number): number {
    return this.#sync('readSync', this.pathOf(fd), () => this.base.readSync(fd, buffer, offset, length, position));
  }

  replaceFile(path: string, data: Buffer): Promise<void> {
    return this.#async('replaceFile', path, async () => {
      // write-file-atomic 7: temp next to the target, written in full, fsynced, closed, renamed.
      const temp = `${path}.${crypto.randomBytes(4).toString('hex')}`;
      const fd = this.openSync(temp, O_CREAT | O_EXCL | O_WRONLY, 0o600);
      try {
        try {
          let offset = 0;
          while (offset < data.length) {
            const written = this.writeSync(fd, data, offset, data.length - offset, offset);
            if (written <= 0) throw errnoError('EIO', 'write', temp);
            offset += written;
          }
          this.fsyncSync(fd);
        } finally {
          this.closeSync(fd);
        }
        this.renameSync(temp, path);
      } catch (err) {
        try {
          this.unlinkSync(temp);
        } catch {
          // as write-file-atomic: the cleanup's own failure is not reported
        }
        throw err;
      }
    });
  }

  removeTree(path: string): Promise<void> {
    return this.#async('removeTree', path, () => this.base.removeTree(path));
  }

  ensureDir(path: string, mode: number): Promise<void> {
    return this.#async('ensureDir', path, () => this.base.ensureDir(path, mode));
  }
}

/**
 * Calls in `log` that link or rename a file after an fsync or fdatasync of
 * that same file failed: none may exist.
 */
export function linksAfterFailedSync(log: readonly CallRecord[]): CallRecord[] {
  const failedSyncs = new Set<string>();
  const bad: CallRecord[] = [];
  for (const record of log) {
    if ((record.call === 'fsync' || record.call === 'fdatasync' || record.call === 'fsyncSync' || record.call === 'fdatasyncSync') && record.failed !== undefined) {
      failedSyncs.add(record.path);
    } else if ((record.call === 'linkSync' || record.call === 'renameSync') && failedSyncs.has(record.path)) {
      bad.push(record);
    }
  }
  return bad;
}
