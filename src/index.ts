// The public API of stepstore: the filesystem store and everything shared by
// every backend. The Redis backend has its own entry point, `stepstore/redis`,
// so filesystem users never load it.

export { openStore } from './fs.js';
export type { FsLayer, StoreOptions } from './fs.js';
export { Store } from './store.js';
export type { CommonOptions, FenceOptions } from './store.js';
export { senderSlug } from './format/slug.js';
export { stepKindOf } from './format/step-line.js';
export { migrate } from './migrate.js';
export type { MigrateProgress, MigrateReport } from './migrate.js';
export type { PruneOptions, PruneReport } from './store.js';
export type { StepWatch, WatchEnd, WatchOptions } from './store.js';
export { StepStoreError, isStepStoreError, ERROR_CODES } from './errors.js';
export type { ErrorCode } from './errors.js';
export type {
  CompactMarker,
  ConversationMeta,
  CreateOptions,
  Diagnostic,
  Durability,
  EventLine,
  HistoryEntry,
  LegacyCompactMarker,
  Logger,
  LooseMode,
  MessageMode,
  RepairOptions,
  RepairReport,
  SessionSnapshot,
  SessionSummary,
  StepKind,
  StepLine,
  StepRecord,
  StoreStats,
} from './types.js';
