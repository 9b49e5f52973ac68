// Behaviour 6 of the core issue over the public API: history is the entries
// after the last compact boundary, events never in it, a missing session is
// null; readSteps pages through the raw steps, events and pre-compact steps
// included. (Unparsable and oddly named steps can only be planted on a real
// backend: see test/backends/fs-format.test.ts.)

import { describe, expect, it } from 'vitest';
import type { Harness } from './harness.js';
import { doneEvent, expectCode, steered, toolResult, toolStart, useFixture, userMessage, userMessages } from './fixture.js';

export function loadTests(harness: Harness): void {
  describe('load', () => {
    const t = useFixture(harness);

    it('returns null for a session that was never created', async () => {
      const store = await t.open();
      expect(await store.loadSession('crab_nobody_1')).toBeNull();
      expect(await store.loadSession('crab_nobody_1', { withArchive: true })).toBeNull();
    });

    it('with no boundary, the history is every entry in step order and events are left out', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, [userMessage('1')]);
      await store.appendEvents(handle, [toolStart('c1')]);
      await store.appendMessages(handle, [userMessage('2'), userMessage('3')]);
      await store.appendEvents(handle, [toolResult('c1', 7), doneEvent()]);
      const snapshot = (await store.loadSession(handle))!;
      expect(snapshot.history).toEqual(['1', '2', '3'].map(userMessage));
      expect(snapshot.archive).toBeNull();
      expect(snapshot.diagnostics).toEqual([]);
      expect(snapshot.archiveContent).toBeUndefined();
    });

    it('steps gives the step number of each history entry, events and boundaries skipped, also with { last }', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, [userMessage('1')]);
      await store.appendEvents(handle, [toolStart('c1')]);
      await store.appendCompact(handle, 'crab-u-1-1');
      await store.appendMessages(handle, [userMessage('2'), userMessage('3')]);
      await store.appendEvents(handle, [doneEvent()]);
      await store.appendMessages(handle, [userMessage('4')]);
      const restarted = await t.open();
      for (const s of [store, restarted]) {
        const snapshot = (await s.loadSession(handle))!;
        expect(snapshot.history).toEqual(['2', '3', '4'].map(userMessage));
        expect(snapshot.steps).toEqual([4, 5, 7]);
        const tail = (await s.loadSession(handle, { last: 2 }))!;
        expect(tail.history).toEqual(['3', '4'].map(userMessage));
        expect(tail.steps).toEqual([5, 7]);
      }
      // The numbers are what rewind takes: back to just before entry '3'.
      await store.rewind(handle, 4);
      const rewound = (await store.loadSession(handle))!;
      expect(rewound.history).toEqual([userMessage('2')]);
      expect(rewound.steps).toEqual([4]);
    });

    it('history starts after the last of several compact markers, and archive names that marker', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, userMessages('first', 3));
      await store.appendCompact(handle, 'crab-u-1-1');
      await store.appendMessages(handle, userMessages('second', 2));
      await store.appendEvents(handle, [steered('between')]);
      await store.appendCompact(handle, 'crab-u-1-2');
      await store.appendEvents(handle, [steered('after')]);
      await store.appendMessages(handle, userMessages('third', 2));
      const restarted = await t.open();
      for (const s of [store, restarted]) {
        const snapshot = (await s.loadSession(handle))!;
        expect(snapshot.history).toEqual(userMessages('third', 2));
        expect(snapshot.archive).toBe('crab-u-1-2');
        expect(snapshot.diagnostics).toEqual([]);
      }
    });

    it('a marker as the very last step leaves an empty history', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, userMessages('old', 4));
      const name = await store.compact(handle, 'all of it');
      const snapshot = (await store.loadSession(handle))!;
      expect(snapshot.history).toEqual([]);
      expect(snapshot.archive).toBe(name);
      // crabtalk's count of the live conversation: the summary it resumes with.
      expect(snapshot.meta.message_count).toBe(1);
    });

    it('loadSession does not count events or markers as messages, and reads its meta', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendEvents(handle, [doneEvent()]);
      await store.appendMessages(handle, [userMessage('m')]);
      const snapshot = (await store.loadSession(handle))!;
      expect(snapshot.meta).toMatchObject({ agent: 'crab', created_by: 'u', message_count: 1 });
    });
  });

  describe('readSteps', () => {
    const t = useFixture(harness);

    it('returns every step, events and pre-compact steps included, oldest first', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, [userMessage('a')]);
      await store.appendEvents(handle, [doneEvent()]);
      const archive = await store.compact(handle, 'sum');
      await store.appendMessages(handle, [userMessage('b')]);
      const steps = await store.readSteps(handle);
      expect(steps.map((s) => s.step)).toEqual([1, 2, 3, 4]);
      expect(steps[0]!.line).toEqual(userMessage('a'));
      expect(steps[1]!.line).toEqual(doneEvent());
      expect(steps[2]!.line).toEqual({ archive_name: archive, archived_at: expect.any(String) });
      expect(Number.isNaN(Date.parse((steps[2]!.line as { archived_at: string }).archived_at))).toBe(false);
      expect(steps[3]!.line).toEqual(userMessage('b'));
    });

    it('pages with after and limit, and the pages put together are the whole session', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, userMessages('m', 23));
      await store.appendEvents(handle, [toolStart('c1'), toolResult('c1')]);
      const whole = await store.readSteps(handle);
      expect(whole).toHaveLength(25);
      const pages: number[][] = [];
      let after = 0;
      for (;;) {
        const page = await store.readSteps(handle, { after, limit: 4 });
        if (page.length === 0) break;
        expect(page.length).toBeLessThanOrEqual(4);
        pages.push(page.map((s) => s.step));
        after = page[page.length - 1]!.step;
      }
      expect(pages).toHaveLength(7);
      expect(pages.flat()).toEqual(whole.map((s) => s.step));
      expect(await store.readSteps(handle, { after: 20 })).toEqual(whole.slice(20));
      expect(await store.readSteps(handle, { after: 25 })).toEqual([]);
      expect(await store.readSteps(handle, { after: 1000 })).toEqual([]);
      expect(await store.readSteps(handle, { limit: 1 })).toEqual(whole.slice(0, 1));
      expect(await store.readSteps(handle, { after: 0, limit: 100 })).toEqual(whole);
    });

    it('counts the steps it reads in stats().stepsRead and reads no more than the page', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, userMessages('m', 300));
      const before = store.stats().stepsRead;
      const page = await store.readSteps(handle, { after: 290, limit: 5 });
      expect(page.map((s) => s.step)).toEqual([291, 292, 293, 294, 295]);
      const read = store.stats().stepsRead - before;
      expect(read).toBeGreaterThanOrEqual(5);
      expect(read).toBeLessThan(100);
    });

    it('an empty session has no steps', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      expect(await store.readSteps(handle)).toEqual([]);
    });

    it('fails SESSION_NOT_FOUND for a session that does not exist', async () => {
      const store = await t.open();
      await expectCode(store.readSteps('crab_nobody_1'), 'SESSION_NOT_FOUND');
    });

    const BAD_CURSORS: [string, Record<string, unknown>][] = [
      ['a negative after', { after: -1 }],
      ['a fractional after', { after: 1.5 }],
      ['a string after', { after: '1' }],
      ['a NaN after', { after: Number.NaN }],
      ['an infinite after', { after: Number.POSITIVE_INFINITY }],
      ['a null after', { after: null }],
      ['a zero limit', { limit: 0 }],
      ['a negative limit', { limit: -3 }],
      ['a fractional limit', { limit: 2.5 }],
      ['a string limit', { limit: '3' }],
    ];

    it.each(BAD_CURSORS)('refuses %s with INVALID_OPTION', async (_, cursor) => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, [userMessage('m')]);
      await expectCode(store.readSteps(handle, cursor as { after?: number; limit?: number }), 'INVALID_OPTION');
    });
  });
}
