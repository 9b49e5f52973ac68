// History operations (issue 17) on fs and Redis, each next to what it stands in
// for: fork of a long session vs copying its steps (the files' bytes on fs,
// LRANGE + RPUSH from a client on Redis), rewind of 1 and of K steps vs an
// append of as many, readSteps({ last: 20 }) vs a full read, and watch latency
// across processes (history-watch.mjs) at each fs durability and on Redis.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createClient } from 'redis';
import { openStore } from '../../dist/index.js';
import { openRedisStore } from '../../dist/redis.js';
// Internal, for the client-side copy baseline only: the key of a session's step list (checked in setup).
import { sessionKeys } from '../../dist/backends/redis/keys.js';
import { check, countingLogger, timedCalls } from '../lib/harness.mjs';
import { messages, textOf } from '../lib/payload.mjs';
import { watchLatencyRun, watchScenario } from './history-watch.mjs';
import { prepareSession } from './load.mjs';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const REDIS_BASE = `stepstore-bench-history:${process.pid}:`;
const AGENT = 'bench';
const LAST = 20;
/** Steps per LRANGE / RPUSH of the client-side copy, and per append while preparing. */
const SLICE = 1000;
const fmt = (n) => n.toLocaleString('en-US');

const syncDisk = () => execFileSync('sync');

const stepFiles = (dir) => fs.readdirSync(dir).filter((name) => name.startsWith('step-'));

/** Plain byte copy of a session directory's files: readFileSync + writeFileSync each, no fsync. */
function copyFiles(from, to) {
  let bytes = 0;
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const data = fs.readFileSync(path.join(from, entry.name));
    fs.writeFileSync(path.join(to, entry.name), data, { flag: 'wx', mode: 0o600 });
    bytes += data.length;
  }
  return bytes;
}

async function redisClient() {
  const client = createClient({ url: REDIS_URL, RESP: 2, socket: { connectTimeout: 1000, reconnectStrategy: false } });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

async function removeRedisKeys() {
  const client = await redisClient();
  for await (const keys of client.scanIterator({ MATCH: `${REDIS_BASE}*`, COUNT: 1000 })) if (keys.length) await client.del(keys);
  await client.close();
}

/** The fork holds the source's N steps, the same bytes, and says where it came from. */
async function checkFork(store, forked, b) {
  const [first] = await store.readSteps(forked, { limit: 1 });
  const [last] = await store.readSteps(forked, { last: 1 });
  check(first?.step === 1 && textOf(first.line) === textOf(b.items[0]), `fork ${forked}: first step differs`);
  check(last?.step === b.n && textOf(last.line) === textOf(b.items[b.n - 1]), `fork ${forked}: last step is ${last?.step}, expected ${b.n}`);
  const snap = await store.loadSession(forked, { last: 1 });
  check(snap.meta.message_count === b.n, `fork message_count ${snap.meta.message_count}, expected ${b.n}`);
  check(snap.meta.forked_from === b.source && snap.meta.forked_at_step === b.n, `fork meta: forked_from ${snap.meta.forked_from} at ${snap.meta.forked_at_step}`);
}

/** The session holds exactly steps 1..n again, and its meta counts n messages. */
async function checkRewound(store, handle, n) {
  const [last] = await store.readSteps(handle, { last: 1 });
  check(last?.step === n, `after rewind the last step is ${last?.step}, expected ${n}`);
  const snap = await store.loadSession(handle, { last: 1 });
  check(snap.meta.message_count === n, `after rewind message_count ${snap.meta.message_count}, expected ${n}`);
}

/**
 * One store per run (opened and closed untimed), `reps` calls timed. The
 * store must not warn. `after(store, results, info)` checks, untimed.
 */
function withStore(b, reps, { prepare, op, after, bytes = false }) {
  return async (ctx) => {
    const logger = countingLogger();
    const store = await b.open(logger);
    try {
      const { results, timed, info } = await timedCalls(ctx, reps, {
        prepare: prepare && ((i) => prepare(store, i)),
        op: (arg, i) => op(store, arg, i),
        stats: () => store.stats(),
        bytes: bytes && b.backend === 'fs',
      });
      await after?.(store, results, info);
      check(logger.warnings === 0, `store warned: ${logger.first}`);
      return { ...timed, info };
    } finally {
      await store.close();
    }
  };
}

let batches = 0;
const batch = (k) => messages(k, `b${++batches}-`);

/** Appends of k new steps to the append session (a floor): each call lands right after the last. */
function appendFloor(b, k, reps) {
  return withStore(b, reps, {
    bytes: true,
    prepare: () => batch(k),
    op: (store, items) => store.appendMessages(b.appendTarget, items),
    after: (_store, results) => {
      results.forEach((steps, i) => {
        check(steps.length === k && steps[k - 1] === steps[0] + k - 1, `append ${i} got steps ${steps[0]}..${steps.at(-1)}`);
        if (i > 0) check(steps[0] === results[i - 1][k - 1] + 1, `append ${i} starts at ${steps[0]}`);
      });
    },
  });
}

/**
 * Rewinds of the rewind session back to its N steps, k steps each: before
 * each call (untimed) k steps are appended through another store (durability
 * 'none' on fs, then `sync`), so every call retracts k steps of a session of N + k.
 */
function rewindVariant(b, k, reps) {
  return withStore(b, reps, {
    bytes: true,
    prepare: async () => {
      const filler = await b.open(countingLogger(), 'none');
      const steps = await filler.appendMessages(b.rewindTarget, batch(k));
      await filler.close();
      check(steps[0] === b.n + 1 && steps.length === k, `refill landed at ${steps[0]}, expected ${b.n + 1}`);
      if (b.backend === 'fs') syncDisk();
    },
    op: (store) => store.rewind(b.rewindTarget, b.n),
    after: async (store, results) => {
      check(results.every((removed) => removed === k), `rewind retracted ${results.join(',')}, expected ${k} each`);
      await checkRewound(store, b.rewindTarget, b.n);
    },
  });
}

function forkVariant(b) {
  return withStore(b, 1, {
    bytes: true,
    op: (store) => store.fork(b.source),
    after: async (store, [forked]) => {
      await checkFork(store, forked, b);
      if (b.backend === 'fs') check(stepFiles(path.join(b.root, forked)).length === b.n, `fork directory of ${forked} holds the wrong number of steps`);
      else check(await store.deleteSession(forked), `fork ${forked} was not there to delete`); // frees the server's memory, untimed
    },
  });
}

/** The fs baseline: a byte copy of the source's directory into a fresh one. */
function copyFloor(b) {
  return async (ctx) => {
    const from = path.join(b.root, b.source);
    const to = ctx.dir();
    const { results, timed, info } = await timedCalls(ctx, 1, { op: () => copyFiles(from, to), bytes: true });
    check(stepFiles(to).length === b.n, `copy holds ${stepFiles(to).length} steps, expected ${b.n}`);
    check(results[0] === b.sourceBytes, `copy wrote ${results[0]} bytes of files, expected ${b.sourceBytes}`);
    return { ...timed, info };
  };
}

let copies = 0;

/** The Redis baseline: a client copies the source's step list, LRANGE and RPUSH of SLICE steps at a time. */
function clientCopyFloor(b) {
  return async (ctx) => {
    const client = await redisClient();
    const to = `${REDIS_BASE}copy:${++copies}`;
    try {
      const { timed } = await timedCalls(ctx, 1, {
        op: async () => {
          for (let from = 0; from < b.n; from += SLICE) {
            const values = await client.sendCommand(['LRANGE', b.sourceKey, String(from), String(Math.min(from + SLICE, b.n) - 1)]);
            await client.sendCommand(['RPUSH', to, ...values]);
          }
        },
      });
      check((await client.lLen(to)) === b.n, `client copy holds ${await client.lLen(to)} steps, expected ${b.n}`);
      check((await client.lIndex(to, -1)) === (await client.lIndex(b.sourceKey, -1)), 'client copy: last step differs');
      return timed;
    } finally {
      await client.sendCommand(['UNLINK', to]);
      await client.close();
    }
  };
}

function fullReadFloor(b) {
  return withStore(b, 1, {
    op: (store) => store.readSteps(b.source),
    after: (_store, [all]) => {
      check(all.length === b.n && all[0].step === 1 && all[b.n - 1].step === b.n, `full read got ${all.length} steps`);
      check(textOf(all[b.n - 1].line) === textOf(b.items[b.n - 1]), 'full read: last step differs');
    },
  });
}

function lastVariant(b, reps) {
  return withStore(b, reps, {
    op: (store) => store.readSteps(b.source, { last: LAST }),
    after: (_store, results) => {
      for (const got of results) {
        check(got.length === LAST && got[0].step === b.n - LAST + 1 && got[LAST - 1].step === b.n, `last ${LAST} got ${got.length} steps from ${got[0]?.step}`);
        check(textOf(got[LAST - 1].line) === textOf(b.items[b.n - 1]), `last ${LAST}: newest step differs`);
      }
    },
  });
}

/** The three sessions of a backend, N steps each: fork/read source, rewind target, append target. */
async function prepareBackend(b, items) {
  if (b.backend === 'fs') {
    for (const role of ['source', 'rewind', 'append']) b[role === 'source' ? 'source' : `${role}Target`] = await prepareSession(b.root, AGENT, `history-${role}`, [{ items }]);
    b.sourceBytes = stepFiles(path.join(b.root, b.source)).reduce((n, name) => n + fs.statSync(path.join(b.root, b.source, name)).size, 0);
    b.sourceBytes += fs.statSync(path.join(b.root, b.source, 'meta')).size;
    return;
  }
  const logger = countingLogger();
  const store = await b.open(logger);
  try {
    for (const role of ['source', 'rewind', 'append']) {
      const handle = await store.createSession(AGENT, `history-${role}`);
      for (let i = 0; i < items.length; i += SLICE) await store.appendMessages(handle, items.slice(i, i + SLICE));
      b[role === 'source' ? 'source' : `${role}Target`] = handle;
    }
  } finally {
    await store.close();
  }
  check(logger.warnings === 0, `store warned while preparing: ${logger.first}`);
  b.sourceKey = sessionKeys(b.prefix, b.source).steps;
  const client = await redisClient();
  const held = await client.lLen(b.sourceKey);
  await client.close();
  check(held === b.n, `the source's step list ${b.sourceKey} holds ${held}, expected ${b.n}: the Redis key layout changed`);
}

const DURABILITIES = ['full', 'file', 'none'];

/**
 * Watch latency (history-watch.mjs): on fs one row per durability of the
 * appending process, then Redis. Each run starts a writer process (2-4 s on
 * a busy 2-CPU machine), so --quick measures fs at full only.
 */
function watchScenarios(state, env) {
  const { historyWatchAppends: appends, historyWatchGapMs: gapMs } = env.params;
  const durabilities = env.quick ? ['full'] : DURABILITIES;
  const out = [];
  const onFs = watchScenario('fs', { appends, gapMs });
  onFs.title = onFs.title.replace('fs, durability full', `fs, appends at durability ${durabilities.join(', ')}`);
  onFs.variants = durabilities.map((durability) => ({
    id: durability === 'full' ? 'watch' : `watch-${durability}`,
    label: `store.watch(), appends at ${durability}`,
    ref: 'raw',
    run: watchLatencyRun({ kind: 'fs', durability }, { appends, gapMs }),
  }));
  out.push(onFs);
  if (!env.quick && state.backends.some((b) => b.backend === 'redis')) out.push(watchScenario('redis', { appends, gapMs, prefixBase: REDIS_BASE, url: REDIS_URL }));
  return out;
}

export default {
  id: 'history',
  title: 'History: fork, rewind, the tail of a long session, watch',
  /** A full round on fs creates ~60,000 files (two byte copies, a fork's links): 3 rounds unless --rounds says otherwise. */
  maxRounds: 3,
  async setup(env) {
    const { historySteps: n } = env.params;
    const items = messages(n, 'H');
    const state = { items, backends: [] };
    const fsRoot = path.join(env.dir('history', 'prep'), 'root');
    const fsBackend = {
      backend: 'fs',
      n,
      items,
      root: fsRoot,
      open: (logger, durability = 'full') => openStore({ dir: fsRoot, durability, logger }),
    };
    await prepareBackend(fsBackend, items);
    state.backends.push(fsBackend);
    let client = null;
    try {
      client = await redisClient();
    } catch {
      env.warn(`history: Redis scenarios skipped: no Redis server at ${REDIS_URL} (start redis-server or set REDIS_URL)`);
    }
    if (client) {
      await client.close();
      const prefix = `${REDIS_BASE}store:`;
      const redisBackend = { backend: 'redis', n, items, prefix, open: (logger) => openRedisStore({ url: REDIS_URL, prefix, logger }) };
      try {
        await prepareBackend(redisBackend, items);
      } catch (err) {
        await removeRedisKeys();
        throw err;
      }
      state.backends.push(redisBackend);
    }
    for (const s of this.scenarios(state, env)) {
      if (env.quick && s.id.startsWith('watch-')) continue; // a writer process per run: too slow to warm in a smoke run
      for (const item of [...s.floors, ...s.variants]) await env.warm(item.run, 'history', 'warmup');
    }
    return state;
  },
  async teardown(state) {
    if (state.backends.some((b) => b.backend === 'redis')) await removeRedisKeys();
  },
  scenarios(state, env) {
    const { historySteps: n, historyRewindSteps: k, historyRewindReps: rewindReps, historyReadReps: readReps } = env.params;
    const out = [];
    for (const b of state.backends) {
      const onFs = b.backend === 'fs';
      const where = onFs ? 'fs, durability full' : `Redis at ${REDIS_URL}`;
      const bytesNote = onFs ? '; written = this process\'s write_bytes (/proc/self/io) over the timed call: page cache it dirtied, file data and metadata blocks (no journal here)' : '';
      out.push({
        id: `fork-${b.backend}-${n}`,
        title: `fork of a ${fmt(n)}-step session (${where}) vs ${onFs ? `a byte copy of its files (${(b.sourceBytes / 1024 / 1024).toFixed(1)} MiB)` : 'a client-side copy of its step list'}`,
        unit: 'fork',
        note: `time per fork; one store per run, opened untimed${bytesNote}; stall = longest gap of a 1 ms timer${onFs ? '' : `; copy = LRANGE + RPUSH ${fmt(SLICE)} steps at a time from one client; forks and copies removed after each run, untimed`}`,
        meter: true,
        floors: [
          onFs
            ? { id: 'copy', short: 'byte copy', label: 'floor: byte copy of the session\'s files (readFileSync + writeFileSync each, no fsync)', run: copyFloor(b) }
            : { id: 'copy', short: 'client copy', label: `floor: client copy, LRANGE + RPUSH of ${fmt(SLICE)} steps at a time`, run: clientCopyFloor(b) },
        ],
        variants: [{ id: 'fork', label: 'fork(handle)', ref: 'copy', run: forkVariant(b) }],
      });
      out.push({
        id: `rewind-${b.backend}-${n}`,
        title: `rewind of 1 and of ${fmt(k)} steps of a ${fmt(n)}-step session (${where}) vs appending as many`,
        unit: 'call',
        note: `time per call; rewind-1 and append-1: ${rewindReps} calls per run; before each rewind (untimed) another store appends the steps it will retract${onFs ? ' (durability none, then sync)' : ''}; the appends go to another session of ${fmt(n)} steps, which grows by what they add${bytesNote}`,
        meter: true,
        floors: [
          { id: 'append-1', short: 'append of 1', label: 'floor: appendMessages of 1 step', run: appendFloor(b, 1, rewindReps) },
          { id: `append-${k}`, short: `append of ${fmt(k)}`, label: `floor: appendMessages of ${fmt(k)} steps in one call`, run: appendFloor(b, k, 1) },
        ],
        variants: [
          { id: 'rewind-1', label: 'rewind by 1 step', ref: 'append-1', run: rewindVariant(b, 1, rewindReps) },
          { id: `rewind-${k}`, label: `rewind by ${fmt(k)} steps`, ref: `append-${k}`, run: rewindVariant(b, k, 1) },
        ],
      });
      out.push({
        id: `last-${b.backend}-${n}`,
        title: `readSteps({ last: ${LAST} }) of a ${fmt(n)}-step session (${where}) vs a full read`,
        unit: 'read',
        note: `time per read; one store per run; last ${LAST}: ${readReps} reads per run; steps read = store.stats().stepsRead per call`,
        meter: true,
        floors: [{ id: 'full', short: 'full read', label: 'floor: readSteps(handle), every step', run: fullReadFloor(b) }],
        variants: [{ id: `last-${LAST}`, label: `readSteps(handle, { last: ${LAST} })`, ref: 'full', run: lastVariant(b, readReps) }],
      });
    }
    out.push(...watchScenarios(state, env));
    return out;
  },
};
