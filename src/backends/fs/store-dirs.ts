// The store's own folders under `<root>/.stepstore/` (archives, trash,
// deleted seqs): made on first use with mode 0700 and synced into their
// parent, and checked again on every use, so a folder swapped for a symlink
// (or for someone else's directory) after the store opened is refused, never written through.

import { StepStoreError } from '../../errors.js';
import type { FsContext } from './context.js';
import { DIR_MODE, errnoOf } from './durable.js';
import { syncDir } from './durability.js';
import { storeDirChain } from './paths.js';

/** Refuses `dir` unless it is a real directory owned by this process's user. */
function checkOwnDir(ctx: FsContext, dir: string): void {
  const stat = ctx.fs.lstatSync(dir);
  if (stat.isSymbolicLink()) throw new StepStoreError('UNSAFE_ROOT', `refusing ${dir}: it is a symlink`);
  if (!stat.isDirectory()) throw Object.assign(new Error(`${dir} is not a directory`), { code: 'ENOTDIR' });
  const uid = process.getuid?.();
  if (uid !== undefined && stat.uid !== uid) throw new StepStoreError('UNSAFE_ROOT', `refusing ${dir}: it is owned by uid ${stat.uid}`);
}

/**
 * Makes (or checks) `.stepstore/` and the folders `names` inside it, durably
 * when made; returns the innermost folder's path. Raw errno errors for the caller to map.
 */
export async function ensureStoreDir(ctx: FsContext, names: string[]): Promise<string> {
  const chain = storeDirChain(ctx.root, ...names);
  for (let i = 0; i < chain.length; i++) {
    const dir = chain[i]!;
    if (ctx.readyDirs.has(dir)) {
      checkOwnDir(ctx, dir);
      continue;
    }
    try {
      ctx.fs.mkdirSync(dir, DIR_MODE);
      ctx.fs.chmodSync(dir, DIR_MODE);
    } catch (err) {
      if (errnoOf(err) !== 'EEXIST') throw err;
      checkOwnDir(ctx, dir);
    }
    // Also when it was there: whoever made it may have crashed, or failed, before this sync.
    await syncDir(ctx, 'storeFolders', i === 0 ? ctx.root : chain[i - 1]!);
    ctx.readyDirs.add(dir);
  }
  return chain.at(-1)!;
}

/** Forgets what ensureStoreDir knew, after a failure in one of the folders. */
export function forgetStoreDirs(ctx: FsContext): void {
  ctx.readyDirs.clear();
}
