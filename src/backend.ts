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
   */
  appendSteps(slug: Slug, steps: EncodedStep[], bump: MetaBump | null): Promise<number[]>;
  /** Steps newest first, in slices, reading no further than the consumer pulls. */
  stepsNewestFirst(slug: Slug): AsyncIterable<RawStep[]>;
  /** Steps numbered above `after`, oldest first, in slices. */
  stepsAfter(slug: Slug, after: number): AsyncIterable<RawStep[]>;
  /**
   * Stores `record` as archive `{base}-{n}` (n claimed exclusively), then a
   * compact marker naming it; a marker is never stored without its archive.
   * n is above every `{base}-{n}` taken: the store's own archives, those kept
   * elsewhere that the backend can see (crabtalk's memory file), and those the
   * session's markers name (markerFloor: read newest first, no further than
   * the last archive this store minted for the session).
   * message_count restarts at 1 (COMPACTION_BUMP), coalesced with pending bumps
   * in order. Resolves with the archive name. SESSION_NOT_FOUND when there is no session.
   */
  compact(slug: Slug, base: string, record: ArchiveRecord): Promise<string>;
  /** The archive `name`: the store's own, else one kept elsewhere that the backend can see (crabtalk's memory file). */
  getArchive(name: string): Promise<ArchiveRecord | null>;
  /** Creates session `slug` with exactly `meta`; when it exists, writes nothing and returns its meta. */
  importSession(slug: Slug, meta: ConversationMeta): Promise<ConversationMeta | null>;
  /** Stores an archive under exactly `name`; when one exists, writes nothing and returns it. */
  importArchive(name: string, record: ArchiveRecord): Promise<ArchiveRecord | null>;
  /** Removes the session and the archives named `{archiveBase}-{n}` it owns; false when it was not a session. */
  deleteSession(slug: Slug, archiveBase: string): Promise<boolean>;
  /** Checks every session and archive, fixes what can be fixed safely while others write (see RepairReport). */
  repair(opts: { dryRun: boolean; fixModes: boolean }): Promise<RepairReport>;
  stats(): StoreStats;
  /** Flushes pending work and releases resources. */
  close(): Promise<void>;
}
