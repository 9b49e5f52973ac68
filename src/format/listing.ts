// How listings order sessions: newest `updated_at` first, then newest
// `created_at`, highest seq, handle; times compared as instants, an
// unparsable one last. And the few first of many in that order, without
// sorting them all.

import type { ListedSession, StoredSession } from './records.js';
import { seqOf } from './slug.js';
import { compareInstants, instantOf } from './time.js';

/** A session read with its meta, as a listing sees it. */
export function listedOf({ slug, meta }: StoredSession): ListedSession {
  return { slug, agent: meta.agent, createdBy: meta.created_by, updated: instantOf(meta.updated_at), created: instantOf(meta.created_at), meta };
}

/** Negative when `a` comes first in a listing. */
export function listingOrder(a: ListedSession, b: ListedSession): number {
  return (
    compareInstants(b.updated, a.updated) ||
    compareInstants(b.created, a.created) ||
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
