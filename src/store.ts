// The public store: options and their defaults, then one-line delegations to
// the rules (sessions/, meta/, compact/), which drive a Backend.

import type { Backend } from './backend.js';
import { nodeFs, type FsLayer } from './backends/fs/durable.js';
import { openFsBackend } from './backends/fs/index.js';
import * as compaction from './compact/index.js';
import { StepStoreError } from './errors.js';
import * as metas from './meta/index.js';
import type { StoreContext } from './sessions/context.js';
import * as imports from './sessions/import.js';
import * as sessions from './sessions/index.js';
import { KeyedQueue } from './sessions/queue.js';
import { DEFAULT_MAX_STEP_BYTES } from './sessions/validate.js';
import type {
  ConversationMeta,
  Durability,
  EventLine,
  HistoryEntry,
  Logger,
  RepairReport,
  SessionSnapshot,
  SessionSummary,
  StepLine,
  StepRecord,
  StoreStats,
} from './types.js';

/** Options every backend takes. */
export interface CommonOptions {
  /** Largest step (and archive summary) accepted, in bytes of JSON; default 4 MiB. */
  maxStepBytes?: number;
  /** Receives warnings (skipped steps, unreadable metas); default: console.warn. */
  logger?: Logger;
}

export interface StoreOptions extends CommonOptions {
  /** The sessions root: slug directories directly inside (a crabtalk sessions folder opens as it is). */
  dir: string;
  /** `full` (default): file and directory fsynced; `file`: file fsynced; `none`: no fsync. */
  durability?: Durability;
  /**
   * The filesystem calls the store makes; default node:fs. A hook for
   * fault-injection and power-loss tests, not for production use.
   */
  fs?: FsLayer;
}

const DURABILITIES: readonly Durability[] = ['none', 'file', 'full'];

const consoleLogger: Logger = {
  warn: (message) => console.warn(`stepstore: ${message}`),
};

function invalidOption(message: string): StepStoreError {
  return new StepStoreError('INVALID_OPTION', message);
}

/** Checks the options every backend shares and fills their defaults. */
export function resolveCommonOptions(options: CommonOptions): Required<CommonOptions> {
  const { maxStepBytes = DEFAULT_MAX_STEP_BYTES, logger = consoleLogger } = options;
  if (!Number.isSafeInteger(maxStepBytes) || maxStepBytes < 1) {
    throw invalidOption('maxStepBytes must be a positive integer');
  }
  if (typeof logger !== 'object' || logger === null || typeof logger.warn !== 'function') {
    throw invalidOption('logger must have a warn(message) method');
  }
  return { maxStepBytes, logger };
}

/** Opens a store on the filesystem, creating `dir` (mode 0700) when it does not exist. */
export async function openStore(options: StoreOptions): Promise<Store> {
  if (typeof options !== 'object' || options === null) throw invalidOption('openStore needs an options object');
  const common = resolveCommonOptions(options);
  const { dir, durability = 'full', fs = nodeFs } = options;
  if (typeof dir !== 'string' || dir === '') throw invalidOption('dir must be a non-empty path');
  if (!DURABILITIES.includes(durability)) throw invalidOption(`durability must be one of ${DURABILITIES.join(', ')}`);
  return new Store(await openFsBackend({ dir, durability, logger: common.logger, fs }), common);
}

export class Store {
  readonly #ctx: StoreContext;

  /** For backends: wraps an opened Backend with the public API. */
  constructor(backend: Backend, options: Required<CommonOptions>) {
    this.#ctx = { backend, queue: new KeyedQueue(), closed: false, ...options };
  }

  createSession(agent: string, createdBy: string): Promise<string> {
    return sessions.create(this.#ctx, agent, createdBy);
  }

  findLatestSession(agent: string, createdBy: string): Promise<string | null> {
    return sessions.findLatest(this.#ctx, agent, createdBy);
  }

  loadSession(handle: string, opts?: { withArchive?: boolean }): Promise<SessionSnapshot | null> {
    return sessions.load(this.#ctx, handle, opts);
  }

  resumeHistory(snapshot: SessionSnapshot): HistoryEntry[] {
    return compaction.resumeHistory(snapshot);
  }

  readSteps(handle: string, opts?: { after?: number; limit?: number }): Promise<StepRecord[]> {
    return sessions.readSteps(this.#ctx, handle, opts);
  }

  listSessions(opts?: { agent?: string; createdBy?: string; limit?: number }): Promise<SessionSummary[]> {
    return sessions.list(this.#ctx, opts);
  }

  appendMessages(handle: string, entries: HistoryEntry[]): Promise<number[]> {
    return sessions.append(this.#ctx, handle, entries, 'entry');
  }

  appendEvents(handle: string, events: EventLine[]): Promise<number[]> {
    return sessions.append(this.#ctx, handle, events, 'event');
  }

  appendCompact(handle: string, archiveName: string): Promise<number> {
    return compaction.appendCompact(this.#ctx, handle, archiveName);
  }

  compact(handle: string, summary: string): Promise<string> {
    return compaction.compact(this.#ctx, handle, summary);
  }

  getArchive(name: string): Promise<string | null> {
    return compaction.getArchive(this.#ctx, name);
  }

  updateMeta(handle: string, meta: ConversationMeta): Promise<void> {
    return metas.updateMeta(this.#ctx, handle, meta);
  }

  deleteSession(handle: string): Promise<boolean> {
    return sessions.remove(this.#ctx, handle);
  }

  /** Creates session `handle` with exactly `meta` (for migration and import tools); false when it exists already. */
  importSession(handle: string, meta: ConversationMeta): Promise<boolean> {
    return imports.importSession(this.#ctx, handle, meta);
  }

  /** Appends raw steps of any kind exactly as given, without bumping meta (for migration and import tools). */
  importSteps(handle: string, lines: StepLine[]): Promise<number[]> {
    return imports.importSteps(this.#ctx, handle, lines);
  }

  /** Stores an archive under exactly `name` (for migration and import tools); false when it is there already. */
  importArchive(name: string, archive: { owner: string; content: string; archived_at?: string }): Promise<boolean> {
    return imports.importArchive(this.#ctx, name, archive);
  }

  /**
   * Checks every session and archive and fixes what is safe to fix while other
   * processes write: leftovers of interrupted writes, half-made sessions, meta
   * counters, orphan archives, modes. Reports what it cannot fix. With
   * `dryRun`, only reports.
   */
  repair(opts?: { dryRun?: boolean }): Promise<RepairReport> {
    return sessions.repair(this.#ctx, opts);
  }

  /** Work the backend has done since the store was opened (steps read, syncs issued, ...). */
  stats(): StoreStats {
    return this.#ctx.backend.stats();
  }

  /** Waits for queued writes, flushes pending meta bumps; later calls fail with STORE_CLOSED. */
  close(): Promise<void> {
    return sessions.close(this.#ctx);
  }
}
