// Meta bumps: what an append or a compaction changes in meta (message_count
// and updated_at), and crabtalk's rule for message_count. Backends may apply
// bumps later and coalesce them; how two bumps combine, and how one lands on
// a meta, lives here.
//
// message_count is the length of the live conversation, as crabtalk writes
// it: every history entry while there is no boundary; after a compact marker,
// 1 (the summary message a resume puts in front) plus the entries after it;
// after a legacy marker (inline summary), only the entries after it.

import type { ConversationMeta, MessageMode, StepKind } from '../types.js';
import type { RawStep } from './records.js';
import { classifyStep, isBoundary } from './step-line.js';
import { later } from './time.js';

export interface MetaBump {
  /** History entries appended (after the compaction, when `compacted`); events and markers never count. */
  messages: number;
  /** When the last of them was appended; `''` when none was (updated_at stays). */
  at: string;
  /** A compaction came first: the count restarts at 1 (the summary) before `messages` are added. */
  compacted?: boolean;
}

/** What compact() and appendCompact() change: the count restarts at 1; updated_at stays. */
export const COMPACTION_BUMP: MetaBump = { messages: 0, at: '', compacted: true };

/** `a` then `b`: counts add up, unless `b` compacted, which drops what `a` counted. */
export function mergeBumps(a: MetaBump, b: MetaBump): MetaBump {
  const at = later(a.at, b.at);
  if (b.compacted === true) return { messages: b.messages, at, compacted: true };
  const merged: MetaBump = { messages: a.messages + b.messages, at };
  if (a.compacted === true) merged.compacted = true;
  return merged;
}

export function applyBump(meta: ConversationMeta, bump: MetaBump): ConversationMeta {
  const base = bump.compacted === true ? 1 : meta.message_count;
  return { ...meta, message_count: base + bump.messages, updated_at: later(meta.updated_at, bump.at) };
}

/** The message_count after a step of `kind`, given the count before it (steps taken oldest first). */
export function countAfter(count: number, kind: StepKind): number {
  switch (kind) {
    case 'entry':
      return count + 1;
    case 'compact':
      return 1;
    case 'legacy-compact':
      return 0;
    case 'event':
      return count;
  }
}

/**
 * message_count of the conversation whose steps arrive newest first: read
 * no further back than its last boundary. Unreadable steps count for
 * nothing, as load skips them.
 */
export async function liveCount(newestFirst: AsyncIterable<RawStep[]>, mode: MessageMode): Promise<number> {
  const kinds: StepKind[] = [];
  scan: for await (const slice of newestFirst) {
    for (const raw of slice) {
      if ('problem' in raw) continue;
      const { kind } = classifyStep(raw.text, mode);
      if (kind === null) continue;
      kinds.push(kind);
      if (isBoundary(kind)) break scan;
    }
  }
  return kinds.reduceRight(countAfter, 0);
}
