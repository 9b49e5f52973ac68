// Checks that a session is there before a write touches it: `<root>/<slug>`
// must be a real directory (never followed through a symlink) holding a
// regular `meta`. A session directory's identity (inode and birth time) tells
// one conversation from another made later under the same name.

import { StepStoreError, ioError, sessionNotFound } from '../../errors.js';
import type { Stats } from 'node:fs';
import type { Slug } from '../../format/slug.js';
import type { FsContext } from './context.js';
import { OPEN_DIR, errnoOf, kindOf } from './durable.js';
import { metaPath, sessionDir } from './paths.js';

function checkMetaFile(ctx: FsContext, slug: Slug): void {
  const meta = kindOf(ctx.fs, metaPath(ctx.root, slug));
  if (meta === 'missing') throw sessionNotFound(slug);
  if (meta !== 'file') throw new StepStoreError('CORRUPT_META', `meta of ${slug} is not a regular file`);
}

/** Throws SESSION_NOT_FOUND unless `slug` is a real directory with a `meta`; CORRUPT_META when meta is not a regular file. */
export function verifySession(ctx: FsContext, slug: Slug): void {
  try {
    if (kindOf(ctx.fs, sessionDir(ctx.root, slug)) !== 'dir') throw sessionNotFound(slug);
    checkMetaFile(ctx, slug);
  } catch (err) {
    throw ioError(err, `checking session ${slug}`);
  }
}

/**
 * verifySession for an append: opens the session directory itself without
 * following a symlink and returns the descriptor (for its fsync); the caller closes it.
 */
export function openSession(ctx: FsContext, slug: Slug): number {
  let fd: number;
  try {
    fd = ctx.fs.openSync(sessionDir(ctx.root, slug), OPEN_DIR);
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'ENOENT' || code === 'ELOOP' || code === 'ENOTDIR') throw sessionNotFound(slug);
    throw ioError(err, `opening session ${slug}`);
  }
  try {
    checkMetaFile(ctx, slug);
    return fd;
  } catch (err) {
    ctx.fs.closeSync(fd);
    throw ioError(err, `checking session ${slug}`);
  }
}

/** What tells this directory from any other that was or will be at the same path. */
export function identityOf(stat: Stats): string {
  return `${stat.ino}:${stat.birthtimeMs}`;
}

/** The identity of the session directory at `slug`; null when there is none (or it is not a real directory). */
export function sessionIdentity(ctx: FsContext, slug: Slug): string | null {
  try {
    const stat = ctx.fs.lstatSync(sessionDir(ctx.root, slug));
    return stat.isDirectory() ? identityOf(stat) : null;
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw ioError(err, `checking session ${slug}`);
  }
}
