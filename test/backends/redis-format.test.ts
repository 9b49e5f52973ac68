// Redis-only facts: the key layout (everything under the prefix, one hash tag
// per (agent, sender) so a session lives in one Cluster slot, names that
// cannot widen a pattern), options, WAITAOF support detection; how long a
// write request is remembered for its retries (by time, per request: however
// many other writes come in between, and gone once the window has passed);
// and the record a deleted session leaves, which repair() leaves alone.

import { randomBytes } from 'node:crypto';
import { createClient } from 'redis';
import { afterEach, expect, it } from 'vitest';
import { StepStoreError, type ConversationMeta, type Store } from 'stepstore';
import { openRedisStore, type RedisLike } from 'stepstore/redis';
import { quietLogger } from '../helpers/fs-harness.js';
import { codeOf } from '../helpers/codes.js';
import { REDIS_URL, deleteKeys, describeWithRedis } from '../helpers/redis-harness.js';

const opened: Store[] = [];
const prefixes: string[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((store) => store.close()));
  for (const prefix of prefixes.splice(0)) await deleteKeys(REDIS_URL, prefix);
});

async function open(): Promise<{ store: Store; prefix: string }> {
  const prefix = `stepstore-test:${randomBytes(6).toString('hex')}:`;
  prefixes.push(prefix);
  const store = await openRedisStore({ url: REDIS_URL, prefix, logger: quietLogger });
  opened.push(store);
  return { store, prefix };
}

async function keysUnder(pattern: string): Promise<string[]> {
  const client = createClient({ url: REDIS_URL });
  await client.connect();
  const keys: string[] = [];
  for await (const batch of client.scanIterator({ MATCH: pattern, COUNT: 1000 })) keys.push(...batch);
  await client.close();
  return keys.sort();
}

/** The hash tag Redis Cluster would use: between the first `{` and the next `}`. */
function hashTag(key: string): string {
  const open = key.indexOf('{');
  const close = key.indexOf('}', open + 1);
  return open >= 0 && close > open + 1 ? key.slice(open + 1, close) : key;
}

async function expectOptionError(action: Promise<unknown>): Promise<StepStoreError> {
  const err = await action.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StepStoreError);
  expect((err as StepStoreError).code).toBe('INVALID_OPTION');
  return err as StepStoreError;
}

describeWithRedis('the Redis layout', () => {
  it('keeps every key of a session, its steps and its archives under one hash tag, inside the prefix', async () => {
    const { store, prefix } = await open();
    const handle = await store.createSession('crab', 'tg:12345');
    await store.appendMessages(handle, [message('hi')]);
    await store.compact(handle, 'summary');
    const all = await keysUnder('*');
    const ours = all.filter((key) => key.startsWith(prefix));
    expect(ours.length).toBeGreaterThan(4);
    const sessionKeys = ours.filter((key) => key.includes(':s:') || key.includes(':a:') || key.endsWith(':seq') || key.endsWith(':sessions'));
    expect(new Set(sessionKeys.filter((k) => !k.includes('{index}')).map(hashTag))).toEqual(new Set(['crab_tg-12345']));
    expect(ours.some((key) => hashTag(key) === 'arc:crab-tg-12345-1')).toBe(true);
    expect(ours.some((key) => hashTag(key) === 'index')).toBe(true);
  });

  it('names full of glob and tag characters stay apart and add no key outside the prefix', async () => {
    const { store, prefix } = await open();
    const senders = ['a:*', 'a?[]', 'a\\{x}', 'a{b}c', 'a*'];
    const handles = [];
    for (const sender of senders) {
      const handle = await store.createSession('agent{*}', sender);
      await store.appendMessages(handle, [message(sender)]);
      handles.push(handle);
    }
    expect(new Set(handles).size).toBe(senders.length);
    for (const [i, sender] of senders.entries()) {
      expect(await store.findLatestSession('agent{*}', sender)).toBe(handles[i]);
      expect((await store.loadSession(handles[i]!))!.history.map((e) => e.message.content)).toEqual([message(sender).message.content]);
    }
    const all = await keysUnder(`${prefix.slice(0, -1)}*`);
    for (const key of all) expect(key.startsWith(prefix)).toBe(true);
  });

  it('refuses a prefix with hash-tag braces', async () => {
    await expectOptionError(openRedisStore({ url: REDIS_URL, prefix: 'x{y}:' }));
  });

  it('waitForAof says clearly when the server cannot WAITAOF', async () => {
    const probe = createClient({ url: REDIS_URL });
    await probe.connect();
    const version = /redis_version:(\d+)\.(\d+)/.exec(await probe.info('server'))!;
    await probe.close();
    const [major, minor] = [Number(version[1]), Number(version[2])];
    if (major > 7 || (major === 7 && minor >= 2)) {
      console.log(`server is ${major}.${minor}: WAITAOF exists; its refusal path is not reachable here`);
      return;
    }
    const err = await expectOptionError(openRedisStore({ url: REDIS_URL, prefix: 'stepstore-test:aof:', waitForAof: true }));
    expect(err.message).toContain(`${major}.${minor}`);
  });
});

/** A real client that records every command the store sends through it, so a test can send one again as a retry would. */
async function recordingClient() {
  const raw = createClient({ url: REDIS_URL });
  raw.on('error', () => undefined);
  await raw.connect();
  clients.push(raw);
  const sent: string[][] = [];
  const client = {
    get isReady() {
      return raw.isReady;
    },
    sendCommand(args: string[], ...rest: unknown[]) {
      sent.push([...args]);
      return (raw.sendCommand as (...a: unknown[]) => Promise<unknown>)(args, ...rest);
    },
  } as unknown as RedisLike;
  return { client, sent, raw };
}

const clients: { close(): Promise<unknown> }[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
});

/** The one script call (EVALSHA) the store sent whose arguments hold `needle`. */
function scriptCall(sent: string[][], needle: string): string[] {
  const calls = sent.filter((args) => args[0] === 'EVALSHA' && args.some((a) => a.includes(needle)));
  expect(calls, `script calls holding ${needle}`).toHaveLength(1);
  return calls[0]!;
}

const message = (text: string) => ({ message: { role: 'user', content: [{ type: 'text', text }] } });

describeWithRedis('retried writes on Redis', () => {
  it('a request sent again after 1,100 other writes to its session and pair is recognised, not stored twice', async () => {
    const prefix = `stepstore-test:${randomBytes(6).toString('hex')}:`;
    prefixes.push(prefix);
    const { client, sent, raw } = await recordingClient();
    const writer = await openRedisStore({ client, prefix, logger: quietLogger });
    opened.push(writer);
    const handle = await writer.createSession('crab', 'u');
    expect(await writer.appendMessages(handle, [message('the retried one')])).toEqual([1]);
    const append = scriptCall(sent, 'the retried one');
    const before = sent.length;
    const created = await writer.createSession('crab', 'u');
    const create = sent.slice(before).filter((args) => args[0] === 'EVALSHA');
    expect(create).toHaveLength(1);

    // Other writers, busy while the first one's reply is (say) lost: more than the 1,024 ids once remembered.
    const others = await openRedisStore({ url: REDIS_URL, prefix, logger: quietLogger });
    opened.push(others);
    for (let i = 0; i < 1100; i++) await others.appendMessages(handle, [message(`other ${i}`)]);
    for (let i = 0; i < 1100; i++) await others.createSession('crab', 'u');

    // The very requests again, as Connection's retry sends them: answered from memory.
    expect(await raw.sendCommand(append)).toBe(1);
    expect(await raw.sendCommand(create[0]!)).toBe(Number(created.split('_').at(-1)));
    const steps = await writer.readSteps(handle);
    expect(steps).toHaveLength(1101);
    expect(steps.filter((s) => JSON.stringify(s.line).includes('the retried one')).map((s) => s.step)).toEqual([1]);
    expect((await writer.loadSession(handle))!.meta.message_count).toBe(1101);
    expect(await writer.listSessions({ agent: 'crab', createdBy: 'u' })).toHaveLength(1102);
    expect(await writer.findLatestSession('crab', 'u')).toBe('crab_u_1102');
  });

  it("a request is remembered past its writer's retry window, then forgotten: nothing is kept by count", async () => {
    const prefix = `stepstore-test:${randomBytes(6).toString('hex')}:`;
    prefixes.push(prefix);
    const { client, raw } = await recordingClient();
    const retryForMs = 200;
    const store = await openRedisStore({ client, prefix, retryForMs, logger: quietLogger });
    opened.push(store);
    const handle = await store.createSession('crab', 'u');
    await store.appendMessages(handle, [message('one')]);
    await store.compact(handle, 'a summary');
    await store.deleteSession(await store.createSession('crab', 'gone'));
    const remembered = await keysUnder(`${prefix}*:r:*`);
    // create, create, append, the archive claim, compact, delete: one key each, in the slot of what it wrote.
    expect(remembered).toHaveLength(6);
    for (const key of remembered) {
      const ttl = await raw.pTTL(key);
      expect(ttl, `${key} outlives the retry window`).toBeGreaterThan(retryForMs);
      expect(ttl, `${key} goes soon after it`).toBeLessThanOrEqual(retryForMs + 1000);
    }
    // The default window (10 s) is covered too.
    const { client: other, sent } = await recordingClient();
    const byDefault = await openRedisStore({ client: other, prefix, logger: quietLogger });
    opened.push(byDefault);
    await byDefault.appendMessages(handle, [message('two')]);
    const appendKey = scriptCall(sent, 'two').find((a) => a.includes(':r:'))!;
    expect(await raw.pTTL(appendKey)).toBeGreaterThan(10_000);

    await new Promise((resolve) => setTimeout(resolve, retryForMs + 1100));
    expect((await keysUnder(`${prefix}*:r:*`)).filter((key) => key !== appendKey)).toEqual([]);
    // What stays is the data alone (and the record of the deleted session).
    const tag = `${prefix}{crab_u}`;
    expect((await keysUnder(`${prefix}*`)).filter((key) => key !== appendKey)).toEqual(
      [
        `${prefix}{arc:crab-u-1}`,
        `${prefix}{crab_gone}:deleted`,
        `${prefix}{crab_gone}:seq`,
        `${prefix}{index}:sessions`,
        `${tag}:a:crab-u-1-1`,
        `${tag}:seq`,
        `${tag}:sessions`,
        `${tag}:s:1:archives`,
        `${tag}:s:1:meta`,
        `${tag}:s:1:state`,
        `${tag}:s:1:steps`,
      ].sort(),
    );
  });

  it('a retry still unsent when the window closes is given up, never sent late', async () => {
    const prefix = `stepstore-test:${randomBytes(6).toString('hex')}:`;
    prefixes.push(prefix);
    const raw = createClient({ url: REDIS_URL });
    raw.on('error', () => undefined);
    await raw.connect();
    clients.push(raw);
    let attempts = 0;
    let sentLate = false;
    const retryForMs = 300;
    // The first attempt runs and its reply is lost; a retry waits offline (as node-redis queues it)
    // until the connection is back, well after the window: unless its signal gave it up by then.
    const client = {
      isReady: true,
      sendCommand(args: string[], options?: { abortSignal?: AbortSignal }) {
        if (!(args[0] === 'EVALSHA' && args.some((a) => a.includes('lost')))) return raw.sendCommand(args);
        attempts += 1;
        if (attempts === 1) return raw.sendCommand(args).then(() => Promise.reject(new Error('Socket closed unexpectedly')));
        return new Promise((resolve, reject) => {
          const signal = options?.abortSignal;
          signal?.addEventListener('abort', () => reject(Object.assign(new Error('The command was aborted'), { name: 'AbortError' })));
          setTimeout(() => {
            if (signal?.aborted) return;
            sentLate = true;
            raw.sendCommand(args).then(resolve, reject);
          }, retryForMs + 500);
        });
      },
    } as unknown as RedisLike;
    const store = await openRedisStore({ client, prefix, retryForMs, logger: quietLogger });
    opened.push(store);
    const handle = await store.createSession('crab', 'u');
    const started = Date.now();
    expect(await codeOf(store.appendMessages(handle, [message('lost')]))).toBe('IO_ERROR');
    expect(Date.now() - started).toBeLessThan(retryForMs + 400);
    expect(attempts).toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(sentLate, 'a retry sent after the window').toBe(false);
    expect((await store.readSteps(handle)).map((s) => s.line)).toEqual([message('lost')]);
  });
});

describeWithRedis('deleted sessions on Redis', () => {
  const META: ConversationMeta = {
    agent: 'crab',
    created_by: 'u',
    created_at: '2026-03-25T10:00:00.123Z',
    title: 't',
    updated_at: '2026-03-25T10:05:00.000Z',
    message_count: 0,
  };

  it('a delete records the created_at: the same instant, however spelled, comes back, another is CONFLICT; repair leaves it', async () => {
    const { store, prefix } = await open();
    expect(await store.importSession('crab_u_5', META)).toBe(true);
    await store.appendMessages('crab_u_5', [message('hello')]);
    await store.compact('crab_u_5', 'summary');
    expect(await store.deleteSession('crab_u_5')).toBe(true);
    const client = createClient({ url: REDIS_URL });
    await client.connect();
    clients.push(client);
    expect(await client.hGetAll(`${prefix}{crab_u}:deleted`)).toEqual({ '5': JSON.stringify(META.created_at) });

    const err = await store.importSession('crab_u_5', { ...META, created_at: '2026-03-25T10:00:00.124Z' }).then(
      () => null,
      (e: unknown) => e as StepStoreError,
    );
    expect(err?.code).toBe('CONFLICT');
    expect(err?.message).toMatch(/crab_u_5 was deleted, and a handle never names another conversation/);
    expect(await store.loadSession('crab_u_5')).toBeNull();
    // A session deleted with no created_at recorded comes back as nothing.
    await client.hSet(`${prefix}{crab_u}:deleted`, '6', '');
    expect(await codeOf(store.importSession('crab_u_6', META))).toBe('CONFLICT');

    const respelled = { ...META, created_at: '2026-03-25T10:00:00.123000000+00:00' };
    expect(await store.importSession('crab_u_5', respelled)).toBe(true);
    expect((await store.loadSession('crab_u_5'))!.meta).toEqual(respelled);
    expect(await store.importSession('crab_u_5', META)).toBe(false);
    expect(await store.createSession('crab', 'u')).toBe('crab_u_7');

    const report = await store.repair();
    expect(report.sessions).toBe(2);
    const { sessions, dryRun, ...lists } = report;
    for (const [name, list] of Object.entries(lists)) expect(list, `repair ${name}`).toEqual([]);
    expect(await client.hGetAll(`${prefix}{crab_u}:deleted`)).toEqual({ '5': JSON.stringify(META.created_at), '6': '' });
  });
});
