// openStore(): the filesystem store, the embedded default. Checks the
// filesystem options, opens the fs backend on the sessions root and wraps it
// in the backend-neutral Store.

import { DURABILITIES } from './backends/fs/durability.js';
import { nodeFs, type FsLayer } from './backends/fs/durable.js';
import { openFsBackend } from './backends/fs/index.js';
import { invalidOption } from './errors.js';
import { resolveCommonOptions, Store, type CommonOptions } from './store.js';
import type { Durability } from './types.js';

export type { FsLayer };

export interface StoreOptions extends CommonOptions {
  /** The sessions root: slug directories directly inside (a crabtalk sessions folder opens as it is). */
  dir: string;
  /** What is fsynced before an append resolves (the README's Durability section); default `full`. */
  durability?: Durability;
  /**
   * The filesystem calls the store makes; default node:fs. A hook for
   * fault-injection and power-loss tests, not for production use.
   */
  fs?: FsLayer;
}

/** Opens a store on the filesystem, creating `dir` (mode 0700) when it does not exist. */
export async function openStore(options: StoreOptions): Promise<Store> {
  if (typeof options !== 'object' || options === null) throw invalidOption('openStore needs an options object');
  const common = resolveCommonOptions(options);
  const { dir, durability = 'full', fs = nodeFs } = options;
  if (typeof dir !== 'string' || dir === '') throw invalidOption('dir must be a non-empty path');
  if (!DURABILITIES.includes(durability)) throw invalidOption(`durability must be one of ${DURABILITIES.join(', ')}`);
  return new Store(await openFsBackend({ dir, durability, logger: common.logger, maxStepBytes: common.maxStepBytes, fs }), common);
}
