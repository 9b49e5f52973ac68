// Bounded load (replay after the last boundary; crabtalk's defect of reading every step):
// a 20,000-step session whose last compact marker is 100 steps from the end
// is loaded by reading only its tail, counted by stats().stepsRead.

import { describe, expect, it } from 'vitest';
import type { Harness } from './harness.js';
import { useFixture, userMessage, userMessages } from './fixture.js';

export function largeTests(harness: Harness): void {
  describe('a long session', () => {
    const t = useFixture(harness);

    it('loads a 20,000-step session with a marker 100 steps from the end by reading only the tail', async () => {
      const writer = await t.open();
      const handle = await writer.createSession('crab', 'u');
      for (let start = 0; start < 19_900; start += 500) {
        const count = Math.min(500, 19_900 - start);
        const numbers = await writer.appendMessages(handle, userMessages(`old${start}`, count));
        expect(numbers[0]).toBe(start + 1);
      }
      expect(await writer.appendCompact(handle, 'crab-u-1-1')).toBe(19_901);
      const tail = Array.from({ length: 99 }, (_, i) => userMessage(`live ${i}`));
      expect(await writer.appendMessages(handle, tail)).toEqual(Array.from({ length: 99 }, (_, i) => 19_902 + i));
      await writer.close();

      const reader = await t.open();
      const before = reader.stats().stepsRead;
      const snapshot = (await reader.loadSession(handle))!;
      const read = reader.stats().stepsRead - before;
      expect(snapshot.history).toEqual(tail);
      expect(snapshot.archive).toBe('crab-u-1-1');
      expect(snapshot.diagnostics).toEqual([]);
      // crabtalk's count of the live conversation: the summary the marker stands for, then the tail.
      expect(snapshot.meta.message_count).toBe(1 + 99);
      expect(read).toBeGreaterThanOrEqual(100);
      expect(read).toBeLessThan(400);

      const again = reader.stats().stepsRead;
      expect((await reader.readSteps(handle, { after: 19_900 })).map((s) => s.step)).toEqual(
        Array.from({ length: 100 }, (_, i) => 19_901 + i),
      );
      expect(reader.stats().stepsRead - again).toBeLessThan(400);
    });
  });
}
