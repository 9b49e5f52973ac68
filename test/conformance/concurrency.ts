// Behaviour 14 of the core issue: inside one process, writes to one session
// are serialised in call order (each call's items contiguous), while
// different sessions proceed side by side without mixing.

import { describe, expect, it } from 'vitest';
import type { Harness } from './harness.js';
import { doneEvent, toolStart, useFixture, userMessage, userMessages } from './fixture.js';

export function concurrencyTests(harness: Harness): void {
  describe('concurrency in one process', () => {
    const t = useFixture(harness);

    it('50 concurrent single appends to one session get 50 distinct consecutive numbers in call order', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => store.appendMessages(handle, [userMessage(`m${i}`)])),
      );
      expect(results.flat()).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      const steps = await store.readSteps(handle);
      expect(steps.map((s) => s.line)).toEqual(Array.from({ length: 50 }, (_, i) => userMessage(`m${i}`)));
      expect((await store.loadSession(handle))!.meta.message_count).toBe(50);
    });

    it('concurrent batches each get a contiguous run of numbers, in call order', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      const sizes = Array.from({ length: 50 }, (_, i) => (i * 7) % 5 + 1);
      const results = await Promise.all(
        sizes.map((size, i) =>
          i % 3 === 0
            ? store.appendEvents(handle, Array.from({ length: size }, (_, j) => ({ ...toolStart(`c${i}`), j })))
            : store.appendMessages(handle, userMessages(`c${i}`, size)),
        ),
      );
      let next = 1;
      for (const [i, numbers] of results.entries()) {
        expect(numbers).toEqual(Array.from({ length: sizes[i]! }, (_, j) => next + j));
        next += sizes[i]!;
      }
      const steps = await store.readSteps(handle);
      expect(steps.map((s) => s.step)).toEqual(Array.from({ length: next - 1 }, (_, i) => i + 1));
      for (const [i, numbers] of results.entries()) {
        for (const [j, n] of numbers.entries()) {
          expect(steps[n - 1]!.line).toEqual(i % 3 === 0 ? { ...toolStart(`c${i}`), j } : userMessage(`c${i}:${j}`));
        }
      }
    });

    it('appends, compactions, meta updates and reads on one session interleave in call order', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      const meta = (await store.loadSession(handle))!.meta;
      const ops = [
        store.appendMessages(handle, userMessages('a', 2)),
        store.compact(handle, 'first summary'),
        store.appendMessages(handle, userMessages('b', 2)),
        store.updateMeta(handle, { ...meta, title: 'mid-way', message_count: 10 }),
        store.appendEvents(handle, [doneEvent()]),
        store.appendMessages(handle, userMessages('c', 1)),
      ];
      const [a, name, b, , e, c] = await Promise.all(ops);
      expect([a, b, e, c]).toEqual([[1, 2], [4, 5], [6], [7]]);
      const snapshot = (await store.loadSession(handle, { withArchive: true }))!;
      expect(snapshot.archive).toBe(name);
      expect(snapshot.archiveContent).toBe('first summary');
      expect(snapshot.history).toEqual([...userMessages('b', 2), ...userMessages('c', 1)]);
      expect(snapshot.meta.title).toBe('mid-way');
      expect(snapshot.meta.message_count).toBe(11);
    });

    it('sessions written side by side each keep their own numbering and content', async () => {
      const store = await t.open();
      const handles = await Promise.all(Array.from({ length: 12 }, (_, i) => store.createSession('crab', `u${i}`)));
      await Promise.all(
        handles.flatMap((handle, s) =>
          Array.from({ length: 15 }, (_, i) => store.appendMessages(handle, [userMessage(`s${s}:${i}`)])),
        ),
      );
      for (const [s, handle] of handles.entries()) {
        const steps = await store.readSteps(handle);
        expect(steps.map((x) => x.step)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
        expect(steps.map((x) => x.line)).toEqual(Array.from({ length: 15 }, (_, i) => userMessage(`s${s}:${i}`)));
        expect((await store.loadSession(handle))!.meta.message_count).toBe(15);
      }
    });

    it('a failing call does not stop the calls queued after it', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      const results = await Promise.allSettled([
        store.appendMessages(handle, [userMessage('1')]),
        store.appendMessages(handle, [{ message: 'bad' } as never]),
        store.compact('crab_nobody_1', 'x'),
        store.appendMessages(handle, [userMessage('2')]),
      ]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
      expect((results[3] as PromiseFulfilledResult<number[]>).value).toEqual([2]);
    });
  });
}
