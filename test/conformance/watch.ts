// store.watch(): the steps other processes append reach a watcher in this
// process in order, each once, with their stored text; and every way a watch
// ends is told apart (ended: deleted, rewound, aborted, closed). Child
// processes (test/helpers/worker.mjs, and a watcher script here) write and
// watch the same storage.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { StepRecord, StepWatch } from 'stepstore';
import { runWorker, startWorker, waitForLines } from '../helpers/children.js';
import type { Harness, WorkerStoreSpec } from './harness.js';
import { expectCode, textOf, useFixture, userMessage, userMessages } from './fixture.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

/** Batch sizes summing to 1,000: single steps, batches across 64 (an fs round) and 512 (a Redis read). */
const SIZES = [1, 1, 2, 5, 17, 64, 3, 130, 1, 40, 9, 300, 1, 1, 26, 200, 8, 1, 190];

/** Iterates `watch` in the background until `until` says stop (then breaks) or the watch ends. */
function collect(watch: StepWatch, until: (records: StepRecord[]) => boolean = () => false): Promise<StepRecord[]> {
  return (async () => {
    const records: StepRecord[] = [];
    for await (const record of watch) {
      records.push(record);
      if (until(records)) break;
    }
    return records;
  })();
}

/** Resolves with `promise`, or rejects after `ms`: a watch that should have ended never hangs the suite. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still running after ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once `test` holds (checked every few ms); wrap it in within(). */
async function waitFor(test: () => boolean): Promise<void> {
  while (!test()) await sleep(5);
}

/**
 * A watcher in a process of its own: prints `{ ready: cursor }` once watching, aborts its
 * signal at the first step it gets, prints `{ ended, steps }`, and (on Redis, whose store
 * connection lives until closed) closes its store; then it must exit by itself.
 */
const WATCHER_SCRIPT = `
const { spec, handle } = JSON.parse(process.argv[1]);
const logger = { warn() {} };
const store = spec.kind === 'fs'
  ? (await import('stepstore')).openStore({ dir: spec.dir, durability: spec.durability, logger })
  : (await import('./test/helpers/redis-spec.mjs')).openRedisFromSpec(spec, logger);
const opened = await store;
const controller = new AbortController();
const watch = await opened.watch(handle, { signal: controller.signal });
process.stdout.write(JSON.stringify({ ready: watch.cursor }) + '\\n');
const steps = [];
for await (const record of watch) {
  steps.push(record.step);
  controller.abort();
}
process.stdout.write(JSON.stringify({ ended: watch.ended, steps }) + '\\n');
if (spec.kind !== 'fs') await (await import('./test/helpers/redis-spec.mjs')).closeRedisFromSpec(opened);
`;

function startWatcher(spec: WorkerStoreSpec, handle: string) {
  const child = spawn(process.execPath, ['--input-type=module', '-e', WATCHER_SCRIPT, JSON.stringify({ spec, handle })], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  let pending = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk;
    for (let newline; (newline = pending.indexOf('\n')) >= 0; pending = pending.slice(newline + 1)) {
      lines.push(JSON.parse(pending.slice(0, newline)) as Record<string, unknown>);
    }
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  return { child, lines, exited, stderr: () => stderr };
}

export function watchTests(harness: Harness): void {
  describe('watching a session', () => {
    const t = useFixture(harness);

    it('gets exactly the 1,000 steps another process appends in batches of varied sizes, in order, once each, with their stored texts', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'watch');
      await store.appendMessages(handle, userMessages('before', 5));
      const watch = await store.watch(handle);
      expect(watch.cursor).toBe(5);
      expect(watch.ended).toBeNull();
      // Breaks at the last step the writer will append: anything after it, or any repeat, shows below.
      const collected = collect(watch, (records) => records.at(-1)!.step >= 1005);
      const lines = (await runWorker(t.fixture.workerSpec(), { name: 'append-sizes', handle, tag: 'w', sizes: SIZES })) as { steps: number[] }[];
      expect(lines.flatMap((line) => line.steps)).toEqual(Array.from({ length: 1000 }, (_, i) => 6 + i));
      const records = await within(collected, 30_000, 'the watcher');
      expect(records.map((r) => r.step)).toEqual(Array.from({ length: 1000 }, (_, i) => 6 + i));
      expect(records).toEqual(await store.readSteps(handle, { after: 5 }));
      expect(records.filter((r) => r.kind === 'event')).toHaveLength(SIZES.filter((_, i) => i % 3 === 2).reduce((a, b) => a + b, 0));
      const first = records[0]!.line as { message: Record<string, unknown> };
      expect(textOf(first)).toBe('w:0:0 ');
      expect(watch.ended).toBe('aborted'); // the consumer broke out
      expect(watch.cursor).toBe(1005);
    });

    it('reads a burst of 3,000 steps without holding the event loop', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'watch');
      for (let i = 0; i < 3; i++) await store.appendMessages(handle, userMessages(`burst${i}`, 1000));
      const watch = await store.watch(handle, { after: 0 });
      let last = performance.now();
      let longest = 0;
      const ticker = setInterval(() => {
        const now = performance.now();
        longest = Math.max(longest, now - last);
        last = now;
      }, 1);
      try {
        const records = await within(collect(watch, (r) => r.length === 3000), 30_000, 'the watcher');
        expect(records.map((r) => r.step)).toEqual(Array.from({ length: 3000 }, (_, i) => i + 1));
      } finally {
        clearInterval(ticker);
      }
      expect(longest).toBeLessThan(250);
    });

    it('starts after the highest step at the call, and after `after` when given', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'watch');
      await store.appendMessages(handle, userMessages('old', 10));
      const fromEnd = await store.watch(handle);
      const fromFour = await store.watch(handle, { after: 4 });
      expect([fromEnd.cursor, fromFour.cursor]).toEqual([10, 4]);
      const tail = collect(fromEnd, (r) => r.length === 2);
      const older = collect(fromFour, (r) => r.length === 8);
      await store.appendMessages(handle, [userMessage('new 1'), userMessage('new 2')]);
      const [newOnes, all] = await within(Promise.all([tail, older]), 10_000, 'the watchers');
      expect(newOnes.map((r) => textOf(r.line as { message: Record<string, unknown> }))).toEqual(['new 1', 'new 2']);
      expect(all.map((r) => r.step)).toEqual([5, 6, 7, 8, 9, 10, 11, 12]);
    });

    it('ends as deleted when another process deletes the session, having yielded what landed before', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'watch');
      const watch = await store.watch(handle);
      const collected = collect(watch);
      await store.appendMessages(handle, [userMessage('last words')]);
      await runWorker(t.fixture.workerSpec(), { name: 'delete', handle });
      const records = await within(collected, 10_000, 'the watcher');
      expect(watch.ended).toBe('deleted');
      // The step may be read before the delete, or not at all: never after it.
      expect(records.map((r) => r.step)).toEqual(records.length === 0 ? [] : [1]);
    });

    it('a watch of a session without steps ends as deleted too', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'watch');
      const watch = await store.watch(handle);
      const collected = collect(watch);
      await sleep(20);
      await runWorker(t.fixture.workerSpec(), { name: 'delete', handle });
      expect(await within(collected, 10_000, 'the watcher')).toEqual([]);
      expect(watch.ended).toBe('deleted');
    });

    it('ends as aborted when the signal aborts while it waits, and yields nothing after', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'watch');
      const controller = new AbortController();
      const watch = await store.watch(handle, { signal: controller.signal });
      const collected = collect(watch);
      await sleep(50);
      controller.abort();
      expect(await within(collected, 5_000, 'the aborted watcher')).toEqual([]);
      expect(watch.ended).toBe('aborted');
      await store.appendMessages(handle, [userMessage('too late')]);
      expect(await collect(watch)).toEqual([]);
    });

    it('ends as aborted at once when the signal aborts mid-burst, or had aborted before it began', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'watch');
      await store.appendMessages(handle, userMessages('m', 50));
      const controller = new AbortController();
      const watch = await store.watch(handle, { after: 0, signal: controller.signal });
      const records = await collect(watch, (r) => {
        if (r.length === 3) controller.abort();
        return false;
      });
      expect(records.map((r) => r.step)).toEqual([1, 2, 3]);
      expect(watch.ended).toBe('aborted');
      const early = await store.watch(handle, { signal: AbortSignal.abort() });
      expect(await collect(early)).toEqual([]);
      expect(early.ended).toBe('aborted');
    });

    it('an aborted watch in another process leaves nothing that keeps that process alive', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'watch');
      const watcher = startWatcher(t.fixture.workerSpec(), handle);
      const ready = within(
        (async () => {
          while (watcher.lines.length === 0 && watcher.child.exitCode === null) await sleep(5);
        })(),
        15_000,
        'the watcher process starting',
      );
      await ready;
      expect(watcher.lines[0]).toEqual({ ready: 0 });
      // The watcher has no timer of its own: waiting here, only its watch keeps it alive.
      await sleep(300);
      expect(watcher.child.exitCode).toBeNull();
      await store.appendMessages(handle, [userMessage('wake up')]);
      const exit = await within(watcher.exited, 10_000, 'the aborted watcher process');
      expect({ ...exit, stderr: watcher.stderr() }).toEqual({ code: 0, signal: null, stderr: '' });
      expect(watcher.lines[1]).toEqual({ ended: 'aborted', steps: [1] });
    });

    it('ends open watches as closed when its store closes', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'watch');
      const watches = [await store.watch(handle), await store.watch(handle, { after: 0 })];
      const collected = watches.map((watch) => collect(watch));
      await sleep(30);
      await store.close();
      await within(Promise.all(collected), 5_000, 'the watchers of a closed store');
      expect(watches.map((watch) => watch.ended)).toEqual(['closed', 'closed']);
      await expectCode(store.watch(handle), 'STORE_CLOSED');
    });

    it('ends as rewound when steps it passed are retracted, and not when only later ones are', async () => {
      const store = await t.open();
      const other = await t.open();
      const handle = await store.createSession('crab', 'watch');
      await store.appendMessages(handle, userMessages('m', 10));
      // A watch reads only while iterated: these changes all land before it first looks.
      const watch = await store.watch(handle);
      await other.appendMessages(handle, userMessages('later', 3));
      expect(await other.rewind(handle, 10)).toBe(3);
      await other.appendMessages(handle, [userMessage('after the rewind to 10')]);
      const records: StepRecord[] = [];
      const done = (async () => {
        for await (const record of watch) records.push(record);
      })();
      // Step 10, its cursor, stayed: the steps above it that went were never passed, and the new 11 is yielded.
      await within(waitFor(() => records.length === 1), 10_000, 'the watcher');
      expect(records[0]!.step).toBe(11);
      expect(textOf(records[0]!.line as { message: Record<string, unknown> })).toBe('after the rewind to 10');
      expect(watch.ended).toBeNull();
      // Steps 6..11, 11 passed, are retracted, and new ones take their numbers: the watch ends, yielding none of them.
      expect(await other.rewind(handle, 5)).toBe(6);
      await other.appendMessages(handle, userMessages('rewritten', 8));
      await within(done, 10_000, 'the watcher');
      expect(records).toHaveLength(1);
      expect(watch.ended).toBe('rewound');
      expect(watch.cursor).toBe(11);
      // A cursor above the session's highest step names steps already retracted.
      await other.rewind(handle, 3);
      const stale = await store.watch(handle, { after: 7 });
      expect(await within(collect(stale), 5_000, 'the stale watcher')).toEqual([]);
      expect(stale.ended).toBe('rewound');
    });

    it('skips unreadable steps with a warning, as readSteps does', async () => {
      const warnings: Record<string, unknown>[] = [];
      const store = await t.open({ logger: { warn: (_message, detail) => void warnings.push(detail ?? {}) } });
      const loose = await t.open({ messages: 'any' });
      const handle = await store.createSession('crab', 'watch');
      const watch = await store.watch(handle);
      const collected = collect(watch, (r) => r.length === 2);
      await store.appendMessages(handle, [userMessage('one')]);
      await loose.appendMessages(handle, [{ message: { role: 'user', content: 'a plain string crabtalk does not read' } }]);
      await store.appendMessages(handle, [userMessage('three')]);
      const records = await within(collected, 10_000, 'the watcher');
      expect(records.map((r) => r.step)).toEqual([1, 3]);
      expect(warnings).toEqual([expect.objectContaining({ session: handle, step: 2 })]);
      expect(watch.cursor).toBe(3);
    });

    it('refuses a missing session, a bad handle and bad options before watching', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'watch');
      await expectCode(store.watch('crab_watch_2'), 'SESSION_NOT_FOUND');
      await expectCode(store.watch('not a handle'), 'INVALID_HANDLE');
      for (const options of [{ after: -1 }, { after: 1.5 }, { after: '3' }, { signal: 'stop' }, { signal: {} }, 'after'] as unknown[]) {
        await expectCode(store.watch(handle, options as { after?: number }), 'INVALID_OPTION');
      }
      await store.deleteSession(handle);
      await expectCode(store.watch(handle), 'SESSION_NOT_FOUND');
    });

    it('two watchers of one session in one store, and one in another store, each get every step', async () => {
      const store = await t.open();
      const elsewhere = await t.open();
      const handle = await store.createSession('crab', 'watch');
      const watches: StepWatch[] = [await store.watch(handle), await store.watch(handle), await elsewhere.watch(handle)];
      const collected = watches.map((watch) => collect(watch, (r) => r.length === 40));
      const writer = startWorker(t.fixture.workerSpec(), { name: 'append', handle, tag: 'solo', count: 40 });
      await waitForLines(writer, 40);
      const results = await within(Promise.all(collected), 20_000, 'the watchers');
      for (const records of results) expect(records.map((r) => r.step)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      expect((await writer.exited).code).toBe(0);
    });
  });
}
