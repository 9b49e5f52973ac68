// Behaviour 10 of the core issue: compact() stores the summary as archive
// `{senderSlug(handle)}-{n}` (n claimed exclusively) then appends the marker;
// sessions sharing an archive base keep their own archives; withArchive and
// resumeHistory follow crabtalk's resume rule; archive names are checked;
// message_count follows crabtalk's rule (1 for the summary after a compaction).

import { describe, expect, it } from 'vitest';
import { senderSlug } from 'stepstore';
import type { Harness } from './harness.js';
import { doneEvent, eventually, expectCode, useFixture, userMessage, userMessages } from './fixture.js';

/** Names senderSlug could never produce, or too long for a file name. */
export const BAD_ARCHIVE_NAMES: readonly unknown[] = [
  '',
  'a/b',
  '/etc/passwd',
  'a\\b',
  '..',
  '.',
  'a.b',
  '.stepstore',
  'a_b',
  'crab_tg_1',
  'a\u0000b',
  'a b',
  'a\tb',
  ' a',
  'a\n',
  'A',
  'Crab-1',
  '-a',
  'a-',
  'a--b',
  'x'.repeat(256),
  'é'.repeat(128),
  42,
  null,
  undefined,
];

export function compactTests(harness: Harness): void {
  describe('compact', () => {
    const t = useFixture(harness);

    it('names archives {senderSlug(handle)}-{n}: crab_tg-12345_1 gives crab-tg-12345-1-1, then -2', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'tg:12345');
      expect(handle).toBe('crab_tg-12345_1');
      expect(await store.compact(handle, 'first')).toBe('crab-tg-12345-1-1');
      expect(await store.compact(handle, 'second')).toBe('crab-tg-12345-1-2');
      const restarted = await t.open();
      expect(await restarted.compact(handle, 'third')).toBe('crab-tg-12345-1-3');
      expect(senderSlug(handle)).toBe('crab-tg-12345-1');
    });

    it('stores the summary before the marker that names it, and the summary reads back exactly', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, userMessages('before', 3));
      const summary = 'They talked about 🌦 in Lisbon.\nLine two: "quotes" \\ \u0000 \ud83d\ude00';
      const name = await store.compact(handle, summary);
      await store.appendMessages(handle, [userMessage('after')]);
      const restarted = await t.open();
      expect(await restarted.getArchive(name)).toBe(summary);
      const steps = await restarted.readSteps(handle);
      expect(steps.map((s) => s.line)).toEqual([
        ...userMessages('before', 3),
        { archive_name: name, archived_at: expect.any(String) },
        userMessage('after'),
      ]);
      const snapshot = (await restarted.loadSession(handle, { withArchive: true }))!;
      expect(snapshot.history).toEqual([userMessage('after')]);
      expect(snapshot.archive).toBe(name);
      expect(snapshot.archiveContent).toBe(summary);
    });

    it('concurrent compactions of one session claim distinct archive numbers', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      const names = await Promise.all(Array.from({ length: 8 }, (_, i) => store.compact(handle, `summary ${i}`)));
      expect([...names].sort()).toEqual(Array.from({ length: 8 }, (_, i) => `crab-u-1-${i + 1}`).sort());
      for (const [i, name] of names.entries()) expect(await store.getArchive(name)).toBe(`summary ${i}`);
    });

    it('two stores compacting at once claim distinct archive numbers', async () => {
      const a = await t.open();
      const b = await t.open();
      const handle = await a.createSession('crab', 'u');
      const names = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).compact(handle, `s${i}`)));
      expect(new Set(names).size).toBe(10);
      for (const [i, name] of names.entries()) expect(await a.getArchive(name)).toBe(`s${i}`);
    });

    it('sessions sharing an archive base each keep their own archives, and delete removes only its own', async () => {
      const store = await t.open();
      const dashAgent = await store.createSession('crab-tg', '1');
      const dashSender = await store.createSession('crab', 'tg-1');
      expect([dashAgent, dashSender]).toEqual(['crab-tg_1_1', 'crab_tg-1_1']);
      const a1 = await store.compact(dashAgent, 'summary of crab-tg_1_1');
      const b1 = await store.compact(dashSender, 'summary of crab_tg-1_1');
      const a2 = await store.compact(dashAgent, 'second summary of crab-tg_1_1');
      expect([a1, b1, a2]).toEqual(['crab-tg-1-1-1', 'crab-tg-1-1-2', 'crab-tg-1-1-3']);
      expect((await store.loadSession(dashSender, { withArchive: true }))!.archiveContent).toBe('summary of crab_tg-1_1');
      expect((await store.loadSession(dashAgent, { withArchive: true }))!.archiveContent).toBe(
        'second summary of crab-tg_1_1',
      );
      expect(await store.deleteSession(dashAgent)).toBe(true);
      expect(await store.getArchive(a1)).toBeNull();
      expect(await store.getArchive(a2)).toBeNull();
      expect(await store.getArchive(b1)).toBe('summary of crab_tg-1_1');
      expect((await store.loadSession(dashSender, { withArchive: true }))!.archiveContent).toBe('summary of crab_tg-1_1');
      // A new archive never takes a number below one still there, whoever owns it.
      const b2 = await store.compact(dashSender, 'third summary');
      expect(b2).toMatch(/^crab-tg-1-1-[1-9][0-9]*$/);
      expect(Number(b2.slice('crab-tg-1-1-'.length))).toBeGreaterThan(2);
      expect(await store.getArchive(b1)).toBe('summary of crab_tg-1_1');
      expect(await store.deleteSession(dashSender)).toBe(true);
      expect(await store.getArchive(b1)).toBeNull();
    });

    it('without withArchive, archiveContent is undefined and resumeHistory fails INVALID_ENTRY', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.compact(handle, 'summary');
      await store.appendMessages(handle, [userMessage('after')]);
      const snapshot = (await store.loadSession(handle))!;
      expect(snapshot.archiveContent).toBeUndefined();
      await expectCode(() => store.resumeHistory(snapshot), 'INVALID_ENTRY');
      const explicit = (await store.loadSession(handle, { withArchive: false }))!;
      expect(explicit.archiveContent).toBeUndefined();
    });

    it('resumeHistory puts the archive content first as one user message', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, [userMessage('old')]);
      await store.compact(handle, 'the summary');
      await store.appendMessages(handle, [userMessage('new 1'), userMessage('new 2')]);
      const snapshot = (await store.loadSession(handle, { withArchive: true }))!;
      const history = [...snapshot.history];
      expect(store.resumeHistory(snapshot)).toEqual([
        userMessage('the summary'),
        userMessage('new 1'),
        userMessage('new 2'),
      ]);
      expect(snapshot.history).toEqual(history);
    });

    it('a marker naming a missing archive loads with archiveContent null and resumes with a visible placeholder', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, [userMessage('old')]);
      expect(await store.appendCompact(handle, 'crab-u-1-9')).toBe(2);
      await store.appendMessages(handle, [userMessage('new')]);
      const snapshot = (await store.loadSession(handle, { withArchive: true }))!;
      expect(snapshot.archive).toBe('crab-u-1-9');
      expect(snapshot.archiveContent).toBeNull();
      expect(store.resumeHistory(snapshot)).toEqual([
        userMessage('[archived context unavailable: crab-u-1-9]'),
        userMessage('new'),
      ]);
    });

    it('with no boundary, withArchive gives archiveContent null and resumeHistory is the history', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, [userMessage('a'), userMessage('b')]);
      const snapshot = (await store.loadSession(handle, { withArchive: true }))!;
      expect(snapshot.archive).toBeNull();
      expect(snapshot.archiveContent).toBeNull();
      expect(store.resumeHistory(snapshot)).toEqual([userMessage('a'), userMessage('b')]);
      const plain = (await store.loadSession(handle))!;
      expect(store.resumeHistory(plain)).toEqual([userMessage('a'), userMessage('b')]);
    });

    it('appendCompact accepts an archive kept elsewhere and compact() counts past it', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      const longest = 'x'.repeat(255);
      expect(await store.appendCompact(handle, longest)).toBe(1);
      expect((await store.loadSession(handle))!.archive).toBe(longest);
      expect(await store.appendCompact(handle, 'é')).toBe(2);
      expect((await store.loadSession(handle))!.archive).toBe('é');
      expect(await store.getArchive(longest)).toBeNull();
    });

    it('compact() never mints a name a marker of the session uses (one crabtalk wrote, or appendCompact)', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'tg:12345');
      await store.importSteps(handle, [{ archive_name: 'crab-tg-12345-1-1', archived_at: '2026-03-25T10:00:00.000000000+00:00' }]);
      expect(await store.compact(handle, 'first')).toBe('crab-tg-12345-1-2');
      await store.importSteps(handle, [{ archive_name: 'crab-tg-12345-1-5', archived_at: '2026-03-25T11:00:00Z' }, userMessage('x')]);
      expect(await store.compact(handle, 'second')).toBe('crab-tg-12345-1-6');
      await store.appendCompact(handle, 'crab-tg-12345-1-9');
      // Names of another base do not count.
      await store.appendCompact(handle, 'crab-tg-1-1-40');
      expect(await (await t.open()).compact(handle, 'third')).toBe('crab-tg-12345-1-10');
      expect(await store.getArchive('crab-tg-12345-1-6')).toBe('second');
    });

    it('numbering reads the session back only to its last own compaction, not every step', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, userMessages('long ago', 500));
      await store.importSteps(handle, [{ archive_name: 'crab-u-1-3', archived_at: '2026-03-25T10:00:00Z' }]);
      await store.appendMessages(handle, userMessages('old', 500));
      expect(await store.compact(handle, 'first')).toBe('crab-u-1-4');
      await store.appendMessages(handle, userMessages('since', 20));
      const reader = await t.open();
      const before = reader.stats().stepsRead;
      expect(await reader.compact(handle, 'second')).toBe('crab-u-1-5');
      const read = reader.stats().stepsRead - before;
      expect(read).toBeGreaterThanOrEqual(21);
      expect(read).toBeLessThan(200);
    });

    it('getArchive returns null for an archive that does not exist', async () => {
      const store = await t.open();
      expect(await store.getArchive('crab-u-1-1')).toBeNull();
      expect(await store.getArchive('x'.repeat(255))).toBeNull();
    });

    it.each(BAD_ARCHIVE_NAMES.map((name) => [name]))(
      'refuses the archive name %j with INVALID_NAME in getArchive and appendCompact',
      async (name) => {
        const store = await t.open();
        const handle = await store.createSession('crab', 'u');
        await expectCode(store.getArchive(name as string), 'INVALID_NAME');
        await expectCode(store.appendCompact(handle, name as string), 'INVALID_NAME');
        expect(await store.readSteps(handle)).toEqual([]);
      },
    );

    it('refuses a summary over maxStepBytes with STEP_TOO_LARGE and writes nothing', async () => {
      const store = await t.open({ maxStepBytes: 100 });
      const handle = await store.createSession('crab', 'u');
      await expectCode(store.compact(handle, 'é'.repeat(51)), 'STEP_TOO_LARGE');
      expect(await store.readSteps(handle)).toEqual([]);
      expect(await store.getArchive('crab-u-1-1')).toBeNull();
      expect(await store.compact(handle, 'x'.repeat(100))).toBe('crab-u-1-1');
    });

    it('message_count is the live conversation: appends add, compact restarts it at 1 (the summary), appends after it add', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      const count = async (s = store) => (await s.loadSession(handle))!.meta.message_count;
      await store.appendMessages(handle, userMessages('before', 3));
      await store.appendEvents(handle, [doneEvent()]);
      expect(await count()).toBe(3);
      await store.compact(handle, 'summary of three');
      expect(await count()).toBe(1);
      await store.appendMessages(handle, userMessages('after', 2));
      expect(await count()).toBe(3);
      // A marker for an archive kept elsewhere is a compaction too.
      await store.appendCompact(handle, 'crab-u-1-9');
      expect(await count()).toBe(1);
      await store.appendMessages(handle, [userMessage('last')]);
      expect(await count()).toBe(2);
      const meta = (await store.loadSession(handle))!.meta;
      await store.close();
      expect((await (await t.open()).loadSession(handle))!.meta).toEqual(meta);
    });

    it('a compaction right after appends drops their pending count, and appends right after it are not lost, in this store and others', async () => {
      const store = await t.open();
      const other = await t.open();
      const handle = await store.createSession('crab', 'u');
      // No awaiting in between: on a backend that writes meta behind, these bumps are all still pending.
      await Promise.all([
        store.appendMessages(handle, userMessages('a', 4)),
        store.compact(handle, 'summary of a'),
        store.appendMessages(handle, userMessages('b', 2)),
        store.appendMessages(handle, [userMessage('c')]),
      ]);
      expect((await store.loadSession(handle))!.meta.message_count).toBe(4);
      await eventually(async () => (await other.loadSession(handle))!.meta.message_count === 4, 'the other store sees 1 + 3');
      await Promise.all([store.appendMessages(handle, userMessages('d', 5)), store.compact(handle, 'summary of d')]);
      expect((await store.loadSession(handle))!.meta.message_count).toBe(1);
      await store.close();
      expect((await other.loadSession(handle))!.meta.message_count).toBe(1);
      expect((await (await t.open()).loadSession(handle))!.meta.message_count).toBe(1);
    });

    it('importSteps leaves message_count alone, whatever it imports (markers, legacy markers, entries)', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, userMessages('m', 2));
      await store.importSteps(handle, [
        { archive_name: 'crab-u-1-1', archived_at: '2026-03-25T10:00:00Z' },
        userMessage('imported'),
        { compact: 'inline summary' },
        userMessage('imported too'),
      ]);
      expect((await store.loadSession(handle))!.meta.message_count).toBe(2);
      await store.close();
      expect((await (await t.open()).loadSession(handle))!.meta.message_count).toBe(2);
    });

    it.each([[42], [null], [undefined], [{ text: 'x' }], ['a lone surrogate \ud800'], ['\udfff']])('refuses the summary %j with INVALID_ENTRY', async (summary) => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await expectCode(store.compact(handle, summary as unknown as string), 'INVALID_ENTRY');
      expect(await store.readSteps(handle)).toEqual([]);
      expect(await store.getArchive('crab-u-1-1')).toBeNull();
    });
  });
}
