// Floors: what the hardware and the format cost, hand-written with
// synchronous calls, measured in the same round as the variants they judge.

import fs from 'node:fs';
import path from 'node:path';
import { check } from './harness.mjs';
import { messageBuffers } from './payload.mjs';

export function stepName(step) {
  return 'step-' + String(step).padStart(6, '0');
}

/** One pre-opened file, writeSync + fdatasyncSync per ~1 KB step: the physical cost of one durable append. */
export function fdatasyncFloor(n) {
  const bufs = messageBuffers(n, 'f');
  const bytes = bufs.reduce((sum, b) => sum + b.length, 0);
  return async (ctx) => {
    const file = path.join(ctx.dir(), 'floor.log');
    const fd = fs.openSync(file, 'a');
    const samples = new Float64Array(n);
    const t = ctx.start();
    for (let i = 0; i < n; i++) {
      const s = performance.now();
      fs.writeSync(fd, bufs[i]);
      fs.fdatasyncSync(fd);
      samples[i] = performance.now() - s;
    }
    const timed = ctx.stop(t);
    fs.closeSync(fd);
    check(fs.statSync(file).size === bytes, `fdatasync floor file holds ${fs.statSync(file).size} bytes, expected ${bytes}`);
    return { ...timed, ops: n, samples };
  };
}

/**
 * The syscalls one durable step file needs, nothing else: exclusive temp,
 * write, fsync, close, link to step-N, unlink temp, fsync the directory.
 */
export function designFloor(n) {
  const bufs = messageBuffers(n, 'd');
  return async (ctx) => {
    const dir = ctx.dir();
    const samples = new Float64Array(n);
    const pid = process.pid;
    const t = ctx.start();
    for (let i = 0; i < n; i++) {
      const s = performance.now();
      const temp = path.join(dir, `.tmp-${pid}-${i}`);
      const fd = fs.openSync(temp, 'wx', 0o600);
      fs.writeSync(fd, bufs[i]);
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      fs.linkSync(temp, path.join(dir, stepName(i + 1)));
      fs.unlinkSync(temp);
      const dfd = fs.openSync(dir, 'r');
      fs.fsyncSync(dfd);
      fs.closeSync(dfd);
      samples[i] = performance.now() - s;
    }
    const timed = ctx.stop(t);
    const names = fs.readdirSync(dir);
    check(names.length === n && names.every((x) => x.startsWith('step-')), `design floor left ${names.length} files, expected ${n} steps`);
    return { ...timed, ops: n, samples };
  };
}

/** readdirSync + readFileSync + JSON.parse of every step file, in step order. */
export function readStepsSync(dir) {
  const names = fs.readdirSync(dir).filter((name) => name.startsWith('step-')).sort();
  const out = new Array(names.length);
  for (let i = 0; i < names.length; i++) out[i] = JSON.parse(fs.readFileSync(path.join(dir, names[i]), 'utf8'));
  return out;
}

/** readdirSync, then read + parse only the last `tail` step files. */
export function readTailSync(dir, tail) {
  const names = fs.readdirSync(dir).filter((name) => name.startsWith('step-')).sort();
  const from = Math.max(0, names.length - tail);
  const out = new Array(names.length - from);
  for (let i = from; i < names.length; i++) out[i - from] = JSON.parse(fs.readFileSync(path.join(dir, names[i]), 'utf8'));
  return out;
}

/** Runs `op` `reps` times inside one timed window; one sample per repetition. `verify` sees the last result. */
export function repeated(reps, op, verify) {
  return async (ctx) => {
    const samples = new Float64Array(reps);
    let last;
    const t = ctx.start();
    for (let i = 0; i < reps; i++) {
      const s = performance.now();
      last = await op();
      samples[i] = performance.now() - s;
    }
    const timed = ctx.stop(t);
    const extra = (await verify?.(last)) ?? {};
    last = undefined;
    return { ...timed, ops: reps, samples, ...extra };
  };
}

const fsyncAsync = (fd) => new Promise((resolve, reject) => fs.fsync(fd, (err) => (err ? reject(err) : resolve())));
const fdatasyncAsync = (fd) => new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
const writeAsync = (fd, buf) =>
  new Promise((resolve, reject) =>
    fs.write(fd, buf, 0, buf.length, null, (err, written) => (err ? reject(err) : written === buf.length ? resolve() : reject(new Error(`short write ${written}`)))),
  );

/**
 * The design floor with `sessions` sessions appending at once, `perSession`
 * steps each: the same syscalls per step, the two fsyncs on the thread pool
 * (as an async store must), the cheap calls synchronous; no validation, no meta.
 */
export function concurrentDesignFloor(sessions, perSession) {
  const bufs = Array.from({ length: sessions }, (_, k) => messageBuffers(perSession, `c${k}-`));
  return async (ctx) => {
    const base = ctx.dir();
    const dirs = bufs.map((_, k) => {
      const dir = path.join(base, `s${k}`);
      fs.mkdirSync(dir);
      return dir;
    });
    const samples = new Float64Array(sessions * perSession);
    const pid = process.pid;
    const t = ctx.start();
    await Promise.all(
      dirs.map(async (dir, k) => {
        for (let j = 0; j < perSession; j++) {
          const s = performance.now();
          const temp = path.join(dir, `.tmp-${pid}-${j}`);
          const fd = fs.openSync(temp, 'wx', 0o600);
          fs.writeSync(fd, bufs[k][j]);
          await fsyncAsync(fd);
          fs.closeSync(fd);
          fs.linkSync(temp, path.join(dir, stepName(j + 1)));
          fs.unlinkSync(temp);
          const dfd = fs.openSync(dir, 'r');
          await fsyncAsync(dfd);
          fs.closeSync(dfd);
          samples[k * perSession + j] = performance.now() - s;
        }
      }),
    );
    const timed = ctx.stop(t);
    for (const dir of dirs) {
      const names = fs.readdirSync(dir);
      check(names.length === perSession && names.every((x) => x.startsWith('step-')), `concurrent design floor left ${names.length} files in ${dir}, expected ${perSession} steps`);
    }
    return { ...timed, ops: sessions * perSession, samples };
  };
}

/**
 * Group commit: `sessions` sessions append `perSession` steps each, awaiting
 * each append, into one pre-opened log file. Appends queue; whenever no flush
 * is in flight, everything queued goes out as one write + one fdatasync (both
 * on the thread pool) and all of it resolves together.
 */
export function groupCommitFloor(sessions, perSession) {
  const bufs = Array.from({ length: sessions }, (_, k) => messageBuffers(perSession, `g${k}-`));
  const bytes = bufs.flat().reduce((sum, b) => sum + b.length, 0);
  return async (ctx) => {
    const file = path.join(ctx.dir(), 'group.log');
    const fd = fs.openSync(file, 'a');
    let queue = [];
    let flushing = false;
    let flushes = 0;
    const flush = async () => {
      flushing = true;
      while (queue.length > 0) {
        const batch = queue;
        queue = [];
        flushes += 1;
        try {
          await writeAsync(fd, Buffer.concat(batch.map((item) => item.buf)));
          await fdatasyncAsync(fd);
          for (const item of batch) item.resolve();
        } catch (err) {
          for (const item of batch) item.reject(err);
        }
      }
      flushing = false;
    };
    const append = (buf) =>
      new Promise((resolve, reject) => {
        queue.push({ buf, resolve, reject });
        if (!flushing) flush();
      });
    const samples = new Float64Array(sessions * perSession);
    const t = ctx.start();
    await Promise.all(
      bufs.map(async (list, k) => {
        for (let j = 0; j < perSession; j++) {
          const s = performance.now();
          await append(list[j]);
          samples[k * perSession + j] = performance.now() - s;
        }
      }),
    );
    const timed = ctx.stop(t);
    fs.closeSync(fd);
    check(fs.statSync(file).size === bytes, `group-commit floor file holds ${fs.statSync(file).size} bytes, expected ${bytes}`);
    const total = sessions * perSession;
    return { ...timed, ops: total, samples, info: { syncsPerStep: flushes / total } };
  };
}
