// The write-behind queue of meta bumps. appendMessages (and a compaction,
// which restarts message_count) is acknowledged before its bump reaches meta:
// bumps are coalesced per session, in order (mergeBumps), and written by one
// store-wide timer, a few sessions at a time, so a crash can leave counters
// behind by at most the bumps still queued, never a torn or missing meta.
// Each bump carries the created_at of the session it counts for, so it never
// lands on another session that reuses the name. The queue owns its state;
// how one bump is written (meta.ts) is handed to it.

import { isStepStoreError } from '../../errors.js';
import { applyBump, mergeBumps, type MetaBump } from '../../format/bump.js';
import type { Slug } from '../../format/slug.js';
import type { ConversationMeta, Logger } from '../../types.js';

/** When an append had linked its steps (ms, just before it checked for a rewind), and its last step. */
export interface Placed {
  atMs: number;
  step: number;
}

/**
 * A bump, and the session (by created_at) it counts for (null: its meta was
 * unreadable). `parts`: each append of messages it counts, when placed, and
 * the step of each message; `compacted`: its compaction's marker, placed. A
 * count set outright since (meta.ts countedBump) already holds the parts
 * placed before it, and the steps up to the highest it read.
 */
export type PendingBump = Omit<MetaBump, 'compacted'> & {
  createdAt: string | null;
  parts: { atMs: number; steps: number[] }[];
  compacted: Placed | null;
};

/**
 * Writes `bump` onto the session's meta on disk under its lock, calling
 * `onTarget` with the meta it is about to write; resolves false, writing
 * nothing, when the lock stayed busy (`waitForLock`: wait the full lock wait, else not at all).
 */
export type WriteBump = (
  slug: Slug,
  bump: PendingBump,
  waitForLock: boolean,
  onTarget: (meta: ConversationMeta) => void,
) => Promise<boolean>;

/** How long a bump may wait before it is written; other processes see it after about this long. */
export const FLUSH_DELAY_MS = 50;
const RETRY_DELAY_MS = 1000;
const MAX_CONCURRENT_FLUSHES = 4;
/**
 * A session's bumps that could not be written for this long are dropped with
 * a warning (repair() recomputes the counters), so a process that ends
 * without close() still exits; longer than a stale lock takes to be broken.
 */
export const GIVE_UP_MS = 15_000;

interface Inflight {
  bump: PendingBump;
  /** The meta being written, once read from disk. */
  target: ConversationMeta | null;
  done: Promise<void>;
}

/** Two bumps of one session add up; a bump for a newer session of the same name replaces the older one's. */
function mergePending(older: PendingBump, newer: PendingBump): PendingBump {
  if (older.createdAt !== newer.createdAt) return newer;
  // A compaction restarts the count: what came before it no longer adds up.
  const restarted = newer.compacted !== null;
  const { messages, at } = mergeBumps(asMetaBump(older), asMetaBump(newer));
  return {
    messages,
    at,
    createdAt: newer.createdAt,
    parts: restarted ? newer.parts : older.parts.concat(newer.parts),
    compacted: restarted ? newer.compacted : older.compacted,
  };
}

/** The bump as format/bump.ts takes it. */
export function asMetaBump(bump: PendingBump): MetaBump {
  return bump.compacted === null ? { messages: bump.messages, at: bump.at } : { messages: bump.messages, at: bump.at, compacted: true };
}

export class BumpQueue {
  readonly #write: WriteBump;
  readonly #logger: Logger;
  /** Bumps acknowledged but not yet written to meta. */
  readonly #pending = new Map<Slug, PendingBump>();
  readonly #inflight = new Map<Slug, Inflight>();
  /** When the writes of a session's bumps began to fail (or to find the lock busy), until one succeeds. */
  readonly #failingSince = new Map<Slug, number>();
  #timer: NodeJS.Timeout | null = null;

  constructor(write: WriteBump, logger: Logger) {
    this.#write = write;
    this.#logger = logger;
  }

  add(slug: Slug, bump: PendingBump): void {
    const pending = this.#pending.get(slug);
    this.#pending.set(slug, pending === undefined ? bump : mergePending(pending, bump));
    this.#arm(FLUSH_DELAY_MS);
  }

  /** Bumps of `slug` are queued or being written: its meta on disk is not all this store knows. */
  holds(slug: Slug): boolean {
    return this.#pending.has(slug) || this.#inflight.has(slug);
  }

  /** What this store knows meta to be: `disk` (or the write under way) plus queued bumps. */
  applyTo(slug: Slug, disk: ConversationMeta): ConversationMeta {
    const inflight = this.#inflight.get(slug);
    // Before the write under way has read the disk, its bump is not on disk yet either.
    let meta = inflight === undefined ? disk : (inflight.target ?? applyBump(disk, asMetaBump(inflight.bump)));
    const bump = this.#pending.get(slug);
    if (bump !== undefined) meta = applyBump(meta, asMetaBump(bump));
    return meta;
  }

  /**
   * Takes the queued bumps out and waits until no meta write is under way
   * (one that fails puts its bump back: taken too): what follows supersedes
   * them. Returns them, for `restore` should that fail.
   */
  async settle(slug: Slug): Promise<PendingBump | undefined> {
    this.#failingSince.delete(slug);
    let taken: PendingBump | undefined;
    for (;;) {
      const pending = this.#pending.get(slug);
      this.#pending.delete(slug);
      if (pending !== undefined) taken = taken === undefined ? pending : mergePending(taken, pending);
      const inflight = this.#inflight.get(slug);
      if (inflight === undefined) return taken;
      await inflight.done;
    }
  }

  /** Puts back bumps `settle` took, when what was to supersede them did not happen. */
  restore(slug: Slug, taken: PendingBump | undefined): void {
    if (taken !== undefined) this.add(slug, taken);
  }

  /**
   * Writes every queued bump, a few sessions at a time; `closing`: first wait
   * for writes under way (what follows, a repair, must find them landed and
   * their locks gone), wait for busy locks, report rather than retry.
   */
  async flush(closing: boolean): Promise<void> {
    if (closing) await Promise.all([...this.#inflight.values()].map((write) => write.done));
    const slugs = [...this.#pending.keys()];
    const worker = async () => {
      for (let slug = slugs.pop(); slug !== undefined; slug = slugs.pop()) await this.#flushSession(slug, closing);
    };
    await Promise.all(Array.from({ length: Math.min(MAX_CONCURRENT_FLUSHES, slugs.length) }, worker));
  }

  /** Stops the timer and writes everything queued, waiting for writes under way. */
  async close(): Promise<void> {
    this.#disarm();
    while (this.#pending.size > 0 || this.#inflight.size > 0) {
      await Promise.all([...this.#inflight.values()].map((write) => write.done));
      await this.flush(true);
    }
    this.#disarm();
  }

  #arm(delay: number): void {
    if (this.#timer !== null) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.flush(false);
    }, delay);
  }

  #disarm(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  /**
   * Writes one session's queued bumps. The timer does not wait for a busy
   * lock: the bumps go back to the queue for a later tick.
   */
  async #flushSession(slug: Slug, closing: boolean): Promise<void> {
    await this.#inflight.get(slug)?.done;
    const bump = this.#pending.get(slug);
    if (bump === undefined || this.#inflight.has(slug)) return;
    this.#pending.delete(slug);
    const putBack = (delay: number, why: string) => {
      const failingSince = this.#failingSince.get(slug) ?? Date.now();
      if (Date.now() - failingSince >= GIVE_UP_MS) {
        this.#failingSince.delete(slug);
        this.#logger.warn(`meta bump of ${slug} dropped: ${why} for ${GIVE_UP_MS / 1000} s; repair() recomputes its counters`, { session: slug });
        return;
      }
      this.#failingSince.set(slug, failingSince);
      const since = this.#pending.get(slug);
      this.#pending.set(slug, since === undefined ? bump : mergePending(bump, since));
      this.#arm(delay);
    };
    const entry: Inflight = { bump, target: null, done: Promise.resolve() };
    // Until the write lands, this store's readers see the meta being written (the bump applied).
    this.#inflight.set(slug, entry);
    const finished = () => {
      if (this.#inflight.get(slug) === entry) this.#inflight.delete(slug);
    };
    entry.done = this.#write(slug, bump, closing, (target) => (entry.target = target)).then(
      (written) => {
        finished();
        if (written) this.#failingSince.delete(slug);
        else if (!closing) putBack(FLUSH_DELAY_MS, 'its meta stayed locked');
        else this.#logger.warn(`meta bump of ${slug} not written: its meta stayed locked`, { session: slug });
      },
      (err: unknown) => {
        finished();
        const why = (err as Error).message;
        this.#logger.warn(`meta bump of ${slug} not written: ${why}`, { session: slug });
        // A session gone or unreadable will not become countable by retrying.
        if (!closing && !isStepStoreError(err, 'CORRUPT_META') && !isStepStoreError(err, 'SESSION_NOT_FOUND')) putBack(RETRY_DELAY_MS, why);
        else this.#failingSince.delete(slug);
      },
    );
    await entry.done;
  }
}
