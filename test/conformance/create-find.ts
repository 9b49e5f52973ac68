// Behaviours 3 and 8 of the core issue: creating a session claims the next
// seq exclusively and stores a fresh meta (created_at = updated_at);
// findLatestSession returns the highest seq (compared as numbers).

import { describe, expect, it } from 'vitest';
import type { Harness } from './harness.js';
import { expectCode, timeOf, useFixture, userMessage } from './fixture.js';

export function createFindTests(harness: Harness): void {
  describe('create and find', () => {
    const t = useFixture(harness);

    it('a new session has a fresh meta with created_at equal to updated_at', async () => {
      const store = await t.open();
      const before = Date.now();
      const handle = await store.createSession('crab', 'tg:12345');
      const after = Date.now();
      const snapshot = (await store.loadSession(handle))!;
      expect(snapshot).toEqual({ meta: snapshot.meta, history: [], steps: [], archive: null, diagnostics: [] });
      expect(snapshot.meta).toEqual({
        agent: 'crab',
        created_by: 'tg:12345',
        created_at: snapshot.meta.created_at,
        title: '',
        updated_at: snapshot.meta.created_at,
        message_count: 0,
      });
      const created = timeOf(snapshot.meta.created_at);
      expect(created).toBeGreaterThanOrEqual(before - 1);
      expect(created).toBeLessThanOrEqual(after + 1);
      const restarted = await t.open();
      expect((await restarted.loadSession(handle))!.meta).toEqual(snapshot.meta);
    });

    it('createSession sets a title and extra meta fields, kept after a restart and by appends', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u', { title: 'Trip', fields: { framework: 'langchain', tags: ['a', 1] } });
      await store.appendMessages(handle, [userMessage('hi')]);
      await store.close();
      const restarted = await t.open();
      const meta = (await restarted.loadSession(handle))!.meta;
      expect(meta).toMatchObject({ agent: 'crab', created_by: 'u', title: 'Trip', framework: 'langchain', tags: ['a', 1], message_count: 1 });
      expect((await restarted.listSessions({ agent: 'crab' }))[0]!.meta.framework).toBe('langchain');
    });

    it('createSession refuses fields that are the meta\'s own or not plain JSON, and creates nothing', async () => {
      const store = await t.open();
      await expectCode(store.createSession('crab', 'u', { fields: { message_count: 9 } }), 'INVALID_OPTION');
      await expectCode(store.createSession('crab', 'u', { fields: { created_at: 'x' } }), 'INVALID_OPTION');
      await expectCode(store.createSession('crab', 'u', { fields: [] as unknown as Record<string, unknown> }), 'INVALID_OPTION');
      await expectCode(store.createSession('crab', 'u', { title: 7 as unknown as string }), 'INVALID_OPTION');
      await expectCode(store.createSession('crab', 'u', { fields: { at: new Date() } }), 'INVALID_ENTRY');
      await expectCode(store.createSession('crab', 'u', { fields: { big: 'x'.repeat(5 * 1024 * 1024) } }), 'STEP_TOO_LARGE');
      expect(await store.listSessions()).toEqual([]);
      expect(await store.findLatestSession('crab', 'u')).toBeNull();
    });

    it('seqs keep counting after a restart', async () => {
      const first = await t.open();
      await first.createSession('crab', 'u');
      await first.createSession('crab', 'u');
      await first.close();
      const second = await t.open();
      expect(await second.createSession('crab', 'u')).toBe('crab_u_3');
    });

    it('concurrent creates for one pair in one store all get distinct seqs', async () => {
      const store = await t.open();
      const handles = await Promise.all(Array.from({ length: 40 }, () => store.createSession('crab', 'u')));
      expect(new Set(handles).size).toBe(40);
      expect([...handles].sort()).toEqual(Array.from({ length: 40 }, (_, i) => `crab_u_${i + 1}`).sort());
    });

    it('two store instances creating at once never share a session', async () => {
      const a = await t.open();
      const b = await t.open();
      const handles = await Promise.all(
        Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? a : b).createSession('crab', 'u')),
      );
      expect(new Set(handles).size).toBe(30);
      await Promise.all(handles.map((h, i) => (i % 2 === 0 ? a : b).appendMessages(h, [userMessage(h)])));
      for (const h of handles) expect((await a.loadSession(h))!.history).toEqual([userMessage(h)]);
    });

    it('findLatestSession returns null when the pair has no session', async () => {
      const store = await t.open();
      expect(await store.findLatestSession('crab', 'nobody')).toBeNull();
      await store.createSession('crab', 'somebody');
      expect(await store.findLatestSession('crab', 'nobody')).toBeNull();
    });

    it('findLatestSession compares seqs as numbers: crab_user_10 beats crab_user_9', async () => {
      const store = await t.open();
      for (let i = 0; i < 10; i++) await store.createSession('crab', 'user');
      expect(await store.findLatestSession('crab', 'user')).toBe('crab_user_10');
      const restarted = await t.open();
      expect(await restarted.findLatestSession('crab', 'user')).toBe('crab_user_10');
    });

    it('findLatestSession falls back to the next highest seq when the latest is deleted', async () => {
      const store = await t.open();
      for (let i = 0; i < 11; i++) await store.createSession('crab', 'user');
      expect(await store.deleteSession('crab_user_11')).toBe(true);
      expect(await store.deleteSession('crab_user_10')).toBe(true);
      expect(await store.findLatestSession('crab', 'user')).toBe('crab_user_9');
    });

    it('the latest is by seq, not by which session was written last', async () => {
      const store = await t.open();
      const older = await store.createSession('crab', 'user');
      const newer = await store.createSession('crab', 'user');
      await store.appendMessages(older, [userMessage('late write')]);
      expect(await store.findLatestSession('crab', 'user')).toBe(newer);
    });
  });
}
