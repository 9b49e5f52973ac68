// State one FsBackend keeps in memory: options, the per-session step
// counters (a bounded cache, recovered by a directory scan on a miss), the
// queue of meta bumps not yet written, the descriptor budget, the index of
// the root's sessions, and the work counters behind stats().

import { maxMetaBytes } from '../../format/meta.js';
import type { Slug } from '../../format/slug.js';
import type { Durability, Logger, MessageMode, StoreStats } from '../../types.js';
import { BumpQueue } from './bumps.js';
import type { MemoryFileState } from './crabtalk-memory.js';
import { DescriptorGate } from './descriptors.js';
import type { FsLayer } from './durable.js';
import { writeBump } from './meta.js';
import { RootIndex } from './root-index.js';

/** Sessions whose counters are cached; a session evicted is scanned again on its next append. */
const MAX_CACHED_SESSIONS = 4096;

export interface SessionState {
  /** The number the next append tries first; only ever grows. */
  nextStep: number;
  /** The session's created_at: which session of this name the bumps belong to (null: meta unreadable). */
  createdAt: string | null;
  /** The session directory's identity (session-dir.ts): which conversation this counter counts. */
  identity: string;
  /** When this store's last append to it had linked its steps (ms), just before checking no rewind was under way. */
  placedAtMs: number;
}

export interface FsContext {
  root: string;
  /** Every filesystem call goes through this (node:fs unless a test injects one). */
  fs: FsLayer;
  durability: Durability;
  logger: Logger;
  /** The store's maxStepBytes: what readLimit derives the largest file read of each kind from. */
  maxStepBytes: number;
  stats: StoreStats;
  sessions: Map<Slug, SessionState>;
  bumps: BumpQueue;
  /** Appends under way in this store; a lone one syncs inline rather than on the thread pool. */
  activeAppends: number;
  /** Folders under `.stepstore/` known to exist. */
  readyDirs: Set<string>;
  /** Units every append, read and meta write takes before it opens a descriptor (descriptors.ts). */
  descriptors: DescriptorGate;
  /** crabtalk's memory file, read for its archives (never written); null when none was given. */
  crabtalkMemory: MemoryFileState | null;
  /** The store's message mode: how repair reads steps. */
  messages: MessageMode;
  /** Which session directories the root holds, kept current (root-index.ts). */
  rootIndex: RootIndex;
}

export function cachedState(ctx: FsContext, slug: Slug): SessionState | undefined {
  const state = ctx.sessions.get(slug);
  if (state !== undefined) {
    ctx.sessions.delete(slug);
    ctx.sessions.set(slug, state);
  }
  return state;
}

export function cacheState(ctx: FsContext, slug: Slug, state: SessionState): void {
  ctx.sessions.set(slug, state);
  if (ctx.sessions.size > MAX_CACHED_SESSIONS) {
    const oldest = ctx.sessions.keys().next().value;
    if (oldest !== undefined) ctx.sessions.delete(oldest);
  }
}

export interface FsBackendOptions {
  dir: string;
  durability: Durability;
  logger: Logger;
  maxStepBytes: number;
  fs: FsLayer;
  /** Absolute path of crabtalk's memory file, or null. */
  crabtalkMemory: string | null;
  /** The store's message mode: how repair reads steps. */
  messages: MessageMode;
}

/**
 * The largest file of each kind the backend reads; a larger one is reported
 * (a diagnostic, CORRUPT_META, a corrupt archive), never read. An archive's
 * JSON may escape each byte of its content in up to 6.
 */
export function readLimit(ctx: FsContext, kind: 'step' | 'meta' | 'archive'): number {
  switch (kind) {
    case 'step':
      return ctx.maxStepBytes;
    case 'meta':
      return maxMetaBytes(ctx.maxStepBytes);
    case 'archive':
      return 6 * ctx.maxStepBytes + 4096;
  }
}

export function newContext(options: FsBackendOptions): FsContext {
  const ctx: FsContext = {
    root: options.dir,
    fs: options.fs,
    durability: options.durability,
    logger: options.logger,
    maxStepBytes: options.maxStepBytes,
    stats: { stepsRead: 0, stepsWritten: 0, metaWrites: 0, syncs: 0 },
    sessions: new Map(),
    bumps: new BumpQueue((slug, bump, waitForLock, onTarget) => writeBump(ctx, slug, bump, waitForLock, onTarget), options.logger),
    activeAppends: 0,
    readyDirs: new Set(),
    descriptors: new DescriptorGate(),
    crabtalkMemory: options.crabtalkMemory === null ? null : { path: options.crabtalkMemory, seen: null },
    messages: options.messages,
    rootIndex: new RootIndex(),
  };
  return ctx;
}
