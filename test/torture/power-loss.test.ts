// Part 2 of the torture suite: simulated power loss. A scripted workload runs
// on the recording layer (lib/crash-fs.ts); then, for every crash point (after
// each of its filesystem mutations), the disk a power cut would leave is
// rebuilt under several write-back policies and a fresh store opened on it.
// Invariants, per durability level (the durability table in the README):
//   every level: load and list never throw; every visible meta is whole; a
//     compact marker never names a missing archive; an acknowledged archive
//     survives as long as its session does; a process crash (everything written back) loses nothing
//     acknowledged; the store appends again after the crash, over nothing.
//   full: every acknowledged step (byte for byte), session, archive, deletion
//     and meta update survives; no visible step is torn.
//   file: no visible step is torn; acknowledged steps, sessions and deletions
//     may be missing.
//   none: acknowledged steps may be missing, empty or cut short (skipped by
//     load with a diagnostic), never someone else's bytes.

import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { openStore, type Durability, type EventLine, type HistoryEntry, type Store } from 'stepstore';
import { CrashFs, Model, buildImage, policyName, type Policy } from './lib/crash-fs.js';
import { dropDir, scratchDir, snapshotTree } from './lib/scratch.js';
import { iterations, report } from './summary.js';
import { liveCount, toolStart, userMessage } from '../conformance/fixture.js';

const msg = (text: string): HistoryEntry => userMessage(text);

/** What the workload did, with the op counts between which each call was under way. */
interface Ledger {
  /** `handle/step` → the exact text stored, and when the call that stored it started and resolved. */
  steps: Map<string, { text: string; start: number; ack: number }>;
  sessions: Map<string, { agent: string; createdBy: string; start: number; ack: number; deleteStart?: number; deleteAck?: number }>;
  archives: Map<string, { owner: string; content: string; start: number; ack: number }>;
  titles: Map<string, { title: string; start: number; ack: number }>;
  /** Number of ops of the setup (the pre-existing root): crash points start after it. */
  setupOps: number;
}

/** Calls on a store that record, in the ledger, what was acknowledged and between which ops. */
function tracker(io: CrashFs, ledger: Ledger) {
  const track = async <T>(call: () => Promise<T>, done: (result: T, start: number, ack: number) => void | Promise<void>): Promise<T> => {
    const start = io.count;
    const result = await call();
    await done(result, start, io.count);
    return result;
  };
  return {
    track,
    create: (store: Store, agent: string, createdBy: string) =>
      track(
        () => store.createSession(agent, createdBy),
        (handle, start, ack) => void ledger.sessions.set(handle, { agent, createdBy, start, ack }),
      ),
    append: (store: Store, handle: string, items: HistoryEntry[] | EventLine[]) =>
      track(
        () => ('event' in items[0]! ? store.appendEvents(handle, items as EventLine[]) : store.appendMessages(handle, items as HistoryEntry[])),
        (numbers, start, ack) => numbers.forEach((n, i) => ledger.steps.set(`${handle}/${n}`, { text: JSON.stringify(items[i]), start, ack })),
      ),
    compact: (store: Store, handle: string, summary: string) =>
      track(
        () => store.compact(handle, summary),
        async (name, start, ack) => {
          ledger.archives.set(name, { owner: handle, content: summary, start, ack });
          const marker = (await store.readSteps(handle)).find(({ line }) => (line as { archive_name?: string }).archive_name === name)!;
          ledger.steps.set(`${handle}/${marker.step}`, { text: JSON.stringify(marker.line), start, ack });
        },
      ),
    retitle: async (store: Store, handle: string, title: string) => {
      const meta = (await store.loadSession(handle))!.meta;
      await track(
        () => store.updateMeta(handle, { ...meta, title }),
        (_, start, ack) => void ledger.titles.set(handle, { title, start, ack }),
      );
    },
    remove: (store: Store, handle: string) =>
      track(
        () => store.deleteSession(handle),
        (_, start, ack) => void Object.assign(ledger.sessions.get(handle)!, { deleteStart: start, deleteAck: ack }),
      ),
  };
}

interface Workload {
  name: string;
  /** How many stores (processes sharing one machine, so one page cache) run it. */
  stores: number;
  run(stores: Store[], t: ReturnType<typeof tracker>): Promise<void>;
  /** Random write-back policies per crash point, and every how many crash points one is checked. */
  randoms: number;
  stride: number;
}

const WORKLOADS: Workload[] = [
  {
    // Creates, single and batch appends, concurrent appends, events, compactions, a meta update, a deletion, meta flushes.
    name: 'one store',
    stores: 1,
    randoms: iterations(2, 12),
    stride: 1,
    async run([store], t) {
      const s = store!;
      const a = await t.create(s, 'crab', 'tg:1');
      await t.append(s, a, [msg('a1')]);
      await t.append(s, a, [msg('a2'), msg('a3'), msg('a4')]);
      await t.append(s, a, [toolStart('c1')]);
      const b = await t.create(s, 'crab', 'tg:2');
      await Promise.all([t.append(s, a, [msg('a5')]), t.append(s, b, [msg('b1')]), t.append(s, b, [msg('b2'), msg('b3')])]);
      await t.compact(s, a, 'summary of a1..a5');
      await t.append(s, a, [msg('a6')]);
      await t.retitle(s, b, 'B has a title');
      const c = await t.create(s, 'crab', 'tg:3');
      await t.append(s, c, [msg('c1'), msg('c2')]);
      await t.compact(s, c, 'summary of c');
      await t.remove(s, c);
      await t.append(s, a, [msg('a7')]);
      // Let the store-wide timer write the pending meta bumps: crash points inside that flush too.
      await sleep(150);
      await Promise.all([t.append(s, a, [msg('a8'), msg('a9')]), t.append(s, b, [msg('b4')])]);
    },
  },
  {
    // Two processes on one machine (one page cache): a batch of 70 (two rounds of fsyncs) racing
    // single appends to the same session, creates racing for a seq, a deletion by the other store.
    name: 'two stores, a batch of 70',
    stores: 2,
    randoms: iterations(1, 4),
    stride: iterations(7, 1),
    async run([p, q], t) {
      const a = await t.create(p!, 'crab', 'tg:1');
      const batch = Array.from({ length: 70 }, (_, i) => msg(`batch ${i}`));
      await Promise.all([t.append(p!, a, batch), t.append(q!, a, [msg('q1')]), t.append(q!, a, [msg('q2'), msg('q3')])]);
      const [b, c] = await Promise.all([t.create(q!, 'crab', 'tg:1'), t.create(p!, 'crab', 'tg:1')]);
      await Promise.all([t.compact(p!, a, 'summary of the batch'), t.append(q!, b!, [msg('b1')]), t.append(p!, c!, [msg('c1')])]);
      await t.remove(q!, c!);
      await t.append(q!, a, [msg('after the compaction')]);
    },
  },
];

interface CheckResult {
  problems: string[];
  /** Acknowledged items gone where the level promised them. */
  lost: number;
  /** Acknowledged items gone where the level allows it (file, none). */
  vanished: number;
  /** Steps cut short or empty (none only). */
  torn: number;
}

/** Every check on one rebuilt disk; `k` is the number of mutations that happened before the power cut. */
async function checkImage(root: string, k: number, level: Durability, policy: Policy, ledger: Ledger): Promise<CheckResult> {
  const problems: string[] = [];
  let lost = 0;
  let vanished = 0;
  const at = `${level} crash after op ${k} (${policyName(policy)})`;
  const problem = (what: string) => problems.push(`${at}: ${what}`);
  // Everything written back = a process crash: every level keeps everything acknowledged.
  const strict = level === 'full' || policy.kind === 'all-written-back';
  const acked = (ack: number) => ack <= k;
  const started = (start: number | undefined) => start !== undefined && start < k;

  // Raw look at the disk: metas whole, steps whole (or, at none, cut short of the right text).
  const torn = new Set<string>();
  const onDisk = new Map<string, Set<number>>();
  if (fs.existsSync(root)) {
    for (const name of fs.readdirSync(root)) {
      const dir = path.join(root, name);
      if (name.startsWith('.') || !fs.statSync(dir).isDirectory()) continue;
      if (fs.existsSync(path.join(dir, 'meta'))) {
        const text = fs.readFileSync(path.join(dir, 'meta'), 'utf8');
        try {
          const meta = JSON.parse(text) as Record<string, unknown>;
          if (typeof meta.agent !== 'string' || typeof meta.created_by !== 'string' || typeof meta.created_at !== 'string') problem(`meta of ${name} lacks fields: ${text}`);
        } catch {
          problem(`meta of ${name} is torn: ${JSON.stringify(text)}`);
        }
      }
      const steps = new Set<number>();
      onDisk.set(name, steps);
      for (const file of fs.readdirSync(dir)) {
        const m = /^step-(\d{6,})$/.exec(file);
        if (m === null) continue;
        const n = Number(m[1]);
        steps.add(n);
        const text = fs.readFileSync(path.join(dir, file), 'utf8');
        const expected = ledger.steps.get(`${name}/${n}`);
        if (expected === undefined) problem(`${name}/${file} was never written by the workload: ${JSON.stringify(text)}`);
        else if (text === expected.text) continue;
        else if (level === 'none' && !strict && expected.text.startsWith(text)) torn.add(`${name}/${n}`);
        else problem(`${name}/${file} is torn or wrong: ${JSON.stringify(text)} instead of ${expected.text}`);
      }
    }
  }

  const store = await openStore({ dir: root, durability: level, logger: { warn() {} } });
  try {
    const listed = new Map((await store.listSessions()).map((s) => [s.handle, s.meta]));
    for (const [handle, s] of ledger.sessions) {
      const meta = listed.get(handle);
      if (acked(s.ack) && !started(s.deleteStart) && meta === undefined) {
        if (strict) {
          problem(`acknowledged session ${handle} is gone`);
          lost += 1;
        } else {
          vanished += 1;
        }
      }
      if (strict && s.deleteAck !== undefined && acked(s.deleteAck) && meta !== undefined) {
        problem(`session ${handle}, whose deletion was acknowledged, is back`);
        lost += 1;
      }
      if (meta !== undefined && (meta.agent !== s.agent || meta.created_by !== s.createdBy)) problem(`${handle} has the wrong identity`);
    }
    for (const handle of listed.keys()) {
      if (!ledger.sessions.has(handle)) problem(`session ${handle} was never created`);
    }
    for (const [handle, meta] of listed) {
      const snapshot = await store.loadSession(handle, { withArchive: true });
      if (snapshot === null) {
        problem(`listed ${handle} does not load`);
        continue;
      }
      const steps = await store.readSteps(handle);
      const session = ledger.sessions.get(handle)!;
      const deleting = started(session.deleteStart);
      // Diagnostics only for steps cut short by the power cut, and only where the level allows it.
      for (const d of snapshot.diagnostics) {
        if (!torn.has(`${handle}/${d.step}`)) problem(`${handle} step ${d.step} skipped on load: ${d.reason}`);
      }
      // A marker names a stored archive (a half-undone deletion excepted, below full).
      for (const { line } of steps) {
        const name = (line as { archive_name?: string }).archive_name;
        if (name !== undefined && (await store.getArchive(name)) === null && (strict || !deleting)) problem(`${handle} has a marker for missing archive ${name}`);
      }
      const entries = liveCount(steps);
      // A count lags behind by the bumps of the last moments: at most what the conversation held just before its last compaction.
      const lastBoundary = steps.findLastIndex(({ kind }) => kind === 'compact' || kind === 'legacy-compact');
      const allowed = Math.max(entries, lastBoundary < 0 ? 0 : liveCount(steps.slice(0, lastBoundary)));
      if (level === 'full' && meta.message_count > allowed) problem(`${handle} counts ${meta.message_count} messages, its live conversation holds ${entries}`);
      const title = ledger.titles.get(handle);
      if (strict && title !== undefined && acked(title.ack) && meta.title !== title.title) {
        problem(`acknowledged title of ${handle} is ${JSON.stringify(meta.title)}`);
        lost += 1;
      }
      if (!deleting) {
        const present = onDisk.get(handle) ?? new Set();
        for (const [key, step] of ledger.steps) {
          const [h, n] = key.split('/');
          if (h !== handle || !acked(step.ack)) continue;
          if (!present.has(Number(n)) || torn.has(key)) {
            if (strict) {
              problem(`acknowledged step ${key} is gone`);
              lost += 1;
            } else {
              vanished += 1;
            }
          }
        }
      }
    }
    for (const [name, archive] of ledger.archives) {
      if (!acked(archive.ack) || started(ledger.sessions.get(archive.owner)!.deleteStart)) continue;
      // An archive lives as long as its owner: where the level lets a session vanish, its archives go with it.
      if (!listed.has(archive.owner)) continue;
      if ((await store.getArchive(name)) !== archive.content) {
        problem(`acknowledged archive ${name} is gone`);
        lost += 1;
      }
    }
    // repair() sets every counter the power cut left behind right (the image is an hour old: nobody is writing).
    await store.repair();
    for (const handle of listed.keys()) {
      const entries = liveCount(await store.readSteps(handle));
      const count = (await store.loadSession(handle))!.meta.message_count;
      if (count !== entries) problem(`after repair, ${handle} counts ${count} messages, its live conversation holds ${entries}`);
    }
    // The store goes on: appends land after every step on disk, never over one.
    for (const handle of listed.keys()) {
      const highest = Math.max(0, ...(onDisk.get(handle) ?? []));
      const [n] = await store.appendMessages(handle, [msg('after the power cut')]);
      if (n! <= highest) problem(`append after the crash got step ${n} in ${handle}, where step ${highest} exists`);
      const after = await store.loadSession(handle);
      expect(after?.history.at(-1), at).toEqual(msg('after the power cut'));
    }
    const fresh = await store.createSession('crab', 'after');
    expect(await store.appendMessages(fresh, [msg('x')]), at).toEqual([1]);
  } catch (err) {
    problem(`the store threw: ${(err as Error).stack ?? String(err)}`);
  } finally {
    await store.close();
  }
  return { problems, lost, vanished, torn: torn.size };
}

function policies(randoms: number): Policy[] {
  return [
    { kind: 'synced-only' },
    { kind: 'entries-written-back' },
    { kind: 'all-written-back' },
    ...Array.from({ length: randoms }, (_, i): Policy => ({ kind: 'random', seed: 1 + i })),
  ];
}

const totals = { crashPoints: 0, images: 0, lost: 0, problems: [] as string[], vanished: { full: 0, file: 0, none: 0 }, torn: { full: 0, file: 0, none: 0 } };

async function recordRun(level: Durability, workload: Workload): Promise<{ io: CrashFs; ledger: Ledger; live: string; dispose(): void }> {
  const live = scratchDir('power-live');
  const io = new CrashFs(live);
  const root = path.join(live, 'sessions');
  // The sessions root exists (and is durable) before the run, as a user's folder would.
  io.makeDurableDir(root);
  const ledger: Ledger = { steps: new Map(), sessions: new Map(), archives: new Map(), titles: new Map(), setupOps: io.count };
  const stores: Store[] = [];
  for (let i = 0; i < workload.stores; i++) stores.push(await openStore({ dir: root, durability: level, fs: io, logger: { warn() {} } }));
  await workload.run(stores, tracker(io, ledger));
  for (const store of stores) await store.close();
  return { io, ledger, live, dispose: () => dropDir(live) };
}

describe('2. power loss', () => {
  for (const [w, workload] of WORKLOADS.entries()) for (const level of ['full', 'file', 'none'] as const) {
    it(`at durability ${level}, the disk left by a power cut after any call of workload ${w + 1} (${workload.name}) keeps exactly what the level promises`, async () => {
      const run = await recordRun(level, workload);
      const images = scratchDir('power-images');
      try {
        // The model is faithful: with everything written back it is the live tree.
        const model = new Model();
        run.io.ops.forEach((op) => model.apply(op));
        buildImage(model, { kind: 'all-written-back' }, path.join(images, 'final'));
        const content = (dir: string) => [...snapshotTree(dir)].map(([p, e]) => [p, e.kind, e.content]);
        expect(content(path.join(images, 'final'))).toEqual(content(run.live));

        const replay = new Model();
        const list = policies(workload.randoms);
        let built = 0;
        for (let k = 0; k <= run.io.ops.length; k++) {
          if (k > 0) replay.apply(run.io.ops[k - 1]!);
          if (k < run.ledger.setupOps || (k - run.ledger.setupOps) % workload.stride !== 0) continue;
          totals.crashPoints += 1;
          for (const policy of list) {
            const target = path.join(images, String(built++));
            buildImage(replay, policy, target);
            const result = await checkImage(path.join(target, 'sessions'), k, level, policy, run.ledger);
            totals.images += 1;
            totals.lost += result.lost;
            totals.vanished[level] += result.vanished;
            totals.torn[level] += result.torn;
            totals.problems.push(...result.problems);
            dropDir(target);
          }
        }
        expect(totals.problems.filter((p) => p.startsWith(level))).toEqual([]);
        // The allowances are real, not vacuous: the model did take acknowledged steps and sessions
        // away below full, and cut steps short at none; full kept everything.
        if (level === 'full') expect(totals.vanished.full + totals.torn.full).toBe(0);
        else expect(totals.vanished[level]).toBeGreaterThan(0);
        if (level === 'none') expect(totals.torn.none).toBeGreaterThan(0);
        if (level === 'file') expect(totals.torn.file).toBe(0);
      } finally {
        dropDir(images);
        run.dispose();
      }
    });
  }

  it(
    'a sessions root that openStore creates survives a power cut at durability full',
    async () => {
      const live = scratchDir('power-root');
      const images = scratchDir('power-root-images');
      try {
        const io = new CrashFs(live);
        const store = await openStore({ dir: path.join(live, 'sessions'), durability: 'full', fs: io, logger: { warn() {} } });
        const handle = await store.createSession('crab', 'tg:1');
        expect(await store.appendMessages(handle, [msg('acknowledged')])).toEqual([1]);
        const acked = io.count;
        await store.close();
        const model = new Model();
        io.ops.slice(0, acked).forEach((op) => model.apply(op));
        buildImage(model, { kind: 'synced-only' }, path.join(images, 'image'));
        const after = await openStore({ dir: path.join(images, 'image', 'sessions'), logger: { warn() {} } });
        try {
          expect((await after.loadSession(handle))?.history).toEqual([msg('acknowledged')]);
        } finally {
          await after.close();
        }
      } finally {
        dropDir(images);
        dropDir(live);
      }
    },
  );

  it('lost nothing acknowledged at any crash point', () => {
    report({
      part: '2. power loss',
      invariant: 'after a power cut at any call: at full every acknowledged step, session, archive, deletion and meta update survives and nothing visible is torn; at file and none exactly what the README durability table allows may vanish',
      tried: `${WORKLOADS.length} workloads × 3 durability levels, ${totals.crashPoints} crash points, ${totals.images} disk images (synced only, entries written back, everything written back, and random write-backs)`,
      iterations: totals.images,
      faults: totals.crashPoints,
      lost: totals.lost,
      notes:
        `allowed below full: file lost ${totals.vanished.file} acknowledged items across images, none lost ${totals.vanished.none} and left ${totals.torn.none} steps cut short (skipped with a diagnostic)` +
        (totals.problems.length > 0 ? `; ${totals.problems.length} problems` : ''),
    });
    expect(totals.problems).toEqual([]);
    expect(totals.lost).toBe(0);
    expect(totals.images).toBeGreaterThan(0);
  });
});


