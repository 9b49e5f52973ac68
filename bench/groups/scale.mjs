// Large roots: what one conversation's find, create and lists cost in a root
// of 1,000 to 100,000 sessions, next to an indexed SQLite lookup and one stat;
// the same on Redis when a server is there.
//
// fs roots are made by hand outside timing (mkdir + a meta like createSession
// writes, see the README's On-disk format section), 10 sessions per (agent,
// sender) pair; Redis sessions go through the API. Even pairs are only read
// (find, lists, cold), odd pairs receive the creates, so what a read expects
// never changes. Nothing is deleted until the end. Warm variants share one
// store per root, opened and warmed in setup, as a long-running server would.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { createClient } from 'redis';
import { openStore } from '../../dist/index.js';
import { openRedisStore } from '../../dist/redis.js';
import { check, countingLogger } from '../lib/harness.mjs';

const PER_PAIR = 10;
const AGENTS = 4;
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const REDIS_BASE = `stepstore-bench-scale:${process.pid}:`;
/** Concurrent createSession calls (each in its own pair) while filling a Redis root. */
const REDIS_FILL_CONCURRENCY = 64;

const agentOf = (p) => `agent-${p % AGENTS}`;
const senderOf = (p) => `user-${p}`;
const handleOf = (p, seq) => `${agentOf(p)}_${senderOf(p)}_${seq}`;
const fmt = (n) => n.toLocaleString('en-US');

/** The i-th read pair: even, spread over the root by a multiplicative hash. */
function readPair(sz, i) {
  return 2 * ((Math.imul(i + 1, 0x9e3779b1) >>> 0) % (sz.pairs >> 1));
}

/** The next pair to create in (odd, in turn) and the seq the create must return. */
function nextCreate(sz) {
  const p = 2 * (sz.createCursor++ % (sz.pairs >> 1)) + 1;
  const seq = sz.nextSeq.get(p) ?? PER_PAIR + 1;
  sz.nextSeq.set(p, seq + 1);
  return { p, seq };
}

function newSize(backend, size) {
  return { backend, size, pairs: size / PER_PAIR, id: `${backend}-${size}`, createCursor: 0, readCursor: 0, nextSeq: new Map(), lastCreated: null, created: 0 };
}

async function checkTemplate(dir) {
  const store = await openStore({ dir, durability: 'none', logger: countingLogger() });
  const handle = await store.createSession(agentOf(0), senderOf(0));
  await store.close();
  check(handle === handleOf(0, 1), `API created ${handle}, expected ${handleOf(0, 1)}`);
  const keys = Object.keys(JSON.parse(fs.readFileSync(path.join(dir, handle, 'meta'), 'utf8'))).join(',');
  check(keys === 'agent,created_by,created_at,title,updated_at,message_count', `meta layout changed: ${keys}`);
}

/** A root of `size` sessions, and a SQLite table of the same rows (agent, sender, seq, updated_at) with an index on the pair. */
function makeFsRoot(env, sz) {
  const dir = env.dir('scale', sz.id, 'prep');
  sz.root = path.join(dir, 'root');
  fs.mkdirSync(sz.root, 0o700);
  const base = Date.now() - (sz.size + 1000) * 1000;
  const rows = [];
  for (let p = 0; p < sz.pairs; p++) {
    for (let seq = 1; seq <= PER_PAIR; seq++) {
      const at = new Date(base + (p * PER_PAIR + seq - 1) * 1000).toISOString();
      const session = path.join(sz.root, handleOf(p, seq));
      fs.mkdirSync(session, 0o700);
      const meta = { agent: agentOf(p), created_by: senderOf(p), created_at: at, title: '', updated_at: at, message_count: 0 };
      fs.writeFileSync(path.join(session, 'meta'), JSON.stringify(meta), { mode: 0o600 });
      rows.push([agentOf(p), senderOf(p), seq, at]);
    }
  }
  sz.newest = handleOf(sz.pairs - 1, PER_PAIR);
  sz.dbPath = path.join(dir, 'pairs.db');
  const db = new Database(sz.dbPath);
  db.exec('CREATE TABLE sessions (agent TEXT NOT NULL, sender TEXT NOT NULL, seq INTEGER NOT NULL, updated_at TEXT NOT NULL)');
  const insert = db.prepare('INSERT INTO sessions VALUES (?, ?, ?, ?)');
  db.transaction(() => rows.forEach((row) => insert.run(...row)))();
  db.exec('CREATE INDEX pair_seq ON sessions (agent, sender, seq)');
  db.close();
}

async function fillRedis(sz) {
  let next = 0;
  await Promise.all(
    Array.from({ length: REDIS_FILL_CONCURRENCY }, async () => {
      for (let p = next++; p < sz.pairs; p = next++) {
        for (let seq = 1; seq <= PER_PAIR; seq++) {
          const handle = await sz.store.createSession(agentOf(p), senderOf(p));
          check(handle === handleOf(p, seq), `Redis created ${handle}, expected ${handleOf(p, seq)}`);
        }
      }
    }),
  );
  sz.newest = null; // concurrent fills leave ties in updated_at: only the order is checked
}

async function redisClient() {
  const client = createClient({ url: REDIS_URL, RESP: 2, socket: { connectTimeout: 1000, reconnectStrategy: false } });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

function openFor(sz, logger) {
  return sz.backend === 'fs'
    ? openStore({ dir: sz.root, durability: 'full', logger })
    : openRedisStore({ url: REDIS_URL, prefix: sz.prefix, logger });
}

/** The store finds the sessions; a hand-made root is also listed whole, in the store's order. */
async function checkRoot(sz) {
  if (sz.backend === 'fs') {
    const listed = await sz.store.listSessions();
    check(listed.length === sz.size, `listSessions sees ${listed.length} of ${sz.size} sessions`);
    check(listed[0].handle === sz.newest, `newest is ${listed[0].handle}, expected ${sz.newest}`);
  }
  const p = readPair(sz, 7);
  check((await sz.store.findLatestSession(agentOf(p), senderOf(p))) === handleOf(p, PER_PAIR), `findLatestSession misses pair ${p}`);
}

const updatedMs = (s) => Date.parse(s.meta.updated_at);

const turn = () => new Promise((resolve) => setImmediate(resolve));

/**
 * Runs `op(i)` `reps` times in one metered window, one sample per call, with a
 * turn of the event loop between calls (outside the samples): the stall is
 * then the longest block of one call, not of a loop of calls that never
 * yields. Time = sum of the samples. `verify` sees every result, after timing.
 */
function each(reps, op, verify) {
  return async (ctx) => {
    const results = new Array(reps);
    const samples = new Float64Array(reps);
    let ms = 0;
    const t = ctx.start();
    for (let i = 0; i < reps; i++) {
      await turn();
      const s = performance.now();
      results[i] = await op(i);
      samples[i] = performance.now() - s;
      ms += samples[i];
    }
    const timed = ctx.stop(t);
    verify(results);
    return { ...timed, ms, ops: reps, samples };
  };
}

function findVariant(sz, reps) {
  return each(
    reps,
    async () => {
      const p = readPair(sz, sz.readCursor++);
      return [p, await sz.store.findLatestSession(agentOf(p), senderOf(p))];
    },
    (all) => all.forEach(([p, found]) => check(found === handleOf(p, PER_PAIR), `pair ${p}: found ${found}, expected ${handleOf(p, PER_PAIR)}`)),
  );
}

function createVariant(sz, reps) {
  return each(
    reps,
    async () => {
      const { p, seq } = nextCreate(sz);
      const handle = await sz.store.createSession(agentOf(p), senderOf(p));
      sz.lastCreated = handle;
      sz.created += 1;
      return [handleOf(p, seq), handle];
    },
    (all) => all.forEach(([expected, handle]) => check(handle === expected, `created ${handle}, expected ${expected}`)),
  );
}

function pairListVariant(sz, reps) {
  return each(
    reps,
    async () => {
      const p = readPair(sz, sz.readCursor++);
      return [p, await sz.store.listSessions({ agent: agentOf(p), createdBy: senderOf(p) })];
    },
    (all) =>
      all.forEach(([p, list]) => {
        const got = list.map((s) => s.handle).join(',');
        const want = Array.from({ length: PER_PAIR }, (_, k) => handleOf(p, PER_PAIR - k)).join(',');
        check(got === want, `pair ${p} listed ${got}, expected ${want}`);
      }),
  );
}

function list20Variant(sz, reps) {
  return each(
    reps,
    async () => sz.store.listSessions({ limit: 20 }),
    (all) =>
      all.forEach((list) => {
        check(list.length === 20, `listed ${list.length}, expected 20`);
        for (let k = 1; k < list.length; k++) check(updatedMs(list[k - 1]) >= updatedMs(list[k]), `not newest first at ${k}`);
        if (sz.lastCreated) check(list.some((s) => s.handle === sz.lastCreated), `the last created session ${sz.lastCreated} is not among the 20 newest`);
        else if (sz.newest) check(list[0].handle === sz.newest, `newest is ${list[0].handle}, expected ${sz.newest}`);
      }),
  );
}

/** A new store each time: open + the first findLatestSession timed (each its own metered window), close untimed. */
function coldVariant(sz, reps) {
  return async (ctx) => {
    const samples = new Float64Array(reps);
    let ms = 0;
    let stallMs = 0;
    const logger = countingLogger();
    for (let i = 0; i < reps; i++) {
      const p = readPair(sz, sz.readCursor++);
      const t = ctx.start();
      const store = await openFor(sz, logger);
      const found = await store.findLatestSession(agentOf(p), senderOf(p));
      const timed = ctx.stop(t);
      await store.close();
      check(found === handleOf(p, PER_PAIR), `cold: pair ${p} found ${found}`);
      samples[i] = timed.ms;
      ms += timed.ms;
      stallMs = Math.max(stallMs, timed.stallMs ?? 0);
    }
    check(logger.warnings === 0, `store warned: ${logger.first}`);
    return { ms, stallMs, ops: reps, samples };
  };
}

function heapProbe(sz) {
  return async () => {
    const p = readPair(sz, 3);
    const probe = new URL('../lib/heap-probe.mjs', import.meta.url);
    const args = { root: sz.root, agent: agentOf(p), createdBy: senderOf(p) };
    const out = execFileSync(process.execPath, ['--expose-gc', probe.pathname, JSON.stringify(args)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const res = JSON.parse(out.trim().split('\n').pop());
    check(res.found === handleOf(p, PER_PAIR), `heap probe found ${res.found}`);
    check(res.sessions >= sz.size + sz.created, `heap probe saw ${res.sessions} sessions, expected ${sz.size + sz.created}`);
    return { info: { bytesPerSession: res.bytesPerSession } };
  };
}

function sqliteFloor(sz, reps) {
  return async (ctx) => {
    const db = new Database(sz.dbPath, { readonly: true });
    const select = db.prepare('SELECT max(seq) AS seq FROM sessions WHERE agent = ? AND sender = ?');
    for (let i = 0; i < 10; i++) select.get(agentOf(2 * i), senderOf(2 * i)); // first executions of a fresh statement, untimed
    const result = await each(
      reps,
      async (i) => {
        const p = readPair(sz, i);
        return select.get(agentOf(p), senderOf(p)).seq;
      },
      (all) => all.forEach((seq) => check(seq === PER_PAIR, `sqlite max seq ${seq}`)),
    )(ctx);
    db.close();
    return result;
  };
}

function statFloor(sz, reps) {
  return each(
    reps,
    async (i) => fs.statSync(path.join(sz.root, handleOf(readPair(sz, i), PER_PAIR))).isDirectory(),
    (all) => check(all.every(Boolean), 'stat floor: not a directory'),
  );
}

function rttFloor(reps) {
  return async (ctx) => {
    const client = await redisClient();
    for (let i = 0; i < 10; i++) await client.sendCommand(['PING']); // a fresh connection's first round trips, untimed
    const result = await each(reps, async () => client.sendCommand(['PING']), (all) => check(all.every((r) => r === 'PONG'), 'PING'))(ctx);
    await client.close();
    return result;
  };
}

export default {
  id: 'scale',
  title: 'Large roots: one pair\'s find, create and lists in roots of many sessions',
  async setup(env) {
    const { scaleSizes, scaleRedisSizes } = env.params;
    await checkTemplate(path.join(env.dir('scale', 'template'), 'root'));
    const state = { fs: scaleSizes.map((size) => newSize('fs', size)), redis: [] };
    for (const sz of state.fs) {
      const t = performance.now();
      makeFsRoot(env, sz);
      sz.fillMs = performance.now() - t;
      sz.store = await openFor(sz, countingLogger());
      await checkRoot(sz);
    }
    let client = null;
    try {
      client = await redisClient();
    } catch {
      env.warn(`scale: Redis scenarios skipped: no Redis server at ${REDIS_URL} (start redis-server or set REDIS_URL)`);
    }
    if (client) {
      await client.close();
      state.redis = scaleRedisSizes.map((size) => newSize('redis', size));
      for (const sz of state.redis) {
        sz.prefix = `${REDIS_BASE}${sz.size}:`;
        sz.store = await openFor(sz, countingLogger());
        const t = performance.now();
        await fillRedis(sz);
        sz.fillMs = performance.now() - t;
        await checkRoot(sz);
      }
    }
    for (const s of this.scenarios(state, env)) for (const item of [...s.floors, ...s.variants]) await env.warm(item.run, 'scale', 'warmup');
    return state;
  },
  async teardown(state) {
    for (const sz of [...state.fs, ...state.redis]) await sz.store?.close();
    if (state.redis.length) {
      const client = await redisClient();
      for await (const keys of client.scanIterator({ MATCH: `${REDIS_BASE}*`, COUNT: 1000 })) if (keys.length) await client.del(keys);
      await client.close();
    }
  },
  scenarios(state, env) {
    const { scaleFloorReps: floorReps, scaleFindReps, scaleCreateReps, scalePairListReps, scaleListReps, scaleRedisListReps, scaleColdReps } = env.params;
    const out = [];
    const stall = { kind: 'stall', max: 20 };
    for (const [k, sz] of state.fs.entries()) {
      const largest = k === state.fs.length - 1 && k > 0;
      const smallest = state.fs[0].id;
      const at = (targets) => (largest ? targets : []);
      out.push({
        id: sz.id,
        title: `fs root of ${fmt(sz.size)} sessions (${fmt(sz.pairs)} pairs x ${PER_PAIR}; made by hand in ${(sz.fillMs / 1000).toFixed(1)} s, with its SQLite table)`,
        unit: 'call',
        note: `time per call; calls per round: find ${scaleFindReps}, create ${scaleCreateReps}, pair list ${scalePairListReps}, list ${scaleListReps}, cold ${scaleColdReps}, floors ${floorReps}; each call a different pair, the event loop turning between calls; warm rows share one store opened in setup; stall = longest gap of a 1 ms timer${largest ? '; B/session: a fresh process, one probe per round after all rounds' : ''}`,
        meter: true,
        floors: [
          { id: 'sqlite', short: 'SQLite lookup floor', label: `floor: SQLite max(seq) of a pair, indexed, ${fmt(sz.size)} rows`, run: sqliteFloor(sz, floorReps) },
          { id: 'stat', short: 'stat floor', label: 'floor: one statSync of a session directory', run: statFloor(sz, floorReps), vs: 'sqlite' },
        ],
        variants: [
          {
            id: 'find',
            label: 'findLatestSession (warm)',
            ref: ['sqlite', 'stat'],
            run: findVariant(sz, scaleFindReps),
            targets: [stall, ...at([{ kind: 'vs', scenario: smallest, max: 2 }, { kind: 'time', max: 1, per: 'call' }])],
          },
          {
            id: 'create',
            label: 'createSession at full (next seq of a pair)',
            ref: 'sqlite',
            run: createVariant(sz, scaleCreateReps),
            targets: [stall, ...at([{ kind: 'vs', scenario: smallest, max: 1.5 }])],
          },
          {
            id: 'pair-list',
            label: 'listSessions({ agent, createdBy })',
            ref: 'sqlite',
            run: pairListVariant(sz, scalePairListReps),
            targets: [stall, ...at([{ kind: 'vs', scenario: smallest, max: 2 }, { kind: 'time', max: 1, per: 'call' }])],
          },
          {
            id: 'list20',
            label: 'listSessions({ limit: 20 })',
            ref: 'sqlite',
            run: list20Variant(sz, scaleListReps),
            targets: [stall, ...at([{ kind: 'time', max: 200, per: 'call' }])],
          },
          {
            id: 'cold',
            label: 'cold: openStore + first findLatestSession',
            ref: 'sqlite',
            run: coldVariant(sz, scaleColdReps),
            probe: largest ? heapProbe(sz) : undefined,
            targets: [stall, ...at([{ kind: 'info', field: 'bytesPerSession', what: 'memory per indexed session', max: 200, unit: 'B' }])],
          },
        ],
      });
    }
    for (const [k, sz] of state.redis.entries()) {
      const largest = k === state.redis.length - 1 && k > 0;
      out.push({
        id: sz.id,
        title: `Redis root of ${fmt(sz.size)} sessions (${fmt(sz.pairs)} pairs x ${PER_PAIR}; made through the API in ${((sz.fillMs ?? NaN) / 1000).toFixed(1)} s, ${REDIS_FILL_CONCURRENCY} pairs at once)`,
        unit: 'call',
        note: `time per call; calls per round as in the fs roots but list ${scaleRedisListReps}; each call a different pair; warm rows share one store; cold includes connecting; floor = one PING round trip on a raw client (${REDIS_URL})`,
        meter: true,
        floors: [{ id: 'rtt', short: 'PING floor', label: 'floor: one PING round trip', run: rttFloor(floorReps) }],
        variants: [
          { id: 'find', label: 'findLatestSession (warm)', ref: 'rtt', run: findVariant(sz, scaleFindReps), targets: largest ? [{ kind: 'vs', scenario: state.redis[0].id, max: 2 }] : [] },
          { id: 'create', label: 'createSession (next seq of a pair)', ref: 'rtt', run: createVariant(sz, scaleCreateReps) },
          { id: 'pair-list', label: 'listSessions({ agent, createdBy })', ref: 'rtt', run: pairListVariant(sz, scalePairListReps) },
          { id: 'list20', label: 'listSessions({ limit: 20 })', ref: 'rtt', run: list20Variant(sz, scaleRedisListReps) },
          { id: 'cold', label: 'cold: openRedisStore + first findLatestSession', ref: 'rtt', run: coldVariant(sz, scaleColdReps) },
        ],
      });
    }
    return out;
  },
};
