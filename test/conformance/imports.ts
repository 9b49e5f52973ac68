// Imports (importSession, importSteps, importArchive): the building blocks of
// migration and of the CLI's import. A session comes in under exactly its
// handle and meta, steps keep their kinds, archives their names; importing
// what is there already is a no-op, something different is CONFLICT.

import { describe, expect, it } from 'vitest';
import type { ConversationMeta, StepLine } from 'stepstore';
import type { Harness } from './harness.js';
import { expectCode, toolStart, useFixture, userMessage } from './fixture.js';

const META: ConversationMeta = {
  agent: 'crab',
  created_by: 'tg:12345',
  created_at: '2026-03-25T10:00:00.123456789+00:00',
  title: 'weather',
  updated_at: '2026-03-25T10:05:00.000000001+00:00',
  message_count: 3,
  topic: 'kept as it is',
};

const LINES: StepLine[] = [
  userMessage('before the legacy boundary'),
  { compact: 'inline summary', title: 't' },
  toolStart('c1'),
  userMessage('after the legacy boundary'),
  { agent: 'guest', message: { role: 'assistant', content: [{ type: 'text', text: 'from a guest' }] } },
];

export function importTests(harness: Harness): void {
  describe('imports', () => {
    const t = useFixture(harness);

    it('importSession creates the session under exactly its handle and meta, once', async () => {
      const store = await t.open();
      expect(await store.importSession('crab_tg-12345_7', META)).toBe(true);
      expect((await store.loadSession('crab_tg-12345_7'))!.meta).toEqual(META);
      expect(await store.importSession('crab_tg-12345_7', META)).toBe(false);
      expect(await store.findLatestSession('crab', 'tg:12345')).toBe('crab_tg-12345_7');
      expect(await store.createSession('crab', 'tg:12345')).toBe('crab_tg-12345_8');
    });

    it('importing another identity under a taken handle is CONFLICT and changes nothing', async () => {
      const store = await t.open();
      await store.importSession('crab_tg-12345_1', META);
      for (const other of [{ ...META, created_by: 'tg-12345' }, { ...META, agent: 'Crab' }, { ...META, created_at: '2026-03-25T10:00:00Z' }]) {
        await expectCode(store.importSession('crab_tg-12345_1', other), 'CONFLICT');
      }
      expect((await store.loadSession('crab_tg-12345_1'))!.meta).toEqual(META);
    });

    it('a deleted handle comes back only as the same conversation: another one imported under it is CONFLICT', async () => {
      const store = await t.open();
      expect(await store.importSession('crab_tg-12345_3', META)).toBe(true);
      expect(await store.deleteSession('crab_tg-12345_3')).toBe(true);
      await expectCode(store.importSession('crab_tg-12345_3', { ...META, created_at: '2026-03-26T10:00:00Z' }), 'CONFLICT');
      expect(await store.loadSession('crab_tg-12345_3')).toBeNull();
      // Restoring the very conversation (a backup, a migration run again) is allowed.
      expect(await store.importSession('crab_tg-12345_3', META)).toBe(true);
      expect((await store.loadSession('crab_tg-12345_3'))!.meta).toEqual(META);
      expect(await store.createSession('crab', 'tg:12345')).toBe('crab_tg-12345_4');
    });

    it('handles whose seq is past 2^53 - 1 are refused, never rounded onto another session', async () => {
      const store = await t.open();
      for (const handle of ['crab_bob_9007199254740992', 'crab_bob_9007199254740993', 'crab_bob_9999999999999999']) {
        await expectCode(store.importSession(handle, { ...META, agent: 'crab', created_by: 'bob' }), 'INVALID_HANDLE');
        await expectCode(store.loadSession(handle), 'INVALID_HANDLE');
      }
      expect(await store.importSession('crab_bob_9007199254740991', { ...META, agent: 'crab', created_by: 'bob' })).toBe(true);
      expect((await store.listSessions()).map((s) => s.handle)).toEqual(['crab_bob_9007199254740991']);
      // With the highest seq taken there is no next one: refused, never a handle the store would reject.
      await expectCode(store.createSession('crab', 'bob'), 'CONFLICT');
      // Seqs of 15 and 16 digits stay exact through create, load and append.
      expect(await store.importSession('crab_eve_123456789012345', { ...META, agent: 'crab', created_by: 'eve' })).toBe(true);
      const next = await store.createSession('crab', 'eve');
      expect(next).toBe('crab_eve_123456789012346');
      expect(await store.appendMessages(next, [userMessage('big seq')])).toEqual([1]);
      expect((await store.loadSession(next))!.history).toEqual([userMessage('big seq')]);
    });

    it('importSession refuses a bad handle or meta and writes nothing', async () => {
      const store = await t.open();
      await expectCode(store.importSession('../x_y_1', META), 'INVALID_HANDLE');
      await expectCode(store.importSession('crab_x_1', { ...META, message_count: -1 }), 'INVALID_ENTRY');
      await expectCode(store.importSession('crab_x_1', { ...META, title: 5 } as unknown as ConversationMeta), 'INVALID_ENTRY');
      expect(await store.listSessions()).toEqual([]);
    });

    it('importSteps keeps every kind, legacy boundaries replay as boundaries, meta is not bumped', async () => {
      const store = await t.open();
      await store.importSession('crab_tg-12345_1', META);
      expect(await store.importSteps('crab_tg-12345_1', LINES)).toEqual([1, 2, 3, 4, 5]);
      expect((await store.readSteps('crab_tg-12345_1')).map((s) => s.line)).toEqual(LINES);
      const snapshot = (await store.loadSession('crab_tg-12345_1'))!;
      expect(snapshot.history).toEqual([LINES[3], LINES[4]]);
      expect(snapshot.archive).toBeNull();
      expect(snapshot.meta.message_count).toBe(3);
    });

    it('importSteps refuses a line of no known shape, and writes none of the batch', async () => {
      const store = await t.open();
      await store.importSession('crab_tg-12345_1', META);
      await expectCode(store.importSteps('crab_tg-12345_1', [userMessage('ok'), { nothing: 'here' } as unknown as StepLine]), 'INVALID_ENTRY');
      await expectCode(store.importSteps('crab_none_1', [userMessage('ok')]), 'SESSION_NOT_FOUND');
      expect(await store.readSteps('crab_tg-12345_1')).toEqual([]);
    });

    it('importArchive stores under exactly the name, once; other content under it is CONFLICT', async () => {
      const store = await t.open();
      await store.importSession('crab_tg-12345_1', META);
      const archive = { owner: 'crab_tg-12345_1', content: 'the summary', archived_at: '2026-03-25T10:01:00Z' };
      expect(await store.importArchive('crab-tg-12345-1-4', archive)).toBe(true);
      expect(await store.getArchive('crab-tg-12345-1-4')).toBe('the summary');
      expect(await store.importArchive('crab-tg-12345-1-4', archive)).toBe(false);
      await expectCode(store.importArchive('crab-tg-12345-1-4', { ...archive, content: 'other' }), 'CONFLICT');
      await expectCode(store.importArchive('no-number', archive), 'INVALID_NAME');
      await expectCode(store.importArchive('crab-tg-12345-1-5', { ...archive, owner: '../x' }), 'INVALID_HANDLE');
      expect(await store.getArchive('crab-tg-12345-1-5')).toBeNull();
      // The next compaction takes a number past the imported one.
      const next = await store.compact('crab_tg-12345_1', 'later');
      expect(Number(next.slice('crab-tg-12345-1-'.length))).toBeGreaterThan(4);
    });

    it('deleting an imported session removes the archives imported for it', async () => {
      const store = await t.open();
      await store.importSession('crab_tg-12345_1', META);
      await store.importArchive('crab-tg-12345-1-1', { owner: 'crab_tg-12345_1', content: 'x' });
      await store.importSteps('crab_tg-12345_1', [{ archive_name: 'crab-tg-12345-1-1', archived_at: '2026-03-25T10:01:00Z' }]);
      const snapshot = (await store.loadSession('crab_tg-12345_1', { withArchive: true }))!;
      expect(snapshot.archiveContent).toBe('x');
      expect(await store.deleteSession('crab_tg-12345_1')).toBe(true);
      expect(await store.getArchive('crab-tg-12345-1-1')).toBeNull();
    });
  });
}
