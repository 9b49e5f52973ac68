// The seam between the rules (sessions/, meta/, compact/) and a storage
// backend. The rules validate and decide; a backend owns layout, exclusivity,
// durability, counters and caches. Every argument arrives already validated.

import type { ArchiveRecord } from './format/archive.js';
import type { MetaBump } from './format/bump.js';
import type { SessionPrefix, Slug } from './format/slug.js';
import type { EncodedStep } from './format/encode.js';
import type { ListedSession, RawStep, StoredSession } from './format/records.js';
import type { ConversationMeta, RepairReport, StoreStats } from './types.js';

export type { ListedSession, RawStep, StoredSession };

/**
 * How a rewind sets message_count: to `count` (the kept steps counted); or
 * `less` (the messages among the retracted steps, none a boundary) fewer
 * than it counts, when the session's highest step is still
 * `expectedHighest`; else the backend counts the kept steps itself.
 */
export type CountChange = { count: number } | { less: number; expectedHighest: number };

export interface Backend {
  /** Claims the next free seq after `prefix` exclusively and stores `meta` with it. */
  createSession(prefix: SessionPrefix, meta: ConversationMeta): Promise<Slug>;
  /** Sessions named `prefix` + seq that have a readable meta, highest seq first, read lazily; complete as listSessions is. */
  sessionsBySeq(prefix: SessionPrefix): AsyncIterable<StoredSession>;
  /**
   * Every session whose name starts with `namePrefix` and has a readable
   * meta, in slices, any order; complete for every create and delete that
   * finished before the call, with every meta as it was at the call or later.
   * At most `limit` of them are wanted: when more are listed, the backend may
   * leave out metas it knows unchanged (meta null; read them with readMeta).
   */
  listSessions(namePrefix: string, limit: number): AsyncIterable<ListedSession[]>;
  /**
   * What tells this session from any other that was or will be stored under
   * the same handle; null when there is no session. Readers compare it before
   * and after reading, so a read never mixes two conversations.
   */
  identity(slug: Slug): Promise<string | null>;
  /** The session's meta including bumps not yet written; null when it is not a session. Throws CORRUPT_META. */
  readMeta(slug: Slug): Promise<ConversationMeta | null>;
  /** Replaces meta durably before resolving, superseding pending bumps. */
  writeMeta(slug: Slug, meta: ConversationMeta): Promise<void>;
  /**
   * Stores each step under the next free number, in order; resolves with the
   * numbers once they are as durable as the store's durability promises.
   * Throws SESSION_NOT_FOUND (nothing written) when the session does not exist.
   * `bump` (null: meta unchanged) lands on meta after any bump before it, in order.
   * `expectedStep` (a fenced append): the steps land at exactly expectedStep + 1, ...
   * only if that is the session's highest step (0: none), else CONFLICT with nothing written.
   */
  appendSteps(slug: Slug, steps: EncodedStep[], bump: MetaBump | null, expectedStep?: number): Promise<number[]>;
  /**
   * Steps newest first, in slices, reading no further than the consumer pulls.
   * `expected` (here and below): how many steps the consumer expects to take;
   * the first slice reads no more than that.
   */
  stepsNewestFirst(slug: Slug, expected?: number): AsyncIterable<RawStep[]>;
  /** Steps numbered above `after`, oldest first, in slices. */
  stepsAfter(slug: Slug, after: number, expected?: number): AsyncIterable<RawStep[]>;
  /** Every step numbered below `before` (boundaries and all), newest first, in slices, read as pulled. */
  stepsBefore(slug: Slug, before: number, expected?: number): AsyncIterable<RawStep[]>;
  /** The session's highest step number (0: none); null when there is no session. */
  highestStep(slug: Slug): Promise<number | null>;
  /**
   * Wake-ups for a watcher of `slug`: the first once the backend listens, then
   * one whenever the session may have changed since the last was taken (steps
   * appended or retracted, the session deleted), changes meanwhile coalesced.
   * Spurious ones are allowed; every change is followed by one, within a poll
   * interval when a notification is lost. Ends when `signal` aborts or the
   * backend closes, releasing what it holds; nothing it holds keeps the
   * process alive while no wake-up is awaited.
   */
  changes(slug: Slug, signal: AbortSignal): AsyncIterable<void>;
  /**
   * A new session of the source's pair (next seq) holding steps 1..atStep of
   * `source`, the same bytes, without copying them where the backend can
   * share them; `meta` is its meta, stored last (a crash leaves no fork, or
   * all of it). The fork takes a reference on every archive the source
   * holds (owns or shares), so its markers resolve while it lives. Null when
   * `source` is not a session; CONFLICT when it no longer holds step atStep.
   */
  fork(source: Slug, atStep: number, meta: ConversationMeta): Promise<Slug | null>;
  /**
   * Retracts every step above `toStep`, all or none (a crash leaves the
   * session as before or as after), sets message_count as `change` says and
   * updated_at to at least `at`. `archives`: names the retracted markers
   * name; this session's hold on each goes, and an archive nobody holds any
   * more is removed. Resolves with how many steps went; null when there is no session.
   * `expectedStep` (fenced): CONFLICT, nothing retracted, unless the highest
   * step is exactly that when the steps are retracted.
   */
  rewind(slug: Slug, toStep: number, change: CountChange, at: string, archives: string[], expectedStep?: number): Promise<number | null>;
  /**
   * Stores `record` as archive `{base}-{n}` (n claimed exclusively), then a
   * compact marker naming it; a marker is never stored without its archive.
   * n is above every `{base}-{n}` taken: the store's own archives, those kept
   * elsewhere that the backend can see (crabtalk's memory file), and those the
   * session's markers name (markerFloor: read newest first, no further than
   * the last archive this store minted for the session).
   * message_count restarts at 1 (COMPACTION_BUMP), coalesced with pending bumps
   * in order. Resolves with the archive name. SESSION_NOT_FOUND when there is no session.
   * `expectedStep`: the marker is fenced as appendSteps' steps are (CONFLICT stores no archive).
   */
  compact(slug: Slug, base: string, record: ArchiveRecord, expectedStep?: number): Promise<string>;
  /** The archive `name`: the store's own, else one kept elsewhere that the backend can see (crabtalk's memory file). */
  getArchive(name: string): Promise<ArchiveRecord | null>;
  /** Creates session `slug` with exactly `meta`; when it exists, writes nothing and returns its meta. */
  importSession(slug: Slug, meta: ConversationMeta): Promise<ConversationMeta | null>;
  /** Stores an archive under exactly `name`; when one exists, writes nothing and returns it. */
  importArchive(name: string, record: ArchiveRecord): Promise<ArchiveRecord | null>;
  /**
   * Removes the session, its references on archives, and the archives named
   * `{archiveBase}-{n}` it owns that no other live session references; false
   * when it was not a session.
   */
  deleteSession(slug: Slug, archiveBase: string): Promise<boolean>;
  /** Checks every session and archive, fixes what can be fixed safely while others write (see RepairReport). */
  repair(opts: { dryRun: boolean; fixModes: boolean }): Promise<RepairReport>;
  stats(): StoreStats;
  /** Flushes pending work and releases resources. */
  close(): Promise<void>;
}
