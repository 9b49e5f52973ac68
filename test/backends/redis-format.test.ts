// Redis-only facts: the key layout (everything under the prefix, one hash tag
// per (agent, sender) so a session lives in one Cluster slot, names that
// cannot widen a pattern), options, and WAITAOF support detection.

import { randomBytes } from 'node:crypto';
import { createClient } from 'redis';
import { afterEach, expect, it } from 'vitest';
import { StepStoreError, type Store } from 'stepstore';
import { openRedisStore } from 'stepstore/redis';
import { quietLogger } from '../helpers/fs-harness.js';
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
    await store.appendMessages(handle, [{ message: { role: 'user', content: 'hi' } }]);
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
      await store.appendMessages(handle, [{ message: { role: 'user', content: sender } }]);
      handles.push(handle);
    }
    expect(new Set(handles).size).toBe(senders.length);
    for (const [i, sender] of senders.entries()) {
      expect(await store.findLatestSession('agent{*}', sender)).toBe(handles[i]);
      expect((await store.loadSession(handles[i]!))!.history.map((e) => e.message.content)).toEqual([sender]);
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
