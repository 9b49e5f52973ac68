// Watch latency across processes, for the history group (history.mjs wires
// it): a child process appends ~1 KB messages one at a time, `gapMs` apart,
// while this process iterates store.watch(); a sample is the time from the
// append's start in the child to the step reaching this process's loop
// (CLOCK_MONOTONIC on both sides). The floor is the raw mechanism on the same
// storage: a file created in a directory this process watches (fs.watch), or
// an RPUSH this process's BLPOP takes (Redis). Run as a script it is that child.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from 'redis';
import { openStore } from '../../dist/index.js';
import { openRedisStore } from '../../dist/redis.js';
import { check, countingLogger, summarizeSamples } from '../lib/harness.mjs';
import { message, textOf } from '../lib/payload.mjs';

const SELF = fileURLToPath(import.meta.url);
/** Milliseconds on CLOCK_MONOTONIC: one clock for every process on this machine. */
const clock = () => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

let runs = 0;

/**
 * Starts this file as the writer: `{ task, ... }` in, one `{ i, t0, t1 }` line
 * per write out (t0/t1: its start and return, CLOCK_MONOTONIC ms).
 */
function startWriter(job) {
  const child = spawn(process.execPath, [SELF, JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  let pending = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk) => {
    pending += chunk;
    for (let nl; (nl = pending.indexOf('\n')) >= 0; pending = pending.slice(nl + 1)) lines.push(JSON.parse(pending.slice(0, nl)));
  });
  child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));
  const exited = new Promise((resolve, reject) =>
    child.on('close', (code) => (code === 0 ? resolve(lines) : reject(new Error(`writer exited with ${code}: ${stderr.trim()}`)))),
  );
  return exited;
}

/** Waits until `test()` holds, up to `ms`. */
async function until(test, ms, what) {
  const deadline = Date.now() + ms;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

/** Latency samples (arrival - t0) and the ack-to-arrival median, from the writer's lines and this process's arrivals. */
function result(timed, lines, arrivals, appends) {
  check(lines.length === appends, `the writer acknowledged ${lines.length} of ${appends} writes`);
  const samples = new Float64Array(appends);
  const afterAck = new Float64Array(appends);
  for (const { i, t0, t1 } of lines) {
    check(arrivals[i] !== undefined, `write ${i} never arrived`);
    samples[i] = arrivals[i] - t0;
    afterAck[i] = arrivals[i] - t1;
  }
  const ms = samples.reduce((sum, x) => sum + x, 0);
  return { ...timed, ms, ops: appends, samples, info: { ackToEventP50Ms: summarizeSamples(afterAck).p50 } };
}

/**
 * One run of store.watch() latency: `spec` is { kind: 'fs', durability } (a
 * fresh root under ctx.dir()) or { kind: 'redis', url?, prefixBase } (a fresh
 * prefix below prefixBase, its keys removed after the run, untimed).
 * Returns { ms: the sum of latencies (so per op = the mean), ops, samples, info, stallMs? }.
 */
export function watchLatencyRun(spec, { appends = 200, gapMs = 20 } = {}) {
  return async (ctx) => {
    const logger = countingLogger();
    const storeSpec =
      spec.kind === 'fs'
        ? { kind: 'fs', dir: path.join(ctx.dir(), 'root'), durability: spec.durability ?? 'full' }
        : { kind: 'redis', url: spec.url ?? REDIS_URL, prefix: `${spec.prefixBase}watch${process.pid}-${++runs}:` };
    const store = await openSpec(storeSpec, logger);
    const handle = await store.createSession('bench', 'watch');
    const controller = new AbortController();
    const watch = await store.watch(handle, { signal: controller.signal });
    const arrivals = [];
    let arrived = 0;
    const reading = (async () => {
      for await (const record of watch) {
        const at = clock();
        const i = Number(/^w(\d+):/.exec(textOf(record.line))[1]);
        check(record.step === i + 1, `write ${i} arrived as step ${record.step}`);
        arrivals[i] = at;
        arrived += 1;
      }
    })();
    const t = ctx.start();
    let timed = null;
    try {
      const lines = await startWriter({ task: 'append', spec: storeSpec, handle, appends, gapMs });
      await until(() => arrived === appends, 10_000, 'every step to arrive');
      timed = ctx.stop(t);
      return result(timed, lines, arrivals, appends);
    } finally {
      if (timed === null) ctx.stop(t); // the stall meter's timer stops whatever happened
      controller.abort();
      await reading;
      check(watch.ended === 'aborted', `the watch ended ${watch.ended}`);
      if (storeSpec.kind === 'redis') await store.deleteSession(handle);
      await store.close();
      check(logger.warnings === 0, `store warned: ${logger.first}`);
    }
  };
}

/** The raw floor of watchLatencyRun on the same kind of storage (see the header); same result shape. */
export function rawLatencyRun(spec, { appends = 200, gapMs = 20 } = {}) {
  return async (ctx) => {
    const arrivals = [];
    let arrived = 0;
    let stop;
    let job;
    if (spec.kind === 'fs') {
      const dir = ctx.dir();
      const watcher = fs.watch(dir, { persistent: false }, (event, name) => {
        const match = /^f(\d+)$/.exec(name ?? '');
        if (event === 'rename' && match && arrivals[Number(match[1])] === undefined) {
          arrivals[Number(match[1])] = clock();
          arrived += 1;
        }
      });
      stop = async () => watcher.close();
      job = { task: 'files', dir, appends, gapMs };
    } else {
      const url = spec.url ?? REDIS_URL;
      const key = `${spec.prefixBase}raw${process.pid}-${++runs}`;
      const client = createClient({ url, RESP: 2 });
      client.on('error', () => undefined);
      await client.connect();
      let open = true;
      const popping = (async () => {
        while (open) {
          const popped = await client.sendCommand(['BLPOP', key, '0.1']);
          if (popped !== null) {
            arrivals[Number(popped[1])] = clock();
            arrived += 1;
          }
        }
      })();
      stop = async () => {
        open = false;
        await popping;
        await client.sendCommand(['DEL', key]);
        await client.close();
      };
      job = { task: 'rpush', url, key, appends, gapMs };
    }
    const t = ctx.start();
    let timed = null;
    try {
      const lines = await startWriter(job);
      await until(() => arrived === appends, 10_000, 'every write to arrive');
      timed = ctx.stop(t);
      return result(timed, lines, arrivals, appends);
    } finally {
      if (timed === null) ctx.stop(t);
      await stop();
    }
  };
}

/**
 * A scenario for a bench group: store.watch() against the raw floor, one
 * backend. `backend`: 'fs' (durability full) or 'redis' (prefixBase: a key
 * prefix the group's teardown removes, e.g. its REDIS_BASE).
 */
export function watchScenario(backend, { appends = 200, gapMs = 20, prefixBase, url = REDIS_URL } = {}) {
  const spec = backend === 'fs' ? { kind: 'fs', durability: 'full' } : { kind: 'redis', url, prefixBase };
  const where = backend === 'fs' ? 'fs, durability full' : `Redis at ${url}`;
  return {
    id: `watch-${backend}`,
    title: `watch latency across processes (${where}): ${appends} appends of one ~1 KB message, ${gapMs} ms apart, in a child process`,
    unit: 'step',
    note:
      'latency = from the append starting in the child to the step reaching the watcher (CLOCK_MONOTONIC); median/min = mean latency per run; ' +
      `p50/p99 pooled over runs; info ackToEventP50Ms = from the append returning (negative: seen before it returned, e.g. during the directory fsync); stall includes spawning the child; floor = ${backend === 'fs' ? 'a file created in a directory the parent watches (fs.watch)' : 'an RPUSH the parent takes with BLPOP'}` +
      (backend === 'redis' ? '; without keyspace notifications on the server, watch polls (every 200 ms)' : ''),
    meter: true,
    floors: [{ id: 'raw', short: backend === 'fs' ? 'fs.watch' : 'BLPOP', label: `floor: ${backend === 'fs' ? 'fs.watch of a created file' : 'RPUSH -> BLPOP'}`, run: rawLatencyRun(spec, { appends, gapMs }) }],
    variants: [{ id: 'watch', label: 'store.watch()', ref: 'raw', run: watchLatencyRun(spec, { appends, gapMs }) }],
  };
}

function openSpec(spec, logger) {
  return spec.kind === 'fs'
    ? openStore({ dir: spec.dir, durability: spec.durability, logger })
    : openRedisStore({ url: spec.url, prefix: spec.prefix, logger });
}

/** The writer (this file run as a script): one line per write, as startWriter reads them. */
async function writer(job) {
  const say = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);
  let write;
  let close = async () => undefined;
  if (job.task === 'append') {
    const store = await openSpec(job.spec, countingLogger());
    write = (i) => store.appendMessages(job.handle, [message(i, 'w')]);
    close = () => store.close();
  } else if (job.task === 'files') {
    write = async (i) => fs.writeFileSync(path.join(job.dir, `f${i}`), JSON.stringify(message(i, 'w')));
  } else {
    const client = createClient({ url: job.url, RESP: 2 });
    await client.connect();
    write = (i) => client.sendCommand(['RPUSH', job.key, String(i)]);
    close = () => client.close();
  }
  for (let i = 0; i < job.appends; i++) {
    const t0 = clock();
    await write(i);
    say({ i, t0, t1: clock() });
    await sleep(job.gapMs);
  }
  await close();
}

if (process.argv[1] === SELF) await writer(JSON.parse(process.argv[2]));
