// Behaviours 5 and 13 of the core issue: appendMessages bumps message_count
// and updated_at (events and markers do not), visible at once in the same
// store and to other stores after close() or a short delay; updateMeta
// writes a caller's meta durably, checked, superseding pending bumps; unknown
// meta fields survive everything.

import { describe, expect, it } from 'vitest';
import type { ConversationMeta, Store } from 'stepstore';
import type { Harness } from './harness.js';
import { eventually, expectCode, timeOf, toolResult, toolStart, useFixture, userMessage, userMessages } from './fixture.js';

const OLD = '2020-01-01T00:00:00.000Z';

async function metaOf(store: Store, handle: string): Promise<ConversationMeta> {
  const snapshot = await store.loadSession(handle);
  expect(snapshot).not.toBeNull();
  return snapshot!.meta;
}

/** Sets updated_at far in the past so a bump is visible without comparing clocks closely. */
async function age(store: Store, handle: string): Promise<ConversationMeta> {
  const meta = { ...(await metaOf(store, handle)), updated_at: OLD };
  await store.updateMeta(handle, meta);
  return meta;
}

export function metaTests(harness: Harness): void {
  describe('meta bumps', () => {
    const t = useFixture(harness);

    it('appendMessages adds the number of messages to message_count and moves updated_at to now', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await age(store, handle);
      const before = Date.now();
      await store.appendMessages(handle, userMessages('m', 3));
      const meta = await metaOf(store, handle);
      expect(meta.message_count).toBe(3);
      expect(timeOf(meta.updated_at)).toBeGreaterThanOrEqual(before - 1);
      await store.appendMessages(handle, [userMessage('one more')]);
      expect((await metaOf(store, handle)).message_count).toBe(4);
    });

    it('events change neither message_count nor updated_at; compactions set message_count to 1 (the summary), not updated_at', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, userMessages('m', 2));
      const aged = await age(store, handle);
      await store.appendEvents(handle, [toolStart('a'), toolResult('a')]);
      expect(await metaOf(store, handle)).toEqual(aged);
      await store.appendCompact(handle, 'crab-u-1-1');
      await store.compact(handle, 'summary');
      expect(await metaOf(store, handle)).toEqual({ ...aged, message_count: 1 });
      await store.close();
      expect(await metaOf(await t.open(), handle)).toEqual({ ...aged, message_count: 1 });
    });

    it('the same store sees the bump at once in loadSession and listSessions', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await age(store, handle);
      for (let i = 1; i <= 5; i++) {
        await store.appendMessages(handle, [userMessage(`m${i}`)]);
        expect((await metaOf(store, handle)).message_count).toBe(i);
        const [summary] = await store.listSessions();
        expect(summary!.meta.message_count).toBe(i);
        expect(summary!.meta.updated_at).not.toBe(OLD);
      }
    });

    it('another store sees the bump once the first store is closed', async () => {
      const a = await t.open();
      const handle = await a.createSession('crab', 'u');
      await age(a, handle);
      await a.appendMessages(handle, userMessages('m', 4));
      const b = await t.open();
      await a.close();
      const meta = await metaOf(b, handle);
      expect(meta.message_count).toBe(4);
      expect(meta.updated_at).not.toBe(OLD);
      expect((await b.listSessions())[0]!.meta.message_count).toBe(4);
    });

    it('another store sees the bump after a short delay without the first store closing', async () => {
      const a = await t.open();
      const b = await t.open();
      const handle = await a.createSession('crab', 'u');
      await a.appendMessages(handle, userMessages('m', 6));
      await eventually(async () => (await metaOf(b, handle)).message_count === 6, 'the bump reaches another store');
    });

    it('close() waits for appends still queued and persists their bumps', async () => {
      const a = await t.open();
      const handle = await a.createSession('crab', 'u');
      const pending = Array.from({ length: 10 }, (_, i) => a.appendMessages(handle, [userMessage(`m${i}`)]));
      await a.close();
      const numbers = (await Promise.all(pending)).flat();
      expect(numbers).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
      const b = await t.open();
      const snapshot = (await b.loadSession(handle))!;
      expect(snapshot.history).toHaveLength(10);
      expect(snapshot.meta.message_count).toBe(10);
    });

    it('bumps from many sessions all reach the store on close', async () => {
      const a = await t.open();
      const handles = await Promise.all(Array.from({ length: 24 }, (_, i) => a.createSession('crab', `u${i}`)));
      await Promise.all(handles.map((h, i) => a.appendMessages(h, userMessages('m', (i % 4) + 1))));
      await a.close();
      const b = await t.open();
      for (const [i, h] of handles.entries()) expect((await metaOf(b, h)).message_count).toBe((i % 4) + 1);
    });

    it('bumps land on top of what another store wrote meanwhile', async () => {
      const a = await t.open();
      const b = await t.open();
      const handle = await a.createSession('crab', 'u');
      await b.updateMeta(handle, { ...(await metaOf(b, handle)), title: 'set by b', message_count: 100 });
      await a.appendMessages(handle, userMessages('m', 2));
      await a.close();
      const meta = await metaOf(b, handle);
      expect(meta.title).toBe('set by b');
      expect(meta.message_count).toBe(102);
    });
  });

  describe('updateMeta', () => {
    const t = useFixture(harness);

    it('writes the given meta as it is, unknown fields included', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      const meta: ConversationMeta = {
        ...(await metaOf(store, handle)),
        title: 'Weather in Lisbon 🌦',
        updated_at: '2026-03-25T10:00:00.123456789+00:00',
        message_count: 42,
        summary: 'asked about the weather',
        topic: 'weather',
        uptime_secs: 12,
        nested: { list: [1, 'two', { three: null }] },
      };
      await store.updateMeta(handle, meta);
      expect(await metaOf(store, handle)).toEqual(meta);
      expect((await store.listSessions())[0]!.meta).toEqual(meta);
    });

    it('is durable before it resolves: a new store opened right after sees it', async () => {
      const a = await t.open();
      const handle = await a.createSession('crab', 'u');
      const meta = { ...(await metaOf(a, handle)), title: 'durable', message_count: 7 };
      await a.updateMeta(handle, meta);
      const b = await t.open();
      expect(await metaOf(b, handle)).toEqual(meta);
    });

    it('supersedes bumps still pending from earlier appends', async () => {
      const a = await t.open();
      const handle = await a.createSession('crab', 'u');
      await a.appendMessages(handle, userMessages('m', 3));
      const meta = { ...(await metaOf(a, handle)), message_count: 0, updated_at: OLD, title: 'reset' };
      await a.updateMeta(handle, meta);
      expect(await metaOf(a, handle)).toEqual(meta);
      await a.close();
      expect(await metaOf(await t.open(), handle)).toEqual(meta);
    });

    it('bumps after an update add to the updated count', async () => {
      const a = await t.open();
      const handle = await a.createSession('crab', 'u');
      void a.appendMessages(handle, userMessages('m', 2));
      const update = a.updateMeta(handle, { ...(await metaOf(a, handle)), message_count: 7, title: 't' });
      void a.appendMessages(handle, [userMessage('after')]);
      await update;
      await a.close();
      const meta = await metaOf(await t.open(), handle);
      expect(meta.message_count).toBe(8);
      expect(meta.title).toBe('t');
    });

    it('unknown fields survive bumps, restarts and later updates', async () => {
      const a = await t.open();
      const handle = await a.createSession('crab', 'u');
      const unknown = { topic: 'old', uptime_secs: 99, deep: { a: [1, { b: 'c' }] } };
      await a.updateMeta(handle, { ...(await metaOf(a, handle)), ...unknown });
      await a.appendMessages(handle, userMessages('m', 2));
      expect(await metaOf(a, handle)).toMatchObject({ ...unknown, message_count: 2 });
      await a.close();
      const b = await t.open();
      expect(await metaOf(b, handle)).toMatchObject({ ...unknown, message_count: 2 });
      await b.appendMessages(handle, [userMessage('more')]);
      await b.updateMeta(handle, { ...(await metaOf(b, handle)), title: 'retitled' });
      await b.close();
      expect(await metaOf(await t.open(), handle)).toMatchObject({ ...unknown, title: 'retitled', message_count: 3 });
    });

    const INVALID_UPDATES: [string, (m: ConversationMeta) => unknown][] = [
      ['a changed agent', (m) => ({ ...m, agent: 'other' })],
      ['an agent with the same slug', (m) => ({ ...m, agent: 'Crab' })],
      ['a changed created_by', (m) => ({ ...m, created_by: 'someone' })],
      ['a created_by with the same slug', (m) => ({ ...m, created_by: 'U' })],
      ['a changed created_at', (m) => ({ ...m, created_at: '2001-01-01T00:00:00Z' })],
      ['a missing created_at', ({ created_at: _, ...m }) => m],
      ['a negative message_count', (m) => ({ ...m, message_count: -1 })],
      ['a fractional message_count', (m) => ({ ...m, message_count: 1.5 })],
      ['a string message_count', (m) => ({ ...m, message_count: '3' })],
      ['a NaN message_count', (m) => ({ ...m, message_count: Number.NaN })],
      ['an infinite message_count', (m) => ({ ...m, message_count: Number.POSITIVE_INFINITY })],
      ['a missing message_count', ({ message_count: _, ...m }) => m],
      ['a numeric title', (m) => ({ ...m, title: 5 })],
      ['a null updated_at', (m) => ({ ...m, updated_at: null })],
      ['a numeric summary', (m) => ({ ...m, summary: 5 })],
      ['a BigInt in an unknown field', (m) => ({ ...m, extra: 10n })],
      ['a function in an unknown field', (m) => ({ ...m, extra: () => 1 })],
      ['a Date in an unknown field', (m) => ({ ...m, extra: new Date() })],
      ['not an object', () => 'meta'],
      ['null', () => null],
      ['an array', (m) => [m]],
    ];

    it.each(INVALID_UPDATES)('refuses %s with INVALID_ENTRY and leaves meta as it was', async (_, change) => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      const before = await metaOf(store, handle);
      await expectCode(store.updateMeta(handle, change(before) as ConversationMeta), 'INVALID_ENTRY');
      expect(await metaOf(store, handle)).toEqual(before);
      expect(await metaOf(await t.open(), handle)).toEqual(before);
    });

    it('fails SESSION_NOT_FOUND for a session that does not exist, and creates nothing', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      const meta = await metaOf(store, handle);
      expect(await store.deleteSession(handle)).toBe(true);
      await expectCode(store.updateMeta(handle, meta), 'SESSION_NOT_FOUND');
      await expectCode(store.updateMeta('crab_nobody_1', { ...meta, created_by: 'nobody' }), 'SESSION_NOT_FOUND');
      expect(await store.loadSession(handle)).toBeNull();
      expect(await store.listSessions()).toEqual([]);
    });
  });
}
