// Peak RSS growth of one load, measured in a fresh Node process so that pages
// left resident by earlier runs of the benchmark cannot hide (or add) growth.
// Usage: node --expose-gc rss-probe.mjs <mode> '<json args>'; prints one JSON line.
// Modes: loadSession {root, handle} | sync-read {dir} | jsonl {file} | sqlite {db}.

import fs from 'node:fs';
import { openStore } from '../../dist/index.js';
import Database from 'better-sqlite3';
import { readStepsSync } from './floors.mjs';
import { historyBytes } from './payload.mjs';

const [mode, rawArgs] = process.argv.slice(2);
const args = JSON.parse(rawArgs);
const rss = () => process.memoryUsage.rss();

let op;
let done = async () => {};
if (mode === 'loadSession') {
  const store = await openStore({ dir: args.root, durability: 'full', logger: { warn() {} } });
  op = async () => (await store.loadSession(args.handle)).history;
  done = () => store.close();
} else if (mode === 'sync-read') {
  op = async () => readStepsSync(args.dir);
} else if (mode === 'jsonl') {
  op = async () => fs.readFileSync(args.file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
} else if (mode === 'sqlite') {
  const db = new Database(args.db, { readonly: true });
  const select = db.prepare('SELECT body FROM steps WHERE session = ? ORDER BY step');
  op = async () => select.all('s').map((row) => JSON.parse(row.body));
  done = () => db.close();
} else {
  throw new Error(`unknown mode ${mode}`);
}

globalThis.gc?.();
globalThis.gc?.();
await new Promise((resolve) => setTimeout(resolve, 20));
const base = rss();
let peak = base;
const timer = setInterval(() => {
  const r = rss();
  if (r > peak) peak = r;
}, 1);
const history = await op();
const after = rss();
clearInterval(timer);
if (after > peak) peak = after;
const out = { mode, baseRss: base, peakGrowth: peak - base, afterGrowth: after - base, entries: history.length, historyBytes: historyBytes(history) };
await done();
process.stdout.write(JSON.stringify(out) + '\n');
