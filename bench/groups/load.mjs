// Loading a session of live steps (no compaction): loadSession against a
// synchronous read of every step file, one JSONL file and a SQLite SELECT.
// Sessions are prepared once at durability 'none' in big batches, outside timing.

import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { openStore } from '../../dist/index.js';
import { check, countingLogger, rssProbe } from '../lib/harness.mjs';
import { readStepsSync, repeated } from '../lib/floors.mjs';
import { messages, textOf } from '../lib/payload.mjs';
import { openDb } from '../lib/sqlite.mjs';

export async function prepareSession(root, agent, sender, parts) {
  const logger = countingLogger();
  const store = await openStore({ dir: root, durability: 'none', logger });
  const handle = await store.createSession(agent, sender);
  for (const part of parts) {
    if (part.marker !== undefined) {
      await store.appendCompact(handle, part.marker);
      continue;
    }
    for (let i = 0; i < part.items.length; i += 500) await store.appendMessages(handle, part.items.slice(i, i + 500));
  }
  await store.close();
  check(logger.warnings === 0, `store warned while preparing: ${logger.first}`);
  return handle;
}

/**
 * Peak RSS growth of the same load in a fresh process (lib/rss-probe.mjs), so
 * that memory left resident by earlier runs here cannot hide growth. run.mjs
 * calls probes after all timed rounds of the group: a child process right
 * before a timed run slows that run measurably.
 */
function rssProbeOf(mode, args, expectedEntries) {
  return async () => {
    const probe = await rssProbe(mode, args);
    check(probe.entries === expectedEntries, `rss probe (${mode}) loaded ${probe.entries} entries, expected ${expectedEntries}`);
    return { rssGrowthBytes: probe.peakGrowth, historyBytes: probe.historyBytes, rssAfterBytes: probe.afterGrowth };
  };
}

function checkHistory(history, expected, what) {
  check(history.length === expected.length, `${what}: ${history.length} entries, expected ${expected.length}`);
  const last = expected.length - 1;
  check(textOf(history[0]) === textOf(expected[0]), `${what}: first entry differs`);
  check(textOf(history[last]) === textOf(expected[last]), `${what}: last entry differs`);
  check(textOf(history[last >> 1]) === textOf(expected[last >> 1]), `${what}: middle entry differs`);
}

function loadSessionRun(root, handle, expected) {
  return async (ctx) => {
    const logger = countingLogger();
    const store = await openStore({ dir: root, durability: 'full', logger });
    const result = await repeated(1, () => store.loadSession(handle), (snap) => {
      checkHistory(snap.history, expected, 'loadSession');
      check(snap.diagnostics.length === 0 && logger.warnings === 0, `loadSession warned: ${logger.first}`);
    })(ctx);
    await store.close();
    return result;
  };
}

function syncReadRun(dir, expected) {
  return repeated(1, () => readStepsSync(dir), (history) => checkHistory(history, expected, 'sync read'));
}

export default {
  id: 'load',
  title: 'Load a session of live steps (no compaction), page cache warm',
  roundsFactor: 2,
  async setup(env) {
    const { loadSmall, loadLarge } = env.params;
    const root = path.join(env.dir('load', 'prep'), 'root');
    const small = messages(loadSmall, 'L');
    const large = messages(loadLarge, 'M');
    const hSmall = await prepareSession(root, 'bench', 'load-small', [{ items: small }]);
    const hLarge = await prepareSession(root, 'bench', 'load-large', [{ items: large }]);
    const jsonl = path.join(root, '..', 'small.jsonl');
    fs.writeFileSync(jsonl, small.map((m) => JSON.stringify(m) + '\n').join(''));
    const dbDir = path.join(root, '..');
    const db = openDb(dbDir);
    const insert = db.prepare('INSERT INTO steps (session, step, body) VALUES (?, ?, ?)');
    db.transaction(() => small.forEach((m, i) => insert.run('s', i + 1, JSON.stringify(m))))();
    db.close();
    const state = { root, hSmall, hLarge, small, large, jsonl, dbPath: path.join(dbDir, 'steps.db') };
    // Warm the page cache and the JIT: one untimed pass of everything.
    for (const s of this.scenarios(state, env)) for (const item of [...s.floors, ...s.variants]) await env.warm(item.run, 'load', 'warmup');
    return state;
  },
  scenarios(state, env) {
    const { root, hSmall, hLarge, small, large, jsonl, dbPath } = state;
    const { loadSmall, loadLarge } = env.params;
    return [
      {
        id: `load-${loadSmall}`,
        title: `load a session of ${loadSmall} live steps`,
        unit: 'load',
        note: 'time per load; stall = longest gap of a 1 ms timer; RSS = peak growth of the resident set during the same load in a fresh process (1 ms samples + one right after; one probe per round, after all timed rounds), x = / bytes of the returned history',
        meter: true,
        floors: [{ id: 'sync-read', label: 'floor: readdirSync + readFileSync + JSON.parse per step', run: syncReadRun(path.join(root, hSmall), small), probe: rssProbeOf('sync-read', { dir: path.join(root, hSmall) }, small.length) }],
        variants: [
          {
            id: 'loadSession',
            label: 'loadSession',
            run: loadSessionRun(root, hSmall, small),
            probe: rssProbeOf('loadSession', { root, handle: hSmall }, small.length),
            ref: 'sync-read',
            targets: [
              { kind: 'ratio', ref: 'sync-read', max: 1.5 },
              { kind: 'rss', max: 3 },
            ],
          },
          {
            id: 'jsonl',
            label: 'one JSONL file: read + split + parse',
            ref: 'sync-read',
            run: repeated(
              1,
              () => fs.readFileSync(jsonl, 'utf8').split('\n').filter((line) => line !== '').map((line) => JSON.parse(line)),
              (history) => checkHistory(history, small, 'jsonl'),
            ),
            probe: rssProbeOf('jsonl', { file: jsonl }, small.length),
          },
          {
            id: 'sqlite',
            label: 'SQLite SELECT ... ORDER BY step + parse',
            ref: 'sync-read',
            probe: rssProbeOf('sqlite', { db: dbPath }, small.length),
            run: async (ctx) => {
              const db = new Database(dbPath, { readonly: true });
              const select = db.prepare('SELECT body FROM steps WHERE session = ? ORDER BY step');
              const result = await repeated(1, () => select.all('s').map((row) => JSON.parse(row.body)), (history) => {
                checkHistory(history, small, 'sqlite');
              })(ctx);
              db.close();
              return result;
            },
          },
        ],
      },
      {
        id: `load-${loadLarge}`,
        title: `load a session of ${loadLarge} live steps`,
        unit: 'load',
        note: 'time per load; stall = longest gap of a 1 ms timer; RSS as above (fresh process)',
        meter: true,
        floors: [{ id: 'sync-read', label: 'floor: readdirSync + readFileSync + JSON.parse per step', run: syncReadRun(path.join(root, hLarge), large), probe: rssProbeOf('sync-read', { dir: path.join(root, hLarge) }, large.length) }],
        variants: [
          {
            id: 'loadSession',
            label: 'loadSession',
            run: loadSessionRun(root, hLarge, large),
            probe: rssProbeOf('loadSession', { root, handle: hLarge }, large.length),
            ref: 'sync-read',
            targets: [
              { kind: 'ratio', ref: 'sync-read', max: 2 },
              { kind: 'stall', max: 20 },
              { kind: 'rss', max: 3 },
            ],
          },
        ],
      },
    ];
  },
};
