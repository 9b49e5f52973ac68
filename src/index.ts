// The public API of stepstore (the filesystem store). The Redis backend has
// its own entry point, `stepstore/redis`, so filesystem users never load it.

export { openStore, Store } from './store.js';
export type { StoreOptions, CommonOptions } from './store.js';
export type { FsLayer } from './backends/fs/durable.js';
export { senderSlug } from './sessions/slug.js';
export { stepKindOf } from './sessions/step-line.js';
export { migrate } from './migrate.js';
export type { MigrateProgress, MigrateReport } from './migrate.js';
export { StepStoreError, isStepStoreError, ERROR_CODES } from './errors.js';
export type { ErrorCode } from './errors.js';
export type {
  CompactMarker,
  ConversationMeta,
  Diagnostic,
  Durability,
  EventLine,
  HistoryEntry,
  LegacyCompactMarker,
  Logger,
  RepairReport,
  SessionSnapshot,
  SessionSummary,
  StepKind,
  StepLine,
  StepRecord,
  StoreStats,
} from './types.js';
