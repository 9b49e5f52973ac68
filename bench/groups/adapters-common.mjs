// What the adapter scenarios (adapters-*.mjs) share: Redis access, the
// process's write_bytes, message texts, timed calls with untimed preparation,
// stepstore stores opened for framework messages, and the floors the
// adapters group judges against.

import fs from 'node:fs';
import path from 'node:path';
import { createClient } from 'redis';
import { openStore } from '../../dist/index.js';
import { openRedisStore } from '../../dist/redis.js';
import { check, countingLogger, timedCalls } from '../lib/harness.mjs';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const REDIS_BASE = `stepstore-bench-adapters:${process.pid}:`;
export const AGENT = 'bench';
export const fmt = (n) => n.toLocaleString('en-US');

const WORDS =
  'the agent looked up the weather called a tool parsed the result and wrote a long answer about clouds rain wind ' +
  'temperature pressure humidity forecasts for the coming week with several caveats and a short summary at the end ';
const FILL = WORDS.repeat(Math.ceil(2000 / WORDS.length));

/** A distinct text of `chars` characters (its tag and index first, so checks can tell texts apart). */
export function text(tag, i, chars) {
  const head = `${tag}${i}: `;
  return head + FILL.slice(0, Math.max(0, chars - head.length));
}

/** Message sizes of a turn: a user question, a tool call's result, the assistant's answer (characters of text). */
export const USER_CHARS = 200;
export const RESULT_CHARS = 300;
export const ANSWER_CHARS = 800;

export async function redisClient() {
  const client = createClient({ url: REDIS_URL, RESP: 2, socket: { connectTimeout: 1000, reconnectStrategy: false } });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** True when a Redis server answers at REDIS_URL. */
export async function redisAnswers() {
  try {
    const client = await redisClient();
    await client.close();
    return true;
  } catch {
    return false;
  }
}

/** Deletes every key this process's adapters group made (REDIS_BASE*). */
export async function removeRedisKeys() {
  const client = await redisClient();
  for await (const keys of client.scanIterator({ MATCH: `${REDIS_BASE}*`, COUNT: 1000 })) if (keys.length) await client.del(keys);
  await client.close();
}

/**
 * The stepstore backends an adapter runs on: a root of its own on fs (runs
 * open it at `full`, preparation at `none` then sync), a prefix of its own on Redis.
 */
export function stepstoreBackends(env, adapterId, withRedis) {
  const root = path.join(env.dir('adapters', adapterId, 'prep'), 'root');
  const list = [
    {
      id: 'stepstore-fs',
      backend: 'fs',
      short: 'stepstore fs',
      label: 'stepstore, fs at full',
      open: (logger, durability = 'full') => openStore({ dir: root, durability, messages: 'any', logger }),
    },
  ];
  if (withRedis) {
    const prefix = `${REDIS_BASE}${adapterId}:`;
    list.push({
      id: 'stepstore-redis',
      backend: 'redis',
      short: 'stepstore Redis',
      label: 'stepstore, Redis',
      open: (logger) => openRedisStore({ url: REDIS_URL, prefix, messages: 'any', logger }),
    });
  }
  return list;
}

/**
 * Saves per run made before the timed ones, untimed: the first append of a
 * session after its store opens lists the session's directory (fs), which
 * a server pays once per session, not per turn (the openai-agents
 * scenarios show that first turn on its own).
 */
export const WARM_SAVES = 1;

/**
 * A run of `reps` timed calls (after `warm` untimed ones): `open(ctx)` (untimed) makes what they use,
 * `after(state, results)` checks it (untimed), `close(state)` always runs.
 */
export function measured(reps, { open, prepare, op, after, close, bytes = false, stats, warm = 0 }) {
  return async (ctx) => {
    const state = await open(ctx);
    try {
      const { results, timed, info } = await timedCalls(ctx, reps, {
        warm,
        prepare: prepare && ((i) => prepare(state, i)),
        op: (arg, i) => op(state, arg, i),
        stats: stats && (() => stats(state)),
        bytes,
      });
      await after?.(state, results);
      return { ...timed, info };
    } finally {
      await close?.(state);
    }
  };
}

/**
 * A run on a stepstore backend: one store per run (opened and closed
 * untimed, at `full` on fs), `reps` calls timed; the store must not warn.
 * With `session` (a function of the store giving a handle), the session is
 * rewound after the run, untimed, to the step it had before it, so every
 * run starts from the same history.
 */
export function onStepstore(b, reps, { session, prepare, op, after, bytes = false, stats = false, warm = 0 }) {
  return measured(reps, {
    warm,
    async open() {
      const logger = countingLogger();
      const store = await b.open(logger);
      const state = { store, logger, handle: null, base: null };
      if (session) {
        state.handle = await session(store);
        state.base = (await store.readSteps(state.handle, { last: 1 }))[0]?.step ?? 0;
      }
      return state;
    },
    prepare,
    op,
    async after(state, results) {
      await after?.(state, results);
      if (state.handle !== null) {
        const highest = (await state.store.readSteps(state.handle, { last: 1 }))[0]?.step ?? 0;
        if (highest > state.base) await state.store.rewind(state.handle, state.base);
        const back = (await state.store.readSteps(state.handle, { last: 1 }))[0]?.step ?? 0;
        check(back === state.base, `the session was not rewound to step ${state.base} (at ${back})`);
      }
      check(state.logger.warnings === 0, `store warned: ${state.logger.first}`);
    },
    close: (state) => state.store.close(),
    bytes: bytes && b.backend === 'fs',
    stats: stats ? (state) => state.store.stats() : undefined,
  });
}

/** Opens a backend's store for preparation (fs: durability none), runs `fill(store)`, closes it; the store must not warn. */
export async function prepareOn(b, fill) {
  const logger = countingLogger();
  const store = await b.open(logger, 'none');
  try {
    return await fill(store);
  } finally {
    await store.close();
    check(logger.warnings === 0, `store warned while preparing: ${logger.first}`);
  }
}

/** readFileSync + JSON.parse of a file holding a history: the least a resume of it from one file costs (a floor). */
export function readParseFloor(file, reps, expectedLength) {
  return measured(reps, {
    open: () => ({}),
    op: () => JSON.parse(fs.readFileSync(file, 'utf8')),
    after: (_state, results) => check(results.every((list) => list.length === expectedLength), `read floor parsed ${results[0]?.length} items, expected ${expectedLength}`),
  });
}

/** Writes `items` as one JSON file in `dir` (outside timing), for the read floor; returns its path. */
export function writeHistoryFile(dir, name, items) {
  const file = path.join(dir, name);
  fs.writeFileSync(file, JSON.stringify(items));
  return file;
}

/** JSON.parse(JSON.stringify(value)): what a store holds of a value. */
export const jsonCopy = (value) => JSON.parse(JSON.stringify(value));
