// Issue 17, items 1-4: fork (a new session holding a prefix of another's
// steps), rewind (retracting the steps after a number), fenced writes
// (`expectedStep`: land at exactly n+1 or CONFLICT), and reads from the end
// (`last`, `before`) that read only what they return. The races run in child
// processes (test/helpers/worker.mjs), so every backend gets them.

import { describe, expect, it } from 'vitest';
import { senderSlug, type Store } from 'stepstore';
import { runWorkers } from '../helpers/children.js';
import type { Harness } from './harness.js';
import { doneEvent, expectCode, liveCount, steered, textOf, timeOf, toolStart, useFixture, userMessage, userMessages } from './fixture.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Step numbers 1..n. */
const upTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

/**
 * A session of ('crab', 'u') with a bit of everything:
 * 1-3 messages, 4 an event, 5 the marker of archive `first` ('summary one'), 6-7 messages, 8 an event, 9 a message.
 */
async function mixedSession(store: Store) {
  const handle = await store.createSession('crab', 'u');
  await store.appendMessages(handle, userMessages('old', 3));
  await store.appendEvents(handle, [toolStart('c1')]);
  const first = await store.compact(handle, 'summary one');
  await store.appendMessages(handle, userMessages('new', 2));
  await store.appendEvents(handle, [doneEvent()]);
  await store.appendMessages(handle, [userMessage('last')]);
  return { handle, first };
}

/** What readSteps gives, without the parsed line: numbers and stored texts. */
async function stepTexts(store: Store, handle: string) {
  return (await store.readSteps(handle)).map(({ step, text }) => ({ step, text }));
}

export function historyTests(harness: Harness): void {
  describe('history', () => {
    historyAreas(harness);
  });
}

function historyAreas(harness: Harness): void {
  describe('fork', () => {
    const t = useFixture(harness);

    it('copies every step by default, with the same numbers and texts, and loads the same history', async () => {
      const store = await t.open();
      const { handle, first } = await mixedSession(store);
      const fork = await store.fork(handle);
      expect(fork).not.toBe(handle);
      expect(await stepTexts(store, fork)).toEqual(await stepTexts(store, handle));
      expect((await store.readSteps(fork)).map((s) => s.step)).toEqual(upTo(9));
      const source = (await store.loadSession(handle, { withArchive: true }))!;
      const forked = (await store.loadSession(fork, { withArchive: true }))!;
      expect(forked.history).toEqual(source.history);
      expect(forked.archive).toBe(first);
      expect(forked.archiveContent).toBe('summary one');
      expect(forked.diagnostics).toEqual([]);
      expect(store.resumeHistory(forked)).toEqual(store.resumeHistory(source));
      // Another store sees the same.
      expect(await stepTexts(await t.open(), fork)).toEqual(await stepTexts(store, handle));
    });

    it('with atStep copies steps 1..atStep only', async () => {
      const store = await t.open();
      const { handle, first } = await mixedSession(store);
      const whole = await stepTexts(store, handle);
      for (const atStep of [0, 1, 4, 5, 7, 9]) {
        const fork = await store.fork(handle, { atStep });
        expect(await stepTexts(store, fork), `atStep ${atStep}`).toEqual(whole.slice(0, atStep));
      }
      const beforeMarker = await store.fork(handle, { atStep: 4 });
      const snapshot = (await store.loadSession(beforeMarker, { withArchive: true }))!;
      expect(snapshot.history).toEqual(userMessages('old', 3));
      expect(snapshot.archive).toBeNull();
      const afterMarker = (await store.loadSession(await store.fork(handle, { atStep: 6 }), { withArchive: true }))!;
      expect(afterMarker.history).toEqual([userMessage('new:0')]);
      expect(afterMarker.archive).toBe(first);
      expect(afterMarker.archiveContent).toBe('summary one');
    });

    it("keeps the source's agent, sender, title and unknown fields, with a fresh created_at, its own message_count, forked_from and forked_at_step", async () => {
      const store = await t.open();
      const { handle } = await mixedSession(store);
      const meta = (await store.loadSession(handle))!.meta;
      await store.updateMeta(handle, { ...meta, title: 'Trip to Lisbon 🌦', color: 'blue', nested: { list: [1, null, 'x'] } });
      const sourceMeta = (await store.loadSession(handle))!.meta;
      await sleep(15);
      const startedAt = Date.now();
      const cases: [number | undefined, number][] = [
        // crabtalk's count of the copied live conversation: the summary, then the entries after the marker.
        [undefined, 1 + 3],
        [9, 1 + 3],
        [8, 1 + 2],
        [5, 1],
        [4, 3],
        [2, 2],
        [0, 0],
      ];
      for (const [atStep, count] of cases) {
        const fork = await store.fork(handle, atStep === undefined ? undefined : { atStep });
        const forked = (await store.loadSession(fork))!.meta;
        expect(forked, `atStep ${atStep}`).toEqual({
          ...sourceMeta,
          created_at: expect.any(String),
          updated_at: expect.any(String),
          message_count: count,
          forked_from: handle,
          forked_at_step: atStep ?? 9,
        });
        expect(forked.message_count).toBe(liveCount(await store.readSteps(fork)));
        expect(forked.created_at).not.toBe(sourceMeta.created_at);
        expect(timeOf(forked.created_at)).toBeGreaterThanOrEqual(startedAt);
        expect(timeOf(forked.updated_at)).toBeGreaterThanOrEqual(startedAt);
        // The listing counts the same.
        const listed = (await store.listSessions({ agent: 'crab', createdBy: 'u' })).find((s) => s.handle === fork)!;
        expect(listed.meta.message_count).toBe(count);
      }
      // A fork of a fork names its own source.
      const child = await store.fork(handle, { atStep: 7 });
      const grandchild = await store.fork(child, { atStep: 6 });
      const grandMeta = (await store.loadSession(grandchild))!.meta;
      expect(grandMeta.forked_from).toBe(child);
      expect(grandMeta.forked_at_step).toBe(6);
      expect(grandMeta.color).toBe('blue');
      expect(grandMeta.title).toBe('Trip to Lisbon 🌦');
    });

    it('takes the next seq of the pair, which findLatestSession then returns', async () => {
      const store = await t.open();
      const source = await store.createSession('crab', 'tg:1');
      await store.appendMessages(source, userMessages('m', 2));
      expect(await store.createSession('crab', 'tg:1')).toBe('crab_tg-1_2');
      // An exact-identity neighbour (same slugs) does not share the pair.
      expect(await store.createSession('crab', 'tg-1')).toBe('crab_tg-1_3');
      const fork = await store.fork(source);
      expect(fork).toBe('crab_tg-1_4');
      expect(await store.findLatestSession('crab', 'tg:1')).toBe(fork);
      expect(await store.findLatestSession('crab', 'tg-1')).toBe('crab_tg-1_3');
      const meta = (await store.loadSession(fork))!.meta;
      expect([meta.agent, meta.created_by]).toEqual(['crab', 'tg:1']);
      expect((await store.listSessions({ agent: 'crab', createdBy: 'tg:1' })).map((s) => s.handle).sort()).toEqual(
        ['crab_tg-1_1', 'crab_tg-1_2', fork].sort(),
      );
      expect(await store.createSession('crab', 'tg:1')).toBe('crab_tg-1_5');
    });

    it('appends to a fork and to its source are independent of each other', async () => {
      const store = await t.open();
      const source = await store.createSession('crab', 'u');
      await store.appendMessages(source, userMessages('shared', 3));
      const fork = await store.fork(source);
      expect(await store.appendMessages(fork, [userMessage('fork only')])).toEqual([4]);
      expect(await store.appendMessages(source, [userMessage('source only'), userMessage('source two')])).toEqual([4, 5]);
      expect(await store.appendEvents(fork, [steered('fork event')])).toEqual([5]);
      expect(await store.compact(fork, 'fork summary')).toBe(`${senderSlug(fork)}-1`);
      expect(await store.appendMessages(fork, [userMessage('fork after')])).toEqual([7]);
      // Closing writes the meta bumps still pending, which another store would otherwise see a moment later.
      await store.close();
      const reader = await t.open();
      const sourceSnapshot = (await reader.loadSession(source))!;
      expect(sourceSnapshot.history).toEqual([...userMessages('shared', 3), userMessage('source only'), userMessage('source two')]);
      expect(sourceSnapshot.meta.message_count).toBe(5);
      expect(sourceSnapshot.archive).toBeNull();
      const forkSnapshot = (await reader.loadSession(fork, { withArchive: true }))!;
      expect(forkSnapshot.history).toEqual([userMessage('fork after')]);
      expect(forkSnapshot.archiveContent).toBe('fork summary');
      expect(forkSnapshot.meta.message_count).toBe(2);
      expect((await reader.readSteps(source)).map((s) => s.step)).toEqual(upTo(5));
      expect((await reader.readSteps(fork)).map((s) => s.step)).toEqual(upTo(7));
    });

    it("still resolves its compact markers after its source is deleted, and resumes with the source's summary", async () => {
      const store = await t.open();
      const { handle, first } = await mixedSession(store);
      const fork = await store.fork(handle);
      expect(await store.deleteSession(handle)).toBe(true);
      const reader = await t.open();
      expect(await reader.loadSession(handle)).toBeNull();
      expect(await reader.getArchive(first)).toBe('summary one');
      const snapshot = (await reader.loadSession(fork, { withArchive: true }))!;
      expect(snapshot.archive).toBe(first);
      expect(snapshot.archiveContent).toBe('summary one');
      expect(reader.resumeHistory(snapshot)).toEqual([userMessage('summary one'), ...userMessages('new', 2), userMessage('last')]);
      // Once nothing references it any more, the archive goes.
      expect(await reader.deleteSession(fork)).toBe(true);
      expect(await reader.getArchive(first)).toBeNull();
    });

    it('deleted, never touches its source or the archives the source made', async () => {
      const store = await t.open();
      const { handle, first } = await mixedSession(store);
      const before = await stepTexts(store, handle);
      const sourceMeta = (await store.loadSession(handle))!.meta;
      const fork = await store.fork(handle);
      const own = await store.compact(fork, 'the fork summary');
      expect(await store.deleteSession(fork)).toBe(true);
      await store.close();
      const reader = await t.open();
      expect(await reader.loadSession(fork)).toBeNull();
      expect(await reader.getArchive(own)).toBeNull();
      expect(await reader.getArchive(first)).toBe('summary one');
      expect(await stepTexts(reader, handle)).toEqual(before);
      const snapshot = (await reader.loadSession(handle, { withArchive: true }))!;
      expect(snapshot.meta).toEqual(sourceMeta);
      expect(snapshot.archiveContent).toBe('summary one');
      expect(await reader.appendMessages(handle, [userMessage('still mine')])).toEqual([10]);
    });

    it("a fork of a fork still resolves every marker after both its ancestors are deleted", async () => {
      const store = await t.open();
      const { handle: grandparent, first } = await mixedSession(store);
      const parent = await store.fork(grandparent);
      await store.appendMessages(parent, [userMessage('parent')]);
      const second = await store.compact(parent, 'summary two');
      await store.appendMessages(parent, [userMessage('after two')]);
      const child = await store.fork(parent);
      expect(await store.deleteSession(grandparent)).toBe(true);
      expect(await store.deleteSession(parent)).toBe(true);
      const reader = await t.open();
      expect(await reader.getArchive(first)).toBe('summary one');
      expect(await reader.getArchive(second)).toBe('summary two');
      const snapshot = (await reader.loadSession(child, { withArchive: true }))!;
      expect(reader.resumeHistory(snapshot)).toEqual([userMessage('summary two'), userMessage('after two')]);
      // Back before the parent's marker, the grandparent's summary is what resumes.
      expect(await reader.rewind(child, 10)).toBe(2);
      expect(await reader.getArchive(second)).toBeNull();
      const rewound = (await reader.loadSession(child, { withArchive: true }))!;
      expect(rewound.archive).toBe(first);
      expect(reader.resumeHistory(rewound)).toEqual([
        userMessage('summary one'),
        ...userMessages('new', 2),
        userMessage('last'),
        userMessage('parent'),
      ]);
    });

    it('fails SESSION_NOT_FOUND without a source and INVALID_OPTION for a bad atStep, creating nothing', async () => {
      const store = await t.open();
      const { handle } = await mixedSession(store);
      const listed = async () => (await store.listSessions()).map((s) => s.handle).sort();
      const sessions = await listed();
      await expectCode(store.fork('crab_nobody_1'), 'SESSION_NOT_FOUND');
      await expectCode(store.fork('crab_u_7'), 'SESSION_NOT_FOUND');
      for (const atStep of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '3', null, 10, 11]) {
        await expectCode(store.fork(handle, { atStep: atStep as number }), 'INVALID_OPTION');
      }
      await expectCode(store.fork('crab_nobody_1', { atStep: -1 }), 'INVALID_OPTION');
      expect(await listed()).toEqual(sessions);
      expect(await store.findLatestSession('crab', 'u')).toBe(handle);
      expect(await store.createSession('crab', 'u')).toBe('crab_u_2');
      await store.deleteSession(handle);
      await expectCode(store.fork(handle), 'SESSION_NOT_FOUND');
    });
  });

  describe('rewind', () => {
    const t = useFixture(harness);

    it('returns how many steps it retracted, and loads, reads and listings no longer see them', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, userMessages('a', 5));
      await store.appendEvents(handle, [doneEvent()]);
      await store.appendMessages(handle, userMessages('b', 4));
      const kept = (await stepTexts(store, handle)).slice(0, 6);
      expect(await store.rewind(handle, 6)).toBe(4);
      for (const reader of [store, await t.open()]) {
        expect(await stepTexts(reader, handle)).toEqual(kept);
        expect(await reader.readSteps(handle, { after: 6 })).toEqual([]);
        expect((await reader.readSteps(handle, { last: 2 })).map((s) => s.step)).toEqual([5, 6]);
        const snapshot = (await reader.loadSession(handle))!;
        expect(snapshot.history).toEqual(userMessages('a', 5));
        expect(snapshot.meta.message_count).toBe(5);
        const [listed] = await reader.listSessions({ agent: 'crab', createdBy: 'u' });
        expect(listed!.meta.message_count).toBe(5);
      }
      expect(await store.rewind(handle, 3)).toBe(3);
      expect((await store.loadSession(handle))!.history).toEqual(userMessages('a', 3));
      expect((await store.loadSession(handle))!.meta.message_count).toBe(3);
    });

    it('the next append lands at toStep + 1, from this store and from one that wrote before the rewind', async () => {
      const store = await t.open();
      const other = await t.open();
      const handle = await store.createSession('crab', 'u');
      expect(await other.appendMessages(handle, userMessages('a', 10))).toEqual(upTo(10));
      expect(await store.rewind(handle, 6)).toBe(4);
      expect(await store.appendMessages(handle, [userMessage('mine')])).toEqual([7]);
      expect(await other.appendMessages(handle, [userMessage('other')])).toEqual([8]);
      expect(await store.rewind(handle, 2)).toBe(6);
      expect(await other.appendMessages(handle, [userMessage('other again')])).toEqual([3]);
      await Promise.all([store.close(), other.close()]);
      const reader = await t.open();
      expect((await reader.readSteps(handle)).map((s) => s.line)).toEqual([...userMessages('a', 2), userMessage('other again')]);
      // Both stores have closed: the bumps of their appends (some retracted since) are all written.
      expect((await reader.loadSession(handle))!.meta.message_count, 'message_count after both stores closed').toBe(3);
    });

    it('to the highest step or beyond retracts nothing and changes nothing', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      expect(await store.rewind(handle, 0)).toBe(0);
      await store.appendMessages(handle, userMessages('a', 4));
      await store.compact(handle, 'summary');
      const steps = await stepTexts(store, handle);
      const snapshot = await store.loadSession(handle, { withArchive: true });
      for (const toStep of [5, 6, 1000, Number.MAX_SAFE_INTEGER]) expect(await store.rewind(handle, toStep)).toBe(0);
      expect(await store.loadSession(handle, { withArchive: true })).toEqual(snapshot);
      await store.close();
      const reader = await t.open();
      expect(await stepTexts(reader, handle)).toEqual(steps);
      expect(await reader.loadSession(handle, { withArchive: true })).toEqual(snapshot);
      expect(await reader.appendMessages(handle, [userMessage('next')])).toEqual([6]);
    });

    it('to 0 empties the session, which stays a session', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, userMessages('a', 3));
      const name = await store.compact(handle, 'summary');
      expect(await store.rewind(handle, 0)).toBe(4);
      expect(await store.getArchive(name)).toBeNull();
      const snapshot = (await store.loadSession(handle))!;
      expect(snapshot.history).toEqual([]);
      expect(snapshot.archive).toBeNull();
      expect(snapshot.meta.message_count).toBe(0);
      expect(await store.readSteps(handle)).toEqual([]);
      expect(await store.findLatestSession('crab', 'u')).toBe(handle);
      expect(await store.appendMessages(handle, [userMessage('again')])).toEqual([1]);
    });

    it("across a compact marker replays from the boundary before it, and removes the retracted marker's archive", async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, userMessages('a', 2));
      const first = await store.compact(handle, 'first summary');
      await store.appendMessages(handle, [userMessage('b')]);
      const second = await store.compact(handle, 'second summary');
      await store.appendMessages(handle, [userMessage('c')]);
      expect(await store.rewind(handle, 4)).toBe(2);
      const reader = await t.open();
      expect(await reader.getArchive(second)).toBeNull();
      expect(await reader.getArchive(first)).toBe('first summary');
      const snapshot = (await reader.loadSession(handle, { withArchive: true }))!;
      expect(snapshot.archive).toBe(first);
      expect(snapshot.history).toEqual([userMessage('b')]);
      expect(snapshot.meta.message_count).toBe(1 + 1);
      expect(reader.resumeHistory(snapshot)).toEqual([userMessage('first summary'), userMessage('b')]);
      expect(await reader.rewind(handle, 2)).toBe(2);
      expect(await reader.getArchive(first)).toBeNull();
      const none = (await reader.loadSession(handle, { withArchive: true }))!;
      expect(none.archive).toBeNull();
      expect(none.history).toEqual(userMessages('a', 2));
      expect(none.meta.message_count).toBe(2);
      // A later compaction stores its own summary, and loads resolve it.
      const third = await reader.compact(handle, 'third summary');
      expect((await reader.loadSession(handle, { withArchive: true }))!.archiveContent).toBe('third summary');
      expect(await reader.getArchive(third)).toBe('third summary');
    });

    it("keeps a retracted marker's archive while a fork still references it", async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, [userMessage('a')]);
      const name = await store.compact(handle, 'shared summary');
      await store.appendMessages(handle, [userMessage('b')]);
      const fork = await store.fork(handle);
      expect(await store.rewind(handle, 1)).toBe(2);
      expect(await store.getArchive(name)).toBe('shared summary');
      expect((await store.loadSession(handle, { withArchive: true }))!.archive).toBeNull();
      const forked = (await store.loadSession(fork, { withArchive: true }))!;
      expect(store.resumeHistory(forked)).toEqual([userMessage('shared summary'), userMessage('b')]);
      // The fork's own rewind drops the last reference.
      expect(await store.rewind(fork, 1)).toBe(2);
      expect(await store.getArchive(name)).toBeNull();
    });

    it('fails INVALID_OPTION for a bad toStep and SESSION_NOT_FOUND without a session, changing nothing', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, userMessages('a', 3));
      const steps = await stepTexts(store, handle);
      for (const toStep of [-1, 1.5, Number.NaN, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY, 2 ** 53, '1', null, undefined]) {
        await expectCode(store.rewind(handle, toStep as number), 'INVALID_OPTION');
      }
      await expectCode(store.rewind('crab_nobody_1', 0), 'SESSION_NOT_FOUND');
      await expectCode(store.rewind('crab_u_2', 1), 'SESSION_NOT_FOUND');
      expect(await stepTexts(store, handle)).toEqual(steps);
      expect((await store.loadSession(handle))!.meta.message_count).toBe(3);
      await store.deleteSession(handle);
      await expectCode(store.rewind(handle, 0), 'SESSION_NOT_FOUND');
    });
  });

  describe('fenced writes', () => {
    const t = useFixture(harness);

    it('land at expectedStep + 1 when the highest step is expectedStep', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      expect(await store.appendMessages(handle, userMessages('a', 2), { expectedStep: 0 })).toEqual([1, 2]);
      expect(await store.appendEvents(handle, [doneEvent()], { expectedStep: 2 })).toEqual([3]);
      const name = await store.compact(handle, 'summary', { expectedStep: 3 });
      expect(name).toBe(`${senderSlug(handle)}-1`);
      await store.close();
      // From another store, which has not written yet.
      const other = await t.open();
      expect(await other.appendMessages(handle, [userMessage('b')], { expectedStep: 4 })).toEqual([5]);
      const steps = await other.readSteps(handle);
      expect(steps.map((s) => s.kind)).toEqual(['entry', 'entry', 'event', 'compact', 'entry']);
      expect(steps[3]!.line).toEqual({ archive_name: name, archived_at: expect.any(String) });
      const snapshot = (await other.loadSession(handle, { withArchive: true }))!;
      expect(other.resumeHistory(snapshot)).toEqual([userMessage('summary'), userMessage('b')]);
      expect(snapshot.meta.message_count).toBe(2);
    });

    it('conflict and write nothing when the highest step is another (a compact stores no archive)', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, userMessages('a', 3));
      const steps = await stepTexts(store, handle);
      const meta = (await store.loadSession(handle))!.meta;
      const written = store.stats().stepsWritten;
      for (const expectedStep of [0, 2, 4, 100]) {
        await expectCode(store.appendMessages(handle, [userMessage('x')], { expectedStep }), 'CONFLICT');
        await expectCode(store.appendEvents(handle, [doneEvent()], { expectedStep }), 'CONFLICT');
        await expectCode(store.compact(handle, 'never stored', { expectedStep }), 'CONFLICT');
      }
      expect(store.stats().stepsWritten).toBe(written);
      expect((await store.loadSession(handle))!.meta).toEqual(meta);
      await store.close();
      const reader = await t.open();
      expect(await stepTexts(reader, handle)).toEqual(steps);
      expect((await reader.loadSession(handle))!.meta).toEqual(meta);
      for (let n = 1; n <= 12; n++) expect(await reader.getArchive(`${senderSlug(handle)}-${n}`)).toBeNull();
      expect(await reader.appendMessages(handle, [userMessage('b')], { expectedStep: 3 })).toEqual([4]);
    });

    it('a retry of a fenced write that succeeded conflicts rather than writing twice', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      expect(await store.appendMessages(handle, userMessages('a', 2), { expectedStep: 0 })).toEqual([1, 2]);
      await expectCode(store.appendMessages(handle, userMessages('a', 2), { expectedStep: 0 }), 'CONFLICT');
      expect(await store.appendEvents(handle, [doneEvent()], { expectedStep: 2 })).toEqual([3]);
      await expectCode(store.appendEvents(handle, [doneEvent()], { expectedStep: 2 }), 'CONFLICT');
      const name = await store.compact(handle, 'once', { expectedStep: 3 });
      await expectCode(store.compact(handle, 'once', { expectedStep: 3 }), 'CONFLICT');
      const steps = await (await t.open()).readSteps(handle);
      expect(steps.map((s) => s.kind)).toEqual(['entry', 'entry', 'event', 'compact']);
      expect(await store.getArchive(name)).toBe('once');
      for (let n = 1; n <= 6; n++) {
        const other = `${senderSlug(handle)}-${n}`;
        if (other !== name) expect(await store.getArchive(other)).toBeNull();
      }
      expect((await store.loadSession(handle))!.meta.message_count).toBe(1);
    });

    it('racing in one store with the same expectedStep, exactly one wins', async () => {
      const store = await t.open();
      const other = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, [userMessage('first')]);
      const outcomes = await Promise.allSettled(
        Array.from({ length: 6 }, (_, i) =>
          (i % 2 ? store : other).appendMessages(handle, userMessages(`w${i}`, 2), { expectedStep: 1 }),
        ),
      );
      const won = outcomes.filter((o) => o.status === 'fulfilled');
      expect(won).toHaveLength(1);
      expect((won[0] as PromiseFulfilledResult<number[]>).value).toEqual([2, 3]);
      for (const o of outcomes) if (o.status === 'rejected') expect((o.reason as { code?: string }).code).toBe('CONFLICT');
      expect((await store.readSteps(handle)).map((s) => s.step)).toEqual([1, 2, 3]);
    });

    it('refuse an expectedStep that is not an integer >= 0 with INVALID_OPTION, writing nothing', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, [userMessage('a')]);
      for (const expectedStep of [-1, 0.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '1', null]) {
        const fence = { expectedStep: expectedStep as number };
        await expectCode(store.appendMessages(handle, [userMessage('x')], fence), 'INVALID_OPTION');
        await expectCode(store.appendEvents(handle, [doneEvent()], fence), 'INVALID_OPTION');
        await expectCode(store.compact(handle, 'x', fence), 'INVALID_OPTION');
      }
      expect((await store.readSteps(handle)).map((s) => s.step)).toEqual([1]);
      expect(await store.getArchive(`${senderSlug(handle)}-1`)).toBeNull();
    });

    it('two processes racing fenced writes with the same expectedStep: exactly one wins each round, and no number is lost or doubled', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      const rounds = 20;
      const batch = 3;
      // Both try each round at one time (by the clock, once both have started), give or take 4 ms.
      const schedule = { startAt: Date.now() + 700, periodMs: 30 };
      const outputs = (await runWorkers(t.fixture.workerSpec(), [
        { name: 'fenced-race', handle, tag: 'p', rounds, batch, ...schedule },
        { name: 'fenced-race', handle, tag: 'q', rounds, batch, ...schedule },
      ])) as {
        round: number;
        expectedStep: number;
        kind: string;
        steps?: number[];
        archive?: string;
        error?: string;
      }[][];
      const reader = await t.open();
      const steps = await reader.readSteps(handle);
      const compactRounds = Math.floor(rounds / 5);
      expect(steps.map((s) => s.step)).toEqual(upTo(compactRounds + (rounds - compactRounds) * batch));
      let expectedStep = 0;
      const archives = new Map<string, string>();
      for (let round = 0; round < rounds; round++) {
        const tries = outputs.map((lines) => lines.find((l) => l.round === round)!);
        const winners = tries.filter((l) => l.error === undefined);
        expect(winners, `round ${round}: ${JSON.stringify(tries)}`).toHaveLength(1);
        const winner = winners[0]!;
        const loser = tries.find((l) => l !== winner)!;
        expect(loser.error).toBe('CONFLICT');
        expect(winner.expectedStep).toBe(expectedStep);
        const tag = `${winner === tries[0] ? 'p' : 'q'}:${round}`;
        if (winner.kind === 'compact') {
          archives.set(winner.archive!, `${tag} summary`);
          expect(steps[expectedStep]!.line).toEqual({ archive_name: winner.archive, archived_at: expect.any(String) });
          expectedStep += 1;
        } else {
          expect(winner.steps).toEqual(Array.from({ length: batch }, (_, j) => expectedStep + 1 + j));
          for (let j = 0; j < batch; j++) {
            const line = steps[expectedStep + j]!.line as Record<string, unknown>;
            const text = winner.kind === 'event' ? String(line.content) : textOf(line as { message: Record<string, unknown> });
            expect(text.startsWith(`${tag}:${j} `), `${text} is ${tag}:${j}`).toBe(true);
          }
          expectedStep += batch;
        }
      }
      expect(expectedStep).toBe(steps.length);
      // The losers' compactions stored no archive.
      for (let n = 1; n <= 2 * archives.size + 4; n++) {
        const name = `${senderSlug(handle)}-${n}`;
        expect(await reader.getArchive(name), name).toBe(archives.get(name) ?? null);
      }
      const snapshot = (await reader.loadSession(handle))!;
      expect(snapshot.diagnostics).toEqual([]);
      expect(snapshot.meta.message_count).toBe(liveCount(steps));
    });
  });

  describe('rewind and appends in two processes', () => {
    const t = useFixture(harness);

    it('one process rewinding while another appends leaves steps 1..highest with no hole or repeat, each holding what was acknowledged for it', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, userMessages('seed', 5));
      const [appended, rewinds] = (await runWorkers(t.fixture.workerSpec(), [
        { name: 'append-for', handle, tag: 'w', durationMs: 1000 },
        { name: 'rewind-loop', handle, durationMs: 1000, maxBack: 3, delayMs: 2 },
      ])) as [{ i: number; step: number; content: string }[], { toStep: number; retracted: number }[]];
      expect(appended.length).toBeGreaterThan(10);
      expect(rewinds.some((r) => r.retracted > 0)).toBe(true);
      const reader = await t.open();
      const steps = await reader.readSteps(handle);
      expect(steps.map((s) => s.step)).toEqual(upTo(steps.length));
      // Each step holds a seed or a message acknowledged at exactly that number; a writer's survivors stay in its order.
      const ackedAt = new Map(appended.map((a) => [a.content, a.step]));
      const survivors: number[] = [];
      for (const { step, line } of steps) {
        const text = textOf(line as { message: Record<string, unknown> });
        if (text.startsWith('seed:')) {
          expect(step).toBe(Number(text.slice(5)) + 1);
          continue;
        }
        expect(ackedAt.get(text), text).toBe(step);
        survivors.push(Number(text.slice(2)));
      }
      expect(survivors).toEqual([...survivors].sort((a, b) => a - b));
      const snapshot = (await reader.loadSession(handle))!;
      expect(snapshot.diagnostics).toEqual([]);
      expect(snapshot.history).toHaveLength(steps.length);
      // Every writer has closed, so no bump is pending anywhere: the count is exact.
      expect(snapshot.meta.message_count, 'message_count once both processes are done').toBe(steps.length);
      expect(await reader.appendMessages(handle, [userMessage('after')])).toEqual([steps.length + 1]);
    });
  });

  describe('fenced rewind', () => {
    const t = useFixture(harness);

    it('retracts only while expectedStep is the highest step, else CONFLICT with nothing retracted', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, userMessages('a', 4));
      await expectCode(store.rewind(handle, 2, { expectedStep: 3 }), 'CONFLICT');
      await expectCode(store.rewind(handle, 2, { expectedStep: 5 }), 'CONFLICT');
      expect((await store.readSteps(handle)).map((s) => s.step)).toEqual([1, 2, 3, 4]);
      await expectCode(store.rewind(handle, 2, { expectedStep: -1 }), 'INVALID_OPTION');
      expect(await store.rewind(handle, 2, { expectedStep: 4 })).toBe(2);
      expect(await store.rewind(handle, 2, { expectedStep: 2 })).toBe(0);
      const reader = await t.open();
      expect((await reader.loadSession(handle))!.history).toEqual(userMessages('a', 2));
      expect(await reader.appendMessages(handle, [userMessage('next')])).toEqual([3]);
    });

    it('a process retracting its own newest step with a fence never retracts another process\'s acknowledged append', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, userMessages('seed', 2));
      const [appended, own] = (await runWorkers(t.fixture.workerSpec(), [
        { name: 'append-for', handle, tag: 'w', durationMs: 1000 },
        { name: 'append-then-retract', handle, tag: 'r', durationMs: 1000 },
      ])) as [{ step: number; content: string }[], { step: number; content: string; retracted: number | 'conflict' }[]];
      expect(appended.length).toBeGreaterThan(10);
      expect(own.some((o) => o.retracted === 1)).toBe(true);
      const steps = await (await t.open()).readSteps(handle);
      expect(steps.map((s) => s.step)).toEqual(upTo(steps.length));
      const stored = new Map(steps.map((s) => [textOf(s.line as { message: Record<string, unknown> }), s.step]));
      // Every acknowledged append of the other process is there, at the step it was acknowledged for.
      for (const { content, step } of appended) expect(stored.get(content), content).toBe(step);
      // A retract that succeeded took exactly its own step; one refused left it.
      for (const { content, step, retracted } of own) {
        if (retracted === 'conflict') expect(stored.get(content), content).toBe(step);
        else {
          expect(retracted, content).toBe(1);
          expect(stored.has(content), content).toBe(false);
        }
      }
    });
  });

  describe('reads from the end', () => {
    const t = useFixture(harness);

    it('readSteps { last } gives the last n steps, oldest first', async () => {
      const store = await t.open();
      const { handle } = await mixedSession(store);
      const whole = await store.readSteps(handle);
      expect(await store.readSteps(handle, { last: 1 })).toEqual(whole.slice(-1));
      expect(await store.readSteps(handle, { last: 4 })).toEqual(whole.slice(-4));
      expect(await store.readSteps(handle, { last: 9 })).toEqual(whole);
      expect(await store.readSteps(handle, { last: 1000 })).toEqual(whole);
      expect(await store.readSteps(await store.createSession('crab', 'u'), { last: 3 })).toEqual([]);
      await expectCode(store.readSteps('crab_nobody_1', { last: 3 }), 'SESSION_NOT_FOUND');
    });

    it('readSteps { before, limit } pages back to step 1, giving each step exactly once', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, userMessages('a', 10));
      await store.compact(handle, 'summary');
      await store.appendEvents(handle, [doneEvent(), steered('s')]);
      await store.appendMessages(handle, userMessages('b', 12));
      const whole = await store.readSteps(handle);
      expect(whole).toHaveLength(25);
      const pages: number[][] = [];
      let before = 26;
      for (;;) {
        const page = await store.readSteps(handle, { before, limit: 4 });
        if (page.length === 0) break;
        expect(page.length).toBeLessThanOrEqual(4);
        expect(page).toEqual(whole.slice(Math.max(0, before - 1 - 4), before - 1));
        pages.push(page.map((s) => s.step));
        before = page[0]!.step;
      }
      expect(pages).toHaveLength(7);
      expect(pages.reverse().flat()).toEqual(upTo(25));
      expect(await store.readSteps(handle, { before: 11 })).toEqual(whole.slice(0, 10));
      expect(await store.readSteps(handle, { before: 1000, limit: 2 })).toEqual(whole.slice(-2));
      expect(await store.readSteps(handle, { before: 1 })).toEqual([]);
    });

    it('loadSession { last } holds only the last n entries after the boundary', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, userMessages('old', 4));
      const name = await store.compact(handle, 'summary');
      await store.appendMessages(handle, userMessages('new', 3));
      await store.appendEvents(handle, [doneEvent()]);
      await store.appendMessages(handle, userMessages('newer', 2));
      const full = (await store.loadSession(handle, { withArchive: true }))!;
      expect(full.history).toHaveLength(5);
      const tail = (await store.loadSession(handle, { last: 3 }))!;
      expect(tail.history).toEqual([userMessage('new:2'), ...userMessages('newer', 2)]);
      expect(tail.meta).toEqual(full.meta);
      expect(tail.diagnostics).toEqual([]);
      // Asking for as many as there are, or more, never reaches past the boundary, and the archive is as usual.
      for (const last of [5, 6, 1000]) {
        const all = (await store.loadSession(handle, { last, withArchive: true }))!;
        expect(all.history).toEqual(full.history);
        expect(all.archive).toBe(name);
        expect(all.archiveContent).toBe('summary');
        expect(store.resumeHistory(all)).toEqual(store.resumeHistory(full));
      }
      const plain = await store.createSession('crab', 'v');
      await store.appendMessages(plain, userMessages('m', 6));
      expect((await store.loadSession(plain, { last: 2 }))!.history).toEqual(userMessages('m', 6).slice(-2));
      expect((await store.loadSession(plain, { last: 6 }))!.history).toEqual(userMessages('m', 6));
      expect(await store.loadSession('crab_nobody_1', { last: 2 })).toBeNull();
    });

    it('each read from the end reads only the steps it returns', async () => {
      const writer = await t.open();
      const handle = await writer.createSession('crab', 'u');
      for (let start = 0; start < 2000; start += 500) await writer.appendMessages(handle, userMessages(`m${start}`, 500));
      await writer.close();
      const reader = await t.open();
      const slack = 10;
      const measure = async <T>(read: () => Promise<T>): Promise<[T, number]> => {
        const before = reader.stats().stepsRead;
        const result = await read();
        return [result, reader.stats().stepsRead - before];
      };

      const [last, lastRead] = await measure(() => reader.readSteps(handle, { last: 20 }));
      expect(last.map((s) => s.step)).toEqual(Array.from({ length: 20 }, (_, i) => 1981 + i));
      expect(lastRead).toBeGreaterThanOrEqual(20);
      expect(lastRead).toBeLessThanOrEqual(20 + slack);

      const [page, pageRead] = await measure(() => reader.readSteps(handle, { before: 1001, limit: 20 }));
      expect(page.map((s) => s.step)).toEqual(Array.from({ length: 20 }, (_, i) => 981 + i));
      expect(pageRead).toBeLessThanOrEqual(20 + slack);

      const [snapshot, loadRead] = await measure(() => reader.loadSession(handle, { last: 20 }));
      expect(snapshot!.history.map((e) => textOf(e))).toEqual(Array.from({ length: 20 }, (_, i) => `m1500:${480 + i}`));
      expect(loadRead).toBeLessThanOrEqual(20 + slack);

      // The counter does count every step a whole read takes, so the bounds above can fail.
      const [, wholeRead] = await measure(() => reader.readSteps(handle));
      expect(wholeRead).toBeGreaterThanOrEqual(2000);
      const [, fullLoadRead] = await measure(() => reader.loadSession(handle));
      expect(fullLoadRead).toBeGreaterThanOrEqual(2000);
    });

    const BAD_READS: [string, Record<string, unknown>][] = [
      ['last with after', { last: 2, after: 1 }],
      ['last with before', { last: 2, before: 5 }],
      ['last with limit', { last: 2, limit: 1 }],
      ['before with after', { before: 5, after: 1 }],
      ['before with after and limit', { before: 5, after: 1, limit: 2 }],
      ['a negative last', { last: -1 }],
      ['a fractional last', { last: 1.5 }],
      ['a string last', { last: '2' }],
      ['a NaN last', { last: Number.NaN }],
      ['a null last', { last: null }],
      ['a negative before', { before: -1 }],
      ['a fractional before', { before: 2.5 }],
      ['a string before', { before: '5' }],
      ['an infinite before', { before: Number.POSITIVE_INFINITY }],
    ];

    it.each(BAD_READS)('readSteps refuses %s with INVALID_OPTION', async (_, opts) => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, userMessages('m', 6));
      await expectCode(store.readSteps(handle, opts as { last?: number }), 'INVALID_OPTION');
    });

    it('loadSession refuses a last that is not a positive integer with INVALID_OPTION', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, userMessages('m', 3));
      for (const last of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '2', null]) {
        await expectCode(store.loadSession(handle, { last: last as number }), 'INVALID_OPTION');
      }
    });
  });
}
