// Torture part 9, the soak: 8 processes run a mixed workload (create,
// append batches of messages and events to their own sessions and to one
// session they all share, compact, load, list, readSteps, findLatest, delete
// their own sessions, read everyone's) on one root (or key prefix), fs and
// Redis side by side. Invariant: every acknowledged step of a session not
// deleted is there, byte-identical; every deleted session stays gone;
// listing shows exactly the sessions created and not deleted; every
// message_count equals the messages stored; repair() afterwards finds
// nothing to fix; the only errors are the expected ones; and each process's
// memory is flat: after a GC at the end, its heap at most HEAP_BOUND and its
// RSS at most RSS_BOUND above what they were after the warm-up.
//
// Expected errors: SESSION_NOT_FOUND from readSteps of another process's
// session that it deleted meanwhile (reads pick any listed session). Appends,
// compactions and deletes touch only the worker's own sessions and the
// shared one, so any error there is a finding.

import { describe, it } from 'vitest';
import { liveCount } from '../conformance/fixture.js';
import type { Fixture, Harness } from '../conformance/harness.js';
import { startWorker } from '../helpers/children.js';
import { fsHarness } from '../helpers/fs-harness.js';
import { REDIS_URL, redisHarness, withRedis } from '../helpers/redis-harness.js';
import { Ledger, checkLedger, recordingLogger } from './lib/ledger.js';
import { SCALE, report } from './summary.js';

const PROCESSES = 8;
const forcedMs = Number(process.env.TORTURE_SOAK_MS);
const SOAK_MS = Number.isSafeInteger(forcedMs) && forcedMs > 0 ? forcedMs : SCALE === 'full' ? 120_000 : 10_000;
const WARMUP_MS = Math.min(Math.max(2_000, SOAK_MS * 0.15), 20_000);
const MiB = 1024 * 1024;
// "Flat": the JS heap after a full GC (where a leak of the store's own objects
// shows) grows by at most HEAP_BOUND; RSS, which also catches native leaks
// but moves by tens of MiB with malloc arenas and socket buffers alone (seen
// here: -15 to +35 MiB over 2 minutes with a flat heap), by at most RSS_BOUND.
const HEAP_BOUND = 16 * MiB;
const RSS_BOUND = 64 * MiB;
const EXPECTED_ERRORS = new Set(['read-any SESSION_NOT_FOUND']);

const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;

interface MemoryLine {
  memory: 'start' | 'end';
  rss: number;
  heapUsed: number;
  gc: boolean;
}

function soak(backend: 'fs' | 'redis', harness: Harness): void {
  it(`${PROCESSES} processes x ${SOAK_MS / 1000} s of mixed load on ${backend}: nothing acknowledged lost, only expected errors, memory flat`, async ({
    expect,
  }) => {
    const fixture: Fixture = await harness.fixture();
    try {
      const spec = fixture.workerSpec();
      const setup = await fixture.open();
      const shared = await setup.createSession('crab', 'everyone');
      await setup.close();

      const workers = Array.from({ length: PROCESSES }, (_, w) =>
        startWorker(
          spec,
          {
            name: 'mixed',
            tag: `w${w}`,
            agent: 'crab',
            sender: `user ${w}`,
            sharedHandle: shared,
            durationMs: SOAK_MS,
            warmupMs: WARMUP_MS,
            maxOwn: 6,
            maxBatch: 4,
            pad: 200,
          },
          { nodeArgs: ['--expose-gc'] },
        ),
      );
      const ledger = new Ledger();
      ledger.sessions.add(shared);
      const counts: Record<string, number> = {};
      const memory: { start: MemoryLine; end: MemoryLine }[] = [];
      for (const [w, worker] of workers.entries()) {
        const { code, stderr } = await worker.exited;
        expect(code, `worker ${w} exited cleanly: ${stderr}`).toBe(0);
        ledger.absorb(`worker ${w}`, worker.lines);
        const done = worker.lines.find((line) => line.done === true) as { counts: Record<string, number> } | undefined;
        expect(done, `worker ${w} finished its run`).toBeDefined();
        for (const [op, n] of Object.entries(done!.counts)) counts[op] = (counts[op] ?? 0) + n;
        const start = worker.lines.find((line) => line.memory === 'start') as unknown as MemoryLine;
        const end = worker.lines.find((line) => line.memory === 'end') as unknown as MemoryLine;
        memory.push({ start, end });
      }
      expect(ledger.doubles, 'no step acknowledged twice').toEqual([]);

      const logger = recordingLogger();
      const store = await fixture.open({ logger });
      const { checked, lost } = await checkLedger(store, ledger, spec.kind === 'fs' ? spec.dir : null);

      const unexpected = ledger.errors.filter((e) => !EXPECTED_ERRORS.has(`${e.op} ${e.error}`));
      const expectedCount = ledger.errors.length - unexpected.length;
      const growth = memory.map(({ start, end }) => end.rss - start.rss);
      const heapGrowth = memory.map(({ start, end }) => end.heapUsed - start.heapUsed);
      const first = memory[0]!;
      report({
        part: `9. soak (${backend})`,
        invariant:
          'under mixed load from 8 processes no acknowledged step is lost, deleted sessions stay gone, counters stay exact, only expected errors occur, memory stays flat',
        tried:
          `${PROCESSES} processes x ${SOAK_MS / 1000} s: ${Object.values(counts).reduce((a, b) => a + b, 0)} operations ` +
          `(${Object.entries(counts)
            .map(([op, n]) => `${n} ${op}`)
            .join(', ')}); ${checked} acknowledged writes checked`,
        iterations: PROCESSES,
        faults: 0,
        lost: lost.length,
        notes:
          `worker 0: RSS ${mib(first.start.rss)} after warm-up, ${mib(first.end.rss)} at the end, heap after GC ${mib(first.start.heapUsed)} -> ${mib(first.end.heapUsed)}; ` +
          `largest growth of the ${PROCESSES}: RSS ${mib(Math.max(...growth))} (bound ${mib(RSS_BOUND)}), heap ${mib(Math.max(...heapGrowth))} (bound ${mib(HEAP_BOUND)}); ` +
          `${expectedCount} expected errors (SESSION_NOT_FOUND reading a session another process deleted), ${unexpected.length} unexpected; ` +
          `${ledger.handlesReused} handles given out again after their session was deleted`,
      });

      expect(lost, 'acknowledged writes lost').toEqual([]);
      expect(unexpected.map((e) => `${e.worker} ${e.op}: ${e.error} ${e.message}`), 'unexpected errors').toEqual([]);
      for (const [w, { start, end }] of memory.entries()) {
        expect(start.gc && end.gc, 'workers run with --expose-gc').toBe(true);
        expect(end.heapUsed - start.heapUsed, `worker ${w}: heap after GC ${mib(start.heapUsed)} -> ${mib(end.heapUsed)}`).toBeLessThanOrEqual(
          HEAP_BOUND,
        );
        expect(end.rss - start.rss, `worker ${w}: RSS ${mib(start.rss)} -> ${mib(end.rss)}`).toBeLessThanOrEqual(RSS_BOUND);
      }

      // Deleted sessions stay gone; the listing is exactly what was created and not deleted.
      for (const handle of ledger.deleted) expect(await store.loadSession(handle), `${handle} was deleted`).toBeNull();
      const alive = [...ledger.sessions].filter((handle) => !ledger.deleted.has(handle)).sort();
      const listed = await store.listSessions();
      expect(listed.map((s) => s.handle).sort()).toEqual(alive);
      // Every process closed its store, so every bump is written: the counters are exactly crabtalk's (the live conversation).
      for (const { handle, meta } of listed) {
        expect(meta.message_count, `message_count of ${handle}`).toBe(liveCount(await store.readSteps(handle)));
        expect((await store.loadSession(handle))!.diagnostics).toEqual([]);
      }
      const repaired = await store.repair();
      const { sessions, dryRun, ...lists } = repaired;
      expect(sessions).toBe(alive.length);
      for (const [name, list] of Object.entries(lists)) expect(list, `repair after the soak: ${name}`).toEqual([]);
      expect(logger.warnings).toEqual([]);
      await store.close();
    } finally {
      await fixture.dispose();
    }
  }, SOAK_MS + 180_000);
}

// fs and Redis side by side: each has its 8 processes for the whole duration.
describe.concurrent('torture 9: soak', async () => {
  soak('fs', fsHarness('full'));
  await withRedis('the Redis soak', () => soak('redis', redisHarness(REDIS_URL)));
});
