// Wire types: the shapes stored on disk (or in Redis), snake_case exactly as
// crabtalk v0.0.22 writes them (the README's On-disk format section), plus the snapshot and option
// types of the public API. No logic lives here.

/** A session's `meta` file. Unknown fields read from disk are kept and written back. */
export interface ConversationMeta {
  agent: string;
  created_by: string;
  /** RFC 3339, UTC; never changes. */
  created_at: string;
  title: string;
  /** RFC 3339; `""` when never set. */
  updated_at: string;
  message_count: number;
  summary?: string;
  [field: string]: unknown;
}

/** What createSession may set beyond the agent and sender. */
export interface CreateOptions {
  title?: string;
  /**
   * Extra meta fields (plain JSON, names other than the meta's own), kept
   * with the session like any unknown field: adapters record the framework
   * that wrote a session here.
   */
  fields?: Record<string, unknown>;
}

/**
 * A conversation message as the runtime persists it; `message` is opaque to
 * the store. `M` types the message for callers that store one framework's
 * shape (the store checks only that it is a plain JSON object).
 */
export interface HistoryEntry<M extends object = Record<string, unknown>> {
  /** Guest agent that produced the message; omitted (or empty) for the conversation's own agent. */
  agent?: string;
  message: M;
  [field: string]: unknown;
}

/** Trace data: stored as a step, never part of the replayed history. */
export interface EventLine {
  event: string;
  [field: string]: unknown;
}

/** Boundary that names the archive entry holding the summary of what precedes it. */
export interface CompactMarker {
  archive_name: string;
  archived_at: string;
}

/** Pre-archive boundary with the summary inline; still a replay boundary. */
export interface LegacyCompactMarker {
  compact: string;
  title?: string;
  archived_at?: string;
}

export type StepLine = CompactMarker | LegacyCompactMarker | EventLine | HistoryEntry;

/**
 * 'crabtalk': entries and events are exactly what crabtalk 0.0.22 reads (its
 * content-block messages, its four events); 'any': any object `message`, any
 * event tag (crabtalk skips what it cannot read).
 */
export type MessageMode = 'crabtalk' | 'any';

/** How a stored step reads back, in crabtalk's first-match order. */
export type StepKind = 'compact' | 'legacy-compact' | 'event' | 'entry';

/** A step that was skipped while loading, and why. */
export interface Diagnostic {
  step: number;
  reason: string;
}

export interface SessionSnapshot<M extends object = Record<string, unknown>> {
  meta: ConversationMeta;
  /** History entries after the last compact boundary, in step order. */
  history: HistoryEntry<M>[];
  /** The step number of each entry of `history` (same order): what rewind, fork and fences take. */
  steps: number[];
  /** Archive named by the last boundary, when it is a compact marker. */
  archive: string | null;
  /** Filled only when loaded with `{ withArchive: true }`; `null` when the archive is missing. */
  archiveContent?: string | null;
  diagnostics: Diagnostic[];
  /**
   * Only when loaded with `{ last }`: true when older entries after the
   * boundary exist and were not read; `archive` is then unknown (null), and
   * resumeHistory refuses the snapshot.
   */
  truncated?: boolean;
}

export interface StepRecord {
  step: number;
  /** How the step reads back (crabtalk's first-match order). */
  kind: StepKind;
  line: StepLine;
  /** The step exactly as stored (what importRawSteps takes to copy it byte for byte). */
  text: string;
}

export interface SessionSummary {
  handle: string;
  meta: ConversationMeta;
}

export type Durability = 'none' | 'file' | 'full';

export interface Logger {
  warn(message: string, detail?: Record<string, unknown>): void;
}

/** Counters of work the backend did since the store was opened. */
export interface StoreStats {
  /** Step files (or Redis step entries) read. */
  stepsRead: number;
  stepsWritten: number;
  metaWrites: number;
  /** fsync/fdatasync calls issued (0 on Redis). */
  syncs: number;
}

export interface RepairOptions {
  /** Only report; change nothing. */
  dryRun?: boolean;
  /** Also set every mode looser than 0600 / 0700 to them (by default only unsafe write bits are removed). */
  fixModes?: boolean;
}

/** A file or directory whose mode is looser than stepstore's own (see RepairReport.looseModes). */
export interface LooseMode {
  /** Relative to the sessions root, e.g. `crab_tg-1_1/step-000001`. */
  path: string;
  /** Octal, e.g. `644`. */
  mode: string;
  /** Why the mode is unsafe; null when it is only looser than stepstore's own. */
  risk: string | null;
  action: 'changed' | 'kept';
  /** The mode it was (or would be) set to, octal; null when kept. */
  to: string | null;
}

/**
 * What store.repair() found and did. With `dryRun`, the same lists say what
 * it would do; nothing is changed.
 */
export interface RepairReport {
  dryRun: boolean;
  /** Sessions (with a meta) examined. */
  sessions: number;
  /** Leftovers of interrupted writes removed: temp files, stale locks, trash. */
  leftoversRemoved: string[];
  /** Directories (or keys) of sessions without a meta: removed when empty and old, else kept and reported. */
  incompleteSessions: { name: string; action: 'removed' | 'kept'; reason: string }[];
  /**
   * message_count recomputed from the steps by crabtalk's rule: the length of
   * the live conversation (every entry; after a compact marker, 1 for the
   * summary plus the entries after it; after a legacy marker, the entries after it).
   */
  countersFixed: { handle: string; from: number; to: number }[];
  /** Sessions written to in the last few seconds: their counters are left for a later run. */
  countersSkipped: string[];
  /** Compact markers naming an archive this store does not hold. */
  danglingMarkers: { handle: string; step: number; archive: string }[];
  /** Steps that load skips (unparsable, symlinks, non-canonical names). */
  unreadableSteps: { handle: string; step: number; reason: string }[];
  /** Metas that cannot be read: those sessions are not loaded or listed. */
  corruptMetas: { handle: string; reason: string }[];
  /** Archives whose owner session no longer exists, removed. */
  orphanArchivesRemoved: string[];
  /** Archive entries that are not archive records. */
  corruptArchives: string[];
  /**
   * Files and directories with modes looser than stepstore's own 0600 / 0700
   * (filesystem), as crabtalk's umask makes them (0644 / 0755, 0664 / 0775).
   * `risk` says why a mode is unsafe (writable by others, or by a group other
   * users are in), null when it is only looser. Repair removes the risky write
   * bits; it sets modes to 0600 / 0700 only with `fixModes`. `action`:
   * `changed` to `to` (with `dryRun`: would be), or `kept` as it is.
   */
  looseModes: LooseMode[];
  /** Index entries added for sessions missing from an index, or removed for sessions gone (Redis). */
  indexEntriesFixed: string[];
}
