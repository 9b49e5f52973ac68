// The records that cross the seam from a backend to the rules: a stored step
// as read back, and a stored session with its meta.

import type { Slug } from './slug.js';
import type { ConversationMeta } from '../types.js';

/** One stored step as read back: its text, or why it could not be read. */
export type RawStep = { step: number; text: string } | { step: number; problem: string };

export interface StoredSession {
  slug: Slug;
  meta: ConversationMeta;
}
