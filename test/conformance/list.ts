// Behaviour 7 of the core issue over the public API: every session with a
// meta, newest updated_at first compared as times (crabtalk's `+00:00`
// nanosecond stamps against our `Z` millisecond ones), filters and limit.

import { describe, expect, it } from 'vitest';
import type { Store } from 'stepstore';
import type { Harness } from './harness.js';
import { expectCode, useFixture, userMessage } from './fixture.js';

async function stamp(store: Store, handle: string, updated_at: string): Promise<void> {
  const snapshot = await store.loadSession(handle);
  await store.updateMeta(handle, { ...snapshot!.meta, updated_at });
}

export function listTests(harness: Harness): void {
  describe('list', () => {
    const t = useFixture(harness);

    it('is empty in an empty store', async () => {
      const store = await t.open();
      expect(await store.listSessions()).toEqual([]);
    });

    it('returns every session with its meta', async () => {
      const store = await t.open();
      const handles = [
        await store.createSession('crab', 'a'),
        await store.createSession('crab', 'b'),
        await store.createSession('other', 'a'),
      ];
      const listed = await store.listSessions();
      expect(listed.map((s) => s.handle).sort()).toEqual([...handles].sort());
      for (const { handle, meta } of listed) expect(meta).toEqual((await store.loadSession(handle))!.meta);
    });

    it('orders by updated_at compared as times, not as strings', async () => {
      const store = await t.open();
      const zulu = await store.createSession('crab', 'zulu');
      const nanos = await store.createSession('crab', 'nanos');
      const millis = await store.createSession('crab', 'millis');
      const oldest = await store.createSession('crab', 'oldest');
      // As strings 'Z' sorts after '.', so a string sort puts `zulu` first; as times it is the oldest but one.
      await stamp(store, zulu, '2026-03-25T10:00:00Z');
      await stamp(store, nanos, '2026-03-25T10:00:00.250000000+00:00');
      await stamp(store, millis, '2026-03-25T10:00:00.100Z');
      await stamp(store, oldest, '2026-03-25T09:59:58.5+00:00');
      const expected = [nanos, millis, zulu, oldest];
      expect((await store.listSessions()).map((s) => s.handle)).toEqual(expected);
      expect((await (await t.open()).listSessions()).map((s) => s.handle)).toEqual(expected);
    });

    it('keeps nanosecond precision: 09:59:59.999999999 is older than 10:00:00', async () => {
      const store = await t.open();
      // Created first, so a tie-break on created_at alone would put it last.
      const later = await store.createSession('crab', 'later');
      const earlier = await store.createSession('crab', 'earlier');
      await stamp(store, later, '2026-03-25T10:00:00Z');
      await stamp(store, earlier, '2026-03-25T09:59:59.999999999+00:00');
      expect((await store.listSessions()).map((s) => s.handle)).toEqual([later, earlier]);
      const nanoLater = await store.createSession('crab', 'nano-later');
      const nanoEarlier = await store.createSession('crab', 'nano-earlier');
      await stamp(store, nanoLater, '2026-03-25T11:00:00.000000002+00:00');
      await stamp(store, nanoEarlier, '2026-03-25T11:00:00.000000001+00:00');
      expect((await store.listSessions({ limit: 2 })).map((s) => s.handle)).toEqual([nanoLater, nanoEarlier]);
    });

    it('puts a session first once a message is appended to it', async () => {
      const store = await t.open();
      const a = await store.createSession('crab', 'a');
      const b = await store.createSession('crab', 'b');
      await stamp(store, a, '2020-01-01T00:00:00.000Z');
      await stamp(store, b, '2021-01-01T00:00:00.000000000+00:00');
      expect((await store.listSessions()).map((s) => s.handle)).toEqual([b, a]);
      await store.appendMessages(a, [userMessage('hi')]);
      expect((await store.listSessions()).map((s) => s.handle)).toEqual([a, b]);
      await store.close();
      expect((await (await t.open()).listSessions()).map((s) => s.handle)).toEqual([a, b]);
    });

    it('limit keeps the newest sessions', async () => {
      const store = await t.open();
      const handles: string[] = [];
      for (let i = 0; i < 6; i++) {
        const h = await store.createSession('crab', `s${i}`);
        await stamp(store, h, `2026-01-0${i + 1}T00:00:00Z`);
        handles.push(h);
      }
      const newest = [...handles].reverse();
      expect((await store.listSessions({ limit: 2 })).map((s) => s.handle)).toEqual(newest.slice(0, 2));
      expect((await store.listSessions({ limit: 1 })).map((s) => s.handle)).toEqual(newest.slice(0, 1));
      expect((await store.listSessions({ limit: 100 })).map((s) => s.handle)).toEqual(newest);
      expect((await store.listSessions({ agent: 'crab', limit: 3 })).map((s) => s.handle)).toEqual(newest.slice(0, 3));
    });

    it.each([[0], [-1], [1.5], [Number.NaN], ['2']])('refuses limit %j with INVALID_OPTION', async (limit) => {
      const store = await t.open();
      await expectCode(store.listSessions({ limit: limit as number }), 'INVALID_OPTION');
    });

    it('leaves out deleted sessions', async () => {
      const store = await t.open();
      const a = await store.createSession('crab', 'a');
      const b = await store.createSession('crab', 'b');
      await store.deleteSession(a);
      expect((await store.listSessions()).map((s) => s.handle)).toEqual([b]);
    });
  });
}
