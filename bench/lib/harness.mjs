// Timing primitives shared by every group: a clock, gc between runs, an
// event-loop stall meter (with optional RSS sampling), fresh run directories,
// order rotation, the small statistics the report needs, and timed calls
// with the bytes they write and the steps they read.

import fs from 'node:fs';
import path from 'node:path';

/** Milliseconds, sub-microsecond resolution. */
export const now = () => performance.now();

export function gc() {
  if (typeof globalThis.gc === 'function') {
    globalThis.gc();
    globalThis.gc();
  }
}

/**
 * Longest gap between ticks of a 1 ms interval timer while an operation runs
 * (the gap from start() to the first tick and from the last tick to stop()
 * count too, so a fully synchronous operation shows its whole duration).
 */
export class Meter {
  start() {
    this.maxGap = 0;
    this.ticks = 0;
    this.last = now();
    this.timer = setInterval(() => {
      const t = now();
      const gap = t - this.last;
      if (gap > this.maxGap) this.maxGap = gap;
      this.last = t;
      this.ticks += 1;
    }, 1);
    return this;
  }

  stop() {
    const t = now();
    clearInterval(this.timer);
    const gap = t - this.last;
    if (gap > this.maxGap) this.maxGap = gap;
    return { stallMs: this.maxGap, ticks: this.ticks };
  }
}

/** A directory that no run has used: runs never share or reuse files, and nothing is deleted before the end. */
export function makeDirFactory(base) {
  let counter = 0;
  return (...parts) => {
    counter += 1;
    const dir = path.join(base, ...parts.map(String), `${counter}`);
    fs.mkdirSync(dir, { recursive: true });
    return dir;
  };
}

/** The list rotated left by `k`: round r starts with variant r (mod length). */
export function rotate(list, k) {
  if (list.length === 0) return [];
  const s = ((k % list.length) + list.length) % list.length;
  return [...list.slice(s), ...list.slice(0, s)];
}

export function median(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

export function min(values) {
  const v = values.filter((x) => Number.isFinite(x));
  return v.length ? Math.min(...v) : NaN;
}

export function max(values) {
  const v = values.filter((x) => Number.isFinite(x));
  return v.length ? Math.max(...v) : NaN;
}

/** Nearest-rank percentile of a sorted Float64Array. */
export function percentileSorted(sorted, p) {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export function summarizeSamples(samples) {
  if (!samples || samples.length === 0) return null;
  const s = Float64Array.from(samples).sort();
  return {
    n: s.length,
    p50: percentileSorted(s, 50),
    p90: percentileSorted(s, 90),
    p99: percentileSorted(s, 99),
    max: s[s.length - 1],
  };
}

/** Throws when a correctness check outside the timed part fails, so a broken variant cannot look fast. */
export function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

/** A logger for the store that counts warnings instead of printing them mid-table. */
export function countingLogger() {
  const logger = {
    warnings: 0,
    first: null,
    warn(message) {
      logger.warnings += 1;
      if (logger.first === null) logger.first = message;
    },
  };
  return logger;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs lib/rss-probe.mjs in a fresh process (outside any timed part); returns its JSON. */
export async function rssProbe(mode, args) {
  const { execFileSync } = await import('node:child_process');
  const probe = new URL('./rss-probe.mjs', import.meta.url);
  const out = execFileSync(process.execPath, ['--expose-gc', probe.pathname, mode, JSON.stringify(args)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return JSON.parse(out.trim().split('\n').pop());
}

/**
 * Creates one session per item list, then appends each list's items one at a
 * time, every session concurrently, timed; checks each session got steps 1..n
 * in order. Returns the timing, the per-call latencies and the handles.
 */
export async function appendConcurrently(ctx, store, items, append) {
  const perSession = items[0].length;
  const handles = [];
  for (let k = 0; k < items.length; k++) handles.push(await store.createSession('bench', `user-${k}`));
  const samples = new Float64Array(items.length * perSession);
  const numbers = handles.map(() => []);
  const t = ctx.start();
  await Promise.all(
    handles.map(async (handle, k) => {
      for (let j = 0; j < perSession; j++) {
        const s = performance.now();
        const [step] = await append(handle, [items[k][j]]);
        samples[k * perSession + j] = performance.now() - s;
        numbers[k].push(step);
      }
    }),
  );
  const timed = ctx.stop(t);
  numbers.forEach((steps, k) => steps.forEach((step, j) => check(step === j + 1, `session ${k} item ${j} got step ${step}`)));
  return { timed, samples, handles };
}

/**
 * This process's write_bytes (Linux /proc/self/io): bytes of page cache it
 * dirtied, file data and metadata blocks alike (this ext4 has no journal, so
 * directory and inode-table blocks count too), each page when it turns dirty.
 * NaN where /proc/self/io is missing.
 */
export function writeBytes() {
  try {
    return Number(/^write_bytes:\s*(\d+)$/m.exec(fs.readFileSync('/proc/self/io', 'utf8'))[1]);
  } catch {
    return NaN;
  }
}

/**
 * `warm` untimed calls, then `reps` calls, each timed on its own after an
 * untimed `prepare(i)`; time = the sum of the timed calls. Also the process's
 * write_bytes (`bytes`) and a store's stepsRead (`stats`) over the timed
 * parts, per call. `results` holds every call's result, the untimed first.
 */
export async function timedCalls(ctx, reps, { prepare, op, stats, bytes = false, warm = 0 }) {
  const samples = new Float64Array(reps);
  const results = new Array(warm + reps);
  let ms = 0;
  let stallMs;
  let written = 0;
  let read = 0;
  for (let i = 0; i < warm + reps; i++) {
    const arg = prepare ? await prepare(i) : undefined;
    if (i < warm) {
      results[i] = await op(arg, i);
      continue;
    }
    const readBefore = stats ? stats().stepsRead : 0;
    const bytesBefore = bytes ? writeBytes() : 0;
    const t = ctx.start();
    results[i] = await op(arg, i);
    const timed = ctx.stop(t);
    if (bytes) written += writeBytes() - bytesBefore;
    if (stats) read += stats().stepsRead - readBefore;
    samples[i - warm] = timed.ms;
    ms += timed.ms;
    if (timed.stallMs !== undefined) stallMs = Math.max(stallMs ?? 0, timed.stallMs);
  }
  const info = {};
  if (bytes) info.bytesWrittenPerCall = written / reps;
  if (stats) info.stepsReadPerCall = read / reps;
  return { results, timed: { ms, ops: reps, samples, ...(stallMs === undefined ? {} : { stallMs }) }, info };
}
