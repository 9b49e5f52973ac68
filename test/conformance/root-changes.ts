// Lookups after other processes changed the sessions: once a store has looked
// at them (so whatever it caches is warm), a session another process created
// is found and listed at once, and one it deleted never comes back, even with
// many changes to a clock tick; on fs also when crabtalk itself makes or
// removes the directories, without stepstore.

import { describe, expect, it } from 'vitest';
import type { Store } from 'stepstore';
import { runWorker, startWorker, type PlainTask, type Worker } from '../helpers/children.js';
import type { Harness } from './harness.js';
import { useFixture, userMessage } from './fixture.js';

const seqOf = (handle: string) => Number(handle.slice(handle.lastIndexOf('_') + 1));
const handlesOf = (listed: { handle: string }[]) => listed.map((s) => s.handle).sort();
const handleRange = (prefix: string, from: number, count: number) => Array.from({ length: count }, (_, i) => `${prefix}${from + i}`);

/**
 * Runs `check(received)` each time new lines have arrived, at once, with the
 * number of lines received before it started, until the worker has exited;
 * then checks it exited cleanly. Returns how many checks ran.
 */
async function onEachArrival(worker: Worker, check: (received: number) => Promise<void>): Promise<number> {
  let exited = false;
  void worker.exited.then(() => (exited = true));
  let checks = 0;
  for (let seen = 0; ; ) {
    if (worker.lines.length === seen) {
      if (exited) break;
      await new Promise<void>((resolve) => {
        worker.child.stdout!.once('data', () => resolve());
        void worker.exited.then(() => resolve());
      });
      continue;
    }
    seen = worker.lines.length;
    await check(seen);
    checks += 1;
  }
  const { code, stderr } = await worker.exited;
  expect(code, stderr).toBe(0);
  return checks;
}

/** The handles a worker's `{ op, handle }` lines acknowledged as created and as deleted, among its first `received` lines. */
function acknowledged(worker: Worker, received: number): { created: string[]; deleted: Set<string> } {
  const lines = worker.lines.slice(0, received) as { op?: string; handle: string }[];
  return {
    created: lines.filter((l) => l.op === undefined || l.op === 'create').map((l) => l.handle),
    deleted: new Set(lines.filter((l) => l.op === 'delete').map((l) => l.handle)),
  };
}

export function rootChangeTests(harness: Harness): void {
  describe('changes by other processes', () => {
    const t = useFixture(harness);
    const plainIt = it.skipIf(harness.plainWrites === undefined);

    /** A store that made `count` sessions of (agent, sender) and one of another pair, then found and listed them. */
    async function warmStore(agent: string, sender: string, count: number): Promise<{ store: Store; handles: string[] }> {
      const store = await t.open();
      expect(await store.findLatestSession(agent, sender)).toBeNull();
      const handles: string[] = [];
      for (let i = 0; i < count; i++) handles.push(await store.createSession(agent, sender));
      const other = await store.createSession(agent, 'bystander');
      expect(await store.findLatestSession(agent, sender)).toBe(handles.at(-1) ?? null);
      expect(handlesOf(await store.listSessions({ agent, createdBy: sender }))).toEqual([...handles].sort());
      expect(handlesOf(await store.listSessions())).toEqual([...handles, other].sort());
      return { store, handles };
    }

    async function plain(task: PlainTask): Promise<Record<string, unknown>[]> {
      const worker = harness.plainWrites!(t.fixture, task);
      const { code, stderr } = await worker.exited;
      expect(code, stderr).toBe(0);
      return worker.lines;
    }

    /** `handle` never comes back from `store`: not found, not listed, not loaded. */
    async function expectGone(store: Store, handle: string, agent: string, sender: string): Promise<void> {
      expect(await store.findLatestSession(agent, sender)).not.toBe(handle);
      expect(handlesOf(await store.listSessions({ agent, createdBy: sender }))).not.toContain(handle);
      expect(handlesOf(await store.listSessions())).not.toContain(handle);
      expect(await store.loadSession(handle)).toBeNull();
    }

    it('a session another process creates is found and listed at once, and the next create here takes the seq after it', async () => {
      const { store, handles } = await warmStore('crab', 'tg:1', 2);
      const spec = t.fixture.workerSpec();
      const [made] = (await runWorker(spec, { name: 'create', agent: 'crab', sender: 'tg:1', count: 1 })) as { handle: string }[];
      expect(made!.handle).toBe('crab_tg-1_3');
      expect(await store.findLatestSession('crab', 'tg:1')).toBe('crab_tg-1_3');
      expect(handlesOf(await store.listSessions({ agent: 'crab', createdBy: 'tg:1' }))).toEqual([...handles, made!.handle].sort());
      expect(handlesOf(await store.listSessions())).toContain(made!.handle);
      expect((await store.loadSession(made!.handle))!.meta).toMatchObject({ agent: 'crab', created_by: 'tg:1', message_count: 0 });
      expect(await store.createSession('crab', 'tg:1')).toBe('crab_tg-1_4');

      // A pair this store never saw.
      const [fresh] = (await runWorker(spec, { name: 'create', agent: 'crab', sender: 'fresh', count: 1 })) as { handle: string }[];
      expect(await store.findLatestSession('crab', 'fresh')).toBe(fresh!.handle);
      expect(handlesOf(await store.listSessions({ agent: 'crab', createdBy: 'fresh' }))).toEqual([fresh!.handle]);
      expect(handlesOf(await store.listSessions())).toContain(fresh!.handle);
      expect(await store.createSession('crab', 'fresh')).toBe('crab_fresh_2');
    });

    it('a session another process deletes is neither found nor listed nor loaded: find falls back to the previous one, then null', async () => {
      const { store, handles } = await warmStore('crab', 'u', 3);
      const [first, second, third] = handles as [string, string, string];
      await store.appendMessages(third, [userMessage('read before the delete')]);
      expect((await store.loadSession(third))!.history).toHaveLength(1);
      const spec = t.fixture.workerSpec();
      const deleteElsewhere = async (handle: string) => {
        const [line] = await runWorker(spec, { name: 'delete', handle });
        expect(line).toEqual({ handle, deleted: true });
      };

      await deleteElsewhere(third);
      await expectGone(store, third, 'crab', 'u');
      expect(await store.findLatestSession('crab', 'u')).toBe(second);
      expect(handlesOf(await store.listSessions({ agent: 'crab', createdBy: 'u' }))).toEqual([first, second]);
      await deleteElsewhere(first);
      await expectGone(store, first, 'crab', 'u');
      expect(await store.findLatestSession('crab', 'u')).toBe(second);
      await deleteElsewhere(second);
      await expectGone(store, second, 'crab', 'u');
      expect(await store.findLatestSession('crab', 'u')).toBeNull();
      expect(await store.listSessions({ agent: 'crab', createdBy: 'u' })).toEqual([]);
      expect(await store.createSession('crab', 'u')).toBe('crab_u_4');
    });

    it('when another process deletes the newest session and creates the next, find gives the new handle and its own meta', async () => {
      const { store, handles } = await warmStore('crab', 'u', 2);
      const spec = t.fixture.workerSpec();
      let newest = handles.at(-1)!;
      for (let round = 0; round < 4; round++) {
        const before = (await store.loadSession(newest))!.meta;
        expect(await store.findLatestSession('crab', 'u')).toBe(newest);
        const lines = (await runWorker(spec, {
          name: 'churn', agent: 'crab', sender: 'u', tag: `r${round}`, count: 1,
          batches: 1, maxBatch: 1, pad: 0, eventsEvery: 0, compactEvery: 0, delayMs: 0,
        })) as { op: string; handle: string; deleted?: boolean; born?: string; error?: string }[];
        expect(lines.filter((l) => l.error !== undefined)).toEqual([]);
        expect(lines.find((l) => l.op === 'delete')).toMatchObject({ handle: newest, deleted: true });
        const made = lines.find((l) => l.op === 'create')!.handle;
        const born = lines.find((l) => l.op === 'born')!.born!;
        expect(seqOf(made)).toBeGreaterThan(seqOf(newest));

        expect(await store.findLatestSession('crab', 'u')).toBe(made);
        const snapshot = (await store.loadSession(made))!;
        expect(snapshot.meta.created_at).toBe(born);
        expect(snapshot.meta.created_at).not.toBe(before.created_at);
        expect(snapshot.meta.message_count).toBe(1);
        expect(snapshot.history).toHaveLength(1);
        await expectGone(store, newest, 'crab', 'u');
        expect(handlesOf(await store.listSessions({ agent: 'crab', createdBy: 'u' }))).toEqual([handles[0]!, made].sort());
        newest = made;
      }
      expect(seqOf(await store.createSession('crab', 'u'))).toBe(seqOf(newest) + 1);
    });

    plainIt('a session crabtalk creates without stepstore (mkdir, then meta renamed in) is found and listed at once, and the next create takes the seq after it', async () => {
      const { store, handles } = await warmStore('crab', 'plain', 2);
      const [made] = (await plain({
        name: 'plain-create', agent: 'crab', sender: 'plain', handles: ['crab_plain_3'], removeEach: false, metaAfterMs: 0, pauseEvery: 0, pauseMs: 0,
      })) as { handle: string; created_at: string }[];
      expect(await store.findLatestSession('crab', 'plain')).toBe('crab_plain_3');
      const listed = await store.listSessions({ agent: 'crab', createdBy: 'plain' });
      expect(handlesOf(listed)).toEqual([...handles, 'crab_plain_3']);
      expect(listed.find((s) => s.handle === 'crab_plain_3')!.meta).toMatchObject({ agent: 'crab', created_by: 'plain', created_at: made!.created_at });
      expect(handlesOf(await store.listSessions())).toContain('crab_plain_3');
      expect((await store.loadSession('crab_plain_3'))!.meta.created_at).toBe(made!.created_at);
      expect(await store.createSession('crab', 'plain')).toBe('crab_plain_4');

      // A pair this store never saw.
      await plain({ name: 'plain-create', agent: 'crab', sender: 'fresh', handles: ['crab_fresh_1'], removeEach: false, metaAfterMs: 0, pauseEvery: 0, pauseMs: 0 });
      expect(await store.findLatestSession('crab', 'fresh')).toBe('crab_fresh_1');
      expect(handlesOf(await store.listSessions())).toContain('crab_fresh_1');
      expect(await store.createSession('crab', 'fresh')).toBe('crab_fresh_2');
    });

    plainIt('a session directory removed with rm -rf by another process is neither found nor listed nor loaded', async () => {
      const { store, handles } = await warmStore('crab', 'u', 3);
      const [first, second, third] = handles as [string, string, string];
      await store.appendMessages(third, [userMessage('read before the rm')]);
      expect((await store.loadSession(third))!.history).toHaveLength(1);

      await plain({ name: 'plain-remove', handles: [third] });
      await expectGone(store, third, 'crab', 'u');
      expect(await store.findLatestSession('crab', 'u')).toBe(second);
      expect(handlesOf(await store.listSessions({ agent: 'crab', createdBy: 'u' }))).toEqual([first, second]);
      await plain({ name: 'plain-remove', handles: [first, second] });
      await expectGone(store, first, 'crab', 'u');
      await expectGone(store, second, 'crab', 'u');
      expect(await store.findLatestSession('crab', 'u')).toBeNull();
      expect(await store.listSessions({ agent: 'crab', createdBy: 'u' })).toEqual([]);
    });

    plainIt('a directory crabtalk made is found once its meta is renamed in, though the root did not change again', async () => {
      const { store, handles } = await warmStore('crab', 'plain', 1);
      const made = handleRange('crab_plain_', 2, 5);
      // Each meta comes 150 ms after its mkdir: the store looks at once, and again once the root's mtime is a tick old.
      const worker = harness.plainWrites!(t.fixture, {
        name: 'plain-create', agent: 'crab', sender: 'plain', handles: made, removeEach: false, metaAfterMs: 150, pauseEvery: 1, pauseMs: 60,
      });
      let previous = handles[0]!;
      await onEachArrival(worker, async (received) => {
        const line = worker.lines[received - 1] as { op: string; handle: string; created_at?: string };
        if (line.op === 'mkdir') {
          for (const wait of [0, 60]) {
            await new Promise((resolve) => setTimeout(resolve, wait));
            expect([previous, line.handle]).toContain(await store.findLatestSession('crab', 'plain'));
            expect(handlesOf(await store.listSessions({ agent: 'crab', createdBy: 'plain' }))).toContain(previous);
          }
          return;
        }
        expect(await store.findLatestSession('crab', 'plain')).toBe(line.handle);
        const listed = await store.listSessions({ agent: 'crab', createdBy: 'plain' });
        expect(listed.find((s) => s.handle === line.handle)?.meta.created_at).toBe(line.created_at);
        expect((await store.loadSession(line.handle))!.meta.created_at).toBe(line.created_at);
        previous = line.handle;
      });
      expect(previous).toBe(made.at(-1));
      expect(await store.createSession('crab', 'plain')).toBe('crab_plain_7');
    });

    describe('many changes to a clock tick', () => {
      // Each check starts only after the lines it counts were received, so every session they
      // acknowledged was made (or removed) before the lookup began.

      /**
       * Follows `worker` with two loops side by side on `store`, one of finds (and loads), one of
       * listings of (crab, sender), each checking what it got against the lines received before it began.
       */
      async function follow(
        store: Store,
        sender: string,
        worker: Worker,
        onFind: (found: string | null, acked: ReturnType<typeof acknowledged>) => Promise<void> | void,
        onList: (listed: string[], acked: ReturnType<typeof acknowledged>) => void,
      ): Promise<void> {
        // The first failure stops the worker, so nothing outlives the test; the other loop then ends.
        const failures: unknown[] = [];
        const stopOn = (err: unknown): never => {
          failures.push(err);
          worker.child.kill('SIGKILL');
          throw err;
        };
        const loops = await Promise.allSettled([
          onEachArrival(worker, async (received) => onFind(await store.findLatestSession('crab', sender), acknowledged(worker, received))).catch(stopOn),
          onEachArrival(worker, async (received) => {
            const acked = acknowledged(worker, received);
            onList(handlesOf(await store.listSessions({ agent: 'crab', createdBy: sender })), acked);
          }).catch(stopOn),
        ]);
        if (failures.length > 0) throw failures[0];
        for (const loop of loops) expect((loop as PromiseFulfilledResult<number>).value).toBeGreaterThan(0);
      }

      /** Follows a worker creating sessions of (crab, sender) after `base`: every lookup sees every creation acknowledged before it began. */
      async function followCreates(store: Store, sender: string, base: string, worker: Worker, count: number): Promise<void> {
        await follow(
          store,
          sender,
          worker,
          (found, { created }) => {
            const newest = created.at(-1)!;
            expect(found !== null && seqOf(found) >= seqOf(newest), `find after ${newest} was acknowledged gave ${found}`).toBe(true);
          },
          (listed, { created }) => {
            const missing = created.filter((h) => !listed.includes(h));
            expect(missing, `listed after ${created.at(-1)} was acknowledged`).toEqual([]);
          },
        );
        const { created } = acknowledged(worker, worker.lines.length);
        expect(created).toHaveLength(count);
        expect(await store.findLatestSession('crab', sender)).toBe(created.at(-1));
        expect(handlesOf(await store.listSessions({ agent: 'crab', createdBy: sender }))).toEqual([base, ...created].sort());
        expect(seqOf(await store.createSession('crab', sender))).toBe(seqOf(created.at(-1)!) + 1);
      }

      /**
       * Follows a worker that creates sessions of (crab, sender) and deletes each right after: a
       * lookup never gives a session whose deletion was acknowledged before it began, and gives
       * `base` (never deleted) or one at least as new as every creation acknowledged.
       */
      async function followCreateDeletes(store: Store, sender: string, base: string, worker: Worker, count: number): Promise<void> {
        await follow(
          store,
          sender,
          worker,
          async (found, { created, deleted }) => {
            const newest = created.at(-1)!;
            expect(found, `find after ${newest} was acknowledged`).not.toBeNull();
            expect(deleted.has(found!), `find gave ${found}, deleted before it began`).toBe(false);
            expect(found === base || seqOf(found!) >= seqOf(newest), `find after ${newest} was acknowledged gave ${found}`).toBe(true);
            const lastDeleted = [...deleted].at(-1);
            if (lastDeleted !== undefined) expect(await store.loadSession(lastDeleted), `${lastDeleted} loaded after its deletion`).toBeNull();
          },
          (listed, { deleted }) => {
            expect(listed).toContain(base);
            expect(listed.filter((h) => deleted.has(h)), 'listed though deleted before the listing began').toEqual([]);
          },
        );
        const { created, deleted } = acknowledged(worker, worker.lines.length);
        expect(created).toHaveLength(count);
        expect(deleted.size).toBe(count);
        expect(await store.findLatestSession('crab', sender)).toBe(base);
        expect(handlesOf(await store.listSessions({ agent: 'crab', createdBy: sender }))).toEqual([base]);
      }

      it('300 sessions created back to back by another process: each is found and listed as soon as it is acknowledged', async () => {
        const { store, handles } = await warmStore('crab', 'loop', 1);
        const worker = startWorker(t.fixture.workerSpec(), { name: 'create', agent: 'crab', sender: 'loop', count: 300 });
        await followCreates(store, 'loop', handles[0]!, worker, 300);
      });

      it('sessions created and deleted back to back by another process: a deleted one is never found nor listed once acknowledged', async () => {
        const { store, handles } = await warmStore('crab', 'churn', 1);
        const worker = startWorker(t.fixture.workerSpec(), { name: 'create-delete', agent: 'crab', sender: 'churn', count: 150 });
        await followCreateDeletes(store, 'churn', handles[0]!, worker, 150);
        // Every seq the other process took stays taken.
        expect(await store.createSession('crab', 'churn')).toBe('crab_churn_152');
      });

      plainIt('400 sessions crabtalk creates in bursts without stepstore: each is found and listed as soon as it is acknowledged', async () => {
        const { store, handles } = await warmStore('crab', 'plain', 1);
        const worker = harness.plainWrites!(t.fixture, {
          name: 'plain-create', agent: 'crab', sender: 'plain', handles: handleRange('crab_plain_', 2, 400), removeEach: false, metaAfterMs: 0, pauseEvery: 100, pauseMs: 60,
        });
        await followCreates(store, 'plain', handles[0]!, worker, 400);
      });

      plainIt('sessions crabtalk creates and removes with rm -rf back to back: a removed one is never found nor listed once acknowledged', async () => {
        const { store, handles } = await warmStore('crab', 'plain', 1);
        const worker = harness.plainWrites!(t.fixture, {
          name: 'plain-create', agent: 'crab', sender: 'plain', handles: handleRange('crab_plain_', 2, 300), removeEach: true, metaAfterMs: 0, pauseEvery: 100, pauseMs: 60,
        });
        await followCreateDeletes(store, 'plain', handles[0]!, worker, 300);
      });
    });
  });
}
