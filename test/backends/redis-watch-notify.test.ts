// store.watch() on a Redis server that publishes keyspace notifications: a
// private redis-server started here with notify-keyspace-events Klg (the
// server at REDIS_URL is never reconfigured; its watches poll), running the
// shared watch area, plus what only this path has: one pub/sub connection per
// store, shared by its watches, gone once the last ends or the store closes.
// Skipped when no redis-server is on PATH.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { createClient } from 'redis';
import { afterAll, describe, expect, it } from 'vitest';
import type { StepRecord, StepWatch } from 'stepstore';
import { openRedisStore } from 'stepstore/redis';
import { watchTests } from '../conformance/watch.js';
import { quietLogger } from '../helpers/fs-harness.js';
import { deleteKeys, redisHarness, redisReachable } from '../helpers/redis-harness.js';

const haveServer = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A throwaway redis-server publishing list and generic keyspace events; killed after this file. */
async function startServer(): Promise<{ url: string; server: ChildProcess }> {
  const port = await freePort();
  const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--notify-keyspace-events', 'Klg'], {
    stdio: 'ignore',
  });
  const url = `redis://127.0.0.1:${port}`;
  for (let tries = 0; !(await redisReachable(url)); tries++) {
    if (tries === 50) throw new Error(`redis-server on port ${port} did not start`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { url, server };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function collect(watch: StepWatch, into: StepRecord[] = []): Promise<StepRecord[]> {
  return (async () => {
    for await (const record of watch) into.push(record);
    return into;
  })();
}

if (!haveServer) {
  describe.skip('watch with keyspace notifications (needs redis-server on PATH)', () => undefined);
} else {
  const { url, server } = await startServer();
  afterAll(() => {
    server.kill();
  });

  /** Pattern subscriptions per connection to the private server (CLIENT LIST's psub), other than none. */
  async function patternSubscribers(): Promise<number[]> {
    const client = createClient({ url });
    client.on('error', () => undefined);
    await client.connect();
    const list = String(await client.sendCommand(['CLIENT', 'LIST']));
    await client.close();
    return [...list.matchAll(/ psub=(\d+)/g)].map((m) => Number(m[1])).filter((n) => n > 0);
  }

  async function until(what: string, test: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + 5000;
    while (!(await test())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
      await sleep(10);
    }
  }

  describe('redis with keyspace notifications', () => {
    watchTests(redisHarness(url));

    describe('its pub/sub connection', () => {
      const prefix = `stepstore-test:${randomBytes(6).toString('hex')}:`;
      afterAll(() => deleteKeys(url, prefix));

      it('is one per store, shared by its watches, and gone once the last ends or the store closes', async () => {
        const store = await openRedisStore({ url, prefix, logger: quietLogger });
        const handle = await store.createSession('crab', 'notify');
        const another = await store.createSession('crab', 'notify');
        const first = new AbortController();
        const second = new AbortController();
        const watches = [await store.watch(handle, { signal: first.signal }), await store.watch(another, { signal: second.signal })];
        const collected = watches.map((watch) => collect(watch));
        // Each watch subscribes to two patterns (its session's steps and meta) on the one connection.
        await until('both watches subscribe', async () => (await patternSubscribers()).join() === '4');
        first.abort();
        await collected[0];
        await until('the first watch unsubscribes', async () => (await patternSubscribers()).join() === '2');
        second.abort();
        await collected[1];
        await until('the connection closes', async () => (await patternSubscribers()).length === 0);
        expect(watches.map((watch) => watch.ended)).toEqual(['aborted', 'aborted']);

        const open = await store.watch(handle);
        const openCollected = collect(open);
        await until('a new watch subscribes', async () => (await patternSubscribers()).join() === '2');
        await store.close();
        await openCollected;
        expect(open.ended).toBe('closed');
        expect(await patternSubscribers()).toEqual([]);
      });

      it('wakes a watcher on a step appended by another store well within its poll interval', async () => {
        const store = await openRedisStore({ url, prefix, logger: quietLogger });
        const writer = await openRedisStore({ url, prefix, logger: quietLogger });
        const handle = await store.createSession('crab', 'notify');
        const watch = await store.watch(handle);
        const records: StepRecord[] = [];
        const arrived: number[] = [];
        const done = (async () => {
          for await (const record of watch) {
            records.push(record);
            arrived.push(performance.now());
          }
        })();
        await until('the watch subscribes', async () => (await patternSubscribers()).length === 1);
        const latencies: number[] = [];
        for (let i = 0; i < 5; i++) {
          const sent = performance.now();
          await writer.appendMessages(handle, [{ message: { role: 'user', content: [{ type: 'text', text: `n${i}` }] } }]);
          await until(`step ${i + 1} arrives`, async () => records.length > i);
          latencies.push(arrived[i]! - sent);
          await sleep(50);
        }
        // Without notifications these would wait for the 2 s poll.
        expect(latencies.sort((a, b) => a - b)[2]).toBeLessThan(500);
        await store.close();
        await writer.close();
        await done;
      });
    });
  });
}
