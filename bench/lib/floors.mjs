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
