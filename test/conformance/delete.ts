// Behaviour 9 of the core issue: delete removes the session and the archives
// its compactions created (only its own); false when there was nothing to
// delete; appending to a deleted or never-created session fails
// SESSION_NOT_FOUND and brings nothing back.

import { describe, expect, it } from 'vitest';
import type { Store } from 'stepstore';
import type { Harness } from './harness.js';
import { doneEvent, expectCode, steered, useFixture, userMessage } from './fixture.js';

async function expectGone(store: Store, handle: string, agent: string, sender: string): Promise<void> {
  expect(await store.loadSession(handle)).toBeNull();
  expect((await store.listSessions()).map((s) => s.handle)).not.toContain(handle);
  expect(await store.findLatestSession(agent, sender)).not.toBe(handle);
}

export function deleteTests(harness: Harness): void {
  describe('delete', () => {
    const t = useFixture(harness);

    it('removes the session: true, then false the second time', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, [userMessage('m')]);
      await store.appendEvents(handle, [doneEvent()]);
      expect(await store.deleteSession(handle)).toBe(true);
      await expectGone(store, handle, 'crab', 'u');
      expect(await store.deleteSession(handle)).toBe(false);
      await expectGone(await t.open(), handle, 'crab', 'u');
    });

    it('a deleted session never lends its handle to another conversation: the next create skips its seq', async () => {
      const store = await t.open();
      const first = await store.createSession('crab', 'u');
      const newest = await store.createSession('crab', 'u');
      await store.appendMessages(newest, [userMessage('old conversation')]);
      expect(await store.deleteSession(newest)).toBe(true);
      const next = await store.createSession('crab', 'u');
      expect([first, newest, next]).toEqual(['crab_u_1', 'crab_u_2', 'crab_u_3']);
      // Another store (another process) knows nothing of the delete but the store itself.
      expect(await (await t.open()).createSession('crab', 'u')).toBe('crab_u_4');
    });

    it('a stale handle stays stale: appends fail SESSION_NOT_FOUND and loads find nothing, whatever is created after', async () => {
      const store = await t.open();
      const stale = await store.createSession('crab', 'u');
      await store.appendMessages(stale, [userMessage('before')]);
      const other = await t.open();
      expect(await other.deleteSession(stale)).toBe(true);
      const fresh = await other.createSession('crab', 'u');
      await other.appendMessages(fresh, [userMessage('fresh')]);
      await expectCode(store.appendMessages(stale, [userMessage('lost?')]), 'SESSION_NOT_FOUND');
      await expectCode(store.appendEvents(stale, [doneEvent()]), 'SESSION_NOT_FOUND');
      await expectCode(store.compact(stale, 'summary'), 'SESSION_NOT_FOUND');
      expect(await store.loadSession(stale)).toBeNull();
      expect((await store.loadSession(fresh))!.history).toEqual([userMessage('fresh')]);
      expect((await store.readSteps(fresh)).length).toBe(1);
    });

    it('returns false for a session that never existed', async () => {
      const store = await t.open();
      expect(await store.deleteSession('crab_nobody_1')).toBe(false);
      await store.createSession('crab', 'somebody');
      expect(await store.deleteSession('crab_somebody_2')).toBe(false);
      expect(await store.listSessions()).toHaveLength(1);
    });

    it('leaves the other sessions alone', async () => {
      const store = await t.open();
      const a = await store.createSession('crab', 'u');
      const b = await store.createSession('crab', 'u');
      await store.appendMessages(b, [userMessage('keep me')]);
      expect(await store.deleteSession(a)).toBe(true);
      expect((await store.loadSession(b))!.history).toEqual([userMessage('keep me')]);
      expect(await store.findLatestSession('crab', 'u')).toBe(b);
    });

    it('removes the archives compact() created for the session', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      const first = await store.compact(handle, 'one');
      const second = await store.compact(handle, 'two');
      expect(await store.getArchive(first)).toBe('one');
      expect(await store.deleteSession(handle)).toBe(true);
      expect(await store.getArchive(first)).toBeNull();
      expect(await store.getArchive(second)).toBeNull();
    });

    it.each([
      ['appendMessages', (s: Store, h: string) => s.appendMessages(h, [userMessage('m')])],
      ['appendEvents', (s: Store, h: string) => s.appendEvents(h, [doneEvent()])],
      ['appendCompact', (s: Store, h: string) => s.appendCompact(h, 'crab-u-1-1')],
      ['compact', (s: Store, h: string) => s.compact(h, 'summary')],
      ['readSteps', (s: Store, h: string) => s.readSteps(h)],
    ] as const)('%s on a deleted session fails SESSION_NOT_FOUND and brings nothing back', async (_, call) => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, [userMessage('m')]);
      expect(await store.deleteSession(handle)).toBe(true);
      await expectCode(call(store, handle), 'SESSION_NOT_FOUND');
      await expectGone(store, handle, 'crab', 'u');
      expect(await store.deleteSession(handle)).toBe(false);
      expect(await store.getArchive('crab-u-1-1')).toBeNull();
      const restarted = await t.open();
      await expectCode(call(restarted, handle), 'SESSION_NOT_FOUND');
      await expectGone(restarted, handle, 'crab', 'u');
    });

    it.each([
      ['appendMessages', (s: Store, h: string) => s.appendMessages(h, [userMessage('m')])],
      ['appendEvents', (s: Store, h: string) => s.appendEvents(h, [doneEvent()])],
      ['appendCompact', (s: Store, h: string) => s.appendCompact(h, 'crab-u-1-1')],
      ['compact', (s: Store, h: string) => s.compact(h, 'summary')],
    ] as const)('%s on a never-created session fails SESSION_NOT_FOUND and creates nothing', async (_, call) => {
      const store = await t.open();
      await expectCode(call(store, 'crab_u_1'), 'SESSION_NOT_FOUND');
      expect(await store.loadSession('crab_u_1')).toBeNull();
      expect(await store.listSessions()).toEqual([]);
      expect(await store.findLatestSession('crab', 'u')).toBeNull();
      expect(await store.getArchive('crab-u-1-1')).toBeNull();
      expect(await store.createSession('crab', 'u')).toBe('crab_u_1');
    });

    it('a store that appended before sees SESSION_NOT_FOUND once another store deleted the session', async () => {
      const a = await t.open();
      const b = await t.open();
      const handle = await a.createSession('crab', 'u');
      await a.appendMessages(handle, [userMessage('cached counter')]);
      expect(await b.deleteSession(handle)).toBe(true);
      await expectCode(a.appendMessages(handle, [userMessage('too late')]), 'SESSION_NOT_FOUND');
      await expectCode(a.appendEvents(handle, [steered('too late')]), 'SESSION_NOT_FOUND');
      expect(await a.loadSession(handle)).toBeNull();
      expect(await b.loadSession(handle)).toBeNull();
      expect(await b.listSessions()).toEqual([]);
    });

    it('drops pending bumps: a deleted session does not come back when they would be written', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, [userMessage('bump pending')]);
      expect(await store.deleteSession(handle)).toBe(true);
      await store.close();
      const restarted = await t.open();
      expect(await restarted.loadSession(handle)).toBeNull();
      expect(await restarted.listSessions()).toEqual([]);
    });
  });
}
