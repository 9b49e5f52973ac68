// The sessions root itself: created with mode 0700 when missing, and refused
// when another user could plant or swap entries in it.

import type { Stats } from 'node:fs';
import { StepStoreError, ioError } from '../../errors.js';
import type { FsContext } from './context.js';
import { DIR_MODE, errnoOf, kindOf, type FsLayer } from './durable.js';
import { syncDir } from './durability.js';
import { parentDir } from './paths.js';

/** `dir` and those of its ancestors that do not exist yet, outermost first. */
function missingDirs(io: FsLayer, dir: string): string[] {
  const missing: string[] = [];
  for (let at = dir; kindOf(io, at) === 'missing' && parentDir(at) !== at; at = parentDir(at)) missing.unshift(at);
  return missing;
}

function unsafeRoot(root: string, why: string): StepStoreError {
  return new StepStoreError('UNSAFE_ROOT', `refusing sessions root ${root}: ${why}`);
}

/**
 * Creates the root (mode 0700) when missing, durably. Refuses a root that is a symlink,
 * not a directory, writable by group or others, or owned by another user.
 */
export async function vetRoot(ctx: FsContext): Promise<void> {
  const { fs: io, root } = ctx;
  let stat: Stats;
  try {
    stat = io.lstatSync(root);
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') throw ioError(err, `checking sessions root ${root}`);
    try {
      const created = missingDirs(io, root);
      await io.ensureDir(root, DIR_MODE);
      io.chmodSync(root, DIR_MODE);
      // Each new directory exists for good only once the entry naming it is synced in its parent.
      for (const dir of created) await syncDir(ctx, 'storeFolders', parentDir(dir));
      stat = io.lstatSync(root);
    } catch (cause) {
      throw ioError(cause, `creating sessions root ${root}`);
    }
  }
  if (stat.isSymbolicLink()) throw unsafeRoot(root, 'it is a symlink');
  if (!stat.isDirectory()) throw unsafeRoot(root, 'it is not a directory');
  if ((stat.mode & 0o022) !== 0) {
    throw unsafeRoot(root, `it is writable by group or others (mode ${(stat.mode & 0o777).toString(8)}); chmod 700 it`);
  }
  const uid = process.getuid?.();
  if (uid !== undefined && stat.uid !== uid) throw unsafeRoot(root, `it is owned by uid ${stat.uid}, not by this process (${uid})`);
}
