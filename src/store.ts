// The public store, whatever the backend: the options every backend shares and
// their defaults, then one-line delegations to the rules (sessions/, meta/,
// compact/), which drive a Backend. Backends are opened in fs.ts and redis.ts.

import type { Backend } from './backend.js';
import * as compaction from './compact/index.js';
import { invalidOption } from './errors.js';
import * as metas from './meta/index.js';
import type { StoreContext } from './sessions/context.js';
import * as history from './sessions/history.js';
import * as imports from './sessions/import.js';
import * as sessions from './sessions/index.js';
import * as pruning from './sessions/prune.js';
import type { PruneOptions, PruneReport } from './sessions/prune.js';
import * as watching from './sessions/watch.js';
import type { StepWatch, WatchEnd, WatchOptions } from './sessions/watch.js';
import { KeyedQueue } from './sessions/queue.js';
import { DEFAULT_MAX_STEP_BYTES } from './format/encode.js';
import { MESSAGE_MODES } from './format/step-line.js';
import type {
  ConversationMeta,
  CreateOptions,
  EventLine,
  HistoryEntry,
  Logger,
  MessageMode,
  RepairOptions,
  RepairReport,
  SessionSnapshot,
  SessionSummary,
  StepLine,
  StepRecord,
  StoreStats,
} from './types.js';

export type { PruneOptions, PruneReport, StepWatch, WatchEnd, WatchOptions };

/** Options every backend takes. */
export interface CommonOptions {
  /** Largest step (and archive summary) accepted, in bytes of JSON; default 4 MiB. */
  maxStepBytes?: number;
  /** Receives warnings (skipped steps, unreadable metas); default: console.warn. */
  logger?: Logger;
  /**
   * Which messages and events the store writes and reads (the README's
   * Compatibility section): 'crabtalk' (default) exactly what crabtalk 0.0.22
   * reads; 'any' also any object `message` and any event tag.
   */
  messages?: MessageMode;
}

/** A fenced write: it lands at exactly expectedStep + 1 only if that is the session's highest step, else CONFLICT. */
export interface FenceOptions {
  expectedStep?: number;
}

const consoleLogger: Logger = {
  warn: (message) => console.warn(`stepstore: ${message}`),
};

/** Checks the options every backend shares and fills their defaults. */
export function resolveCommonOptions(options: CommonOptions): Required<CommonOptions> {
  const { maxStepBytes = DEFAULT_MAX_STEP_BYTES, logger = consoleLogger, messages = 'crabtalk' } = options;
  if (!Number.isSafeInteger(maxStepBytes) || maxStepBytes < 1) {
    throw invalidOption('maxStepBytes must be a positive integer');
  }
  if (typeof logger !== 'object' || logger === null || typeof logger.warn !== 'function') {
    throw invalidOption('logger must have a warn(message) method');
  }
  if (!MESSAGE_MODES.includes(messages)) throw invalidOption(`messages must be one of ${MESSAGE_MODES.join(', ')}`);
  return { maxStepBytes, logger, messages };
}

export class Store {
  readonly #ctx: StoreContext;

  /** For backends: wraps an opened Backend with the public API. */
  constructor(backend: Backend, options: Required<CommonOptions>) {
    this.#ctx = { backend, queue: new KeyedQueue(), closed: false, ...options };
  }

  /** Which messages this store accepts and reads ('crabtalk' or 'any'): adapters that store other shapes check it. */
  get messages(): MessageMode {
    return this.#ctx.messages;
  }

  createSession(agent: string, createdBy: string, opts?: CreateOptions): Promise<string> {
    return sessions.create(this.#ctx, agent, createdBy, opts);
  }

  findLatestSession(agent: string, createdBy: string): Promise<string | null> {
    return sessions.findLatest(this.#ctx, agent, createdBy);
  }

  loadSession<M extends object = Record<string, unknown>>(
    handle: string,
    opts?: { withArchive?: boolean; last?: number },
  ): Promise<SessionSnapshot<M> | null> {
    return sessions.load(this.#ctx, handle, opts) as Promise<SessionSnapshot<M> | null>;
  }

  /** The history to hand a model: the archive's summary (as a user message) first when the snapshot has one. */
  resumeHistory<M extends object = Record<string, unknown>>(snapshot: SessionSnapshot<M>): HistoryEntry<M | Record<string, unknown>>[] {
    return compaction.resumeHistory(snapshot as unknown as SessionSnapshot) as HistoryEntry<M | Record<string, unknown>>[];
  }

  readSteps(handle: string, opts?: { after?: number; limit?: number; last?: number; before?: number }): Promise<StepRecord[]> {
    return sessions.readSteps(this.#ctx, handle, opts);
  }

  listSessions(opts?: { agent?: string; createdBy?: string; limit?: number }): Promise<SessionSummary[]> {
    return sessions.list(this.#ctx, opts);
  }

  /** Any object `message` type is taken as is (the store checks it is plain JSON, and in 'crabtalk' mode crabtalk's shape). */
  appendMessages(handle: string, entries: readonly HistoryEntry<object>[], opts?: FenceOptions): Promise<number[]> {
    return sessions.append(this.#ctx, handle, entries as unknown as HistoryEntry[], 'entry', opts);
  }

  appendEvents(handle: string, events: EventLine[], opts?: FenceOptions): Promise<number[]> {
    return sessions.append(this.#ctx, handle, events, 'event', opts);
  }

  appendCompact(handle: string, archiveName: string): Promise<number> {
    return compaction.appendCompact(this.#ctx, handle, archiveName);
  }

  compact(handle: string, summary: string, opts?: FenceOptions): Promise<string> {
    return compaction.compact(this.#ctx, handle, summary, opts);
  }

  /** A new session of the same agent and sender holding steps 1..atStep (default: all) of `handle`. */
  fork(handle: string, opts?: { atStep?: number }): Promise<string> {
    return history.fork(this.#ctx, handle, opts);
  }

  /** Retracts every step after `toStep`; resolves with how many went. Fenced: only while `expectedStep` is the highest step. */
  rewind(handle: string, toStep: number, opts?: FenceOptions): Promise<number> {
    return history.rewind(this.#ctx, handle, toStep, opts);
  }

  /** The steps any process appends to `handle` after `after`, as they land; `ended` tells why iteration stopped. */
  watch(handle: string, opts?: WatchOptions): Promise<StepWatch> {
    return watching.watch(this.#ctx, handle, opts);
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

  /** Deletes the sessions last updated before `olderThan` (a Date, or ms before now), each re-checked right before it goes. */
  prune(opts: PruneOptions): Promise<PruneReport> {
    return pruning.prune(this.#ctx, opts);
  }

  /** Creates session `handle` with exactly `meta` (for migration and import tools); false when it exists already. */
  importSession(handle: string, meta: ConversationMeta): Promise<boolean> {
    return imports.importSession(this.#ctx, handle, meta);
  }

  /** Appends raw steps of any kind exactly as given, without bumping meta (for migration and import tools). */
  importSteps(handle: string, lines: StepLine[]): Promise<number[]> {
    return imports.importSteps(this.#ctx, handle, lines);
  }

  importRawSteps(handle: string, texts: string[]): Promise<number[]> {
    return imports.importRawSteps(this.#ctx, handle, texts);
  }

  /** Stores an archive under exactly `name` (for migration and import tools); false when it is there already. */
  importArchive(name: string, archive: { owner: string; content: string; archived_at?: string }): Promise<boolean> {
    return imports.importArchive(this.#ctx, name, archive);
  }

  /**
   * Checks every session and archive and fixes what is safe to fix while other
   * processes write: leftovers of interrupted writes, half-made sessions, meta
   * counters, orphan archives, unsafe write bits. Reports what it cannot fix,
   * and modes merely looser than 0600 / 0700 (set only with `fixModes`). With
   * `dryRun`, only reports.
   */
  repair(opts?: RepairOptions): Promise<RepairReport> {
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
