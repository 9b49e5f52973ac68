// The Redis harness: each fixture is a fresh key prefix on the server at
// REDIS_URL (default redis://127.0.0.1:6379), removed after the test.

import { randomBytes } from 'node:crypto';
import { createClient } from 'redis';
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
