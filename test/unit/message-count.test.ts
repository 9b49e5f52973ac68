// crabtalk's message_count as pure rules: how bumps from appends and
// compactions coalesce in order (a compaction drops what was counted before
// it, and nothing counted after it is lost), and the count of a run of steps.

import { describe, expect, it } from 'vitest';
import { COMPACTION_BUMP, applyBump, countAfter, mergeBumps, type MetaBump } from '../../src/format/bump.js';
import { decodeMeta } from '../../src/format/meta.js';
import type { StepKind } from '../../src/types.js';

const meta = decodeMeta('{"agent":"a","created_by":"b","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-03-25T10:00:00Z","message_count":7}');
const at = (second: number) => `2026-03-25T10:00:${String(second).padStart(2, '0')}Z`;
const messages = (n: number, second: number): MetaBump => ({ messages: n, at: at(second) });

/** The bumps applied one by one, and merged first (in order, any grouping): both must give the same meta. */
function bothWays(bumps: MetaBump[]) {
  const oneByOne = bumps.reduce(applyBump, meta);
  const merged = applyBump(meta, bumps.reduce(mergeBumps));
  const mergedRight = applyBump(meta, bumps.reduceRight((later, earlier) => mergeBumps(earlier, later)));
  expect(merged).toEqual(oneByOne);
  expect(mergedRight).toEqual(oneByOne);
  return oneByOne;
}

describe('message_count bumps', () => {
  it('a compaction restarts the count at 1 and leaves updated_at', () => {
    expect(applyBump(meta, COMPACTION_BUMP)).toEqual({ ...meta, message_count: 1 });
  });

  it('messages before a compaction are dropped, messages after it add to 1, merged or not', () => {
    expect(bothWays([messages(3, 1), COMPACTION_BUMP, messages(2, 2)])).toEqual({ ...meta, message_count: 3, updated_at: at(2) });
    expect(bothWays([messages(3, 1), COMPACTION_BUMP])).toEqual({ ...meta, message_count: 1, updated_at: at(1) });
    expect(bothWays([COMPACTION_BUMP, messages(2, 2), COMPACTION_BUMP, messages(1, 3), messages(4, 4)])).toMatchObject({ message_count: 6 });
    expect(bothWays([messages(1, 1), messages(2, 2)])).toMatchObject({ message_count: 10 });
  });

  it('a merged bump remembers that it compacted, whatever follows', () => {
    expect(mergeBumps(COMPACTION_BUMP, messages(2, 5))).toEqual({ messages: 2, at: at(5), compacted: true });
    expect(mergeBumps(messages(9, 5), COMPACTION_BUMP)).toEqual({ messages: 0, at: at(5), compacted: true });
    expect(mergeBumps(messages(1, 1), messages(2, 2))).toEqual({ messages: 3, at: at(2) });
  });
});

describe('countAfter: the count of a run of steps, oldest first', () => {
  const count = (kinds: StepKind[]) => kinds.reduce(countAfter, 0);

  it('counts every entry while there is no boundary, never events', () => {
    expect(count(['entry', 'event', 'entry', 'entry'])).toBe(3);
  });

  it('after a compact marker: 1 for the summary, then the entries after it', () => {
    expect(count(['entry', 'entry', 'compact'])).toBe(1);
    expect(count(['entry', 'entry', 'compact', 'entry', 'event', 'entry'])).toBe(3);
  });

  it('after a legacy marker: only the entries after it (a resume puts nothing in front)', () => {
    expect(count(['entry', 'legacy-compact'])).toBe(0);
    expect(count(['entry', 'compact', 'entry', 'legacy-compact', 'entry', 'entry'])).toBe(2);
    expect(count(['legacy-compact', 'entry', 'compact', 'entry'])).toBe(2);
  });
});
