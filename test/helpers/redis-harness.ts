// The Redis harness: each fixture is a fresh key prefix on the server at
// REDIS_URL (default redis://127.0.0.1:6379), removed after the test; and the
// one rule for tests that need that server (describeWithRedis, withRedis):
// they run when it answers, fail under CI=true when it does not, and are
// skipped elsewhere with one line saying how to run them.

import { randomBytes } from 'node:crypto';
import { createClient } from 'redis';
import { describe, it } from 'vitest';
import type { Store } from 'stepstore';
import { openRedisStore } from 'stepstore/redis';
import type { Fixture, Harness, StoreOverrides } from '../conformance/harness.js';
import { quietLogger } from './fs-harness.js';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** True when a Redis server answers PING at `url` within a second. */
export async function redisReachable(url: string): Promise<boolean> {
  const client = createClient({ url, socket: { connectTimeout: 1000, reconnectStrategy: false } });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
    await client.close();
    return true;
  } catch {
    return false;
  }
}

let reachable: Promise<boolean> | undefined;
let hinted = false;

/**
 * What the Redis tests of this file do here: 'run' when a server answers at
 * REDIS_URL (probed once per file); otherwise 'fail' under CI=true, so that a
 * missing server never passes as a green run, and 'skip' elsewhere, after one
 * line (once per file) saying how to run `what`.
 */
async function redisMode(what: string): Promise<'run' | 'fail' | 'skip'> {
  reachable ??= redisReachable(REDIS_URL);
  if (await reachable) return 'run';
  if (process.env.CI === 'true') return 'fail';
  if (!hinted) console.log(`skipping ${what}: no Redis server at ${REDIS_URL}. Start redis-server or set REDIS_URL to run them.`);
  hinted = true;
  return 'skip';
}

/**
 * Registers the tests of `body` in the current suite when a Redis server
 * answers; otherwise (see redisMode) one test that fails naming the missing
 * server under CI=true, or one skipped test elsewhere. Await it at the top of
 * a file or inside an async describe; describeWithRedis does that for you.
 */
export async function withRedis(what: string, body: () => void): Promise<void> {
  const mode = await redisMode(what);
  if (mode === 'run') body();
  else if (mode === 'fail') {
    it('has a Redis server to test against', () => {
      throw new Error(`no Redis server at ${REDIS_URL} (CI=true): start redis-server or set REDIS_URL`);
    });
  } else it.skip('needs a Redis server', () => undefined);
}

/** `describe(name, body)` for tests that need the Redis server at REDIS_URL: see withRedis. */
export function describeWithRedis(name: string, body: () => void, what = `the tests "${name}"`): void {
  describe(name, () => withRedis(what, body));
}

/** Deletes every key under `prefix` (tests only: SCAN is fine here). */
export async function deleteKeys(url: string, prefix: string): Promise<void> {
  const client = createClient({ url });
  client.on('error', () => undefined);
  await client.connect();
  for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
    if (keys.length > 0) await client.del(keys);
  }
  await client.close();
}

/**
 * Fresh stores at `url`, each fixture under its own prefix below `keyPrefix`;
 * `onDispose` runs after a fixture's keys are removed.
 */
export function redisHarness(url: string = REDIS_URL, keyPrefix = 'stepstore-test:', onDispose?: () => void): Harness {
  return {
    async fixture(): Promise<Fixture> {
      const prefix = `${keyPrefix}${randomBytes(6).toString('hex')}:`;
      const opened: Store[] = [];
      return {
        async open(overrides: StoreOverrides = {}) {
          const store = await openRedisStore({ url, prefix, logger: quietLogger, ...overrides });
          opened.push(store);
          return store;
        },
        workerSpec: () => ({ kind: 'redis', url, prefix }),
        async dispose() {
          await Promise.all(opened.map((store) => store.close()));
          await deleteKeys(url, prefix);
          onDispose?.();
        },
      };
    },
  };
}
