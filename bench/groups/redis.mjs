// Redis backend (stepstore/redis) against raw RPUSH on the same server: one
// stream of appends (with rows that split one append into its parts: the
// script call, the APPEND script alone, the client's own work), then many
// sessions at once. Needs a server at REDIS_URL
// (default redis://127.0.0.1:6379); skipped with a note without one. Each run
// writes under a fresh key prefix, removed in teardown.

import { createHash } from 'node:crypto';
import { createClient } from 'redis';
import { openRedisStore } from '../../dist/redis.js';
import { APPEND } from '../../dist/backends/redis/scripts.js';
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

const sha1 = (source) => createHash('sha1').update(source).digest('hex');
const TRIVIAL_SCRIPT = 'return 1';

/** Part: EVALSHA of a one-line script given the same bytes and one key: what calling any script costs over RPUSH. */
function trivialScriptRun(n) {
  const texts = messageBuffers(n, 'r0-').map(String);
  return async (ctx) => {
    const client = await connect();
    const sha = String(await client.sendCommand(['SCRIPT', 'LOAD', TRIVIAL_SCRIPT]));
    const key = `${nextPrefix()}list`;
    const samples = new Float64Array(n);
    let ones = 0;
    const t = ctx.start();
    for (let j = 0; j < n; j++) {
      const s = performance.now();
      ones += (await client.sendCommand(['EVALSHA', sha, '1', key, texts[j]])) === 1 ? 1 : 0;
      samples[j] = performance.now() - s;
    }
    const timed = ctx.stop(t);
    check(ones === n, `${n - ones} calls did not return 1`);
    await client.close();
    return { ...timed, ops: n, samples };
  };
}

/**
 * Part: the store's APPEND script as one append sends it (keys, request id, bump, one step), from a
 * raw client with the keys and step texts prepared before timing: the server's work plus one round trip,
 * without the store's client-side work.
 */
function appendScriptRun(n) {
  const texts = messageBuffers(n, 'r0-').map(String);
  return async (ctx) => {
    const client = await connect();
    const sha = String(await client.sendCommand(['SCRIPT', 'LOAD', APPEND]));
    const prefix = nextPrefix();
    const session = `${prefix}{bench_raw}:s:1:`;
    await client.sendCommand(['HSET', `${session}meta`, 'message_count', '0']);
    await client.sendCommand(['HSET', `${session}state`, 'boundary', '0', 'updated_ms', '0']);
    const keysAndArgs = (j) => [`${session}meta`, `${session}steps`, `${session}state`, `${prefix}{bench_raw}:r:bench${j}`, `${prefix}{index}:sessions`, '20000', 'm', '1', '0'];
    const commands = texts.map((_, j) => keysAndArgs(j));
    const samples = new Float64Array(n);
    let inOrder = 0;
    const t = ctx.start();
    for (let j = 0; j < n; j++) {
      const s = performance.now();
      // updated_at as the store sends it: the time of the call (the script moves it when the millisecond changed).
      const at = new Date().toISOString();
      const reply = await client.sendCommand(['EVALSHA', sha, '5', ...commands[j], JSON.stringify(at), String(Date.parse(at)), 'bench_raw_1', '', texts[j]]);
      inOrder += reply === j + 1 ? 1 : 0;
      samples[j] = performance.now() - s;
    }
    const timed = ctx.stop(t);
    check(inOrder === n, `${n - inOrder} appends did not land at their step`);
    check((await client.lLen(`${session}steps`)) === n, 'steps list length');
    check((await client.hGet(`${session}meta`, 'message_count')) === String(n), 'message_count');
    await client.close();
    return { ...timed, ops: n, samples };
  };
}

/**
 * Part: appendMessages([one]) through a store whose client answers every command at once without a
 * server (the reply the APPEND script would give): the store's client-side work alone (validation,
 * encoding, keys, the queue, the connection layer).
 */
function clientWorkRun(n) {
  const items = messages(n, 'c-');
  return async (ctx) => {
    let step = 0;
    const sent = [];
    const client = {
      isReady: true,
      async sendCommand(args) {
        sent.push(args);
        return ++step;
      },
    };
    const store = await openRedisStore({ client, prefix: nextPrefix() });
    const handle = 'bench_client_1';
    const samples = new Float64Array(n);
    let inOrder = 0;
    const t = ctx.start();
    for (let j = 0; j < n; j++) {
      const s = performance.now();
      const [got] = await store.appendMessages(handle, [items[j]]);
      samples[j] = performance.now() - s;
      inOrder += got === j + 1 ? 1 : 0;
    }
    const timed = ctx.stop(t);
    await store.close();
    check(inOrder === n, `${n - inOrder} appends got another step number`);
    check(sent.length === n && sent.every((args) => args[0] === 'EVALSHA'), `${sent.length} commands sent for ${n} appends`);
    check(JSON.parse(sent[n - 1].at(-1)).message.content[0].text === textOf(items[n - 1]), 'last command carries the last message');
    return { ...timed, ops: n, samples };
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
                targets: [{ kind: 'ratio', ref: 'rpush', max: 1.3 }],
              },
              { id: 'evalsha', label: 'part: EVALSHA of `return 1`, same bytes', run: trivialScriptRun(n), ref: 'rpush' },
              { id: 'script', label: 'part: APPEND script alone (raw client, args ready)', run: appendScriptRun(n), ref: 'rpush' },
              { id: 'client', label: 'part: client work alone (no server)', run: clientWorkRun(n), ref: 'rpush' },
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
