// State one FsBackend keeps in memory: options, the per-session step
// counters (a bounded cache, recovered by a directory scan on a miss), the
// meta bumps not yet written, and the work counters behind stats().

import { StepStoreError } from '../../errors.js';
import type { MetaBump } from '../../meta/bump.js';
import type { Slug } from '../../sessions/slug.js';
import type { ConversationMeta, Durability, Logger, StoreStats } from '../../types.js';
import { errnoOf, type FsLayer } from './durable.js';

/** Sessions whose counters are cached; a session evicted is scanned again on its next append. */
const MAX_CACHED_SESSIONS = 4096;

export interface SessionState {
  /** The number the next append tries first; only ever grows. */
  nextStep: number;
  /** The session's created_at: which session of this name the bumps belong to (null: meta unreadable). */
  createdAt: string | null;
}

/** A bump, and the session (by created_at) it counts for: never another session reusing the name. */
export type PendingBump = MetaBump & { createdAt: string | null };

export interface PendingMeta {
  /** Bumps acknowledged but not yet written to meta. */
  pending: Map<Slug, PendingBump>;
  /** Meta writes under way: their bump, the meta being written once read, and when it is done. */
  inflight: Map<Slug, { bump: PendingBump; target: ConversationMeta | null; done: Promise<void> }>;
  timer: NodeJS.Timeout | null;
}

export interface FsContext {
  root: string;
  /** Every filesystem call goes through this (node:fs unless a test injects one). */
  fs: FsLayer;
  durability: Durability;
  logger: Logger;
  stats: StoreStats;
  sessions: Map<Slug, SessionState>;
  meta: PendingMeta;
  /** Appends under way in this store; a lone one fsyncs inline rather than on the thread pool. */
  activeAppends: number;
  /** Folders under `.stepstore/` known to exist. */
  readyDirs: Set<string>;
}

export function newContext(root: string, durability: Durability, logger: Logger, io: FsLayer): FsContext {
  return {
    root,
    fs: io,
    durability,
    logger,
    stats: { stepsRead: 0, stepsWritten: 0, metaWrites: 0, syncs: 0 },
    sessions: new Map(),
    meta: { pending: new Map(), inflight: new Map(), timer: null },
    activeAppends: 0,
    readyDirs: new Set(),
  };
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

/** Maps a filesystem failure to IO_ERROR, keeping the original as `cause`. */
export function ioError(err: unknown, doing: string): StepStoreError {
  if (err instanceof StepStoreError) return err;
  const code = errnoOf(err) ?? 'unknown error';
  return new StepStoreError('IO_ERROR', `${doing} failed: ${code}`, { cause: err });
}
