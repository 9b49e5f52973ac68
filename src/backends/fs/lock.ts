// The meta lock: `<root>/<slug>/.meta.lock`, an empty file created
// exclusively, held while one process rewrites a session's meta (read, bump,
// replace), so processes bumping one session never lose each other's counts.
// A lock older than LOCK_STALE_MS (or dated in the future) is stale: broken,
// never waited for; so is one whose file names a process of this machine
// that no longer runs (a writer killed while holding it). Also the fence
// (`<root>/<slug>/.fence`), held by a fenced append while it links, and
// waited for by the appends that meet it (steps.ts).

import { setTimeout as sleep } from 'node:timers/promises';
import { StepStoreError, sessionNotFound } from '../../errors.js';
import type { Slug } from '../../format/slug.js';
import type { FsContext } from './context.js';
import { createLockSync, errnoOf, kindOf, readRegularFileSync, unlinkQuietly } from './durable.js';
import { fencePath, metaLockPath } from './paths.js';

/** A lock older than this was left by a process that died holding it, and is broken. */
export const LOCK_STALE_MS = 10_000;
/** How long a meta write that must not be dropped waits for the lock. */
export const LOCK_WAIT_MS = LOCK_STALE_MS + 2_000;
/** A lock dated further ahead than this was not made by a live writer on this clock. */
const FUTURE_SLACK_MS = 1_000;

/** True for a lock `ageMs` old that no live writer can hold: too old, or dated in the future. */
export function isStaleLock(ageMs: number): boolean {
  return ageMs > LOCK_STALE_MS || ageMs < -FUTURE_SLACK_MS;
}

/** True when the lock file at `path` holds nothing any more: gone, too old, or its process no longer runs. */
export function isStaleFile(ctx: FsContext, path: string): boolean {
  try {
    return isStaleLock(Date.now() - ctx.fs.lstatSync(path).mtimeMs) || holderDied(ctx, path);
  } catch {
    return true; // released meanwhile
  }
}

/**
 * Takes the fence of a session (a fenced append's, while it links), waiting
 * for one held by another fenced append; breaks a stale one. SESSION_NOT_FOUND when the session is gone.
 */
export async function takeFence(ctx: FsContext, slug: Slug): Promise<void> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  while (!tryLock(ctx, slug, fencePath(ctx.root, slug))) {
    if (Date.now() >= deadline) throw new StepStoreError('IO_ERROR', `the fence of ${slug} stayed held by another process`);
    await sleep(2);
  }
}

/** Waits until no live fenced append holds the session's fence (a stale one is broken). */
export async function fenceGone(ctx: FsContext, slug: Slug): Promise<void> {
  const path = fencePath(ctx.root, slug);
  const deadline = Date.now() + LOCK_WAIT_MS;
  while (kindOf(ctx.fs, path) !== 'missing') {
    if (isStaleFile(ctx, path)) unlinkQuietly(ctx.fs, path);
    else if (Date.now() >= deadline) throw new StepStoreError('IO_ERROR', `the fence of ${slug} stayed held by another process`);
    else await sleep(2);
  }
}

/** True when the lock names a process (not this one) that no longer runs. */
function holderDied(ctx: FsContext, path: string): boolean {
  const text = readRegularFileSync(ctx.fs, path, 32);
  const pid = typeof text === 'string' && /^[1-9][0-9]*$/.test(text) ? Number(text) : null;
  if (pid === null || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return errnoOf(err) === 'ESRCH';
  }
}

/** Takes the lock file `path` of a session, or returns false when a live writer holds it. SESSION_NOT_FOUND when the session is gone. */
function tryLock(ctx: FsContext, slug: Slug, path: string): boolean {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      createLockSync(ctx.fs, path);
      return true;
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') throw sessionNotFound(slug); // deleted meanwhile
      if (code !== 'EEXIST') throw err;
    }
    if (!isStaleFile(ctx, path)) return false;
    unlinkQuietly(ctx.fs, path);
  }
  return false;
}

/** Runs `write` holding the meta lock; waits up to `waitMs` for it, else resolves to false without running. */
export async function withLock(ctx: FsContext, slug: Slug, waitMs: number, write: () => Promise<void>): Promise<boolean> {
  const deadline = Date.now() + waitMs;
  while (!tryLock(ctx, slug, metaLockPath(ctx.root, slug))) {
    if (Date.now() >= deadline) return false;
    await sleep(10);
  }
  try {
    await write();
    return true;
  } finally {
    unlinkQuietly(ctx.fs, metaLockPath(ctx.root, slug));
  }
}
