// The records that cross the seam from a backend to the rules: a stored step
// as read back, a stored session with its meta, and a session as a listing sees it.

import type { Slug } from './slug.js';
import type { ConversationMeta } from '../types.js';

/** One stored step as read back: its text, or why it could not be read. */
export type RawStep = { step: number; text: string } | { step: number; problem: string };

export interface StoredSession {
  slug: Slug;
  meta: ConversationMeta;
}

/**
 * A session as a listing sees it: what list filters and orders by, and its
 * meta when the backend read it; null when the backend knows the meta
 * unchanged since it last read it (read it with readMeta when wanted).
 */
export interface ListedSession {
  slug: Slug;
  agent: string;
  createdBy: string;
  /** updated_at and created_at as instants (time.ts), in plain numbers: seconds NaN when unparsable. */
  updatedSeconds: number;
  updatedNanos: number;
  /** Absent until an order needs it (two sessions updated at the same instant): then read from meta. */
  createdSeconds?: number;
  createdNanos?: number;
  meta: ConversationMeta | null;
}
