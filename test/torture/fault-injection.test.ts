// Part 3 of the torture suite: fail-after-N fault injection. For each write
// operation, every filesystem call N it makes is failed in turn with EIO,
// ENOSPC, EACCES, EMFILE or a short write, once and from then on.
// Invariant: the operation either succeeds with its whole effect visible, or
// rejects with IO_ERROR and leaves no visible change; a failed fsync is never
// followed by a link or rename of that file; once the fault clears, the same
// store appends and loads, and meta counters come out exact. Fork and rewind
// are tried at every durability level (their syncs are the same at each); a
// rewind whose intent is on disk resolves even when finishing it fails, and
// then only the archives its retracted markers named may still answer, until
// the next writer finishes it.

import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { StepStoreError, openStore, type Durability, type Store } from 'stepstore';
import { FAULT_KINDS, FaultyFs, canFail, linksAfterFailedSync, type CallRecord, type Fault, type FaultKind } from './lib/faulty-fs.js';
import { dropDir, scratchDir } from './lib/scratch.js';
import { visibleState, withoutTimes, type VisibleState } from './lib/visible.js';
import { SCALE, report } from './summary.js';
import { doneEvent, liveCount, userMessage } from '../conformance/fixture.js';

const msg = userMessage;

interface Scenario {
  name: string;
  /** fork or rewind: tried below full too (see faultPlan). */
  history?: boolean;
  /** fork or rewind at the CI scale: tried below full too (`levels`), with every fault kind at full (`kinds`). */
  ci?: { levels?: true; kinds?: true };
  /** Setup leaves meta bumps pending (the flush timer held back), so the operation must keep or supersede them. */
  pendingBumps?: boolean;
  /** Runs with no fault; leaves the store warm (no meta bump pending) and returns the session to work on. */
  setup(store: Store): Promise<string>;
  run(store: Store, handle: string): Promise<unknown>;
}

async function baseSetup(store: Store, compacted: boolean): Promise<string> {
  const handle = await store.createSession('crab', 'tg:1');
  await store.appendMessages(handle, [msg('one'), msg('two')]);
  if (compacted) {
    await store.compact(handle, 'summary of one and two');
    await store.appendMessages(handle, [msg('three')]);
  }
  // updateMeta supersedes pending bumps: nothing is left for the flush timer.
  const meta = (await store.loadSession(handle))!.meta;
  await store.updateMeta(handle, { ...meta, title: 'set up' });
  return handle;
}

const SCENARIOS: Scenario[] = [
  { name: 'createSession', setup: (s) => baseSetup(s, false), run: (s) => s.createSession('crab', 'tg:1') },
  { name: 'appendMessages (one)', setup: (s) => baseSetup(s, false), run: (s, h) => s.appendMessages(h, [msg('new')]) },
  {
    name: 'appendMessages (batch of 3)',
    setup: (s) => baseSetup(s, false),
    run: (s, h) => s.appendMessages(h, [msg('a'), msg('b'), msg('c')]),
  },
  { name: 'appendEvents (one)', setup: (s) => baseSetup(s, true), run: (s, h) => s.appendEvents(h, [doneEvent('m')]) },
  { name: 'compact (first archive)', setup: (s) => baseSetup(s, false), run: (s, h) => s.compact(h, 'the summary') },
  { name: 'compact (again)', setup: (s) => baseSetup(s, true), run: (s, h) => s.compact(h, 'second summary') },
  {
    name: 'updateMeta',
    setup: (s) => baseSetup(s, true),
    run: async (s, h) => {
      const meta = (await s.loadSession(h))!.meta;
      return s.updateMeta(h, { ...meta, title: 'renamed', summary: 'a summary' });
    },
  },
  { name: 'deleteSession', setup: (s) => baseSetup(s, true), run: (s, h) => s.deleteSession(h) },
  {
    name: 'updateMeta (bumps pending)',
    pendingBumps: true,
    setup: async (s) => {
      const h = await baseSetup(s, false);
      await s.appendMessages(h, [msg('counted later')]);
      return h;
    },
    run: async (s, h) => {
      const meta = (await s.loadSession(h))!.meta;
      return s.updateMeta(h, { ...meta, title: 'renamed' });
    },
  },
  {
    name: 'deleteSession (bumps pending)',
    pendingBumps: true,
    setup: async (s) => {
      const h = await baseSetup(s, false);
      await s.appendMessages(h, [msg('counted later')]);
      return h;
    },
    run: (s, h) => s.deleteSession(h),
  },
  // baseSetup(s, true) leaves steps one, two, the compact marker (3), three.
  { name: 'fork (at the compact marker)', history: true, ci: { levels: true }, setup: (s) => baseSetup(s, true), run: (s, h) => s.fork(h, { atStep: 3 }) },
  { name: 'fork (whole)', history: true, setup: (s) => baseSetup(s, true), run: (s, h) => s.fork(h) },
  {
    name: 'rewind (across the compact marker)',
    history: true,
    ci: { levels: true, kinds: true },
    setup: (s) => baseSetup(s, true),
    run: (s, h) => s.rewind(h, 2),
  },
  { name: 'rewind (by one)', history: true, setup: (s) => baseSetup(s, true), run: (s, h) => s.rewind(h, 3) },
  {
    name: 'rewind (a fork past the marker of its deleted source)',
    history: true,
    ci: { levels: true },
    setup: async (s) => {
      const source = await baseSetup(s, true);
      const fork = await s.fork(source);
      await s.deleteSession(source);
      return fork;
    },
    run: (s, h) => s.rewind(h, 2),
  },
];

/** The visible state without what may lag behind an acknowledgement (meta counters and updated_at). */
function withoutLag(state: VisibleState): unknown {
  return {
    ...state,
    sessions: Object.fromEntries(
      Object.entries(state.sessions).map(([handle, session]) => {
        const { message_count: _count, ...meta } = session.meta;
        return [handle, { ...session, meta }];
      }),
    ),
  };
}

/** Every session's meta counts exactly its live conversation (crabtalk's rule: 1 for the summary after a compaction). */
function countersExact(state: VisibleState): string[] {
  const wrong: string[] = [];
  for (const [handle, session] of Object.entries(state.sessions)) {
    const entries = liveCount(session.steps);
    if (session.meta.message_count !== entries) wrong.push(`${handle}: message_count ${String(session.meta.message_count)}, ${entries} live entries`);
  }
  return wrong;
}

interface Run {
  before: VisibleState;
  outcome: 'resolved' | 'rejected';
  error?: unknown;
  /** State right after the operation settled (fault cleared), counters excepted. */
  state: VisibleState;
  /** State after the follow-up and close (fault cleared). */
  final: VisibleState;
  log: CallRecord[];
  calls: number;
}

const FOLLOW_UP = msg('after the fault');

/**
 * A meta lock whose unlink failed stays until it is LOCK_STALE_MS (10 s) old;
 * the next meta write waits for that. The test ages it instead of waiting.
 */
function ageLeftLocks(root: string): void {
  for (const name of fs.readdirSync(root)) {
    const lock = path.join(root, name, '.meta.lock');
    if (fs.existsSync(lock)) {
      const old = new Date(Date.now() - 11_000);
      fs.utimesSync(lock, old, old);
    }
  }
}

/** `cold`: the store is reopened between setup and the operation, so the operation starts with empty caches. */
async function runOnce(scenario: Scenario, durability: Durability, fault: Fault | null, cold = false): Promise<Run> {
  const base = scratchDir('fault');
  // The store-wide flush timer is a setTimeout: held back, bumps stay pending until close().
  if (scenario.pendingBumps === true) vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  try {
    const root = path.join(base, 'sessions');
    const io = new FaultyFs();
    let store = await openStore({ dir: root, durability, fs: io, logger: { warn() {} } });
    const handle = await scenario.setup(store);
    if (cold) {
      await store.close();
      store = await openStore({ dir: root, durability, fs: io, logger: { warn() {} } });
    }
    const before = await visibleState(root, { stripTimes: true });
    io.arm(fault);
    let outcome: Run['outcome'];
    let error: unknown;
    try {
      await scenario.run(store, handle);
      outcome = 'resolved';
    } catch (err) {
      outcome = 'rejected';
      error = err;
    }
    const calls = io.disarm();
    const log = io.log.filter((record) => record.n > 0);
    const state = await visibleState(root, { stripTimes: true });
    ageLeftLocks(root);

    // The same store, fault cleared: it appends (to the session if it is still there, and to a new one) and loads.
    if (state.sessions[handle] !== undefined) {
      await store.appendMessages(handle, [FOLLOW_UP]);
      expect((await store.loadSession(handle))?.history.at(-1)).toEqual(FOLLOW_UP);
    }
    const other = await store.createSession('crab', 'follow-up');
    expect(await store.appendMessages(other, [FOLLOW_UP])).toEqual([1]);
    expect((await store.loadSession(other))?.history).toEqual([FOLLOW_UP]);
    await store.close();
    const final = await visibleState(root, { stripTimes: true });
    return { before, outcome, error, state, final, log, calls };
  } finally {
    vi.useRealTimers();
    dropDir(base);
  }
}

/** Steps of a session as lines without their numbers. */
const lines = (state: VisibleState, handle: string) => (state.sessions[handle]?.steps ?? []).map(({ line }) => line);
const same = (a: VisibleState, b: VisibleState) => JSON.stringify(withoutLag(a)) === JSON.stringify(withoutLag(b));

interface Violation {
  where: string;
  scenario: string;
  fault: Fault;
  kind: 'wrong code' | 'rejected but changed' | 'resolved but incomplete' | 'counters wrong once the fault cleared';
  run: Run;
  expectedAfter: VisibleState;
}

/**
 * Bugs of src/ this test has found and that are not fixed yet, each with the
 * violations it explains. Every one found before fork and rewind (a directory
 * close escaping an append, deletes and meta updates rejecting after they
 * took effect, pending bumps dropped by a failed write, an archive left by a
 * failed compact), and with fork and rewind (a raw errno from highestStep,
 * a bump dropped in the millisecond a rewind's count was set) is fixed. The
 * list is exact: a bug listed must still reproduce.
 */
const KNOWN_BUGS: { id: string; what: string; matches(v: Violation): boolean }[] = [];

/**
 * Not a bug: under a fault that persists, the undo of a half-done operation
 * (unlinking linked steps or a stored archive, removing a claimed session
 * directory, putting back the previous meta) fails too.
 * What stays is whole (every visible step reads back), never torn.
 */
function rollbackRefused(v: Violation): boolean {
  if (!v.fault.forever || (v.kind !== 'rejected but changed' && v.kind !== 'counters wrong once the fault cleared')) return false;
  const first = v.run.log.findIndex((r) => r.injected);
  // The undo of a half-done write: unlinking what it linked, removing what it made, putting the old meta back.
  const undo = new Set(['unlinkSync', 'removeTree', 'replaceFile']);
  const undoFailed = v.run.log.slice(first + 1).some((r) => undo.has(r.call) && r.failed !== undefined);
  const whole = Object.values(v.run.state.sessions).every((s) => s.diagnostics.length === 0);
  return undoFailed && whole;
}

function isIoError(err: unknown): boolean {
  return err instanceof StepStoreError && err.code === 'IO_ERROR';
}

/** The state equals the state before, plus the archive the operation would have added. */
function sameButNewArchive(v: Violation): boolean {
  const added = Object.keys(v.expectedAfter.archives).filter((name) => !(name in v.run.before.archives));
  const before = { ...v.run.before, archives: { ...v.run.before.archives } };
  for (const name of added) before.archives[name] = v.expectedAfter.archives[name] ?? null;
  before.archives = Object.fromEntries(Object.entries(before.archives).sort(([a], [b]) => (a < b ? -1 : 1)));
  return added.length > 0 && same(v.run.state, before);
}

/** The deleted session is gone and nothing else changed, except that its archives may remain. */
function goneExceptArchives(v: Violation): boolean {
  const sessions = JSON.stringify(withoutLag({ ...v.run.state, archives: {} }));
  const expected = JSON.stringify(withoutLag({ ...v.expectedAfter, archives: {} }));
  const archivesOk = Object.entries(v.run.state.archives).every(([name, content]) => v.run.before.archives[name] === content);
  return sessions === expected && archivesOk;
}

/**
 * A rewind resolved with its intent on disk but not finished (the fault kept
 * it from dropping its archives): the state is the one after, except that
 * archives only the retracted markers named still answer; and once the fault
 * cleared, the next append finished it (the final state is the clean run's).
 */
function finishedByNextWriter(run: Run, expectedAfter: VisibleState, cleanFinal: VisibleState): boolean {
  const lingering = Object.keys(run.state.archives).filter((name) => !(name in expectedAfter.archives) && name in run.before.archives);
  const archives = Object.fromEntries(Object.entries(run.state.archives).filter(([name]) => !lingering.includes(name)));
  return lingering.length > 0 && same({ ...run.state, archives }, expectedAfter) && same(run.final, cleanFinal);
}

const durabilities: Durability[] = SCALE === 'full' ? ['full', 'file', 'none'] : ['full'];
/**
 * The faults tried at each call of `scenario` at `durability`; null: not
 * tried there. Fork and rewind run at every level; at the CI scale, to stay
 * quick: at full EIO once and forever (every call can fail so), every kind
 * for the one marked; below full, where only the syncs differ, EIO once, for
 * those marked.
 */
function faultPlan(scenario: Scenario, durability: Durability): { kinds: readonly FaultKind[]; forevers: boolean[] } | null {
  if (SCALE === 'full') return { kinds: FAULT_KINDS, forevers: [false, true] };
  if (scenario.history !== true) return durability === 'full' ? { kinds: FAULT_KINDS, forevers: [false, true] } : null;
  if (durability !== 'full') return scenario.ci?.levels === true ? { kinds: ['EIO'], forevers: [false] } : null;
  return { kinds: scenario.ci?.kinds === true ? FAULT_KINDS : ['EIO'], forevers: [false, true] };
}
/** false: the operation runs on the store that did the setup; true: on one opened just before. */
const temperatures: boolean[] = SCALE === 'full' ? [false, true] : [false];
const totals = { runs: 0, faults: 0, lost: 0, scenarios: 0, calls: 0, finishedLater: 0 };
const violations: Violation[] = [];

describe('3. fault injection', () => {
  for (const durability of ['full', 'file', 'none'] as const) {
    const scenarios = SCENARIOS.filter((s) => faultPlan(s, durability) !== null);
    for (const [scenario, cold] of scenarios.flatMap((s) => temperatures.filter((t) => !(t && s.pendingBumps === true)).map((t) => [s, t] as const))) {
      const label = `${scenario.name}${cold ? ' on a freshly opened store' : ''}`;
      it(`${label} at durability ${durability} either succeeds whole or fails IO_ERROR with nothing visible changed, for a fault at every call`, async () => {
        const clean = await runOnce(scenario, durability, null, cold);
        expect(clean.outcome).toBe('resolved');
        expect(countersExact(clean.final)).toEqual([]);
        const expectedAfter = clean.state;
        totals.scenarios += 1;
        totals.calls += clean.calls;
        for (let n = 1; n <= clean.calls; n++) {
          const call = clean.log[n - 1]!;
          const plan = faultPlan(scenario, durability)!;
          for (const kind of plan.kinds) {
            if (!canFail(kind, call.call, call.flags)) continue;
            for (const forever of plan.forevers) {
              const fault: Fault = { kind, at: n, forever };
              const where = `${label} @${durability}: ${kind}${forever ? ' forever' : ' once'} at call ${n} (${call.call} ${shortPath(call.path)})`;
              // Timing may add a call before the aimed one (a root listing after a watch event, under load): run it again.
              let run = await runOnce(scenario, durability, fault, cold);
              for (let again = 0; again < 3 && run.log[n - 1]?.call !== call.call; again++) run = await runOnce(scenario, durability, fault, cold);
              totals.runs += 1;
              totals.faults += run.log.filter((r) => r.injected).length;
              // The same script makes the same calls: the fault hit the call it was aimed at.
              expect(run.log[n - 1]?.call, where).toBe(call.call);
              expect(linksAfterFailedSync(run.log), where).toEqual([]);
              const found: Violation[] = [];
              const flag = (kind: Violation['kind']) => found.push({ where, scenario: scenario.name, fault, kind, run, expectedAfter });
              if (run.outcome === 'rejected') {
                if (!isIoError(run.error)) flag('wrong code');
                if (!same(run.state, run.before)) flag('rejected but changed');
              } else if (scenario.history === true && finishedByNextWriter(run, expectedAfter, clean.final)) {
                totals.finishedLater += 1;
              } else if (!same(run.state, expectedAfter)) {
                flag('resolved but incomplete');
                totals.lost += 1;
              }
              // Whatever happened, nothing visible is torn.
              for (const [handle, session] of Object.entries(run.state.sessions)) {
                expect(session.diagnostics, `${where}: ${handle}`).toEqual([]);
              }
              // Once the fault clears: the follow-up landed and nothing is unreadable.
              for (const [handle, session] of Object.entries(run.final.sessions)) {
                expect(session.diagnostics, `${where}: ${handle}`).toEqual([]);
              }
              // Counters come out exact, except where a known bug left a rejected append's steps visible.
              if (countersExact(run.final).length > 0) flag('counters wrong once the fault cleared');
              violations.push(...found);
              // What was there before the operation is still there (a delete removes only its own session,
              // a rewind only the steps it retracts: the session starts as before it or as after it).
              for (const handle of Object.keys(run.before.sessions)) {
                if (run.final.sessions[handle] === undefined) {
                  if (!scenario.name.startsWith('deleteSession')) totals.lost += 1;
                  continue;
                }
                const startsAs = (state: VisibleState) => {
                  const expected = lines(state, handle);
                  return JSON.stringify(lines(run.final, handle).slice(0, expected.length)) === JSON.stringify(expected);
                };
                if (!startsAs(run.before) && !(scenario.history === true && startsAs(expectedAfter))) totals.lost += 1;
              }
            }
          }
        }
      });
    }
  }

  it('no operation lost acknowledged data, and every violation of the invariant is a known bug or an undo the disk refused', () => {
    const byBug = new Map<string, number>(KNOWN_BUGS.map((bug) => [bug.id, 0]));
    let refused = 0;
    const unexplained: string[] = [];
    for (const v of violations) {
      const bug = KNOWN_BUGS.find((b) => b.matches(v));
      if (process.env.TORTURE_VERBOSE) console.log(`${bug?.id ?? (rollbackRefused(v) ? 'undo refused' : 'UNEXPLAINED')}: ${v.where}: ${v.kind}`);
      if (bug !== undefined) byBug.set(bug.id, byBug.get(bug.id)! + 1);
      else if (rollbackRefused(v)) refused += 1;
      else unexplained.push(`${v.where}: ${v.kind}${v.kind === 'wrong code' ? ` (${String(v.run.error)})` : `: ${diffStates(v.kind === 'resolved but incomplete' ? v.expectedAfter : v.run.before, v.run.state)}`}`);
    }
    const bugs = [...byBug.entries()].filter(([, count]) => count > 0).map(([id, count]) => `${id} ×${count}`);
    report({
      part: '3. fault injection',
      invariant: 'an operation hit by a filesystem fault either succeeds whole or rejects IO_ERROR with nothing visible changed; no link or rename after a failed fsync; the store works once the fault clears',
      tried: `${SCENARIOS.length} operations × ${durabilities.length} durability levels (fork and rewind × 3${SCALE === 'full' ? '' : ', fewer kinds'})${temperatures.length > 1 ? ' × warm and freshly opened stores' : ''}, ${totals.calls} calls, ${totals.runs} runs (EIO, ENOSPC, EACCES, EMFILE, short write; once and forever)`,
      iterations: totals.runs,
      faults: totals.faults,
      lost: totals.lost,
      notes: [
        bugs.length > 0 ? `known src bugs: ${bugs.join(', ')}` : 'no known src bug reproduced',
        `${refused} runs where a persisting fault also refused the undo (whole steps left, nothing torn)`,
        `${totals.finishedLater} rewinds resolved with their intent on disk and finished by the next append (their archives answered until then)`,
        unexplained.length > 0 ? `${unexplained.length} unexplained violations` : '',
      ].filter(Boolean).join('; '),
    });
    expect(unexplained).toEqual([]);
    expect(totals.lost).toBe(0);
    expect(totals.runs).toBeGreaterThan(0);
    // The list of known bugs is exact: a fixed bug must leave it.
    for (const [id, count] of byBug) expect(count, `${id} no longer reproduces: remove it from KNOWN_BUGS`).toBeGreaterThan(0);
  });
});

function shortPath(p: string): string {
  const at = p.indexOf('/sessions');
  return at < 0 ? p : p.slice(at + 1);
}

function diffStates(expected: VisibleState, actual: VisibleState): string {
  const e = withoutTimes(withoutLag(expected)) as { sessions: Record<string, unknown>; archives: Record<string, unknown> };
  const a = withoutTimes(withoutLag(actual)) as typeof e;
  const out: string[] = [];
  for (const handle of new Set([...Object.keys(e.sessions), ...Object.keys(a.sessions)])) {
    const x = JSON.stringify(e.sessions[handle]);
    const y = JSON.stringify(a.sessions[handle]);
    if (x !== y) out.push(`session ${handle}: expected ${x?.slice(0, 300)}, got ${y?.slice(0, 300)}`);
  }
  for (const name of new Set([...Object.keys(e.archives), ...Object.keys(a.archives)])) {
    if (e.archives[name] !== a.archives[name]) out.push(`archive ${name}: expected ${JSON.stringify(e.archives[name])}, got ${JSON.stringify(a.archives[name])}`);
  }
  return out.join('; ');
}
