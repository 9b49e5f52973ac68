// Durability in one place: what each level syncs, and the sync calls of the
// fs backend, which consult this table and count stats().syncs. Every fsync
// the backend issues goes through here; the README's Durability table says
// the same in words.

import type { Durability } from '../../types.js';
import type { FsContext } from './context.js';
import { OPEN_DIR_TO_SYNC, fdatasyncAsync, fsyncAsync } from './durable.js';

/** The points where an operation may sync. */
export type SyncPoint =
  /** A step's temp file, before its number is claimed with link(). */
  | 'stepData'
  /** The directory holding a new step, session or meta, once the entry is made. */
  | 'newEntries'
  /** A meta's new file, before it is renamed over the old one. */
  | 'metaData'
  /** An archive's file and the archives folder, before the marker naming it is written. */
  | 'archives'
  /** The sessions root and `.stepstore/` folders, when they are made. */
  | 'storeFolders'
  /** The directory a session or an archive was removed from. */
  | 'deletions'
  /** A rewind's intent, its retractions, and a fork's links before its meta: all or nothing at every level. */
  | 'history';

export const SYNCS: Readonly<Record<Durability, Readonly<Record<SyncPoint, boolean>>>> = {
  none: { stepData: false, newEntries: false, metaData: true, archives: true, storeFolders: true, deletions: false, history: true },
  file: { stepData: true, newEntries: false, metaData: true, archives: true, storeFolders: true, deletions: false, history: true },
  full: { stepData: true, newEntries: true, metaData: true, archives: true, storeFolders: true, deletions: true, history: true },
};

export const DURABILITIES = Object.keys(SYNCS) as Durability[];

export function syncsAt(ctx: FsContext, point: SyncPoint): boolean {
  return SYNCS[ctx.durability][point];
}

/** fdatasync of one file, inline: the cheapest call when nothing else is waiting. */
export function syncFileInline(ctx: FsContext, point: SyncPoint, fd: number): void {
  if (!syncsAt(ctx, point)) return;
  ctx.fs.fdatasyncSync(fd);
  ctx.stats.syncs += 1;
}

/**
 * fdatasyncs of several files, issued together on the thread pool; rejects
 * with the first failure only once every one has settled (no fd may be
 * closed while an fsync on it still runs).
 */
export async function syncFiles(ctx: FsContext, point: SyncPoint, fds: number[]): Promise<void> {
  if (!syncsAt(ctx, point)) return;
  const synced = await Promise.allSettled(fds.map((fd) => fdatasyncAsync(ctx.fs, fd)));
  ctx.stats.syncs += fds.length;
  const failed = synced.find((result) => result.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
}

/** fsync of a directory already open as `dirFd`, inline or on the thread pool. */
export async function syncDirFd(ctx: FsContext, point: SyncPoint, dirFd: number, inline: boolean): Promise<void> {
  if (!syncsAt(ctx, point)) return;
  if (inline) ctx.fs.fsyncSync(dirFd);
  else await fsyncAsync(ctx.fs, dirFd);
  ctx.stats.syncs += 1;
}

/** fsync of the directory at `dir` on the thread pool; opening and closing it are cheap and stay inline. */
export async function syncDir(ctx: FsContext, point: SyncPoint, dir: string): Promise<void> {
  if (!syncsAt(ctx, point)) return;
  const fd = ctx.fs.openSync(dir, OPEN_DIR_TO_SYNC);
  try {
    await fsyncAsync(ctx.fs, fd);
  } finally {
    ctx.fs.closeSync(fd);
  }
  ctx.stats.syncs += 1;
}
