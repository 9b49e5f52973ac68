// Single stream: N appends to one session, one call after another.

import fs from 'node:fs';
import path from 'node:path';
import { openStore } from '../../dist/index.js';
import { check, countingLogger } from '../lib/harness.mjs';
import { designFloor, fdatasyncFloor, stepName } from '../lib/floors.mjs';
import { events, messages, textOf } from '../lib/payload.mjs';
import { countRows, openDb } from '../lib/sqlite.mjs';

/** n steps through the store, `batch` per call; per-step samples (call time / batch). */
export function appendRun(n, { durability, kind, batch = 1, tag = 's' }) {
  const items = kind === 'events' ? events(n, tag) : messages(n, tag);
  const calls = [];
  for (let i = 0; i < n; i += batch) calls.push(items.slice(i, i + batch));
  return async (ctx) => {
    const logger = countingLogger();
    const root = path.join(ctx.dir(), 'root');
    const store = await openStore({ dir: root, durability, logger });
    const handle = await store.createSession('bench', 'user');
    const append = kind === 'events' ? (b) => store.appendEvents(handle, b) : (b) => store.appendMessages(handle, b);
    const numbers = new Float64Array(n);
    const samples = new Float64Array(calls.length);
    let k = 0;
    const t = ctx.start();
    for (let c = 0; c < calls.length; c++) {
      const s = performance.now();
      const got = await append(calls[c]);
      samples[c] = (performance.now() - s) / calls[c].length;
      for (const x of got) numbers[k++] = x;
    }
    const timed = ctx.stop(t);
    const stats = store.stats();
    const c0 = performance.now();
    await store.close();
    const closeMs = performance.now() - c0;

    // Correctness, outside the timed part.
    check(k === n, `${k} step numbers returned for ${n} items`);
    for (let i = 0; i < n; i++) check(numbers[i] === i + 1, `item ${i} got step ${numbers[i]}`);
    const names = fs.readdirSync(path.join(root, handle));
    check(names.filter((x) => x.startsWith('step-')).length === n, `session holds ${names.length} entries, expected ${n} steps`);
    check(!names.some((x) => x.startsWith('.tmp-')), 'temp files left behind');
    const verifier = await openStore({ dir: root, durability: 'none', logger });
    const snap = await verifier.loadSession(handle);
    await verifier.close();
    if (kind === 'events') {
      check(snap.history.length === 0 && snap.meta.message_count === 0, 'events must not enter history or message_count');
      const last = JSON.parse(fs.readFileSync(path.join(root, handle, stepName(n)), 'utf8'));
      check(last.content === items[n - 1].content, 'last event step does not hold the last event');
    } else {
      check(snap.history.length === n, `loaded ${snap.history.length} messages, expected ${n}`);
      check(snap.meta.message_count === n, `meta.message_count ${snap.meta.message_count}, expected ${n}`);
      check(textOf(snap.history[n - 1]) === textOf(items[n - 1]), 'last message differs');
    }
    check(logger.warnings === 0, `store warned: ${logger.first}`);
    return {
      ...timed,
      ops: n,
      samples,
      info: { syncsPerStep: stats.syncs / n, metaWrites: stats.metaWrites, closeMs },
    };
  };
}

/** JSONL: appendFileSync per step, no fsync. */
export function jsonlRun(n) {
  const items = messages(n, 'j');
  return async (ctx) => {
    const file = path.join(ctx.dir(), 'steps.jsonl');
    const samples = new Float64Array(n);
    const t = ctx.start();
    for (let i = 0; i < n; i++) {
      const s = performance.now();
      fs.appendFileSync(file, JSON.stringify(items[i]) + '\n');
      samples[i] = performance.now() - s;
    }
    const timed = ctx.stop(t);
    const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
    check(lines.length === n, `jsonl has ${lines.length} lines, expected ${n}`);
    check(textOf(JSON.parse(lines[n - 1])) === textOf(items[n - 1]), 'jsonl last line differs');
    return { ...timed, ops: n, samples };
  };
}

/** SQLite WAL, synchronous=FULL, one autocommitted INSERT per step. */
export function sqliteRun(n) {
  const items = messages(n, 'q');
  return async (ctx) => {
    const db = openDb(ctx.dir());
    const insert = db.prepare('INSERT INTO steps (session, step, body) VALUES (?, ?, ?)');
    const samples = new Float64Array(n);
    const t = ctx.start();
    for (let i = 0; i < n; i++) {
      const s = performance.now();
      insert.run('s', i + 1, JSON.stringify(items[i]));
      samples[i] = performance.now() - s;
    }
    const timed = ctx.stop(t);
    check(countRows(db, 's') === n, 'sqlite row count');
    db.close();
    return { ...timed, ops: n, samples };
  };
}

export default {
  id: 'single',
  title: 'Single stream: appends to one session, one after another',
  async setup(env) {
    // Warm the JIT and the code paths on small runs (their files stay until the final cleanup).
    const w = 50;
    for (const run of [
      fdatasyncFloor(w),
      designFloor(w),
      appendRun(w, { durability: 'full', kind: 'messages' }),
      appendRun(w, { durability: 'full', kind: 'events' }),
      appendRun(w * 2, { durability: 'full', kind: 'messages', batch: 16 }),
      jsonlRun(w),
      sqliteRun(w),
    ]) {
      await env.warm(run, 'single', 'warmup');
    }
    return {};
  },
  scenarios(_state, env) {
    const n = env.params.singleN;
    return [
      {
        id: `append-${n}`,
        title: `${n} appends of one ~1 KB step`,
        unit: 'step',
        note: 'time per step; p50/p99 per call (batch of 16: call time / 16)',
        floors: [
          { id: 'fdatasync', label: 'floor: write+fdatasync, one pre-opened file', run: fdatasyncFloor(n) },
          { id: 'design', label: 'design floor: tmp+write+fsync+link+unlink+fsync(dir), sync', run: designFloor(n), vs: 'fdatasync' },
        ],
        variants: [
          {
            id: 'events-full',
            label: 'appendEvents([1]) full',
            run: appendRun(n, { durability: 'full', kind: 'events' }),
            ref: 'design',
            targets: [{ kind: 'ratio', ref: 'design', max: 1.2 }],
          },
          {
            id: 'messages-full',
            label: 'appendMessages([1]) full',
            run: appendRun(n, { durability: 'full', kind: 'messages' }),
            ref: 'design',
            targets: [{ kind: 'ratio', ref: 'design', max: 1.3 }],
          },
          {
            id: 'messages-batch16-full',
            label: 'appendMessages([16]) full, per step',
            run: appendRun(n, { durability: 'full', kind: 'messages', batch: 16 }),
            ref: 'fdatasync',
            targets: [{ kind: 'ratio', ref: 'fdatasync', max: 1.5 }],
          },
          { id: 'messages-file', label: 'appendMessages([1]) file', run: appendRun(n, { durability: 'file', kind: 'messages' }), ref: 'fdatasync' },
          { id: 'messages-none', label: 'appendMessages([1]) none', run: appendRun(n, { durability: 'none', kind: 'messages' }), ref: 'fdatasync' },
          { id: 'jsonl', label: 'JSONL appendFileSync, no fsync', run: jsonlRun(n), ref: 'fdatasync' },
          { id: 'sqlite', label: 'SQLite WAL FULL, INSERT per step', run: sqliteRun(n), ref: 'fdatasync' },
        ],
      },
    ];
  },
};
