// Listing sessions from the root's index (root-index.ts). A listing that
// returns every session reads every meta. One that returns fewer (a limit)
// need not: over at most CHECK_ALL_MAX sessions it stats each meta and reads
// the ones that changed. A larger one trusts what it knows:
// metas this store or another stepstore process replaced are reported by the
// root's watch (meta.ts touches the session directory), so their new metas are
// read at once; changes by other programs are found by a check of every meta
// that runs in the background, started by such a listing, so they appear in
// the listings that begin after that check.

import type { Stats } from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { ListedSession } from '../../backend.js';
import { listedOf } from '../../format/listing.js';
import { slugOf, type SessionPrefix } from '../../format/slug.js';
import { instantOf } from '../../format/time.js';
import type { FsContext } from './context.js';
import { diskMetaOrSkip, sessionMeta } from './sessions.js';
import { metaPath } from './paths.js';
import { INDEX_SLICE_MS, RACY_MS, currentIndex, type PairEntry } from './root-index.js';

/** A slice of a listing cut by a limit: short, as the caller orders each slice before the next. */
const LIST_SLICE_MS = 2;

/** Listings up to this many sessions check every meta (a few ms of lstat); larger ones trust the watch and the background check. */
export const CHECK_ALL_MAX = 1000;

/**
 * How a listing learns the metas of its sessions: `read` each (every one is
 * returned); `check` each one's signature and read those that changed; or
 * `trust` the cache for those nothing reported changed.
 */
type Mode = 'read' | 'check' | 'trust';

function modeOf(count: number, limit: number): Mode {
  if (limit >= count) return 'read';
  return count > CHECK_ALL_MAX ? 'trust' : 'check';
}

/**
 * One session of a listing, without its meta when the cache knows it
 * unchanged and no bump of this store is pending; else read (and cached when
 * the meta is older than a clock tick and names the pair's agent and sender).
 * Null when it is no session now, or its meta is unreadable (a warning).
 */
function listedSession(ctx: FsContext, prefix: SessionPrefix, pair: PairEntry, seq: number, where: number, mode: Mode): ListedSession | null {
  const slug = slugOf(prefix, seq);
  if (mode === 'read') {
    // A real directory as of this listing's look at the root (the index took in every change before it).
    const meta = sessionMeta(ctx, slug, true);
    return meta === null ? null : listedOf({ slug, meta });
  }
  const { cache } = ctx.rootIndex;
  // Where seq sits in the pair: where the listing found it, unless the pair changed since.
  const at = pair.seqs[where] === seq ? where : pair.seqs.indexOf(seq);
  const slot = at < 0 || pair.slots === null ? -1 : pair.slots[at]!;
  const known = slot >= 0 && cache.known(slot) && !ctx.bumps.holds(slug);
  if (known && mode === 'trust') return cache.listed(slot, slug, pair.agent!, pair.createdBy!);
  const takenAt = Date.now();
  let stat: Stats | null = null;
  try {
    stat = ctx.fs.lstatSync(metaPath(ctx.root, slug));
  } catch {
    // The read below says what is there (missing: no session; else a warning).
  }
  if (known && stat !== null && cache.matches(slot, stat)) return cache.listed(slot, slug, pair.agent!, pair.createdBy!);
  const disk = diskMetaOrSkip(ctx, slug, true);
  if (disk === null) return null;
  const listed = listedOf({ slug, meta: ctx.bumps.applyTo(slug, disk) });
  if (stat !== null && at >= 0 && stat.isFile() && Math.max(stat.mtimeMs, stat.ctimeMs) < takenAt - RACY_MS) {
    if (pair.agent === null) [pair.agent, pair.createdBy] = [disk.agent, disk.created_by];
    if (disk.agent === pair.agent && disk.created_by === pair.createdBy) {
      pair.slots ??= pair.seqs.map(() => -1);
      const own = pair.slots[at]! >= 0 ? pair.slots[at]! : (pair.slots[at] = cache.alloc());
      cache.set(own, stat, instantOf(disk.updated_at), instantOf(disk.created_at));
      // A large listing keeps only what it orders by: the few metas it returns are read again at the end.
      if (mode === 'trust' && !ctx.bumps.holds(slug)) listed.meta = null;
    }
  }
  return listed;
}

/** The sessions whose handles start with `namePrefix`, from the index; see the header and Mode for which metas are read. */
export async function* listSessions(ctx: FsContext, namePrefix: string, limit: number): AsyncGenerator<ListedSession[]> {
  let index = await currentIndex(ctx);
  let pairs = index.matching(namePrefix);
  let count = 0;
  for (const [, pair] of pairs) count += pair.seqs.length;
  const mode = modeOf(count, limit);
  if (mode === 'trust') {
    // Trusting the cache: first hear of every meta other stepstore processes replaced before this call.
    index = await currentIndex(ctx, { drain: true });
    pairs = index.matching(namePrefix);
  }
  // Sessions read in full are only collected by the caller; others are ordered slice by slice: shorter slices.
  const sliceMs = mode === 'read' ? INDEX_SLICE_MS : LIST_SLICE_MS;
  let slice: ListedSession[] = [];
  let since = performance.now();
  for (const [prefix, pair] of pairs) {
    const seqs = pair.seqs.slice();
    for (let i = 0; i < seqs.length; i++) {
      const listed = listedSession(ctx, prefix, pair, seqs[i]!, i, mode);
      if (listed !== null) slice.push(listed);
      if (performance.now() - since >= sliceMs) {
        yield slice;
        slice = [];
        await nextTurn();
        since = performance.now();
      }
    }
  }
  if (slice.length > 0) yield slice;
  if (mode === 'trust') startCheck(ctx);
}

/**
 * Starts a check of every cached meta's signature, unless one runs or the
 * last one ended less than its own duration ago (at most half the time goes
 * to checks). A meta that changed is forgotten: the next listing reads it.
 */
function startCheck(ctx: FsContext): void {
  const index = ctx.rootIndex;
  const now = performance.now();
  if (index.checking || now < index.nextCheckAt) return;
  index.checking = true;
  void checkMetas(ctx)
    .catch((err: unknown) => ctx.logger.warn(`checking the metas of ${ctx.root} failed: ${(err as Error).message}`))
    .finally(() => {
      index.checking = false;
      const end = performance.now();
      index.nextCheckAt = end + (end - now);
    });
}

async function checkMetas(ctx: FsContext): Promise<void> {
  const index = ctx.rootIndex;
  const { cache } = index;
  let since = performance.now();
  for (const [prefix, pair] of [...index.pairs]) {
    const seqs = pair.seqs;
    const slots = pair.slots;
    if (!index.ready) return; // closed, or listed anew (the cache went with it)
    if (slots === null) continue;
    for (let i = 0; i < seqs.length && pair.slots === slots && pair.seqs === seqs; i++) {
      const slot = slots[i]!;
      if (slot < 0 || !cache.known(slot)) continue;
      let stat: Stats | null = null;
      try {
        stat = ctx.fs.lstatSync(metaPath(ctx.root, slugOf(prefix, seqs[i]!)));
      } catch {
        // Gone or unreadable: forgotten below, the next listing finds out which.
      }
      if (stat === null || !cache.matches(slot, stat)) cache.forget(slot);
      if (performance.now() - since >= INDEX_SLICE_MS) {
        await nextTurn();
        since = performance.now();
      }
    }
  }
}
