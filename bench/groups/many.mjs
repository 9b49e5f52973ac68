// Many sessions at once: S sessions in one store, each appending P single
// items in sequence, all S concurrently, at durability 'full'. Judged against
// the design's syscalls done just as concurrently; the one-file fdatasync
// floor and a group commit into one log are shown beside it.

import fs from 'node:fs';
import path from 'node:path';
import { openStore } from '../../dist/index.js';
import { appendConcurrently, check, countingLogger } from '../lib/harness.mjs';
import { concurrentDesignFloor, fdatasyncFloor, groupCommitFloor } from '../lib/floors.mjs';
import { events, messages, textOf } from '../lib/payload.mjs';
import { countRows, openDb } from '../lib/sqlite.mjs';

function concurrentRun(sessions, perSession, kind) {
  const items = Array.from({ length: sessions }, (_, k) =>
    kind === 'events' ? events(perSession, `k${k}-`) : messages(perSession, `k${k}-`),
  );
  return async (ctx) => {
    const logger = countingLogger();
    const root = path.join(ctx.dir(), 'root');
    const store = await openStore({ dir: root, durability: 'full', logger });
    const append = kind === 'events' ? (h, b) => store.appendEvents(h, b) : (h, b) => store.appendMessages(h, b);
    const { timed, samples, handles } = await appendConcurrently(ctx, store, items, append);
    const stats = store.stats();
    const c0 = performance.now();
    await store.close();
    const closeMs = performance.now() - c0;

    const verifier = await openStore({ dir: root, durability: 'none', logger });
    for (let k = 0; k < sessions; k++) {
      const names = fs.readdirSync(path.join(root, handles[k]));
      check(names.filter((x) => x.startsWith('step-')).length === perSession, `session ${k} holds ${names.length} entries`);
      check(!names.some((x) => x.startsWith('.tmp-')), `session ${k}: temp files left behind`);
      if (kind === 'messages') {
        const snap = await verifier.loadSession(handles[k]);
        check(snap.history.length === perSession, `session ${k}: loaded ${snap.history.length} messages`);
        check(snap.meta.message_count === perSession, `session ${k}: message_count ${snap.meta.message_count}`);
        check(textOf(snap.history[perSession - 1]) === textOf(items[k][perSession - 1]), `session ${k}: last message differs`);
      }
    }
    await verifier.close();
    check(logger.warnings === 0, `store warned: ${logger.first}`);
    const total = sessions * perSession;
    return { ...timed, ops: total, samples, info: { syncsPerStep: stats.syncs / total, metaWrites: stats.metaWrites, closeMs } };
  };
}

function sqliteConcurrentRun(sessions, perSession) {
  const items = Array.from({ length: sessions }, (_, k) => messages(perSession, `k${k}-`));
  return async (ctx) => {
    const db = openDb(ctx.dir());
    const insert = db.prepare('INSERT INTO steps (session, step, body) VALUES (?, ?, ?)');
    const latency = new Float64Array(sessions * perSession);
    const t = ctx.start();
    for (let j = 0; j < perSession; j++) {
      for (let k = 0; k < sessions; k++) {
        const s = performance.now();
        insert.run(`s${k}`, j + 1, JSON.stringify(items[k][j]));
        latency[k * perSession + j] = performance.now() - s;
      }
    }
    const timed = ctx.stop(t);
    check(countRows(db) === sessions * perSession, 'sqlite row count');
    db.close();
    return { ...timed, ops: sessions * perSession, samples: latency };
  };
}

export default {
  id: 'many',
  title: 'Many sessions at once: concurrent single-item appends at full',
  async setup(env) {
    await env.warm(concurrentRun(4, 5, 'events'), 'many', 'warmup');
    await env.warm(concurrentRun(4, 5, 'messages'), 'many', 'warmup');
    await env.warm(concurrentDesignFloor(4, 5), 'many', 'warmup');
    await env.warm(groupCommitFloor(4, 5), 'many', 'warmup');
    return {};
  },
  scenarios(_state, env) {
    const { manySessions: s, manyPerSession: p } = env.params;
    return [
      {
        id: `${s}x${p}`,
        title: `${s} sessions x ${p} appends, all sessions concurrently (${s * p} steps)`,
        unit: 'step',
        note: 'median/min = wall time / steps (aggregate); p50/p99 = latency of one call; stall = longest gap of a 1 ms timer; each store row twice: vs the concurrent design floor (the target) and vs the one-file fdatasync floor',
        meter: true,
        floors: [
          { id: 'design', short: 'concurrent design floor', label: `floor: design syscalls, ${s} sessions at once, fsyncs on the thread pool`, run: concurrentDesignFloor(s, p), vs: 'fdatasync' },
          { id: 'fdatasync', label: `floor: write+fdatasync, one file, ${s * p} steps`, run: fdatasyncFloor(s * p) },
          { id: 'group', short: 'group-commit floor', label: `floor (informational): group commit, ${s} sessions into one log`, run: groupCommitFloor(s, p), vs: 'fdatasync' },
        ],
        variants: [
          {
            id: 'events-full',
            label: `appendEvents([1]) x${p} in ${s} sessions`,
            run: concurrentRun(s, p, 'events'),
            ref: ['design', 'fdatasync'],
            targets: [
              { kind: 'ratio', ref: 'design', max: 1.1 },
              { kind: 'stall', max: 20 },
            ],
          },
          {
            id: 'messages-full',
            label: `appendMessages([1]) x${p} in ${s} sessions`,
            run: concurrentRun(s, p, 'messages'),
            ref: ['design', 'fdatasync'],
            targets: [
              { kind: 'ratio', ref: 'design', max: 1.25 },
              { kind: 'stall', max: 20 },
            ],
          },
          { id: 'sqlite', label: `SQLite WAL FULL, ${s * p} INSERTs, one connection`, run: sqliteConcurrentRun(s, p), ref: 'fdatasync' },
        ],
      },
    ];
  },
};
