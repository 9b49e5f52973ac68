// The meta lock: `<root>/<slug>/.meta.lock`, an empty file created
// exclusively, held while one process rewrites a session's meta (read, bump,
// replace), so processes bumping one session never lose each other's counts.
// A lock older than LOCK_STALE_MS (or dated in the future) is stale: broken, never waited for.

import { setTimeout as sleep } from 'node:timers/promises';
import { sessionNotFound } from '../../errors.js';
import type { Slug } from '../../format/slug.js';
import type { FsContext } from './context.js';
import { createLockSync, errnoOf, unlinkQuietly } from './durable.js';
import { metaLockPath } from './paths.js';

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

/** Takes the session's meta lock, or returns false when another process holds it. SESSION_NOT_FOUND when it is gone. */
function tryLock(ctx: FsContext, slug: Slug): boolean {
  const path = metaLockPath(ctx.root, slug);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      createLockSync(ctx.fs, path);
      return true;
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') throw sessionNotFound(slug); // deleted meanwhile
      if (code !== 'EEXIST') throw err;
    }
    try {
      if (!isStaleLock(Date.now() - ctx.fs.lstatSync(path).mtimeMs)) return false;
      unlinkQuietly(ctx.fs, path);
    } catch {
      // Released meanwhile: try again.
    }
  }
  return false;
}

/** Runs `write` holding the meta lock; waits up to `waitMs` for it, else resolves to false without running. */
export async function withLock(ctx: FsContext, slug: Slug, waitMs: number, write: () => Promise<void>): Promise<boolean> {
  const deadline = Date.now() + waitMs;
  while (!tryLock(ctx, slug)) {
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
