// The Redis backend: opening the connection, then pure delegation to the
// domain modules beside this file.

import type { Backend, CountChange, ListedSession, RawStep, StoredSession } from '../../backend.js';
import type { ArchiveRecord } from '../../format/archive.js';
import type { MetaBump } from '../../format/bump.js';
import type { SessionPrefix, Slug } from '../../format/slug.js';
import type { EncodedStep } from '../../format/encode.js';
import type { ConversationMeta, RepairReport, StoreStats } from '../../types.js';
import * as archives from './archives.js';
import type { RedisContext } from './context.js';
import * as history from './history.js';
import * as meta from './meta.js';
import * as repairing from './repair.js';
import * as sessions from './sessions.js';
import * as steps from './steps.js';
import * as watching from './watch.js';

export class RedisBackend implements Backend {
  readonly #ctx: RedisContext;

  constructor(ctx: RedisContext) {
    this.#ctx = ctx;
  }

  createSession(prefix: SessionPrefix, initial: ConversationMeta): Promise<Slug> {
    return sessions.createSession(this.#ctx, prefix, initial);
  }

  sessionsBySeq(prefix: SessionPrefix): AsyncIterable<StoredSession> {
    return sessions.sessionsBySeq(this.#ctx, prefix);
  }

  listSessions(namePrefix: string): AsyncIterable<ListedSession[]> {
    return sessions.listSessions(this.#ctx, namePrefix);
  }

  identity(slug: Slug): Promise<string | null> {
    return meta.identity(this.#ctx, slug);
  }

  readMeta(slug: Slug): Promise<ConversationMeta | null> {
    return meta.readMeta(this.#ctx, slug);
  }

  writeMeta(slug: Slug, next: ConversationMeta): Promise<void> {
    return meta.writeMeta(this.#ctx, slug, next);
  }

  appendSteps(slug: Slug, encoded: EncodedStep[], bump: MetaBump | null, expectedStep?: number): Promise<number[]> {
    return steps.appendSteps(this.#ctx, slug, encoded, bump, expectedStep);
  }

  stepsNewestFirst(slug: Slug, expected?: number): AsyncIterable<RawStep[]> {
    return steps.stepsNewestFirst(this.#ctx, slug, expected);
  }

  stepsAfter(slug: Slug, after: number, expected?: number): AsyncIterable<RawStep[]> {
    return steps.stepsAfter(this.#ctx, slug, after, expected);
  }

  stepsBefore(slug: Slug, before: number, expected?: number): AsyncIterable<RawStep[]> {
    return steps.stepsBefore(this.#ctx, slug, before, expected);
  }

  highestStep(slug: Slug): Promise<number | null> {
    return steps.highestStep(this.#ctx, slug);
  }

  changes(slug: Slug, signal: AbortSignal): AsyncIterable<void> {
    return watching.changes(this.#ctx, slug, signal);
  }

  fork(source: Slug, atStep: number, initial: ConversationMeta): Promise<Slug | null> {
    return history.fork(this.#ctx, source, atStep, initial);
  }

  rewind(slug: Slug, toStep: number, change: CountChange, at: string, names: string[], expectedStep?: number): Promise<number | null> {
    return history.rewind(this.#ctx, slug, toStep, change, at, names, expectedStep);
  }

  compact(slug: Slug, base: string, record: ArchiveRecord, expectedStep?: number): Promise<string> {
    return archives.compact(this.#ctx, slug, base, record, expectedStep);
  }

  getArchive(name: string): Promise<ArchiveRecord | null> {
    return archives.getArchive(this.#ctx, name);
  }

  importSession(slug: Slug, initial: ConversationMeta): Promise<ConversationMeta | null> {
    return sessions.importSession(this.#ctx, slug, initial);
  }

  importArchive(name: string, record: ArchiveRecord): Promise<ArchiveRecord | null> {
    return archives.importArchive(this.#ctx, name, record);
  }

  deleteSession(slug: Slug): Promise<boolean> {
    return sessions.deleteSession(this.#ctx, slug);
  }

  repair(opts: { dryRun: boolean; fixModes: boolean }): Promise<RepairReport> {
    return repairing.repair(this.#ctx, opts.dryRun);
  }

  stats(): StoreStats {
    return { ...this.#ctx.stats };
  }

  async close(): Promise<void> {
    await watching.closeWatches(this.#ctx);
    await this.#ctx.conn.close();
  }
}
