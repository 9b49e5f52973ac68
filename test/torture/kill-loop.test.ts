// Torture part 1, the kill loop (fs and Redis). Each iteration runs 4
// processes appending to shared sessions, 1 creating sessions and 1
// compacting, and on one more pair (hermit, tg:7) 1 churner that deletes the
// newest session and creates the next (appending to it, compacting it now and
// then), while the 4 appenders send a share of their ops (appends, now and
// then a compact) to handles of that pair, often stale ones; all on one root
// (or key prefix), SIGKILLed at random moments. Invariant, checked after
// every iteration with a fresh store: every acknowledged step exists and is
// byte-identical, every acknowledged session and archive is there; a handle
// names one conversation forever: no handle is handed out twice, every
// acknowledged step is found exactly once, in the conversation it was
// acknowledged for (and is gone once that one is deleted), nothing is
// acknowledged for a handle whose delete was acknowledged before the call
// began (stale handles get SESSION_NOT_FOUND), archives of live sessions read
// back and those of deleted ones read as null, and every conversation-tagged
// step, archive and loaded history sits in its own conversation
// (test/torture/lib/ledger.ts, checkLedger exact); no visible step or meta is
// torn (load reports no diagnostics, nothing is skipped with a warning); load
// and list never throw; every session still accepts an append; repair() (once
// while the writers run, once after) loses nothing, and leftover temp files
// are ignored by readers and cleaned by repair (at once when their writer is
// dead, after the grace period otherwise).
//
// The root (prefix) is kept for EPOCH iterations, so kills land on sessions
// with history; at the end of each epoch "time passes" (fs: every mtime is
// set 10 minutes back) and repair must then leave no leftover and exact
// message counters, and a second repair must find nothing to do.

import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Store } from 'stepstore';
import type { Fixture, Harness } from '../conformance/harness.js';
import { startWorker, type Worker, type WorkerTask } from '../helpers/children.js';
import { fsHarness } from '../helpers/fs-harness.js';
import { REDIS_URL, describeWithRedis, redisHarness } from '../helpers/redis-harness.js';
import { Ledger, age, checkLedger, isLeftover, randomInt, recordingLogger, sleep, walk } from './lib/ledger.js';
import { SCALE, iterations, report } from './summary.js';
import { liveCount, userMessage } from '../conformance/fixture.js';

// The CI slice is kept small (each iteration starts 7 processes: ~1 s on fs, ~2 s on Redis here).
const ITERATIONS = iterations(12, 200);
const EPOCH = SCALE === 'full' ? 10 : 6;
const APPENDERS = 4;
const AGENT = 'crab';
/** The pair whose newest session the churner deletes and re-creates while the appenders write to its handles, stale ones too. */
const CHURN_AGENT = 'hermit';
const CHURN_SENDER = 'tg:7';
const CHURN_PREFIX = 'hermit_tg-7_';
/** The share of the appenders' ops that go to the churn pair. */
const PAIR_SHARE = 0.3;
const PROCESSES = APPENDERS + 3;
const INVARIANT =
  'every acknowledged step, session and archive survives SIGKILL byte-identical; a handle names one conversation: none is handed out twice, every acknowledged step is found exactly once in its own conversation and is gone with it, stale handles are refused, archives live and die with their session; nothing visible is torn; load/list never throw; every session accepts appends; repair() loses nothing and cleans leftovers';

interface Tally {
  iterations: number;
  kills: number;
  processes: number;
  acked: number;
  lost: number;
  leftoversSeen: number;
  leftoversRemoved: number;
  repairs: number;
  errors: string[];
  /** The churn pair: deletes acknowledged, deletes cut short by SIGKILL found done, sessions created, batches and archives acknowledged. */
  churnDeletes: number;
  churnDeletesFoundDone: number;
  churnCreates: number;
  churnAppends: number;
  churnArchives: number;
  /** SESSION_NOT_FOUND for a handle whose delete had begun: stale handles refused. */
  staleRefusals: number;
  /** Appends or compactions acknowledged while the delete of their session was under way (legal; their steps must be gone). */
  overlapped: number;
}

function fsDir(fixture: Fixture): string | null {
  const spec = fixture.workerSpec();
  return spec.kind === 'fs' ? spec.dir : null;
}

/** Leftover files under an fs root (relative paths); [] on Redis. */
function leftovers(dir: string | null): string[] {
  return dir === null ? [] : walk(dir).filter(isLeftover);
}

/** `.tmp-<pid>-<n>` temp files whose writer is dead: repair removes those at once. */
function deadWriterTemps(dir: string | null): string[] {
  return leftovers(dir).filter((rel) => {
    const match = /(?:^|\/)\.tmp-(\d+)-\d+$/.exec(rel);
    if (match === null) return false;
    try {
      process.kill(Number(match[1]), 0);
      return false;
    } catch {
      return true;
    }
  });
}

/**
 * Below the API: every `meta` and step file on disk parses as JSON (nothing
 * torn is visible under a real name), and readers see exactly the step files
 * there are (temp files left by killed writers are not steps).
 */
function checkFilesOnDisk(dir: string, label: string, stepsRead: [string, number][]): void {
  const files = walk(dir).filter((rel) => /^[^./][^/]*\/(meta|step-\d{6,})$/.test(rel));
  const stepFiles = new Map<string, number>();
  for (const rel of files) {
    const text = fs.readFileSync(path.join(dir, rel), 'utf8');
    expect(() => JSON.parse(text), `${label}: ${rel} is whole JSON: ${JSON.stringify(text.slice(0, 80))}`).not.toThrow();
    const session = rel.slice(0, rel.indexOf('/'));
    if (rel.endsWith('/meta')) continue;
    stepFiles.set(session, (stepFiles.get(session) ?? 0) + 1);
  }
  for (const [handle, read] of stepsRead) expect(read, `${label}: steps of ${handle} read = step files on disk`).toBe(stepFiles.get(handle) ?? 0);
}

/** Every handle of the churn pair the ledger has heard of (deleted ones too), with its created_at when known. */
function churnHandles(ledger: Ledger): { handle: string; born: string }[] {
  const handles = new Set([...ledger.creates.keys(), ...ledger.deletesBegun.keys(), ...ledger.steps.keys()]);
  return [...handles].filter((handle) => handle.startsWith(CHURN_PREFIX)).map((handle) => ({ handle, born: ledger.born.get(handle) ?? '?' }));
}

/** Spawns the seven writers of one iteration. */
function spawnWriters(
  fixture: Fixture,
  iteration: number,
  handles: string[],
  churned: { handle: string; born: string }[],
): { label: string; worker: Worker }[] {
  const spec = fixture.workerSpec();
  const tasks: [string, WorkerTask][] = [];
  for (let w = 0; w < APPENDERS; w++) {
    tasks.push([
      `appender ${w}`,
      {
        name: 'append-shared',
        handles,
        agent: AGENT,
        refreshEvery: 8,
        tag: `i${iteration}a${w}`,
        count: null,
        maxBatch: 4,
        pad: 400,
        eventsEvery: 5,
        pair: { agent: CHURN_AGENT, sender: CHURN_SENDER, handles: churned, share: PAIR_SHARE, refreshEvery: 3, compactEvery: 7 },
      },
    ]);
  }
  tasks.push(['creator', { name: 'create-loop', agent: AGENT, senders: ['tg:1', 'tg:2', 'cli'], count: null, delayMs: 40 }]);
  tasks.push([
    'compactor',
    { name: 'compact-loop', handles, agent: AGENT, refreshEvery: 4, tag: `i${iteration}c`, count: null, delayMs: 5 },
  ]);
  tasks.push([
    'churner',
    {
      name: 'churn',
      agent: CHURN_AGENT,
      sender: CHURN_SENDER,
      tag: `i${iteration}r`,
      count: null,
      batches: 3,
      maxBatch: 3,
      pad: 200,
      eventsEvery: 4,
      compactEvery: 3,
      delayMs: 5,
    },
  ]);
  return tasks.map(([label, task]) => ({ label, worker: startWorker(spec, task) }));
}

/** SIGKILLs each worker at its own random moment; resolves with the number of kills that hit a live process. */
async function killAtRandom(workers: { worker: Worker }[]): Promise<number> {
  let kills = 0;
  await Promise.all(
    workers.map(async ({ worker }) => {
      if (Math.random() < 0.15) {
        // Now and then during start-up, before it acknowledged anything.
        await sleep(randomInt(400));
      } else {
        const started = Date.now();
        while (worker.lines.length === 0 && worker.child.exitCode === null && Date.now() - started < 5000) await sleep(5);
        await sleep(randomInt(350));
      }
      if (worker.child.exitCode === null && worker.child.signalCode === null && worker.child.kill('SIGKILL')) kills += 1;
    }),
  );
  return kills;
}

/**
 * The per-iteration check with a fresh store: the ledger, then list and load
 * of every session without a warning or diagnostic, then an append to every
 * session (recorded in the ledger).
 */
async function verify(fixture: Fixture, ledger: Ledger, dir: string | null, label: string, tally: Tally, probe: boolean) {
  const logger = recordingLogger();
  const store = await fixture.open({ logger });
  const { lost } = await checkLedger(store, ledger, dir, { exact: true });
  tally.lost += lost.length;
  expect(lost, `${label}: acknowledged writes lost, or found in another conversation`).toEqual([]);

  const listed = await store.listSessions();
  const handles = listed.map((s) => s.handle);
  for (const handle of ledger.sessions) expect(handles, `${label}: acknowledged session ${handle} is listed`).toContain(handle);
  const stepsRead: [string, number][] = [];
  for (const { handle, meta } of listed) {
    expect([AGENT, CHURN_AGENT]).toContain(meta.agent);
    const snapshot = await store.loadSession(handle);
    expect(snapshot, `${label}: ${handle} loads`).not.toBeNull();
    expect(snapshot!.diagnostics, `${label}: ${handle} has no torn or skipped step`).toEqual([]);
    stepsRead.push([handle, (await store.readSteps(handle)).length]);
  }
  expect(logger.warnings, `${label}: nothing was skipped with a warning`).toEqual([]);
  if (dir !== null) checkFilesOnDisk(dir, label, stepsRead);
  if (probe) {
    for (const handle of handles) {
      const item = userMessage(`${label}: ${handle} still appendable`);
      const [step] = await store.appendMessages(handle, [item]);
      ledger.addSteps(handle, [step!], [item]);
    }
  }
  return { store, handles };
}

function runKillLoop(backend: 'fs' | 'redis', harness: Harness): void {
  const tally: Tally = {
    iterations: 0,
    kills: 0,
    processes: 0,
    acked: 0,
    lost: 0,
    leftoversSeen: 0,
    leftoversRemoved: 0,
    repairs: 0,
    errors: [],
    churnDeletes: 0,
    churnDeletesFoundDone: 0,
    churnCreates: 0,
    churnAppends: 0,
    churnArchives: 0,
    staleRefusals: 0,
    overlapped: 0,
  };
  const closing: Promise<void>[] = [];

  afterAll(() => {
    if (tally.iterations === 0) return;
    report({
      part: `1. kill loop (${backend})`,
      invariant: INVARIANT,
      tried:
        `${tally.iterations} iterations x ${PROCESSES} processes (4 appenders, 1 creator, 1 compactor; 1 churner deleting and re-creating the newest ${CHURN_AGENT}/${CHURN_SENDER} session, ` +
        `the appenders sending ${PAIR_SHARE * 100}% of their ops to its possibly stale handles); ${tally.kills} SIGKILLs; ${tally.repairs} repairs; ${tally.acked} acknowledged writes (steps, sessions, archives, deletes), ` +
        `each checked after every later iteration of its epoch; churn: ${tally.churnDeletes} deletes acknowledged (+${tally.churnDeletesFoundDone} cut short by SIGKILL and found done), ` +
        `${tally.churnCreates} sessions created, ${tally.churnAppends} batches and ${tally.churnArchives} archives acknowledged, ${tally.staleRefusals} stale-handle refusals (SESSION_NOT_FOUND), ` +
        `${tally.overlapped} writes acknowledged while their session's delete was under way`,
      iterations: tally.iterations,
      faults: tally.kills,
      lost: tally.lost,
      notes:
        backend === 'fs'
          ? `${tally.leftoversSeen} leftover files seen after kills, ${tally.leftoversRemoved} removed by repair`
          : 'no leftovers possible: every write is one script',
    });
  });

  it(`survives ${ITERATIONS} rounds of SIGKILLed writers, creators, compactors and deleters without losing an acknowledged write or mixing conversations`, async () => {
    for (let epochStart = 0; epochStart < ITERATIONS; epochStart += EPOCH) {
      const fixture = await harness.fixture();
      try {
        await runEpoch(fixture, epochStart, Math.min(EPOCH, ITERATIONS - epochStart));
      } finally {
        await Promise.allSettled(closing.splice(0));
        await fixture.dispose();
      }
    }
    expect(tally.errors, 'no worker reported an error').toEqual([]);
    expect(tally.lost).toBe(0);
  }, 1_800_000);

  async function runEpoch(fixture: Fixture, first: number, count: number): Promise<void> {
    const dir = fsDir(fixture);
    const ledger = new Ledger();
    const live = await fixture.open();
    const initial: string[] = [];
    for (const sender of ['tg:1', 'tg:2']) {
      const handle = await live.createSession(AGENT, sender);
      initial.push(handle);
      ledger.sessions.add(handle);
    }

    for (let iteration = first; iteration < first + count; iteration++) {
      const label = `${backend} iteration ${iteration}`;
      const workers = spawnWriters(fixture, iteration, initial, churnHandles(ledger));
      tally.processes += workers.length;
      // One repair while the writers run, then the kills.
      const [kills, liveReport] = await Promise.all([
        killAtRandom(workers),
        sleep(100 + randomInt(200)).then(() => live.repair()),
      ]);
      tally.kills += kills;
      tally.repairs += 1;
      for (const { label: who, worker } of workers) {
        const { code, signal, stderr } = await worker.exited;
        expect(signal, `${label}: ${who} died of SIGKILL, not of an error (exit ${code}): ${stderr}`).toBe('SIGKILL');
        ledger.absorb(`${label} ${who}`, worker.lines);
      }
      expect(liveReport.unreadableSteps, `${label}: repair beside writers found torn steps`).toEqual([]);
      expect(liveReport.corruptMetas).toEqual([]);
      expect(liveReport.danglingMarkers, `${label}: a marker was stored before its archive`).toEqual([]);
      expect(liveReport.incompleteSessions.filter((s) => s.action === 'kept')).toEqual([]);
      expect(liveReport.countersFixed.filter((c) => c.to < c.from), `${label}: repair beside writers lowered a counter`).toEqual(
        [],
      );
      expect(ledger.doubles, `${label}: one step acknowledged to two writers`).toEqual([]);
      expect(ledger.reuses, `${label}: a handle handed out twice`).toEqual([]);
      expect(ledger.handlesReused).toBe(0);
      const { refused, unexpected } = ledger.takeErrors();
      tally.staleRefusals += refused.length;
      tally.errors.push(...unexpected.map((e) => `${e.worker} ${e.op}${e.handle ? ` ${e.handle}` : ''}: ${e.error} ${e.message}`));

      const seen = leftovers(dir);
      tally.leftoversSeen += seen.length;
      const { store } = await verify(fixture, ledger, dir, label, tally, false);
      const repaired = await store.repair();
      tally.repairs += 1;
      tally.leftoversRemoved += repaired.leftoversRemoved.length;
      expect(repaired.unreadableSteps).toEqual([]);
      expect(repaired.corruptMetas).toEqual([]);
      expect(repaired.danglingMarkers).toEqual([]);
      expect(repaired.incompleteSessions.filter((s) => s.action === 'kept')).toEqual([]);
      expect(deadWriterTemps(dir), `${label}: temp files of dead writers left after repair`).toEqual([]);
      // A fresh store after the repair: still everything, and every session takes an append.
      const after = await verify(fixture, ledger, dir, `${label} after repair`, tally, true);
      // Closing waits for its meta bumps, which may wait up to 10 s for a lock a killed
      // process held; the next iteration need not wait for that.
      closing.push(store.close(), after.store.close());
      tally.iterations += 1;
    }

    // Time passes (fs): locks left by killed processes go stale, so the stores still closing get them at once.
    if (dir !== null) age(dir, 10 * 60_000);
    await Promise.allSettled(closing.splice(0));
    await live.close();
    await settleEpoch(fixture, ledger, dir, `${backend} iterations ${first}-${first + count - 1}`);
    tally.acked += ledger.stepCount + ledger.sessions.size + ledger.compactions.length + ledger.deletes.size;
    tally.churnDeletes += ledger.deletes.size;
    tally.churnDeletesFoundDone += ledger.deletesFoundDone.size;
    tally.churnCreates += [...ledger.creates.keys()].filter((h) => h.startsWith(CHURN_PREFIX)).length;
    tally.churnAppends += ledger.appends.filter((a) => a.handle.startsWith(CHURN_PREFIX) && a.worker !== 'test').length;
    tally.churnArchives += ledger.compactions.filter((c) => c.handle.startsWith(CHURN_PREFIX)).length;
  }

  /** Lets time pass (fs), repairs, and checks that a second repair finds nothing and counters are exact. */
  async function settleEpoch(fixture: Fixture, ledger: Ledger, dir: string | null, label: string): Promise<void> {
    if (dir !== null) age(dir, 10 * 60_000);
    const store = await fixture.open();
    const first = await store.repair();
    tally.repairs += 1;
    tally.leftoversRemoved += first.leftoversRemoved.length;
    expect(first.unreadableSteps).toEqual([]);
    expect(first.corruptMetas).toEqual([]);
    expect(first.danglingMarkers).toEqual([]);
    expect(first.countersSkipped, `${label}: nobody writes now, so every counter is fixed`).toEqual([]);
    expect(first.incompleteSessions.filter((s) => s.action === 'kept')).toEqual([]);
    if (backend === 'redis') expect(first.countersFixed, `${label}: Redis counters move with the steps, atomically`).toEqual([]);
    expect(leftovers(dir), `${label}: leftovers after repair`).toEqual([]);

    const second = await store.repair();
    tally.repairs += 1;
    const { sessions, dryRun, ...lists } = second;
    expect(dryRun).toBe(false);
    for (const [name, list] of Object.entries(lists)) expect(list, `${label}: second repair ${name}`).toEqual([]);
    const listed = await store.listSessions();
    expect(sessions).toBe(listed.length);
    const stepsRead: [string, number][] = [];
    for (const { handle, meta } of listed) {
      expect(meta.message_count, `${label}: message_count of ${handle}`).toBe(liveCount(await store.readSteps(handle)));
    }
    const { lost, overlapped } = await checkLedger(store, ledger, dir, { exact: true });
    tally.lost += lost.length;
    tally.overlapped += overlapped;
    expect(lost, `${label}: lost (or found in another conversation) after the final repair`).toEqual([]);
    await store.close();
  }
}

describe('torture 1: kill loop', () => {
  describe('fs', () => {
    runKillLoop('fs', fsHarness('full'));
  });

  describeWithRedis('redis', () => runKillLoop('redis', redisHarness(REDIS_URL)), 'the Redis kill loop');
});
