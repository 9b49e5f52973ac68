// Meta bumps: what an appendMessages call changes in meta (message_count and
// updated_at). Backends may apply bumps later and coalesce them; the rule of
// how two bumps combine, and how one lands on a meta, lives here.

import type { ConversationMeta } from '../types.js';
import { later } from './time.js';

export interface MetaBump {
  /** Messages appended (events and markers never count). */
  messages: number;
  /** When the last of them was appended. */
  at: string;
}

export function mergeBumps(a: MetaBump, b: MetaBump): MetaBump {
  return { messages: a.messages + b.messages, at: later(a.at, b.at) };
}

export function applyBump(meta: ConversationMeta, bump: MetaBump): ConversationMeta {
  return { ...meta, message_count: meta.message_count + bump.messages, updated_at: later(meta.updated_at, bump.at) };
}
