// The sessions root as this store knows it: which session directories exist,
// per (agent, sender) prefix, so find, create and pair lists cost what one
// pair holds, not what the root holds (crabtalk's layout puts every session
// side by side). Built from one listing read in slices, then kept current by
// a watch of the root (inotify): every name it reports is checked again.
// Before a lookup answers, the root's mtime is compared with the one the index
// was last complete at. When it moved, or was read too close to a change to
// be trusted (changes within one clock tick leave it as it was: git's "racily
// clean"), the watch's events are drained first: the kernel queued each one
// before the change that caused it returned. Without a watch, a moved mtime
// means a new listing.

import type { Dirent } from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { ioError } from '../../errors.js';
import { prefixOf, seqOf, toSlug, type SessionPrefix, type Slug } from '../../format/slug.js';
import type { Logger } from '../../types.js';
import { kindOf, type FsLayer } from './durable.js';
import { ListCache } from './list-cache.js';
import { entryPath } from './paths.js';

/** Longest run of index work between two turns of the event loop. */
export const INDEX_SLICE_MS = 4;

/**
 * A root mtime read less than this after it was set may hide a later change
 * in the same clock tick (Linux file times tick at most every 10 ms).
 */
export const RACY_MS = 50;

/** Names reported and not yet checked beyond which the next lookup lists the root instead. */
const MAX_PENDING = 20_000;

/** The sessions of one prefix. */
export interface PairEntry {
  /** Seqs of the real directories named prefix + seq; ascending when `sorted`. */
  seqs: number[];
  /** The list cache's slot of each seq (-1: none), aligned with seqs; null until a listing caches one. */
  slots: number[] | null;
  sorted: boolean;
  /** The names every cached meta of this pair holds; a session naming others is never cached. */
  agent: string | null;
  createdBy: string | null;
}

function newPair(): PairEntry {
  return { seqs: [], slots: null, sorted: true, agent: null, createdBy: null };
}

interface RootMark {
  ino: number;
  mtimeMs: number;
}

/** What a lookup needs of the backend's context. */
export interface IndexHost {
  root: string;
  fs: FsLayer;
  logger: Logger;
  rootIndex: RootIndex;
}

export class RootIndex {
  pairs = new Map<SessionPrefix, PairEntry>();
  readonly cache = new ListCache();
  /** Built, and not invalidated since. */
  ready = false;
  /** The root as it was when the index was last known complete. */
  mark: RootMark | null = null;
  /** The mark's mtime was too recent to rule out a change it does not show. */
  racy = true;
  /** Names the watch reported that are not checked yet. */
  readonly pending = new Set<string>();
  /** Events the watch delivered, all told; and how many had been when the mark was read. */
  eventsSeen = 0;
  eventsAtMark = 0;
  /** The watch reported a change without its name. */
  unknownChange = false;
  watcher: { close(): void } | null = null;
  /** Watching failed once (it was reported); lookups then list the root on every change. */
  watchFailed = false;
  refreshing: Promise<void> | null = null;
  /** A check of the cached metas runs (listing.ts); the next may start at nextCheckAt (performance.now()). */
  checking = false;
  nextCheckAt = 0;

  /** A directory named `slug` exists: made by this store, or reported by the watch. */
  add(slug: Slug): void {
    if (!this.ready) return; // the listing under way, or the next one, finds it
    const prefix = prefixOf(slug);
    const seq = seqOf(slug);
    let pair = this.pairs.get(prefix);
    if (pair === undefined) {
      pair = newPair();
      this.pairs.set(prefix, pair);
    }
    const known = pair.seqs.indexOf(seq);
    if (known >= 0) {
      // A directory reported again: its meta may have been replaced (meta.ts touches it then).
      if (pair.slots !== null) this.cache.forget(pair.slots[known]!);
      return;
    }
    if (pair.seqs.length > 0 && seq < pair.seqs[pair.seqs.length - 1]!) pair.sorted = false;
    pair.seqs.push(seq);
    pair.slots?.push(-1);
  }

  /** The directory named `slug` is gone. */
  remove(slug: Slug): void {
    const prefix = prefixOf(slug);
    const pair = this.pairs.get(prefix);
    if (pair === undefined) return;
    const at = pair.seqs.indexOf(seqOf(slug));
    if (at < 0) return;
    pair.seqs.splice(at, 1);
    if (pair.slots !== null) this.cache.release(pair.slots.splice(at, 1)[0]!);
    if (pair.seqs.length === 0) this.pairs.delete(prefix);
  }

  /** The seqs of `prefix`, ascending (a copy). */
  seqsOf(prefix: SessionPrefix): number[] {
    const pair = this.pairs.get(prefix);
    if (pair === undefined) return [];
    sortPair(pair);
    return pair.seqs.slice();
  }

  /** The pairs whose prefix starts with `namePrefix`: one lookup for a whole `{agent}_{sender}_`. */
  matching(namePrefix: string): [SessionPrefix, PairEntry][] {
    if (/^[^_]*_[^_]*_$/.test(namePrefix)) {
      const pair = this.pairs.get(namePrefix as SessionPrefix);
      return pair === undefined ? [] : [[namePrefix as SessionPrefix, pair]];
    }
    const found: [SessionPrefix, PairEntry][] = [];
    for (const entry of this.pairs) if (entry[0].startsWith(namePrefix)) found.push(entry);
    return found;
  }

  close(): void {
    this.watcher?.close();
    this.watcher = null;
    this.ready = false;
  }
}

function sortPair(pair: PairEntry): void {
  if (pair.sorted) return;
  const order = pair.seqs.map((_, i) => i).sort((a, b) => pair.seqs[a]! - pair.seqs[b]!);
  const { seqs, slots } = pair;
  pair.seqs = order.map((i) => seqs[i]!);
  if (slots !== null) pair.slots = order.map((i) => slots[i]!);
  pair.sorted = true;
}

/**
 * The index, complete for every change to the root that finished before this
 * call began. Costs one lstat of the root while nothing changed; after a
 * change, two turns of the event loop and one lstat per reported name; a full
 * listing only the first time, when the root was replaced, or when the watch
 * is missing or missed a change. `drain`: also take in every session
 * directory touched before the call (a meta replaced: meta.ts), which leaves
 * the root's mtime as it was.
 */
export async function currentIndex(host: IndexHost, opts: { drain?: boolean } = {}): Promise<RootIndex> {
  const index = host.rootIndex;
  for (;;) {
    // A refresh under way may have read the root before this call began: wait for it, then look again.
    if (index.refreshing !== null) {
      await index.refreshing.catch(() => undefined);
      continue;
    }
    const eventsBefore = index.eventsSeen;
    const takenAt = Date.now();
    const root = statRoot(host);
    const unchanged = index.ready && !index.racy && sameMark(index.mark, root) && !index.unknownChange;
    if (unchanged && index.pending.size === 0 && opts.drain !== true) return index;
    const run = refresh(host, index, root, takenAt, eventsBefore, opts.drain === true);
    index.refreshing = run;
    try {
      await run;
    } finally {
      if (index.refreshing === run) index.refreshing = null;
    }
    return index;
  }
}

function statRoot(host: IndexHost): RootMark {
  try {
    const stat = host.fs.lstatSync(host.root);
    return { ino: stat.ino, mtimeMs: stat.mtimeMs };
  } catch (err) {
    throw ioError(err, `reading ${host.root}`);
  }
}

function sameMark(mark: RootMark | null, root: RootMark): boolean {
  return mark !== null && mark.ino === root.ino && mark.mtimeMs === root.mtimeMs;
}

async function refresh(host: IndexHost, index: RootIndex, root: RootMark, takenAt: number, eventsBefore: number, drain: boolean): Promise<void> {
  const moved = !sameMark(index.mark, root);
  if (!index.ready || index.unknownChange || index.mark?.ino !== root.ino || (moved && index.watcher === null)) {
    await rebuild(host, index);
    return;
  }
  if (moved || index.racy || drain) {
    // Every change that finished before `root` was read has its event queued by now; two turns deliver them.
    await nextTurn();
    await nextTurn();
    // The root changed and the watch saw nothing: it misses changes here (a network filesystem).
    if (moved && index.eventsSeen === index.eventsAtMark && index.pending.size === 0) {
      host.logger.warn(`the watch of ${host.root} missed a change: listing it again`);
      await rebuild(host, index);
      return;
    }
  }
  await applyPending(host, index);
  if (index.unknownChange) {
    await rebuild(host, index);
    return;
  }
  index.mark = root;
  index.racy = root.mtimeMs >= takenAt - RACY_MS;
  index.eventsAtMark = eventsBefore;
}

/** Checks each name the watch reported (those known now; later ones wait for the next lookup). */
async function applyPending(host: IndexHost, index: RootIndex): Promise<void> {
  const names = [...index.pending];
  index.pending.clear();
  let since = performance.now();
  for (const name of names) {
    const slug = toSlug(name);
    if (slug !== null) {
      let kind: ReturnType<typeof kindOf>;
      try {
        kind = kindOf(host.fs, entryPath(host.root, name));
      } catch (err) {
        for (const left of names.slice(names.indexOf(name))) index.pending.add(left);
        throw ioError(err, `reading ${host.root}`);
      }
      if (kind === 'dir') index.add(slug);
      else index.remove(slug);
    }
    if (performance.now() - since >= INDEX_SLICE_MS) {
      await nextTurn();
      since = performance.now();
    }
  }
}

function startWatch(host: IndexHost, index: RootIndex): void {
  if (index.watcher !== null || index.watchFailed) return;
  try {
    index.watcher = host.fs.watch(
      host.root,
      (name) => {
        index.eventsSeen += 1;
        if (name !== null && index.pending.size < MAX_PENDING) index.pending.add(name);
        else if (!index.unknownChange) {
          // Unnamed, or more than are worth checking one by one (nothing looked the index up for a while).
          index.unknownChange = true;
          index.pending.clear();
        }
      },
      (err) => {
        host.logger.warn(`the watch of ${host.root} stopped (${err.message}): the root will be listed again`);
        index.watcher?.close();
        index.watcher = null;
        index.ready = false;
      },
    );
  } catch (err) {
    index.watchFailed = true;
    host.logger.warn(`cannot watch ${host.root} (${(err as Error).message}): lookups list the whole root after each change to it`);
  }
}

/** A directory entry whose type the listing did not give (d_type unknown on some filesystems). */
function typeUnknown(entry: Dirent): boolean {
  return !entry.isFile() && !entry.isDirectory() && !entry.isSymbolicLink() && !entry.isFIFO() && !entry.isSocket() &&
    !entry.isCharacterDevice() && !entry.isBlockDevice();
}

/** Lists the whole root, a batch of entries at a time, never holding the event loop more than a slice. */
async function rebuild(host: IndexHost, index: RootIndex): Promise<void> {
  index.ready = false;
  startWatch(host, index); // first: whatever changes while the listing runs is reported, then checked
  index.pending.clear();
  index.unknownChange = false;
  const eventsBefore = index.eventsSeen;
  const takenAt = Date.now();
  const root = statRoot(host);
  const pairs = new Map<SessionPrefix, PairEntry>();
  try {
    const dir = await host.fs.opendir(host.root);
    let since = performance.now();
    for await (const entry of dir) {
      const slug = toSlug(entry.name);
      if (slug !== null && (entry.isDirectory() || (typeUnknown(entry) && kindOf(host.fs, entryPath(host.root, entry.name)) === 'dir'))) {
        const prefix = prefixOf(slug);
        const seq = seqOf(slug);
        let pair = pairs.get(prefix);
        if (pair === undefined) pairs.set(prefix, (pair = newPair()));
        // Names in one listing are unique: no check for a seq already there.
        if (pair.seqs.length > 0 && seq < pair.seqs[pair.seqs.length - 1]!) pair.sorted = false;
        pair.seqs.push(seq);
      }
      if (performance.now() - since >= INDEX_SLICE_MS) {
        await nextTurn();
        since = performance.now();
      }
    }
  } catch (err) {
    throw ioError(err, `listing ${host.root}`);
  }
  index.cache.clear();
  index.pairs = pairs;
  index.mark = root;
  index.racy = root.mtimeMs >= takenAt - RACY_MS;
  index.eventsAtMark = eventsBefore;
  index.ready = true;
  await applyPending(host, index);
}
