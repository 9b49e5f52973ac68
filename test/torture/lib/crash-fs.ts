// A test-only FsLayer that records what a power cut could keep. Every call is
// made for real on a live directory (so the store runs normally) and is also
// applied to a model of the page cache versus the disk, per file and per
// directory entry. At any point of the recorded run, the model can rebuild on
// disk the tree a machine would find after losing power right there.
//
// What the model assumes (POSIX as written, no filesystem kindness):
//   - File data (and size) reaches the disk at fsync or fdatasync of a
//     descriptor of that file, and not before. Unsynced data may also have
//     been written back, in full or cut short.
//   - A directory entry (create, link, unlink, rename in or out, mkdir, rmdir)
//     reaches the disk at fsync of that directory, and not before. fsync of a
//     file does not make its name durable. Unsynced entries may also have been
//     written back, any subset of them, each directory in call order.
//   - A rename inside one directory is one entry update (both names change
//     together); a rename across directories is two, one per directory.
//   - A directory whose own entry is not on disk takes everything under it along.
// ext4 is kinder than this in places (without a journal it syncs the parent
// of a newly created inode on fsync; with one, fsync commits pending entries
// of the whole transaction): the store must not rely on it, so neither does
// the model. What the model does not cover: metadata such as modes and times,
// and filesystem corruption needing fsck.
//
// replaceFile (write-file-atomic in the real layer) is performed here as
// write-file-atomic 7 does it: exclusive temp `<path>.<hex>` mode 0600, written
// in full, fsynced, closed, renamed over `path`; no directory fsync.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { FsLayer } from 'stepstore';
import { nodeFs } from '../../../src/backends/fs/durable.js';

type Ino = number;

/** One recorded mutation, in terms of inodes, so it can be replayed onto a fresh model. */
export type Op =
  | { t: 'create'; dir: Ino; name: string; ino: Ino; kind: 'file' | 'dir' }
  | { t: 'write'; ino: Ino; pos: number; data: Buffer }
  | { t: 'sync'; ino: Ino }
  | { t: 'link'; dir: Ino; name: string; ino: Ino }
  | { t: 'unlink'; dir: Ino; name: string }
  | { t: 'rename'; fromDir: Ino; fromName: string; toDir: Ino; toName: string; ino: Ino };

type EntryChange = { set: string; ino: Ino } | { del: string } | { from: string; to: string; ino: Ino };

interface Inode {
  kind: 'file' | 'dir';
  data: Buffer;
  synced: Buffer;
  entries: Map<string, Ino>;
  syncedEntries: Map<string, Ino>;
  /** Entry changes since the last fsync of this directory, in call order. */
  pending: EntryChange[];
}

const ROOT_INO = 0;

/** The page cache and the disk, for every inode under the base directory. */
export class Model {
  readonly inodes = new Map<Ino, Inode>();

  constructor() {
    // The base directory exists and is durable before the run starts.
    this.inodes.set(ROOT_INO, newInode('dir'));
  }

  inode(ino: Ino): Inode {
    const inode = this.inodes.get(ino);
    if (inode === undefined) throw new Error(`crash-fs: no inode ${ino}`);
    return inode;
  }

  apply(op: Op): void {
    switch (op.t) {
      case 'create': {
        this.inodes.set(op.ino, newInode(op.kind));
        this.#change(op.dir, { set: op.name, ino: op.ino });
        return;
      }
      case 'write': {
        const inode = this.inode(op.ino);
        const end = op.pos + op.data.length;
        const grown = Buffer.alloc(Math.max(inode.data.length, end));
        inode.data.copy(grown);
        op.data.copy(grown, op.pos);
        inode.data = grown;
        return;
      }
      case 'sync': {
        const inode = this.inode(op.ino);
        if (inode.kind === 'file') {
          inode.synced = Buffer.from(inode.data);
        } else {
          inode.syncedEntries = new Map(inode.entries);
          inode.pending = [];
        }
        return;
      }
      case 'link':
        this.#change(op.dir, { set: op.name, ino: op.ino });
        return;
      case 'unlink':
        this.#change(op.dir, { del: op.name });
        return;
      case 'rename':
        if (op.fromDir === op.toDir) {
          this.#change(op.fromDir, { from: op.fromName, to: op.toName, ino: op.ino });
        } else {
          this.#change(op.fromDir, { del: op.fromName });
          this.#change(op.toDir, { set: op.toName, ino: op.ino });
        }
        return;
    }
  }

  #change(dir: Ino, change: EntryChange): void {
    const inode = this.inode(dir);
    applyChange(inode.entries, change);
    inode.pending.push(change);
  }

  /** The inode at `rel` (relative to the base) in the live tree, or undefined. */
  lookup(rel: string): Ino | undefined {
    let ino: Ino = ROOT_INO;
    for (const part of rel.split(path.sep).filter((p) => p !== '' && p !== '.')) {
      const next = this.inode(ino).entries.get(part);
      if (next === undefined) return undefined;
      ino = next;
    }
    return ino;
  }
}

function newInode(kind: 'file' | 'dir'): Inode {
  return { kind, data: Buffer.alloc(0), synced: Buffer.alloc(0), entries: new Map(), syncedEntries: new Map(), pending: [] };
}

function applyChange(entries: Map<string, Ino>, change: EntryChange): void {
  if ('set' in change) entries.set(change.set, change.ino);
  else if ('del' in change) entries.delete(change.del);
  else {
    entries.delete(change.from);
    entries.set(change.to, change.ino);
  }
}

/** How much of what was not synced made it to the disk anyway. */
export type Policy =
  /** Nothing that was not synced: LevelDB's fault env. */
  | { kind: 'synced-only' }
  /** Every directory change written back, but no unsynced file data: names of empty files. */
  | { kind: 'entries-written-back' }
  /** Everything written back: the live tree (checks the model against reality). */
  | { kind: 'all-written-back' }
  /** A random subset of directory changes (in order, per directory) and unsynced data kept whole, lost or cut short. */
  | { kind: 'random'; seed: number };

export function policyName(policy: Policy): string {
  return policy.kind === 'random' ? `random #${policy.seed}` : policy.kind;
}

/** A small deterministic generator (mulberry32), so a failing image can be rebuilt from its seed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Writes the tree the disk would hold under `policy` into `target` (which must
 * not exist). Everything is backdated an hour: the machine took time to come back.
 */
export function buildImage(model: Model, policy: Policy, target: string): void {
  const rand = policy.kind === 'random' ? random(policy.seed) : () => 0;
  const entriesOf = (inode: Inode): Map<string, Ino> => {
    if (policy.kind === 'all-written-back') return inode.entries;
    const entries = new Map(inode.syncedEntries);
    for (const change of inode.pending) {
      if (policy.kind === 'entries-written-back' || (policy.kind === 'random' && rand() < 0.5)) applyChange(entries, change);
    }
    return entries;
  };
  const dataOf = (inode: Inode): Buffer => {
    if (policy.kind === 'all-written-back') return inode.data;
    if (policy.kind !== 'random' || inode.data.equals(inode.synced)) return inode.synced;
    const roll = rand();
    if (roll < 1 / 3) return inode.synced;
    if (roll < 2 / 3) return inode.data;
    // Cut short: what was synced stays, part of the rest made it (files here are written once, from 0).
    return inode.data.subarray(0, inode.synced.length + Math.floor(rand() * (inode.data.length - inode.synced.length)));
  };
  const written = new Map<Ino, string>();
  const dirs: string[] = [];
  const old = new Date(Date.now() - 3_600_000);
  const build = (ino: Ino, at: string) => {
    const inode = model.inode(ino);
    if (inode.kind === 'dir') {
      fs.mkdirSync(at, { mode: 0o700 });
      fs.chmodSync(at, 0o700);
      dirs.push(at);
      for (const [name, child] of [...entriesOf(inode).entries()].sort(([a], [b]) => (a < b ? -1 : 1))) build(child, path.join(at, name));
    } else if (written.has(ino)) {
      fs.linkSync(written.get(ino)!, at);
    } else {
      fs.writeFileSync(at, dataOf(inode), { mode: 0o600 });
      fs.utimesSync(at, old, old);
      written.set(ino, at);
    }
  };
  build(ROOT_INO, target);
  for (const dir of dirs.reverse()) fs.utimesSync(dir, old, old);
}

/**
 * The recording layer. `base` is the directory it models (it must exist and
 * be empty); every path the store uses must lie under it.
 */
export class CrashFs implements FsLayer {
  readonly ops: Op[] = [];
  readonly #live = new Model();
  readonly #fds = new Map<number, Ino>();
  #nextIno = ROOT_INO + 1;

  constructor(readonly base: string) {}

  /** Number of mutations recorded so far: a crash "at k" keeps ops[0..k). */
  get count(): number {
    return this.ops.length;
  }

  #record(op: Op): void {
    this.ops.push(op);
    this.#live.apply(op);
  }

  #rel(p: string): string {
    const rel = path.relative(this.base, p);
    if (rel.startsWith('..') || path.isAbsolute(rel)) throw new Error(`crash-fs: ${p} is outside ${this.base}`);
    return rel;
  }

  #ino(p: string): Ino {
    const ino = this.#live.lookup(this.#rel(p));
    if (ino === undefined) throw new Error(`crash-fs: the model has no ${p}, the disk has`);
    return ino;
  }

  /** The directory inode holding `p`, and its name there. */
  #parent(p: string): { dir: Ino; name: string } {
    return { dir: this.#ino(path.dirname(p)), name: path.basename(p) };
  }

  #create(p: string, kind: 'file' | 'dir'): Ino {
    const ino = this.#nextIno++;
    this.#record({ t: 'create', ...this.#parent(p), ino, kind });
    return ino;
  }

  #fdIno(fd: number): Ino {
    const ino = this.#fds.get(fd);
    if (ino === undefined) throw new Error(`crash-fs: descriptor ${fd} was not opened through this layer`);
    return ino;
  }

  openSync(p: string, flags: number, mode?: number): number {
    const fd = fs.openSync(p, flags, mode);
    try {
      this.#fds.set(fd, (flags & fs.constants.O_CREAT) !== 0 && this.#live.lookup(this.#rel(p)) === undefined ? this.#create(p, 'file') : this.#ino(p));
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    return fd;
  }

  closeSync(fd: number): void {
    fs.closeSync(fd);
    this.#fds.delete(fd);
  }

  writeSync(fd: number, buffer: Buffer, offset: number, length: number, position: number): number {
    const written = fs.writeSync(fd, buffer, offset, length, position);
    this.#record({ t: 'write', ino: this.#fdIno(fd), pos: position, data: Buffer.from(buffer.subarray(offset, offset + written)) });
    return written;
  }

  fchmodSync(fd: number, mode: number): void {
    fs.fchmodSync(fd, mode);
  }

  fdatasyncSync(fd: number): void {
    fs.fdatasyncSync(fd);
    this.#record({ t: 'sync', ino: this.#fdIno(fd) });
  }

  fsyncSync(fd: number): void {
    fs.fsyncSync(fd);
    this.#record({ t: 'sync', ino: this.#fdIno(fd) });
  }

  fdatasync(fd: number, callback: (err: NodeJS.ErrnoException | null) => void): void {
    const ino = this.#fdIno(fd);
    // Durable when the call completes, not when it is issued.
    fs.fdatasync(fd, (err) => {
      if (!err) this.#record({ t: 'sync', ino });
      callback(err);
    });
  }

  fsync(fd: number, callback: (err: NodeJS.ErrnoException | null) => void): void {
    const ino = this.#fdIno(fd);
    fs.fsync(fd, (err) => {
      if (!err) this.#record({ t: 'sync', ino });
      callback(err);
    });
  }

  linkSync(existingPath: string, newPath: string): void {
    fs.linkSync(existingPath, newPath);
    this.#record({ t: 'link', ...this.#parent(newPath), ino: this.#ino(existingPath) });
  }

  unlinkSync(p: string): void {
    fs.unlinkSync(p);
    this.#record({ t: 'unlink', ...this.#parent(p) });
  }

  renameSync(oldPath: string, newPath: string): void {
    const ino = this.#ino(oldPath);
    fs.renameSync(oldPath, newPath);
    const from = this.#parent(oldPath);
    const to = this.#parent(newPath);
    this.#record({ t: 'rename', fromDir: from.dir, fromName: from.name, toDir: to.dir, toName: to.name, ino });
  }

  mkdirSync(p: string, mode: number): void {
    fs.mkdirSync(p, mode);
    this.#create(p, 'dir');
  }

  chmodSync(p: string, mode: number): void {
    fs.chmodSync(p, mode);
  }

  lstatSync(p: string): fs.Stats {
    return fs.lstatSync(p);
  }

  lstatIfAny(p: string): fs.Stats | undefined {
    return fs.lstatSync(p, { throwIfNoEntry: false });
  }

  fstatSync(fd: number): fs.Stats {
    return fs.fstatSync(fd);
  }

  readdirSync(p: string): string[] {
    return fs.readdirSync(p);
  }

  readdir(p: string): Promise<string[]> {
    return fs.promises.readdir(p);
  }

  readdirTyped(p: string): Promise<fs.Dirent[]> {
    return fs.promises.readdir(p, { withFileTypes: true });
  }

  readSync(fd: number, buffer: Buffer, offset: number, length: number, position: number): number {
    return fs.readSync(fd, buffer, offset, length, position);
  }

  // Reads and watches change nothing: the live directory answers them.
  opendir(p: string): Promise<fs.Dir> {
    return nodeFs.opendir(p);
  }

  watch(p: string, onName: (name: string | null) => void, onError: (err: Error) => void): { close(): void } {
    return nodeFs.watch(p, onName, onError);
  }

  /** Times are not modelled (see the header). */
  touchSync(p: string): void {
    nodeFs.touchSync(p);
  }

  async replaceFile(p: string, data: Buffer): Promise<void> {
    const temp = `${p}.${crypto.randomBytes(4).toString('hex')}`;
    const fd = this.openSync(temp, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, 0o600);
    try {
      try {
        let offset = 0;
        while (offset < data.length) offset += this.writeSync(fd, data, offset, data.length - offset, offset);
        await yieldToLoop();
        this.fsyncSync(fd);
      } finally {
        this.closeSync(fd);
      }
      await yieldToLoop();
      this.renameSync(temp, p);
    } catch (err) {
      try {
        this.unlinkSync(temp);
      } catch {
        // as write-file-atomic
      }
      throw err;
    }
  }

  async removeTree(p: string): Promise<void> {
    const ino = this.#live.lookup(this.#rel(p));
    if (ino === undefined) return;
    const remove = (at: string, node: Ino) => {
      const inode = this.#live.inode(node);
      if (inode.kind === 'dir') {
        for (const [name, child] of [...inode.entries]) remove(path.join(at, name), child);
        fs.rmdirSync(at);
      } else {
        fs.unlinkSync(at);
      }
      this.#record({ t: 'unlink', ...this.#parent(at) });
    };
    remove(p, ino);
  }

  async ensureDir(p: string, mode: number): Promise<void> {
    const parts = this.#rel(p).split(path.sep).filter((part) => part !== '');
    let at = this.base;
    for (const part of parts) {
      at = path.join(at, part);
      if (this.#live.lookup(this.#rel(at)) === undefined) this.mkdirSync(at, mode);
    }
  }

  /** Creates `p` (under the base) and makes it durable, as a directory that existed before the run. */
  makeDurableDir(p: string): void {
    this.mkdirSync(p, 0o700);
    this.#record({ t: 'sync', ino: this.#ino(path.dirname(p)) });
  }
}
