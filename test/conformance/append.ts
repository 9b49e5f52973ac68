// Behaviour 4 of the core issue (and the round-trip half of 13): one step per
// item, consecutive numbers in call order, a counter that survives restarts
// and other writers, and items that read back exactly as they were written.

import { describe, expect, it } from 'vitest';
import type { EventLine, HistoryEntry } from 'stepstore';
import type { Harness } from './harness.js';
import { doneEvent, expectCode, steered, toolResult, toolStart, useFixture, userMessage, userMessages } from './fixture.js';

/**
 * Messages a runtime might persist, in crabtalk's content-block shape: unicode
 * of every kind, every block type, and arbitrary JSON (nesting, odd numbers,
 * odd keys) where crabtalk takes any value: a tool_use `input`, an image `source`.
 */
export const TRICKY_ENTRIES: HistoryEntry[] = [
  userMessage('plain'),
  userMessage('émoji 😀👩‍👩‍👧 RTL עברית हिन्दी 日本語 e\u0301'),
  userMessage('controls \u0000 \u0007 \n\t\r and quotes " \\ / and \u2028\u2029'),
  userMessage('surrogate pairs \ud83d\ude00 𝒜 and the last code point \u{10ffff}'),
  {
    agent: 'guest',
    message: {
      role: 'assistant',
      content: [
        { type: 'thinking', thinking: 'let me think 🤔', signature: 'sig==' },
        { type: 'text', text: 'nested' },
        { type: 'tool_use', id: 'c1', name: 'bash', input: { deep: { deeper: [1, [2, [3, { four: null }]]] } } },
      ],
      tool_calls: [{ id: 'c1', name: 'bash', arguments: '{"cmd":"ls -la"}' }],
    },
    extra: { kept: true, list: [] },
  },
  {
    message: {
      role: 'user',
      content: [
        { type: 'tool_result', tool_use_id: 'c1', name: 'bash', content: 'total 0' },
        { type: 'tool_result', tool_use_id: 'c2', content: [{ type: 'text', text: 'blocks inside' }, { type: 'image', source: 'data:,' }] },
        {
          type: 'image',
          source: {
            numbers: [0, 1, -1, 0.1, 1e-7, 1.7976931348623157e308, 5e-324, 9007199254740991, -9007199254740991, 1e21],
            flags: [true, false, null],
            empty: { object: {}, array: [], string: '' },
            '': 'empty key',
            'key with spaces & ünïcode': 1,
          },
        },
      ],
    },
  },
  { message: { role: 'custom role', content: [] } },
];

/** crabtalk's four events, with every optional field and some extra ones (kept, never read). */
export const TRICKY_EVENTS: EventLine[] = [
  { event: 'tool_start', calls: [{ id: 'c1', name: 'bash', arguments: '{}' }, { id: 'c2', name: 'read' }], ts: '2026-03-25T10:00:00.123456789+00:00' },
  { event: 'tool_result', call_id: 'c1', duration_ms: 12, ts: '2026-03-25T10:00:00Z' },
  {
    event: 'done',
    model: 'm',
    iterations: 2,
    stop_reason: 'stop',
    usage: {
      prompt_tokens: 10,
      completion_tokens: 20,
      total_tokens: 4294967295,
      completion_tokens_details: { reasoning_tokens: 5 },
      prompt_cache_hit_tokens: 4,
      prompt_cache_miss_tokens: 6,
    },
    ts: 'x',
  },
  { event: 'user_steered', content: 'stop 🛑 that', ts: '' },
  { event: 'tool_start', calls: [], ts: '', extra: { kept: [1, { two: null }] } },
];

/** Items at the edge of the step shapes: valid, and each reads back as what it was written as. */
const EDGE_ENTRIES: HistoryEntry[] = [
  { message: { role: 'user', content: [] }, archive_name: 'not-a-marker' },
  { message: { role: 'user', content: [] }, archived_at: '2026-01-01T00:00:00Z' },
  { message: { role: 'user', content: [] }, archive_name: 'x', archived_at: 5 },
  { message: { role: 'user', content: [] }, compact: 5 },
  { message: { role: 'user', content: [] }, compact: null },
  { message: { role: 'user', content: [] }, event: 5 },
  { message: { role: 'user', content: [] }, event: null },
  // Not one of crabtalk's events (unknown tag, or a known tag missing fields): with a message, it is history.
  { message: { role: 'user', content: [] }, event: 'note' },
  { message: { role: 'user', content: [] }, event: 'done', model: 'm' },
  { message: { role: '', content: [] } },
];
const EDGE_EVENTS: EventLine[] = [
  { ...steered('beside a non-string compact'), compact: 5 },
  { ...toolResult('c1'), archive_name: 'x' },
  { ...doneEvent(), archive_name: 'x', archived_at: null },
  { ...toolStart('c1'), title: 'not a legacy marker', archived_at: 'without compact' },
];

/** What the 'any' mode stores besides crabtalk's shapes: messages of any shape, events of any tag. */
const ANY_ENTRIES: HistoryEntry[] = [
  { message: { role: 'user', content: 'plain, OpenAI style' } },
  { message: { role: 'user', content: 'émoji 😀👩‍👩‍👧 RTL עברית हिन्दी 日本語 e\u0301' } },
  { message: { role: 'assistant', content: [{ type: 'tool_use', input: { deep: [1, [2]] } }, { type: 'unknown to crabtalk' }] } },
  {
    message: {
      role: 'tool',
      numbers: [0, 1, -1, 0.1, 1e-7, 1.7976931348623157e308, 5e-324, 9007199254740991, -9007199254740991, 1e21],
      flags: [true, false, null],
      empty: { object: {}, array: [], string: '' },
      '': 'empty key',
      'key with spaces & ünïcode': 1,
    },
  },
  { message: {} },
  // With a message, an item that is not one of crabtalk's events is history, in this mode too.
  { event: 'e', message: { role: 'user', content: 'an entry, not an event' } },
  userMessage('crabtalk shapes too'),
];
const ANY_EVENTS: EventLine[] = [
  { event: '' },
  { event: 'note', text: 'any tag', data: { nested: [1, { two: null }] } },
  { event: 'tool_result', call_id: 'c1', duration_ms: 12.5, ts: 'a broken crabtalk event is trace data here' },
  { event: 'e', compact: 5 },
  { event: 'e', archive_name: 'x', archived_at: null },
  doneEvent(),
];

export function appendTests(harness: Harness): void {
  describe('append', () => {
    const t = useFixture(harness);

    it('numbers the items of one call consecutively, in order', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'tg:1');
      expect(await store.appendMessages(handle, [userMessage('a'), userMessage('b'), userMessage('c')])).toEqual([1, 2, 3]);
      expect(await store.appendEvents(handle, [doneEvent('m')])).toEqual([4]);
      const steps = await store.readSteps(handle);
      expect(steps.map((s) => s.step)).toEqual([1, 2, 3, 4]);
      expect(steps.map((s) => s.line)).toEqual([userMessage('a'), userMessage('b'), userMessage('c'), doneEvent('m')]);
    });

    it('messages, events and compact markers share one numbering', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      expect(await store.appendEvents(handle, [toolStart('a'), toolResult('a')])).toEqual([1, 2]);
      expect(await store.appendMessages(handle, [userMessage('m')])).toEqual([3]);
      expect(await store.appendCompact(handle, 'crab-u-1-7')).toBe(4);
      expect(await store.appendMessages(handle, userMessages('n', 3))).toEqual([5, 6, 7]);
      const steps = await store.readSteps(handle);
      expect(steps.map((s) => s.step)).toEqual([1, 2, 3, 4, 5, 6, 7]);
      expect(steps[3]!.line).toMatchObject({ archive_name: 'crab-u-1-7' });
    });

    it('a large batch is numbered in order and each number holds its own item', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      const items = userMessages('big', 300);
      const numbers = await store.appendMessages(handle, items);
      expect(numbers).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
      const steps = await store.readSteps(handle);
      expect(steps.map((s) => s.step)).toEqual(numbers);
      expect(steps.map((s) => s.line)).toEqual(items);
    });

    it('a batch bigger than any internal slice (2,500 items) lands whole, in order, and is counted', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      const items = userMessages('huge', 2500);
      const numbers = await store.appendMessages(handle, items);
      expect(numbers).toEqual(Array.from({ length: 2500 }, (_, i) => i + 1));
      const snapshot = await store.loadSession(handle);
      expect(snapshot!.history).toEqual(items);
      expect(snapshot!.meta.message_count).toBe(2500);
    });

    it('messages round-trip exactly, unicode and nesting included, before and after a restart', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, TRICKY_ENTRIES);
      for (const entry of TRICKY_ENTRIES) await store.appendMessages(handle, [entry]);
      const expected = [...TRICKY_ENTRIES, ...TRICKY_ENTRIES];
      expect((await store.loadSession(handle))!.history).toEqual(expected);
      expect((await store.readSteps(handle)).map((s) => s.line)).toEqual(expected);
      await store.close();
      const restarted = await t.open();
      const reloaded = (await restarted.loadSession(handle))!;
      expect(reloaded.history).toEqual(expected);
      expect(reloaded.history.map((e) => JSON.stringify(e))).toEqual(expected.map((e) => JSON.stringify(e)));
    });

    it('events round-trip exactly and never enter the history', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, [userMessage('before')]);
      expect(await store.appendEvents(handle, TRICKY_EVENTS)).toEqual([2, 3, 4, 5, 6]);
      await store.appendMessages(handle, [userMessage('after')]);
      const restarted = await t.open();
      expect((await restarted.readSteps(handle)).map((s) => s.line)).toEqual([
        userMessage('before'),
        ...TRICKY_EVENTS,
        userMessage('after'),
      ]);
      expect((await restarted.loadSession(handle))!.history).toEqual([userMessage('before'), userMessage('after')]);
    });

    it('an entry for the conversation\'s own agent (agent "") is stored without an agent field', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, [{ agent: '', ...userMessage('x') }]);
      const [step] = await store.readSteps(handle);
      expect(step!.line).toEqual(userMessage('x'));
      expect(Object.keys(step!.line)).toEqual(['message']);
    });

    it('items at the edge of the step shapes read back as the kind they were written as', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, EDGE_ENTRIES);
      await store.appendEvents(handle, EDGE_EVENTS);
      await store.close();
      const restarted = await t.open();
      expect((await restarted.readSteps(handle)).map((s) => s.line)).toEqual([...EDGE_ENTRIES, ...EDGE_EVENTS]);
      const snapshot = (await restarted.loadSession(handle))!;
      expect(snapshot.history).toEqual(EDGE_ENTRIES);
      expect(snapshot.archive).toBeNull();
      expect(snapshot.diagnostics).toEqual([]);
      expect(snapshot.meta.message_count).toBe(EDGE_ENTRIES.length);
    });

    it("with messages: 'any', messages of any shape and events of any tag round-trip exactly, and only messages are history", async () => {
      const store = await t.open({ messages: 'any' });
      const handle = await store.createSession('crab', 'u');
      expect(await store.appendMessages(handle, ANY_ENTRIES)).toEqual(ANY_ENTRIES.map((_, i) => i + 1));
      expect(await store.appendEvents(handle, ANY_EVENTS)).toEqual(ANY_EVENTS.map((_, i) => ANY_ENTRIES.length + i + 1));
      await store.close();
      const restarted = await t.open({ messages: 'any' });
      const steps = await restarted.readSteps(handle);
      expect(steps.map((s) => s.line)).toEqual([...ANY_ENTRIES, ...ANY_EVENTS]);
      expect(steps.map((s) => s.kind)).toEqual([...ANY_ENTRIES.map(() => 'entry'), ...ANY_EVENTS.map(() => 'event')]);
      const snapshot = (await restarted.loadSession(handle))!;
      expect(snapshot.history).toEqual(ANY_ENTRIES);
      expect(snapshot.history.map((e) => JSON.stringify(e))).toEqual(ANY_ENTRIES.map((e) => JSON.stringify(e)));
      expect(snapshot.diagnostics).toEqual([]);
      expect(snapshot.meta.message_count).toBe(ANY_ENTRIES.length);
    });

    it("with messages: 'any', an event never carries a message: appendEvents refuses one, appendMessages stores it as history", async () => {
      const store = await t.open({ messages: 'any' });
      const handle = await store.createSession('crab', 'u');
      const both = { event: 'e', message: { role: 'user', content: 'x' } };
      await expectCode(store.appendEvents(handle, [both]), 'INVALID_ENTRY');
      await expectCode(store.appendEvents(handle, [{ ...doneEvent(), message: { role: 'user', content: 'x' } }]), 'INVALID_ENTRY');
      expect(await store.readSteps(handle)).toEqual([]);
      expect(await store.appendMessages(handle, [both])).toEqual([1]);
      expect((await store.readSteps(handle)).map((s) => [s.kind, s.line])).toEqual([['entry', both]]);
      expect((await store.loadSession(handle))!.history).toEqual([both]);
    });

    it('an empty batch writes nothing and returns no numbers', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      const written = store.stats().stepsWritten;
      expect(await store.appendMessages(handle, [])).toEqual([]);
      expect(await store.appendEvents(handle, [])).toEqual([]);
      expect(store.stats().stepsWritten).toBe(written);
      expect(await store.readSteps(handle)).toEqual([]);
      expect((await store.loadSession(handle))!.meta.message_count).toBe(0);
      expect(await store.appendMessages(handle, [userMessage('first')])).toEqual([1]);
    });

    it('counts every step it writes in stats().stepsWritten', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      const before = store.stats().stepsWritten;
      await store.appendMessages(handle, userMessages('m', 7));
      await store.appendEvents(handle, [doneEvent()]);
      await store.compact(handle, 'summary');
      expect(store.stats().stepsWritten - before).toBe(9);
    });

    it('the counter continues after the highest step when the store restarts', async () => {
      const first = await t.open();
      const handle = await first.createSession('crab', 'u');
      await first.appendMessages(handle, userMessages('a', 12));
      await first.appendEvents(handle, [doneEvent()]);
      await first.appendCompact(handle, 'crab-u-1-1');
      await first.close();
      const second = await t.open();
      expect(await second.appendMessages(handle, [userMessage('next')])).toEqual([15]);
      const third = await t.open();
      expect(await third.appendEvents(handle, [toolStart('x'), toolResult('x')])).toEqual([16, 17]);
      expect((await third.readSteps(handle)).map((s) => s.step)).toEqual(Array.from({ length: 17 }, (_, i) => i + 1));
    });

    it('a store whose cached counter is stale moves past steps another store appended', async () => {
      const a = await t.open();
      const b = await t.open();
      const handle = await a.createSession('crab', 'u');
      expect(await a.appendMessages(handle, [userMessage('a0')])).toEqual([1]);
      expect(await b.appendMessages(handle, [userMessage('b0'), userMessage('b1')])).toEqual([2, 3]);
      expect(await a.appendMessages(handle, [userMessage('a1')])).toEqual([4]);
      expect(await a.appendMessages(handle, [userMessage('a2'), userMessage('a3')])).toEqual([5, 6]);
      expect(await b.appendMessages(handle, [userMessage('b2')])).toEqual([7]);
      expect((await a.readSteps(handle)).map((s) => s.line)).toEqual(
        ['a0', 'b0', 'b1', 'a1', 'a2', 'a3', 'b2'].map(userMessage),
      );
    });

    it('two stores appending to one session at once never share a number or lose a step', async () => {
      const a = await t.open();
      const b = await t.open();
      const handle = await a.createSession('crab', 'u');
      const calls = Array.from({ length: 40 }, (_, i) => {
        const writer = i % 2 === 0 ? a : b;
        const items = userMessages(`call${i}`, (i % 3) + 1);
        return writer.appendMessages(handle, items).then((numbers) => ({ numbers, items }));
      });
      const results = await Promise.all(calls);
      const all = results.flatMap((r) => r.numbers);
      expect(new Set(all).size).toBe(all.length);
      const byStep = new Map((await a.readSteps(handle)).map((s) => [s.step, s.line]));
      expect(byStep.size).toBe(all.length);
      for (const { numbers, items } of results) {
        expect(numbers.map((n) => byStep.get(n))).toEqual(items);
      }
    });
  });
}
