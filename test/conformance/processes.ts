// The multi-process part of behaviours 3 and 4 of the core issue, with real
// child processes (test/helpers/worker.mjs) on the same storage: concurrent
// writers never share a step number or a seq, a writer killed with SIGKILL
// never loses or tears a step it acknowledged, and a delete racing a create
// never lets a handle name two conversations.

import { describe, expect, it } from 'vitest';
import type { HistoryEntry } from 'stepstore';
import { runWorkers, startWorker, waitForLines } from '../helpers/children.js';
import type { Harness } from './harness.js';
import { expectCode, textOf, useFixture, userMessage } from './fixture.js';

const WRITERS = 8;

export function processTests(harness: Harness): void {
  describe('several processes', () => {
    const t = useFixture(harness);

    it('a delete racing a create in other processes never gives the deleted handle to the new conversation, nor takes its archive or steps', async () => {
      const store = await t.open();
      const spec = t.fixture.workerSpec();
      let reused = 0;
      for (let round = 0; round < 8; round++) {
        // The newest session of the pair, with enough steps that deleting it takes a moment; this store has appended to it.
        const old = await store.createSession('crab', 'race');
        for (let i = 0; i < 4; i++) await store.appendMessages(old, Array.from({ length: 50 }, (_, j) => userMessage(`old ${i}:${j}`)));
        await store.compact(old, 'old summary');
        const [[deleted], [made]] = (await runWorkers(spec, [
          { name: 'delete', handle: old },
          { name: 'create-compact', agent: 'crab', sender: 'race', tag: `new${round}` },
        ])) as [[{ deleted: boolean }], [{ handle: string; steps: number[]; archive: string }]];
        expect(deleted!.deleted).toBe(true);
        if (made!.handle === old) reused += 1;
        // The new conversation keeps its own steps and archive, whatever the delete did.
        const reader = await t.open();
        expect(await reader.getArchive(made!.archive)).toBe(`new${round} summary`);
        const snapshot = await reader.loadSession(made!.handle, { withArchive: true });
        expect(snapshot!.archiveContent).toBe(`new${round} summary`);
        expect((await reader.readSteps(made!.handle)).map((s) => s.step)).toEqual([...made!.steps, made!.steps.at(-1)! + 1]);
        // This store's handle to the deleted conversation stays stale: nothing lands in another one.
        await expectCode(store.appendMessages(old, [userMessage('stale')]), 'SESSION_NOT_FOUND');
        expect((await reader.readSteps(made!.handle)).length).toBe(4);
      }
      expect(reused).toBe(0);
    });

    it('8 processes appending 150 messages each to one session leave 1,200 distinct steps, each writer in its own order', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      const spec = t.fixture.workerSpec();
      const outputs = await runWorkers(
        spec,
        Array.from({ length: WRITERS }, (_, w) => ({ name: 'append', handle, tag: `w${w}`, count: 150 }) as const),
      );
      const acked = outputs.flat() as { i: number; step: number; content: string }[];
      expect(acked).toHaveLength(1200);
      expect(new Set(acked.map((a) => a.step)).size).toBe(1200);

      const reader = await t.open();
      const steps = await reader.readSteps(handle);
      expect(steps).toHaveLength(1200);
      const byStep = new Map(steps.map((s) => [s.step, s.line]));
      for (const { step, content } of acked) expect(byStep.get(step)).toEqual(userMessage(content));

      const snapshot = (await reader.loadSession(handle))!;
      expect(snapshot.diagnostics).toEqual([]);
      expect(snapshot.history).toHaveLength(1200);
      for (const [w, lines] of outputs.entries()) {
        const mine = snapshot.history
          .map((entry) => textOf(entry))
          .filter((content) => content.startsWith(`w${w}:`));
        expect(mine).toEqual(Array.from({ length: 150 }, (_, i) => `w${w}:${i}`));
        const numbers = (lines as { step: number }[]).map((l) => l.step);
        expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
      }
      expect(await reader.appendMessages(handle, [userMessage('after')])).toEqual([1201]);
    });

    it('message_count counts every message appended by concurrent processes', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      const spec = t.fixture.workerSpec();
      await runWorkers(
        spec,
        Array.from({ length: WRITERS }, (_, w) => ({ name: 'append', handle, tag: `w${w}`, count: 60 }) as const),
      );
      const reader = await t.open();
      expect((await reader.loadSession(handle))!.meta.message_count).toBe(WRITERS * 60);
    });

    it('8 processes creating 100 sessions each for one pair get 800 distinct seqs', async () => {
      const spec = t.fixture.workerSpec();
      const outputs = await runWorkers(
        spec,
        Array.from({ length: WRITERS }, () => ({ name: 'create', agent: 'crab', sender: 'tg:1', count: 100 }) as const),
      );
      const handles = outputs.flat().map((line) => line.handle as string);
      expect(handles).toHaveLength(800);
      expect(new Set(handles).size).toBe(800);
      const seqs = handles.map((h) => Number(h.slice('crab_tg-1_'.length))).sort((a, b) => a - b);
      expect(seqs).toEqual(Array.from({ length: 800 }, (_, i) => i + 1));
      const store = await t.open();
      const listed = await store.listSessions({ agent: 'crab', createdBy: 'tg:1' });
      expect(listed.map((s) => s.handle).sort()).toEqual([...handles].sort());
      for (const { meta } of listed) expect(meta.message_count).toBe(0);
      expect(await store.findLatestSession('crab', 'tg:1')).toBe('crab_tg-1_800');
      expect(await store.createSession('crab', 'tg:1')).toBe('crab_tg-1_801');
    });

    it('a writer killed with SIGKILL mid-append, 50 times over, never loses or tears an acknowledged step', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      const spec = t.fixture.workerSpec();
      const acked = new Map<number, HistoryEntry>();
      // Two lanes of 25 rounds each, so a kill also lands while another writer is mid-append.
      const lane = async (name: string) => {
        for (let round = 0; round < 25; round++) {
          const tag = `${name}${round}`;
          const worker = startWorker(spec, { name: 'append-batches', handle, tag, count: null, maxBatch: 4, pad: 3000 });
          await waitForLines(worker, 1 + Math.floor(Math.random() * 4));
          worker.child.kill('SIGKILL');
          const { code, signal, stderr } = await worker.exited;
          expect(signal, `exit code ${code}: ${stderr}`).toBe('SIGKILL');
          for (const line of worker.lines as { steps: number[]; items: HistoryEntry[] }[]) {
            for (const [j, step] of line.steps.entries()) {
              expect(acked.has(step), `step ${step} acknowledged twice`).toBe(false);
              acked.set(step, line.items[j]!);
            }
          }
        }
      };
      // allSettled: a failing lane must not leave the other one spawning writers after the fixture is gone.
      const lanes = await Promise.allSettled([lane('a'), lane('b')]);
      for (const result of lanes) if (result.status === 'rejected') throw result.reason;
      expect(acked.size).toBeGreaterThanOrEqual(50);

      const reader = await t.open();
      const steps = new Map((await reader.readSteps(handle)).map((s) => [s.step, s.line]));
      for (const [step, item] of acked) {
        expect(steps.has(step), `acknowledged step ${step} is present`).toBe(true);
        expect(JSON.stringify(steps.get(step))).toBe(JSON.stringify(item));
      }
      const snapshot = (await reader.loadSession(handle))!;
      expect(snapshot.diagnostics).toEqual([]);
      expect(snapshot.history.length).toBe(steps.size);
      const highest = Math.max(...steps.keys());
      const [next] = await reader.appendMessages(handle, [userMessage('after the crashes')]);
      expect(next).toBeGreaterThan(highest);
      expect((await reader.loadSession(handle))!.history.at(-1)).toEqual(userMessage('after the crashes'));
    });
  });
}
