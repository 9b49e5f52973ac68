// openStore(): the filesystem store, the embedded default. Checks the
// filesystem options, opens the fs backend on the sessions root and wraps it
// in the backend-neutral Store.

import path from 'node:path';
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
  /**
   * crabtalk's memory file (its default is `~/.crabtalk/memory.db`), where
   * crabtalk keeps the archives its compact markers name: getArchive, loads
   * with `withArchive`, and repair() find them there too, and compact() never
   * mints a name it holds. Only ever read (a running crabtalk rewrites it
   * whole), and read again whenever it changes; a missing file holds no archives.
   */
  crabtalkMemory?: string;
}

/** Opens a store on the filesystem, creating `dir` (mode 0700) when it does not exist. */
export async function openStore(options: StoreOptions): Promise<Store> {
  if (typeof options !== 'object' || options === null) throw invalidOption('openStore needs an options object');
  const common = resolveCommonOptions(options);
  const { dir, durability = 'full', fs = nodeFs, crabtalkMemory } = options;
  if (typeof dir !== 'string' || dir === '') throw invalidOption('dir must be a non-empty path');
  if (crabtalkMemory !== undefined && (typeof crabtalkMemory !== 'string' || crabtalkMemory === '' || crabtalkMemory.includes('\0'))) {
    throw invalidOption('crabtalkMemory must be a non-empty path');
  }
  if (!DURABILITIES.includes(durability)) throw invalidOption(`durability must be one of ${DURABILITIES.join(', ')}`);
  const memory = crabtalkMemory === undefined ? null : path.resolve(crabtalkMemory);
  const backend = await openFsBackend({ dir, durability, logger: common.logger, maxStepBytes: common.maxStepBytes, fs, crabtalkMemory: memory, messages: common.messages });
  return new Store(backend, common);
}
