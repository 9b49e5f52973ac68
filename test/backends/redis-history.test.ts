// Redis-only facts of fork, rewind, fenced writes and reads back (issue 17):
// fences hold under two clients at once and survive a retry after a lost
// reply; a fork copies bytes and numbers and holds its source's archives
// (holders sets), which outlive the source and go with the last holder;
// rewinds move the boundary pointer and remove archives nobody holds;
// stepsBefore reads only what is pulled. Also reports what forking 20,000 steps costs.

import { randomBytes } from 'node:crypto';
import { createClient } from 'redis';
import { afterEach, expect, it } from 'vitest';
import type { ConversationMeta, Store } from 'stepstore';
import { openRedisStore, type RedisLike } from 'stepstore/redis';
import { Connection } from '../../dist/backends/redis/client.js';
import { RedisBackend } from '../../dist/backends/redis/index.js';
import { encodeBatch } from '../../dist/format/encode.js';
import type { Slug } from '../../dist/format/slug.js';
import { quietLogger } from '../helpers/fs-harness.js';
import { codeOf } from '../helpers/codes.js';
import { REDIS_URL, deleteKeys, describeWithRedis } from '../helpers/redis-harness.js';

const message = (text: string) => ({ message: { role: 'user', content: [{ type: 'text', text }] } });
const messages = (tag: string, count: number) => Array.from({ length: count }, (_, i) => message(`${tag}:${i}`));
const event = { event: 'user_steered', content: 'steer', ts: '2026-03-25T10:00:00+00:00' };

const closers: (() => Promise<unknown>)[] = [];
const prefixes: string[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
  for (const prefix of prefixes.splice(0)) await deleteKeys(REDIS_URL, prefix);
});

function freshPrefix(): string {
  const prefix = `stepstore-test:${randomBytes(6).toString('hex')}:`;
  prefixes.push(prefix);
  return prefix;
}

async function openStore(prefix: string, client?: RedisLike): Promise<Store> {
  const store = await openRedisStore({ ...(client === undefined ? { url: REDIS_URL } : { client }), prefix, logger: quietLogger });
  closers.push(() => store.close());
  return store;
}

/** The backend alone, for the seam methods the public API reaches only through the rules. */
async function openBackend(prefix: string): Promise<RedisBackend> {
  const conn = await Connection.open(REDIS_URL, { retryForMs: 10_000, waitForAof: null });
  const backend = new RedisBackend({
    conn,
    prefix,
    logger: quietLogger,
    messages: 'crabtalk',
    stats: { stepsRead: 0, stepsWritten: 0, metaWrites: 0, syncs: 0 },
  });
  closers.push(() => backend.close());
  return backend;
}

async function raw() {
  const client = createClient({ url: REDIS_URL });
  client.on('error', () => undefined);
  await client.connect();
  closers.push(() => client.close());
  return client;
}

async function keysUnder(pattern: string): Promise<string[]> {
  const client = await raw();
  const keys: string[] = [];
  for await (const batch of client.scanIterator({ MATCH: pattern, COUNT: 1000 })) keys.push(...batch);
  return keys.sort();
}

/** A client whose first script call holding `needle` runs on the server and then loses its reply. */
async function losingClient(needle: string): Promise<{ client: RedisLike; lost: () => number }> {
  const inner = await raw();
  let lost = 0;
  const client = {
    get isReady() {
      return inner.isReady;
    },
    sendCommand(args: string[], ...rest: unknown[]) {
      const send = (inner.sendCommand as (...a: unknown[]) => Promise<unknown>).bind(inner);
      if (lost === 0 && args[0] === 'EVALSHA' && args.some((a) => a.includes(needle))) {
        lost += 1;
        return send(args, ...rest).then(() => Promise.reject(new Error('Socket closed unexpectedly')));
      }
      return send(args, ...rest);
    },
  } as unknown as RedisLike;
  return { client, lost: () => lost };
}

async function texts(store: Store, handle: string) {
  return (await store.readSteps(handle)).map(({ step, text }) => ({ step, text }));
}

const baseOf = (name: string) => name.slice(0, name.lastIndexOf('-'));

/** Directory entries of an archive base other than its counter. */
async function directoryEntries(prefix: string, base: string): Promise<Record<string, string>> {
  const { next: _next, ...entries } = await (await raw()).hGetAll(`${prefix}{arc:${base}}`);
  return entries;
}

describeWithRedis('fenced writes on Redis', () => {
  it('a fenced append lands at exactly n+1 or is refused with CONFLICT, writing nothing', async () => {
    const store = await openStore(freshPrefix());
    const handle = await store.createSession('crab', 'u');
    expect(await store.appendMessages(handle, [message('a')], { expectedStep: 0 })).toEqual([1]);
    expect(await codeOf(store.appendMessages(handle, [message('b')], { expectedStep: 0 }))).toBe('CONFLICT');
    expect(await codeOf(store.appendEvents(handle, [event], { expectedStep: 2 }))).toBe('CONFLICT');
    expect(await store.appendEvents(handle, [event], { expectedStep: 1 })).toEqual([2]);
    expect((await store.readSteps(handle)).map((s) => s.step)).toEqual([1, 2]);
    expect((await store.loadSession(handle))!.meta.message_count).toBe(1);
  });

  it('a fenced compact that fails stores no archive and claims no name', async () => {
    const prefix = freshPrefix();
    const store = await openStore(prefix);
    const handle = await store.createSession('crab', 'u');
    await store.appendMessages(handle, messages('m', 3));
    expect(await codeOf(store.compact(handle, 'summary', { expectedStep: 2 }))).toBe('CONFLICT');
    expect(await keysUnder(`${prefix}*:a:*`)).toEqual([]);
    expect(await keysUnder(`${prefix}{arc:*`)).toEqual([]);
    expect(await store.compact(handle, 'summary', { expectedStep: 3 })).toBe('crab-u-1-1');
    expect((await store.readSteps(handle)).map((s) => s.step)).toEqual([1, 2, 3, 4]);
  });

  it('of two clients appending at the same step, exactly one wins, every round', async () => {
    const prefix = freshPrefix();
    const [one, two] = [await openStore(prefix), await openStore(prefix)];
    const handle = await one.createSession('crab', 'u');
    for (let round = 0; round < 50; round++) {
      const results = await Promise.allSettled([
        one.appendMessages(handle, [message(`one ${round}`)], { expectedStep: round }),
        two.appendMessages(handle, [message(`two ${round}`)], { expectedStep: round }),
      ]);
      const won = results.filter((r) => r.status === 'fulfilled');
      expect(won).toHaveLength(1);
      expect((won[0] as PromiseFulfilledResult<number[]>).value).toEqual([round + 1]);
      const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      expect(await codeOf(Promise.reject(lost.reason))).toBe('CONFLICT');
    }
    expect((await two.readSteps(handle)).map((s) => s.step)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect((await two.loadSession(handle))!.meta.message_count).toBe(50);
  });

  it('of two clients compacting at the same step, one stores its archive; the other stores none and gives its name back', async () => {
    const prefix = freshPrefix();
    const [one, two] = [await openStore(prefix), await openStore(prefix)];
    const handle = await one.createSession('crab', 'u');
    for (let round = 0; round < 10; round++) {
      await one.appendMessages(handle, [message(`m ${round}`)]);
      const at = (await one.readSteps(handle, { last: 1 }))[0]!.step;
      const results = await Promise.allSettled([
        one.compact(handle, `one ${round}`, { expectedStep: at }),
        two.compact(handle, `two ${round}`, { expectedStep: at }),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    }
    // One archive per round, each named by a marker, and no directory entry left without its archive.
    const archives = await keysUnder(`${prefix}*:a:*`);
    expect(archives).toHaveLength(10);
    const names = (await one.readSteps(handle)).filter((s) => s.kind === 'compact').map((s) => (s.line as { archive_name: string }).archive_name);
    expect(names).toHaveLength(10);
    expect(Object.keys(await directoryEntries(prefix, 'crab-u-1')).sort()).toEqual(names.map((n) => n.slice('crab-u-1-'.length)).sort());
    for (const name of names) expect(await one.getArchive(name)).not.toBeNull();
  });

  it('a fenced append retried after its reply was lost answers with its first result, not CONFLICT', async () => {
    const prefix = freshPrefix();
    const { client, lost } = await losingClient('the lost one');
    const store = await openStore(prefix, client);
    const handle = await store.createSession('crab', 'u');
    await store.appendMessages(handle, [message('first')]);
    expect(await store.appendMessages(handle, [message('the lost one')], { expectedStep: 1 })).toEqual([2]);
    expect(lost()).toBe(1);
    expect((await store.readSteps(handle)).map((s) => s.step)).toEqual([1, 2]);
  });

  it('a fenced compact retried after its reply was lost answers with its archive, stored once', async () => {
    const prefix = freshPrefix();
    const { client, lost } = await losingClient('lost summary');
    const store = await openStore(prefix, client);
    const handle = await store.createSession('crab', 'u');
    await store.appendMessages(handle, [message('first')]);
    expect(await store.compact(handle, 'lost summary', { expectedStep: 1 })).toBe('crab-u-1-1');
    expect(lost()).toBe(1);
    expect((await store.readSteps(handle)).map((s) => s.kind)).toEqual(['entry', 'compact']);
    expect(await keysUnder(`${prefix}*:a:*`)).toHaveLength(1);
  });
});

describeWithRedis('fork on Redis', () => {
  /** 1-3 messages, 4 event, 5 marker A, 6-7 messages, 8 marker B, 9 message. */
  async function twoCompactions(store: Store) {
    const handle = await store.createSession('crab', 'u');
    await store.appendMessages(handle, messages('old', 3));
    await store.appendEvents(handle, [event]);
    const a = await store.compact(handle, 'summary A');
    await store.appendMessages(handle, messages('mid', 2));
    const b = await store.compact(handle, 'summary B');
    await store.appendMessages(handle, [message('last')]);
    return { handle, a, b };
  }

  it('copies the bytes and numbers of steps 1..atStep and stores the meta exactly as given', async () => {
    const prefix = freshPrefix();
    const store = await openStore(prefix);
    const backend = await openBackend(prefix);
    const { handle } = await twoCompactions(store);
    const meta: ConversationMeta = {
      ...(await store.loadSession(handle))!.meta,
      title: 'the fork',
      created_at: '2026-01-02T03:04:05Z',
      updated_at: '2026-01-02T03:04:05Z',
      message_count: 7,
      forked_from: handle,
    };
    const forked = await backend.fork(handle as Slug, 6, meta);
    expect(forked).toBe('crab_u_2');
    expect(await backend.readMeta(forked!)).toEqual(meta);
    expect(await texts(store, forked!)).toEqual((await texts(store, handle)).slice(0, 6));
    expect(await backend.highestStep(forked!)).toBe(6);
    expect(await store.findLatestSession('crab', 'u')).toBe(forked);
    expect((await store.listSessions()).map((s) => s.handle).sort()).toEqual([handle, forked].sort());
  });

  it('sets the boundary pointer to the last marker at or below atStep, also when a later one is the source\'s', async () => {
    const store = await openStore(freshPrefix());
    const { handle, a, b } = await twoCompactions(store);
    const atMid = await store.fork(handle, { atStep: 7 });
    const snapshot = (await store.loadSession(atMid, { withArchive: true }))!;
    expect(snapshot.archive).toBe(a);
    expect(snapshot.history.map((e) => (e.message.content as { text: string }[])[0]!.text)).toEqual(['mid:0', 'mid:1']);
    expect(snapshot.meta.message_count).toBe(3);
    const beforeAny = await store.fork(handle, { atStep: 4 });
    expect((await store.loadSession(beforeAny))!.archive).toBeNull();
    expect((await store.loadSession(beforeAny))!.history).toHaveLength(3);
    const whole = await store.fork(handle);
    expect((await store.loadSession(whole))!.archive).toBe(b);
    const empty = await store.fork(handle, { atStep: 0 });
    expect(await store.readSteps(empty)).toEqual([]);
    expect(await store.appendMessages(empty, [message('again')])).toEqual([1]);
  });

  it('null without a source, CONFLICT when the source is shorter than atStep', async () => {
    const prefix = freshPrefix();
    const store = await openStore(prefix);
    const backend = await openBackend(prefix);
    const handle = await store.createSession('crab', 'u');
    await store.appendMessages(handle, messages('m', 2));
    const meta = (await store.loadSession(handle))!.meta;
    expect(await backend.fork('crab_u_9' as Slug, 0, meta)).toBeNull();
    expect(await codeOf(backend.fork(handle as Slug, 3, meta))).toBe('CONFLICT');
    expect(await backend.highestStep('crab_u_9' as Slug)).toBeNull();
    expect((await store.listSessions()).map((s) => s.handle)).toEqual([handle]);
  });

  it("the fork's markers resolve after its source is deleted; the archives go with the last holder", async () => {
    const prefix = freshPrefix();
    const store = await openStore(prefix);
    const { handle, a, b } = await twoCompactions(store);
    const forked = await store.fork(handle, { atStep: 7 });
    const grandchild = await store.fork(forked);
    expect(await store.deleteSession(handle)).toBe(true);
    expect(await store.getArchive(a)).toBe('summary A');
    expect(await store.getArchive(b)).toBe('summary B');
    expect((await store.loadSession(forked, { withArchive: true }))!.archiveContent).toBe('summary A');
    expect((await store.repair()).orphanArchivesRemoved).toEqual([]);
    expect(await store.deleteSession(forked)).toBe(true);
    expect(await store.getArchive(a)).toBe('summary A');
    expect((await store.repair()).orphanArchivesRemoved).toEqual([]);
    expect(await store.deleteSession(grandchild)).toBe(true);
    expect(await store.getArchive(a)).toBeNull();
    expect(await store.getArchive(b)).toBeNull();
    expect(await keysUnder(`${prefix}*:a:*`)).toEqual([]);
    expect(await directoryEntries(prefix, baseOf(a))).toEqual({});
  });

  it('deleting the fork leaves the source and its archives as they were', async () => {
    const prefix = freshPrefix();
    const store = await openStore(prefix);
    const { handle, a, b } = await twoCompactions(store);
    const before = await texts(store, handle);
    const forked = await store.fork(handle, { atStep: 5 });
    await store.appendMessages(forked, [message('only in the fork')]);
    const own = await store.compact(forked, 'the fork\'s own');
    expect(await store.deleteSession(forked)).toBe(true);
    expect(await texts(store, handle)).toEqual(before);
    expect(await store.getArchive(a)).toBe('summary A');
    expect(await store.getArchive(b)).toBe('summary B');
    expect(await store.getArchive(own)).toBeNull();
    // The holders sets the fork started hold the source alone again.
    const holders = await keysUnder(`${prefix}*:holders`);
    expect(holders).toHaveLength(2);
    for (const key of holders) expect(await (await raw()).sMembers(key)).toEqual(['1']);
    expect((await store.repair()).orphanArchivesRemoved).toEqual([]);
  });

  it('a fork retried after its reply was lost makes one fork', async () => {
    const prefix = freshPrefix();
    const { client, lost } = await losingClient('forked_from');
    const store = await openStore(prefix, client);
    const handle = await store.createSession('crab', 'u');
    await store.appendMessages(handle, messages('m', 3));
    expect(await store.fork(handle)).toBe('crab_u_2');
    expect(lost()).toBe(1);
    expect((await store.listSessions()).map((s) => s.handle).sort()).toEqual(['crab_u_1', 'crab_u_2']);
    expect(await store.createSession('crab', 'u')).toBe('crab_u_3');
  });

  it('reports what forking 20,000 steps costs', async () => {
    const prefix = freshPrefix();
    const store = await openStore(prefix);
    const backend = await openBackend(prefix);
    const handle = await store.createSession('crab', 'u');
    for (let i = 0; i < 20; i++) await store.appendMessages(handle, messages(`batch ${i}`, 1000));
    const meta = (await store.loadSession(handle))!.meta;
    const started = performance.now();
    const forked = await backend.fork(handle as Slug, 20_000, meta);
    const ms = performance.now() - started;
    console.log(`forking 20,000 steps (${(await (await raw()).memoryUsage(`${prefix}{crab_u}:s:1:steps`)) ?? '?'} bytes of list): ${ms.toFixed(1)} ms for the FORK script round trip`);
    expect(await backend.highestStep(forked!)).toBe(20_000);
    expect((await store.readSteps(forked!, { last: 1 }))[0]!.text).toBe((await store.readSteps(handle, { last: 1 }))[0]!.text);
  });
});

describeWithRedis('rewind on Redis', () => {
  async function twoCompactions(store: Store) {
    const handle = await store.createSession('crab', 'u');
    await store.appendMessages(handle, messages('old', 3));
    const a = await store.compact(handle, 'summary A'); // 4
    await store.appendMessages(handle, messages('mid', 2)); // 5, 6
    const b = await store.compact(handle, 'summary B'); // 7
    await store.appendMessages(handle, [message('last')]); // 8
    return { handle, a, b };
  }

  it('trims the steps, moves the boundary back, removes an archive nobody holds and keeps one still named', async () => {
    const prefix = freshPrefix();
    const store = await openStore(prefix);
    const { handle, a, b } = await twoCompactions(store);
    expect(await store.rewind(handle, 6)).toBe(2);
    expect((await store.readSteps(handle)).map((s) => s.step)).toEqual([1, 2, 3, 4, 5, 6]);
    const snapshot = (await store.loadSession(handle))!;
    expect(snapshot.archive).toBe(a);
    expect(snapshot.history).toHaveLength(2);
    expect(snapshot.meta.message_count).toBe(3);
    expect(await store.getArchive(b)).toBeNull();
    expect(await store.getArchive(a)).toBe('summary A');
    expect(Object.keys(await directoryEntries(prefix, baseOf(a)))).toEqual(['1']);
    expect(await store.appendMessages(handle, [message('after')])).toEqual([7]);
    expect(await store.rewind(handle, 0)).toBe(7);
    expect(await store.readSteps(handle)).toEqual([]);
    expect((await store.loadSession(handle))!.archive).toBeNull();
    expect((await store.loadSession(handle))!.meta.message_count).toBe(0);
    expect(await store.getArchive(a)).toBeNull();
    expect(await keysUnder(`${prefix}*:a:*`)).toEqual([]);
    expect(await store.appendMessages(handle, [message('anew')])).toEqual([1]);
  });

  it('keeps an archive a fork still holds, until the fork goes', async () => {
    const prefix = freshPrefix();
    const store = await openStore(prefix);
    const { handle, b } = await twoCompactions(store);
    const forked = await store.fork(handle);
    expect(await store.rewind(handle, 3)).toBe(5);
    expect(await store.getArchive(b)).toBe('summary B');
    expect((await store.loadSession(forked, { withArchive: true }))!.archiveContent).toBe('summary B');
    expect((await store.repair()).orphanArchivesRemoved).toEqual([]);
    expect(await store.deleteSession(forked)).toBe(true);
    expect(await store.getArchive(b)).toBeNull();
    expect(await keysUnder(`${prefix}*:a:*`)).toEqual([]);
  });

  it('moves updated_at forward only, counts as given, and is null without a session', async () => {
    const prefix = freshPrefix();
    const store = await openStore(prefix);
    const backend = await openBackend(prefix);
    const handle = (await store.createSession('crab', 'u')) as Slug;
    await store.appendMessages(handle, messages('m', 4));
    const updated = (await backend.readMeta(handle))!.updated_at;
    expect(await backend.rewind(handle, 2, { count: 42 }, '2001-01-01T00:00:00Z', [])).toBe(2);
    expect((await backend.readMeta(handle))!.updated_at).toBe(updated);
    expect((await backend.readMeta(handle))!.message_count).toBe(42);
    expect(await backend.rewind(handle, 1, { count: 1 }, '2999-01-01T00:00:00Z', [])).toBe(1);
    expect((await backend.readMeta(handle))!.updated_at).toBe('2999-01-01T00:00:00Z');
    expect(await backend.rewind(handle, 5, { count: 9 }, '2999-01-01T00:00:00Z', [])).toBe(0);
    expect((await backend.readMeta(handle))!.message_count).toBe(1);
    expect(await backend.rewind('crab_u_9' as Slug, 0, { count: 0 }, '2999-01-01T00:00:00Z', [])).toBeNull();
  });

  it('a rewind retried after its reply was lost answers with its first count', async () => {
    const prefix = freshPrefix();
    const { handle, b } = await twoCompactions(await openStore(prefix));
    // REWIND is the one script of a rewind whose arguments name b (the archive of a retracted marker).
    const { client, lost } = await losingClient(b);
    const retrying = await openStore(prefix, client);
    expect(await retrying.rewind(handle, 6)).toBe(2);
    expect(lost()).toBe(1);
    expect(await retrying.getArchive(b)).toBeNull();
    expect(await directoryEntries(prefix, baseOf(b))).toEqual({ '1': handle });
  });
});

describeWithRedis('reading back on Redis', () => {
  it('stepsBefore reads only the steps pulled, newest first, from below `before` (which may pass the highest)', async () => {
    const prefix = freshPrefix();
    const store = await openStore(prefix);
    const backend = await openBackend(prefix);
    const handle = (await store.createSession('crab', 'u')) as Slug;
    await store.appendMessages(handle, messages('m', 1500));
    await store.compact(handle, 'summary');
    await store.appendMessages(handle, messages('n', 10));
    const read = () => backend.stats().stepsRead;

    let before = read();
    for await (const slice of backend.stepsBefore(handle, 1000)) {
      expect(slice[0]!.step).toBe(999);
      expect(slice.map((s) => s.step)).toEqual(slice.map((_, i) => 999 - i));
      break;
    }
    expect(read() - before).toBeLessThanOrEqual(16);

    before = read();
    const pulled: number[] = [];
    for await (const slice of backend.stepsBefore(handle, 100_000)) {
      pulled.push(...slice.map((s) => s.step));
      if (pulled.length >= 40) break;
    }
    expect(pulled.slice(0, 12)).toEqual([1511, 1510, 1509, 1508, 1507, 1506, 1505, 1504, 1503, 1502, 1501, 1500]);
    expect(read() - before).toBe(pulled.length);
    expect(read() - before).toBeLessThan(80);

    // A consumer that says how many it wants gets them in the first slice.
    before = read();
    for await (const slice of backend.stepsBefore(handle, 1000, 100)) {
      expect(slice).toHaveLength(100);
      break;
    }
    expect(read() - before).toBe(100);

    // Boundaries are no stop: everything below `before` comes when pulled.
    let all = 0;
    for await (const slice of backend.stepsBefore(handle, 1505)) all += slice.length;
    expect(all).toBe(1504);

    before = read();
    expect((await store.readSteps(handle, { before: 1200, limit: 5 })).map((s) => s.step)).toEqual([1195, 1196, 1197, 1198, 1199]);
    expect(backend.stats().stepsRead).toBe(before); // another store's counters: read on the store below
    const storeBefore = store.stats().stepsRead;
    await store.readSteps(handle, { last: 3 });
    expect(store.stats().stepsRead - storeBefore).toBeLessThanOrEqual(16);
    expect(await backend.highestStep(handle)).toBe(1511);
  });
});
