// Behaviour 2 of the core issue: identity is the exact (agent, createdBy)
// pair, never its slug. Colliding identities share a handle prefix but get
// distinct seqs, and find and list only ever return exact matches.

import { describe, expect, it } from 'vitest';
import type { Harness } from './harness.js';
import { useFixture, userMessage } from './fixture.js';

export function identityTests(harness: Harness): void {
  describe('identity', () => {
    const t = useFixture(harness);

    it('senders whose names share a slug get distinct seqs under one prefix', async () => {
      const store = await t.open();
      const colon = await store.createSession('crab', 'tg:123');
      const dash = await store.createSession('crab', 'tg-123');
      const spaced = await store.createSession('crab', 'tg 123');
      expect([colon, dash, spaced]).toEqual(['crab_tg-123_1', 'crab_tg-123_2', 'crab_tg-123_3']);
      expect((await store.loadSession(colon))!.meta.created_by).toBe('tg:123');
      expect((await store.loadSession(dash))!.meta.created_by).toBe('tg-123');
      expect((await store.loadSession(spaced))!.meta.created_by).toBe('tg 123');
    });

    it('findLatestSession returns only a session whose meta names exactly this agent and sender', async () => {
      const store = await t.open();
      const colon = await store.createSession('crab', 'tg:123');
      const dash = await store.createSession('crab', 'tg-123');
      expect(await store.findLatestSession('crab', 'tg:123')).toBe(colon);
      expect(await store.findLatestSession('crab', 'tg-123')).toBe(dash);
      expect(await store.findLatestSession('crab', 'tg_123')).toBeNull();
      expect(await store.findLatestSession('Crab', 'tg:123')).toBeNull();
    });

    it('Bob and bob are different senders, and Crab and crab different agents', async () => {
      const store = await t.open();
      const upper = await store.createSession('crab', 'Bob');
      const lower = await store.createSession('crab', 'bob');
      const agentUpper = await store.createSession('Crab', 'bob');
      expect(upper).toBe('crab_bob_1');
      expect(lower).toBe('crab_bob_2');
      expect(agentUpper).toBe('crab_bob_3');
      expect(await store.findLatestSession('crab', 'Bob')).toBe(upper);
      expect(await store.findLatestSession('crab', 'bob')).toBe(lower);
      expect(await store.findLatestSession('Crab', 'bob')).toBe(agentUpper);
      expect(await store.findLatestSession('Crab', 'Bob')).toBeNull();
      const restarted = await t.open();
      expect(await restarted.findLatestSession('crab', 'Bob')).toBe(upper);
      expect(await restarted.findLatestSession('crab', 'bob')).toBe(lower);
    });

    it('find skips newer sessions of a colliding identity to reach an older exact one', async () => {
      const store = await t.open();
      const mine = await store.createSession('crab', 'tg:9');
      for (let i = 0; i < 5; i++) await store.createSession('crab', 'tg-9');
      expect(await store.findLatestSession('crab', 'tg:9')).toBe(mine);
      expect(await store.findLatestSession('crab', 'tg-9')).toBe('crab_tg-9_6');
    });

    it('listSessions filters on exact agent and sender names, not slugs', async () => {
      const store = await t.open();
      const a = await store.createSession('crab', 'tg:123');
      const b = await store.createSession('crab', 'tg-123');
      const c = await store.createSession('Crab', 'tg:123');
      const d = await store.createSession('other', 'tg:123');
      const handles = async (opts: { agent?: string; createdBy?: string }) =>
        (await store.listSessions(opts)).map((s) => s.handle).sort();
      expect(await handles({ agent: 'crab', createdBy: 'tg:123' })).toEqual([a]);
      expect(await handles({ agent: 'crab', createdBy: 'tg-123' })).toEqual([b]);
      expect(await handles({ agent: 'Crab' })).toEqual([c]);
      expect(await handles({ agent: 'crab' })).toEqual([a, b].sort());
      expect(await handles({ createdBy: 'tg:123' })).toEqual([a, c, d].sort());
      expect(await handles({ createdBy: 'TG:123' })).toEqual([]);
      for (const { meta } of await store.listSessions({ agent: 'crab', createdBy: 'tg:123' })) {
        expect([meta.agent, meta.created_by]).toEqual(['crab', 'tg:123']);
      }
    });

    it('appends to one of two colliding sessions never show up in the other', async () => {
      const store = await t.open();
      const a = await store.createSession('crab', 'tg:1');
      const b = await store.createSession('crab', 'tg-1');
      await store.appendMessages(a, [userMessage('for a')]);
      await store.appendMessages(b, [userMessage('for b')]);
      expect((await store.loadSession(a))!.history).toEqual([userMessage('for a')]);
      expect((await store.loadSession(b))!.history).toEqual([userMessage('for b')]);
    });
  });
}
