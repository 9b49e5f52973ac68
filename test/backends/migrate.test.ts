// migrate(from, to) between backends: a rich filesystem root copied to Redis
// and back gives identical loads, archives and metas; a second run copies
// nothing; a run cut short resumes where it stopped.

import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { migrate, openStore, type Store } from 'stepstore';
import { openRedisStore } from 'stepstore/redis';
import { makeTempDir, quietLogger } from '../helpers/fs-harness.js';
import { REDIS_URL, deleteKeys, describeWithRedis } from '../helpers/redis-harness.js';

const opened: Store[] = [];
const prefixes: string[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((store) => store.close()));
  for (const prefix of prefixes.splice(0)) await deleteKeys(REDIS_URL, prefix);
});

async function fsStore(): Promise<Store> {
  const store = await openStore({ dir: path.join(await makeTempDir('migrate'), 'sessions'), durability: 'none', logger: quietLogger });
  opened.push(store);
  return store;
}

async function redisStore(): Promise<Store> {
  const prefix = `stepstore-test:${randomBytes(6).toString('hex')}:`;
  prefixes.push(prefix);
  const store = await openRedisStore({ url: REDIS_URL, prefix, logger: quietLogger });
  opened.push(store);
  return store;
}

const say = (text: string) => ({ message: { role: 'user', content: [{ type: 'text', text }] } });

/** Sessions with compactions, events, a legacy marker, a guest agent, unknown meta fields, a title. */
async function populate(store: Store): Promise<void> {
  const a = await store.createSession('crab', 'tg:12345');
  await store.appendMessages(a, [say('one'), say('two')]);
  await store.appendEvents(a, [{ event: 'tool_start', calls: [{ id: 'c1', name: 'bash', arguments: '{}' }], ts: '2026-03-25T10:00:00Z' }]);
  await store.compact(a, 'first summary');
  await store.appendMessages(a, [say('three'), { agent: 'guest', message: { role: 'assistant', content: [{ type: 'text', text: 'four ✓ \ud83d\ude00' }] } }]);
  await store.compact(a, 'second summary');
  await store.appendMessages(a, [say('five')]);
  const meta = (await store.loadSession(a))!.meta;
  await store.updateMeta(a, { ...meta, title: 'Lisbon weather', topic: 'an unknown field' });

  const b = await store.createSession('crab', 'tg-12345'); // same slug prefix, another sender
  await store.appendMessages(b, [say('other sender')]);
  await store.importSteps(b, [{ compact: 'legacy inline summary' }, say('after legacy')]);

  const c = await store.createSession('Émile', 'web:42');
  for (let i = 0; i < 30; i++) await store.appendMessages(c, [say(`turn ${i}`)]);
}

/** Everything a user can observe of a store, in a comparable form. */
async function observe(store: Store) {
  const sessions = await store.listSessions();
  const out = [];
  for (const { handle, meta } of sessions) {
    const snapshot = await store.loadSession(handle, { withArchive: true });
    const steps = await store.readSteps(handle);
    const archives: Record<string, string | null> = {};
    for (const { line } of steps) {
      const name = (line as { archive_name?: unknown }).archive_name;
      if (typeof name === 'string') archives[name] = await store.getArchive(name);
    }
    out.push({ handle, meta, snapshot, lines: steps.map((s) => s.line), archives });
  }
  return out.sort((x, y) => (x.handle < y.handle ? -1 : 1));
}

describeWithRedis('migrate between backends', () => {
  it('fs -> Redis -> fs gives identical loads, archives and metas', async () => {
    const source = await fsStore();
    await populate(source);
    const expected = await observe(source);
    expect(expected).toHaveLength(3);

    const redis = await redisStore();
    const first = await migrate(source, redis);
    expect(first).toMatchObject({ sessions: 3, sessionsCreated: 3, archivesCopied: 2 });
    expect(await observe(redis)).toEqual(expected);

    const back = await fsStore();
    await migrate(redis, back);
    expect(await observe(back)).toEqual(expected);
  });

  it('a second migration copies nothing and changes nothing', async () => {
    const source = await fsStore();
    await populate(source);
    const redis = await redisStore();
    await migrate(source, redis);
    const again = await migrate(source, redis);
    expect(again).toEqual({ sessions: 3, sessionsCreated: 0, stepsCopied: 0, archivesCopied: 0 });
    expect(await observe(redis)).toEqual(await observe(source));
  });

  it('a migration cut short resumes where it stopped', async () => {
    const source = await fsStore();
    await populate(source);
    const target = await redisStore();
    const progress: string[] = [];
    await expect(
      migrate(source, target, {
        onProgress: ({ handle, done }) => {
          progress.push(handle);
          if (done === 1) throw new Error('interrupted');
        },
      }),
    ).rejects.toThrow('interrupted');
    expect(progress).toHaveLength(1);
    const resumed = await migrate(source, target);
    expect(resumed.sessionsCreated).toBe(2);
    expect(await observe(target)).toEqual(await observe(source));
  });

  it('copies between two filesystem roots too', async () => {
    const source = await fsStore();
    await populate(source);
    const target = await fsStore();
    await migrate(source, target);
    expect(await observe(target)).toEqual(await observe(source));
  });
});
