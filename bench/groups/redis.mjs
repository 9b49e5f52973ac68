// Redis backend (stepstore/redis) against raw RPUSH on the same server: one
// stream of appends, then many sessions at once. Needs a server at REDIS_URL
// (default redis://127.0.0.1:6379); skipped with a note without one. Each run
// writes under a fresh key prefix, removed in teardown.

import { createClient } from 'redis';
import { openRedisStore } from '../../dist/redis.js';
import { appendConcurrently, check, countingLogger } from '../lib/harness.mjs';
import { messageBuffers, messages, textOf } from '../lib/payload.mjs';

const URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const BASE = `stepstore-bench:${process.pid}:`;
let runs = 0;
const nextPrefix = () => `${BASE}${++runs}:`;

async function connect() {
  const client = createClient({ url: URL, RESP: 2, socket: { connectTimeout: 1000, reconnectStrategy: false } });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

async function serverInfo() {
  try {
    const client = await connect();
    const info = await client.info('server');
    const [, appendonly] = await client.sendCommand(['CONFIG', 'GET', 'appendonly']);
    const [, appendfsync] = await client.sendCommand(['CONFIG', 'GET', 'appendfsync']);
    await client.close();
    const version = /redis_version:([\d.]+)/.exec(info)?.[1] ?? '?';
    return { version, appendonly, appendfsync };
  } catch {
    return null;
  }
}

const server = await serverInfo();
const serverNote = server && `Redis ${server.version} at ${URL}, appendonly ${server.appendonly}, appendfsync ${server.appendfsync}`;

/** Raw RPUSH of the same JSON, one command per step, `lists` lists written concurrently. */
function rpushRun(lists, perList) {
  const bufs = Array.from({ length: lists }, (_, k) => messageBuffers(perList, `r${k}-`));
  return async (ctx) => {
    const client = await connect();
    const prefix = nextPrefix();
    const samples = new Float64Array(lists * perList);
    const t = ctx.start();
    await Promise.all(
      bufs.map(async (list, k) => {
        for (let j = 0; j < perList; j++) {
          const s = performance.now();
          await client.sendCommand(['RPUSH', `${prefix}list${k}`, list[j]]);
          samples[k * perList + j] = performance.now() - s;
        }
      }),
    );
    const timed = ctx.stop(t);
    for (let k = 0; k < lists; k++) check((await client.lLen(`${prefix}list${k}`)) === perList, `list ${k} length`);
    await client.close();
    return { ...timed, ops: lists * perList, samples };
  };
}

/** appendMessages([one]) through the Redis store, `sessions` sessions concurrently. */
function storeRun(sessions, perSession) {
  const items = Array.from({ length: sessions }, (_, k) => messages(perSession, `k${k}-`));
  return async (ctx) => {
    const logger = countingLogger();
    const prefix = nextPrefix();
    const store = await openRedisStore({ url: URL, prefix, logger });
    const { timed, samples, handles } = await appendConcurrently(ctx, store, items, (h, b) => store.appendMessages(h, b));
    for (let k = 0; k < sessions; k++) {
      const snap = await store.loadSession(handles[k]);
      check(snap.history.length === perSession && snap.meta.message_count === perSession, `session ${k} holds ${snap.history.length}`);
      check(textOf(snap.history[perSession - 1]) === textOf(items[k][perSession - 1]), `session ${k}: last message differs`);
    }
    await store.close();
    check(logger.warnings === 0, `store warned: ${logger.first}`);
    return { ...timed, ops: sessions * perSession, samples };
  };
}

export default server === null
  ? { id: 'redis', title: 'Redis backend', skip: `skipped: no Redis server at ${URL} (start redis-server or set REDIS_URL)` }
  : {
      id: 'redis',
      title: `Redis backend vs raw RPUSH on the same server (${serverNote})`,
      async setup() {
        return {};
      },
      async teardown() {
        const client = await connect();
        for await (const keys of client.scanIterator({ MATCH: `${BASE}*`, COUNT: 1000 })) if (keys.length) await client.del(keys);
        await client.close();
      },
      scenarios(_state, env) {
        const { singleN: n, manySessions: s, manyPerSession: p } = env.params;
        return [
          {
            id: `single-${n}`,
            title: `${n} appends of one ~1 KB message to one session, one after another`,
            unit: 'step',
            note: `time per step; ${serverNote}`,
            floors: [{ id: 'rpush', label: 'floor: RPUSH per step, one list', run: rpushRun(1, n) }],
            variants: [
              {
                id: 'append',
                label: 'appendMessages([1])',
                run: storeRun(1, n),
                ref: 'rpush',
                targets: [{ kind: 'ratio', ref: 'rpush', max: 1.5 }],
              },
            ],
          },
          {
            id: `many-${s}x${p}`,
            title: `${s} sessions x ${p} appends, all sessions concurrently`,
            unit: 'step',
            note: 'median/min = wall time / steps (aggregate); p50/p99 = latency of one call; stall = longest gap of a 1 ms timer',
            meter: true,
            floors: [{ id: 'rpush', label: `floor: RPUSH per step, ${s} lists concurrently`, run: rpushRun(s, p) }],
            variants: [{ id: 'append', label: `appendMessages([1]) x${p} in ${s} sessions`, run: storeRun(s, p), ref: 'rpush' }],
          },
        ];
      },
    };
