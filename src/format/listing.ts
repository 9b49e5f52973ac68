// How listings order sessions: newest `updated_at` first, then newest
// `created_at`, highest seq, handle; times compared as instants, an
// unparsable one last. And the few first of many in that order, without
// sorting them all.

import type { ListedSession, StoredSession } from './records.js';
import { seqOf } from './slug.js';
import { instantOf } from './time.js';

/** A session read with its meta, as a listing sees it (created_at parsed only when an order needs it). */
export function listedOf({ slug, meta }: StoredSession): ListedSession {
  const updated = instantOf(meta.updated_at);
  return {
    slug,
    agent: meta.agent,
    createdBy: meta.created_by,
    updatedSeconds: updated?.seconds ?? Number.NaN,
    updatedNanos: updated?.nanos ?? 0,
    meta,
  };
}

/** Fills in the created instant of a session listed with its meta. */
function withCreated(session: ListedSession): ListedSession {
  if (session.createdSeconds === undefined) {
    const created = session.meta === null ? null : instantOf(session.meta.created_at);
    session.createdSeconds = created?.seconds ?? Number.NaN;
    session.createdNanos = created?.nanos ?? 0;
  }
  return session;
}

/** As compareInstants, on instants in numbers (NaN seconds: unparsable, first). */
function compareSplit(aSeconds: number, aNanos: number, bSeconds: number, bNanos: number): number {
  const aBad = Number.isNaN(aSeconds);
  const bBad = Number.isNaN(bSeconds);
  if (aBad || bBad) return (aBad ? 0 : 1) - (bBad ? 0 : 1);
  return aSeconds - bSeconds || aNanos - bNanos;
}

/** Negative when `a` comes first in a listing. */
export function listingOrder(a: ListedSession, b: ListedSession): number {
  const byUpdated = compareSplit(b.updatedSeconds, b.updatedNanos, a.updatedSeconds, a.updatedNanos);
  if (byUpdated !== 0) return byUpdated;
  withCreated(a);
  withCreated(b);
  return (
    compareSplit(b.createdSeconds!, b.createdNanos!, a.createdSeconds!, a.createdNanos!) ||
    seqOf(b.slug) - seqOf(a.slug) ||
    (a.slug < b.slug ? -1 : a.slug > b.slug ? 1 : 0)
  );
}

/** The first `count` of `sessions` in listing order, in that order. */
export function firstInOrder(sessions: ListedSession[], count: number): ListedSession[] {
  if (count >= sessions.length / 4) return sessions.slice().sort(listingOrder).slice(0, count);
  const top: ListedSession[] = [];
  for (const session of sessions) {
    if (top.length === count && listingOrder(session, top[count - 1]!) >= 0) continue;
    let low = 0;
    let high = top.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (listingOrder(top[mid]!, session) <= 0) low = mid + 1;
      else high = mid;
    }
    top.splice(low, 0, session);
    if (top.length > count) top.pop();
  }
  return top;
}
