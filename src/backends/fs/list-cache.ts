// What listings remember of the metas they read, so a listing of the whole
// root stats each meta instead of reading it: per session, the meta file's
// signature (inode, size, mtime, ctime) and what a listing sorts by, in
// columns of numbers (64 bytes a session). A signature that still matches,
// taken when the meta was older than a clock tick, stands for the same meta.

import type { Stats } from 'node:fs';
import type { ListedSession } from '../../format/records.js';
import type { Slug } from '../../format/slug.js';
import type { Instant } from '../../format/time.js';

const FIELDS = 8;
const [INO, SIZE, MTIME, CTIME, UPDATED_S, UPDATED_NS, CREATED_S, CREATED_NS] = [0, 1, 2, 3, 4, 5, 6, 7];

export class ListCache {
  #data = new Float64Array(FIELDS * 1024);
  #free: number[] = [];
  #next = 0;

  /** A fresh slot. */
  alloc(): number {
    const slot = this.#free.pop() ?? this.#next++;
    if ((slot + 1) * FIELDS > this.#data.length) {
      const grown = new Float64Array(this.#data.length * 2);
      grown.set(this.#data);
      this.#data = grown;
    }
    return slot;
  }

  /** Gives a slot back; -1 (no slot) is ignored. */
  release(slot: number): void {
    if (slot >= 0) this.#free.push(slot);
  }

  clear(): void {
    this.#data = new Float64Array(FIELDS * 1024);
    this.#free = [];
    this.#next = 0;
  }

  /** The meta of `slot` may have changed: read it again before trusting it. */
  forget(slot: number): void {
    if (slot >= 0) this.#data[slot * FIELDS + INO] = Number.NaN;
  }

  /** The meta of `slot` was read and not forgotten since. */
  known(slot: number): boolean {
    return !Number.isNaN(this.#data[slot * FIELDS + INO]!);
  }

  /** The meta of `slot` is the one `stat` describes. */
  matches(slot: number, stat: Stats): boolean {
    const at = slot * FIELDS;
    const d = this.#data;
    return d[at + INO] === stat.ino && d[at + SIZE] === stat.size && d[at + MTIME] === stat.mtimeMs && d[at + CTIME] === stat.ctimeMs;
  }

  set(slot: number, stat: Stats, updated: Instant | null, created: Instant | null): void {
    const at = slot * FIELDS;
    const d = this.#data;
    d[at + INO] = stat.ino;
    d[at + SIZE] = stat.size;
    d[at + MTIME] = stat.mtimeMs;
    d[at + CTIME] = stat.ctimeMs;
    d[at + UPDATED_S] = updated === null ? Number.NaN : updated.seconds;
    d[at + UPDATED_NS] = updated === null ? 0 : updated.nanos;
    d[at + CREATED_S] = created === null ? Number.NaN : created.seconds;
    d[at + CREATED_NS] = created === null ? 0 : created.nanos;
  }

  /** The session of `slot` as a listing sees it, from what was cached (its meta not given). */
  listed(slot: number, slug: Slug, agent: string, createdBy: string): ListedSession {
    const at = slot * FIELDS;
    const d = this.#data;
    return {
      slug,
      agent,
      createdBy,
      updatedSeconds: d[at + UPDATED_S]!,
      updatedNanos: d[at + UPDATED_NS]!,
      createdSeconds: d[at + CREATED_S]!,
      createdNanos: d[at + CREATED_NS]!,
      meta: null,
    };
  }
}
