#!/usr/bin/env node
// stepstore benchmark: `npm run bench` (full), `npm run bench -- --quick` (smoke).
//
// Every group prepares its data once (outside timing), then runs R rounds.
// Each round runs, for each scenario: its floors, its variants (rotated so a
// different variant goes first each round), its floors again. A variant's
// ratio in a round = its time per op / the mean of the before and after
// floors of that same round; tables report the median of those ratios.
// Files are never deleted between timed runs (deleting slows later file
// creation on this filesystem, see the README's On-disk format section): every run writes
// into a fresh directory, and the whole temp tree is removed at the very end.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Meter, gc, makeDirFactory, now, rotate, sleep } from './lib/harness.mjs';
import { machineInfo } from './lib/machine.mjs';
import { markdownTable, rawRounds, summarizeScenario, textTable, verdictLine } from './lib/report.mjs';
import { renderSvg } from './lib/svg.mjs';
import single from './groups/single.mjs';
import many from './groups/many.mjs';
import load from './groups/load.mjs';
import replay from './groups/replay.mjs';
import dirs from './groups/dirs.mjs';
import scale from './groups/scale.mjs';
import redis from './groups/redis.mjs';
import history from './groups/history.mjs';
import adapters from './groups/adapters.mjs';

const GROUPS = [single, many, load, replay, dirs, scale, redis, history, adapters];

const FULL = {
  rounds: 7,
  singleN: 2000,
  manySessions: 32,
  manyPerSession: 40,
  loadSmall: 2000,
  loadLarge: 20000,
  replaySteps: 20000,
  replayTail: 100,
  replayReps: 5,
  dirSessions: 10000,
  findReps: 20,
  listReps: 3,
  scaleSizes: [1000, 10000, 100000],
  scaleRedisSizes: [1000, 10000, 100000],
  scaleFloorReps: 500,
  scaleFindReps: 50,
  scaleCreateReps: 20,
  scalePairListReps: 20,
  scaleListReps: 2,
  scaleRedisListReps: 1,
  scaleColdReps: 3,
  historySteps: 20000,
  historyRewindSteps: 1000,
  historyRewindReps: 3,
  historyReadReps: 20,
  historyWatchAppends: 200,
  historyWatchGapMs: 20,
  adapterSizes: [20, 2000],
  adapterSaveReps: 8,
  adapterResumeReps: 5,
};

const QUICK = {
  rounds: 2,
  singleN: 200,
  manySessions: 8,
  manyPerSession: 10,
  loadSmall: 200,
  loadLarge: 2000,
  replaySteps: 2000,
  replayTail: 100,
  replayReps: 3,
  dirSessions: 1000,
  findReps: 10,
  listReps: 2,
  scaleSizes: [1000, 10000],
  scaleRedisSizes: [1000, 10000],
  scaleFloorReps: 100,
  scaleFindReps: 20,
  scaleCreateReps: 5,
  scalePairListReps: 5,
  scaleListReps: 2,
  scaleRedisListReps: 1,
  scaleColdReps: 2,
  historySteps: 2000,
  historyRewindSteps: 1000,
  historyRewindReps: 2,
  historyReadReps: 10,
  historyWatchAppends: 30,
  historyWatchGapMs: 20,
  adapterSizes: [20, 2000],
  adapterSaveReps: 3,
  adapterResumeReps: 3,
};

/** After this long, inodes freed by a previous cleanup no longer slow file creation (measured: 60 s, 360 s while dirty). */
const CLEANUP_QUIET_MS = 6 * 60 * 1000;
/** The same after a cleanup that ran `sync` (inode tables clean): 60 s at best, up to 150 s measured here. */
const QUIET_AFTER_SYNCED_CLEANUP_MS = 150 * 1000;

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const projectDir = path.resolve(benchDir, '..');
const resultsDir = path.join(benchDir, 'results');
const tmpBase = path.join(resultsDir, 'tmp');
const markerPath = path.join(tmpBase, '.last-cleanup');

function usage(exitCode) {
  console.log(`usage: npm run bench [-- options]
  --quick          smoke-sized run (few rounds, small N), well under a minute; writes results/quick.*
  --rounds N       rounds per group (default ${FULL.rounds}, quick ${QUICK.rounds}); the load group runs 2N; history at most 3 unless given
  --only a,b       run only these groups: ${GROUPS.map((g) => g.id).join(', ')}
  --out NAME       output base name in bench/results/ (default latest, quick with --quick)
  --keep           keep the temp files (bench/results/tmp/run-*) for inspection
  --no-wait        do not wait out the slow-create period after a previous run's cleanup (quick never waits)`);
  process.exit(exitCode);
}

function parseArgs(argv) {
  const opts = { quick: false, rounds: null, only: null, out: null, keep: false, wait: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v === undefined) usage(2);
      return v;
    };
    if (a === '--quick') opts.quick = true;
    else if (a === '--keep') opts.keep = true;
    else if (a === '--no-wait') opts.wait = false;
    else if (a === '--rounds' || a.startsWith('--rounds=')) opts.rounds = Number(value());
    else if (a === '--only' || a.startsWith('--only=')) opts.only = value().split(',').map((s) => s.trim()).filter(Boolean);
    else if (a === '--out' || a.startsWith('--out=')) opts.out = value();
    else if (a === '--help' || a === '-h') usage(0);
    else {
      console.error(`unknown argument ${a}`);
      usage(2);
    }
  }
  if (opts.rounds !== null && !(Number.isInteger(opts.rounds) && opts.rounds >= 1)) {
    console.error('--rounds needs a positive integer');
    process.exit(2);
  }
  if (opts.only) {
    const unknown = opts.only.filter((id) => !GROUPS.some((g) => g.id === id));
    if (unknown.length) {
      console.error(`unknown group(s) ${unknown.join(', ')}; groups: ${GROUPS.map((g) => g.id).join(', ')}`);
      process.exit(2);
    }
  }
  if (opts.out !== null && !/^[A-Za-z0-9._-]+$/.test(opts.out)) {
    console.error('--out takes a plain file base name');
    process.exit(2);
  }
  return opts;
}

function syncDisk() {
  try {
    execFileSync('sync');
  } catch {
    // best effort: keeps the write-back of prepared data out of later timed runs
  }
}

function countFiles(dir) {
  let n = 0;
  const stack = [dir];
  while (stack.length) {
    const d = stack.pop();
    let entries;
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      n += 1;
      if (e.isDirectory()) stack.push(path.join(d, e.name));
    }
  }
  return n;
}

const opts = parseArgs(process.argv.slice(2));
const params = { ...(opts.quick ? QUICK : FULL) };
if (opts.rounds !== null) params.rounds = opts.rounds;
const outBase = opts.out ?? (opts.quick ? 'quick' : 'latest');
const started = now();
const startedAt = new Date();
const runId = `run-${startedAt.toISOString().replace(/[:.]/g, '-')}-${process.pid}`;
const runDir = path.join(tmpBase, runId);
fs.mkdirSync(runDir, { recursive: true });
const makeDir = makeDirFactory(runDir);
const warnings = [];
const say = (s = '') => console.log(s);

let cleaned = false;
function cleanup() {
  if (cleaned) return null;
  cleaned = true;
  if (opts.keep) {
    say(`kept temp files in ${path.relative(projectDir, runDir)}`);
    return null;
  }
  const t = now();
  const files = countFiles(tmpBase);
  fs.rmSync(runDir, { recursive: true, force: true });
  for (const name of fs.readdirSync(tmpBase)) {
    if (name.startsWith('run-')) fs.rmSync(path.join(tmpBase, name), { recursive: true, force: true });
  }
  syncDisk(); // clean inode tables shorten the slow-create period that follows a mass delete
  fs.mkdirSync(tmpBase, { recursive: true });
  fs.writeFileSync(markerPath, JSON.stringify({ at: new Date().toISOString(), files, synced: true }) + '\n');
  return { files, ms: now() - t };
}
process.on('SIGINT', () => {
  console.error('\ninterrupted: removing temp files');
  cleanup();
  process.exit(130);
});

// A recent cleanup (a mass delete) slows file creation for minutes: the inode
// allocator skips recently freed inodes (measured: 60 s, 360 s while their
// inode-table block is dirty; the cleanup below runs `sync` so it is the
// shorter one; measured here: back to normal 60-150 s after delete + sync).
let waitedMs = 0;
try {
  const last = JSON.parse(fs.readFileSync(markerPath, 'utf8'));
  const quietMs = last.synced ? QUIET_AFTER_SYNCED_CLEANUP_MS : CLEANUP_QUIET_MS;
  const age = Date.now() - Date.parse(last.at);
  if (age < quietMs && last.files > 1000) {
    const remaining = quietMs - age;
    if (!opts.quick && opts.wait) {
      console.log(`waiting ${(remaining / 1000).toFixed(0)} s: the previous benchmark removed ${last.files} files ${(age / 1000).toFixed(0)} s ago, and file creation on this filesystem stays slow for a while after a mass delete (--no-wait skips this)`);
      await sleep(remaining);
      waitedMs = remaining;
    } else {
      warnings.push(
        `the previous benchmark removed ${last.files} files ${(age / 1000).toFixed(0)} s ago: file creation stays slow for up to ${(quietMs / 1000).toFixed(0)} s after a mass delete on this filesystem, so file-creating variants read high against the fdatasync floor`,
      );
    }
  }
} catch {
  // no marker: no recent cleanup known
}
const stale = fs.readdirSync(tmpBase).filter((n) => n.startsWith('run-') && n !== runId);
if (stale.length) warnings.push(`left-over temp runs in bench/results/tmp (${stale.join(', ')}): removed at the end of this run, not now (deleting before timed runs skews them)`);

const machine = machineInfo(runDir, projectDir);
machine.loadavgAtStart = os.loadavg().map((x) => +x.toFixed(2));
if (!machine.exposeGc) warnings.push('run without --expose-gc: no gc between runs');
if (machine.srcDirty) warnings.push('src/ has uncommitted changes: the numbers are for the working tree, not the commit');

say(`stepstore bench ${opts.quick ? '(quick) ' : ''}— ${startedAt.toISOString()}`);
say(
  `node ${machine.node}, ${machine.cpus} x ${machine.cpuModel}, kernel ${machine.kernel}, temp fs ${machine.fs?.type ?? '?'} (${machine.fs?.options ?? ''}) at ${path.relative(projectDir, runDir)}`,
);
say(`stepstore ${machine.gitCommit ?? '?'}${machine.srcDirty ? ' + uncommitted src changes' : ''}; SQLite ${machine.sqlite}; rounds ${params.rounds}${opts.only ? `; only ${opts.only.join(',')}` : ''}`);
for (const w of warnings) say(`warning: ${w}`);

function makeCtx(parts, withMeter, warmup = false) {
  let meter = null;
  return {
    warmup,
    dir: () => makeDir(...parts),
    start() {
      if (withMeter) meter = new Meter().start();
      return now();
    },
    stop(t0) {
      const ms = now() - t0;
      const m = meter ? meter.stop() : {};
      meter = null;
      return { ms, ...m };
    },
  };
}

async function execute(run, parts, withMeter, warmup = false) {
  gc();
  await sleep(0);
  try {
    const res = await run(makeCtx(parts, withMeter, warmup));
    if (!(res && Number.isFinite(res.ms) && res.ops > 0)) return { error: 'run returned no timing' };
    return res;
  } catch (err) {
    return { error: err?.message ?? String(err) };
  } finally {
    // Write back whatever this run left dirty (durability 'none', JSONL, prepared data)
    // now, outside timing, instead of in the middle of a later run's fsyncs.
    syncDisk();
  }
}

const env = {
  quick: opts.quick,
  params,
  dir: (...parts) => makeDir(...parts),
  warn: (message) => warnings.push(message),
  async warm(run, ...parts) {
    const res = await execute(run, parts, false, true);
    if (res.error) warnings.push(`warm-up of ${parts.join('/')} failed: ${res.error}`);
  },
};

const report = [];
const allVerdicts = [];
let broken = 0;
let exitCode = 0;

try {
  for (const group of GROUPS) {
    if (opts.only && !opts.only.includes(group.id)) continue;
    say('');
    say(`== ${group.id}: ${group.title}`);
    if (group.skip) {
      say(`  ${group.skip}`);
      report.push({ id: group.id, title: group.title, skipped: group.skip });
      continue;
    }
    // A group whose rounds are expensive caps the default count (maxRounds); --rounds overrides the cap.
    const defaultRounds = params.rounds * (group.roundsFactor ?? 1);
    const rounds = group.maxRounds && opts.rounds === null ? Math.min(group.maxRounds, defaultRounds) : defaultRounds;
    const t0 = now();
    const state = await group.setup(env);
    syncDisk();
    const setupMs = now() - t0;
    const scenarios = group.scenarios(state, env);
    const raw = scenarios.map(() => []);
    process.stdout.write(`  setup ${(setupMs / 1000).toFixed(1)} s; rounds:`);
    const tRounds = now();
    for (let r = 0; r < rounds; r++) {
      for (const [si, s] of scenarios.entries()) {
        const round = { before: {}, variants: {}, after: {}, order: [] };
        for (const f of s.floors) round.before[f.id] = await execute(f.run, [group.id, s.id, `${f.id}-before`, `r${r + 1}`], s.meter);
        for (const v of rotate(s.variants, r)) {
          round.order.push(v.id);
          round.variants[v.id] = await execute(v.run, [group.id, s.id, v.id, `r${r + 1}`], s.meter);
        }
        for (const f of s.floors) round.after[f.id] = await execute(f.run, [group.id, s.id, `${f.id}-after`, `r${r + 1}`], s.meter);
        raw[si].push(round);
      }
      process.stdout.write(` ${r + 1}`);
    }
    say(` (${((now() - tRounds) / 1000).toFixed(1)} s)`);
    // Measurements that must not sit next to a timed run (RSS probes start a child process): one per round, after all rounds.
    if (scenarios.some((s) => [...s.floors, ...s.variants].some((item) => item.probe))) {
      const tProbe = now();
      for (let r = 0; r < rounds; r++) {
        for (const [si, s] of scenarios.entries()) {
          for (const item of [...s.floors, ...s.variants]) {
            if (!item.probe) continue;
            const target = s.floors.includes(item) ? raw[si][r].before[item.id] : raw[si][r].variants[item.id];
            if (!target || target.error) continue;
            try {
              const found = await item.probe();
              if (found.info && target.info) found.info = { ...target.info, ...found.info };
              Object.assign(target, found);
            } catch (err) {
              target.error = `probe: ${err?.message ?? err}`;
            }
          }
        }
      }
      say(`  RSS probes in fresh processes: ${((now() - tProbe) / 1000).toFixed(1)} s`);
    }
    await group.teardown?.(state);
    syncDisk();
    await sleep(300);
    const summaries = [];
    for (const [i, s] of scenarios.entries()) summaries.push(summarizeScenario(group, s, raw[i], summaries));
    for (const sum of summaries) {
      say('');
      say(textTable(sum));
      allVerdicts.push(...sum.verdicts);
      broken += sum.rows.filter((row) => row.broken).length;
      for (const row of sum.rows) {
        if (row.kind === 'floor' && Number.isFinite(row.drift) && (row.drift > 1.3 || row.drift < 1 / 1.3)) {
          warnings.push(`${group.id}/${sum.id}: ${row.label} drifted within rounds (after/before median ${row.drift.toFixed(2)}x)`);
        }
      }
    }
    report.push({
      id: group.id,
      title: group.title,
      rounds,
      setupMs,
      scenarios: summaries.map((sum, i) => ({
        id: sum.id,
        title: sum.title,
        note: sum.note,
        rows: sum.rows,
        raw: rawRounds(scenarios[i], raw[i]),
      })),
    });
  }
} catch (err) {
  exitCode = 1;
  console.error(`benchmark aborted: ${err?.stack ?? err}`);
  warnings.push(`aborted: ${err?.message ?? err}`);
}

// ---- summary --------------------------------------------------------------
machine.loadavgAtEnd = os.loadavg().map((x) => +x.toFixed(2));
if (machine.loadavgAtStart[0] > 1) {
  warnings.push(
    `the machine was busy when the benchmark started (load average ${machine.loadavgAtStart.join(' / ')} on ${machine.cpus} CPUs; ${machine.loadavgAtEnd.join(' / ')} at the end, this benchmark included): other work competes for the CPUs and the disk, so expect noisier ratios and floor drift`,
  );
}
const met = allVerdicts.filter((v) => v.met).length;
say('');
say(`== targets: ${met} met, ${allVerdicts.length - met} missed${broken ? `, ${broken} broken row(s)` : ''}`);
for (const v of allVerdicts) say('  ' + verdictLine(v));
for (const w of warnings) say(`warning: ${w}`);

const durationMs = now() - started;
const title = `stepstore bench${opts.quick ? ' (quick)' : ''}`;
const subtitle = `${startedAt.toISOString()} · node ${machine.node} · ${machine.cpus} CPU · ${machine.fs?.type ?? '?'} · stepstore ${machine.gitCommit ?? '?'}${machine.srcDirty ? '+dirty' : ''} · rounds ${params.rounds}`;
const json = {
  tool: 'stepstore bench',
  date: startedAt.toISOString(),
  durationSec: +(durationMs / 1000).toFixed(1),
  waitedSec: +(waitedMs / 1000).toFixed(1),
  mode: opts.quick ? 'quick' : 'full',
  args: process.argv.slice(2),
  rounds: params.rounds,
  params,
  machine,
  method:
    'Each round: floors, variants (rotated start), floors again; ratio = variant time per op / mean(before, after floor) of the same round; tables show medians over rounds of these per-round ratios, min over rounds, p50/p99 over pooled per-op samples of all rounds.',
  warnings,
  summary: { targets: allVerdicts.length, met, missed: allVerdicts.length - met, brokenRows: broken },
  verdicts: allVerdicts,
  groups: report,
};

const md = [];
md.push(`# ${title}`, '');
md.push(`${startedAt.toISOString()} · took ${(durationMs / 1000).toFixed(0)} s${waitedMs ? ` (${(waitedMs / 1000).toFixed(0)} s of it waiting for a quiet filesystem)` : ''} · \`npm run bench${opts.quick ? ' -- --quick' : ''}${process.argv.slice(2).filter((a) => a !== '--quick').length ? ' ' + process.argv.slice(2).filter((a) => a !== '--quick').join(' ') : ''}\``, '');
md.push(
  `node ${machine.node} · ${machine.cpus} x ${machine.cpuModel} · kernel ${machine.kernel} · temp fs ${machine.fs?.type ?? '?'} (${machine.fs?.options ?? ''}) · SQLite ${machine.sqlite} · stepstore ${machine.gitCommit ?? '?'}${machine.srcDirty ? ' + uncommitted src changes' : ''}`,
  '',
);
md.push(
  `Rounds: ${params.rounds} (load group: ${params.rounds * 2}). Each round runs the floors, the variants (a different one first each round), then the floors again; a ratio is the variant's time per op over the mean of that round's before/after floor, and the table shows the median of the per-round ratios. min = fastest round; p50/p99 pool the per-op samples of all rounds. Absolute times drift from day to day on these machines: compare ratios.`,
  '',
);
md.push(`![chart](${outBase}.svg)`, '');
md.push(`## Targets: ${met} met, ${allVerdicts.length - met} missed${broken ? `, ${broken} broken row(s)` : ''}`, '');
for (const v of allVerdicts) md.push(`- ${v.broken ? '**BROKEN**' : v.met ? 'met' : '**MISSED**'} — ${v.group}/${v.scenario} ${v.label}: ${v.shown} (target ${v.target})`);
md.push('');
for (const g of report) {
  md.push(`## ${g.id}: ${g.title}`, '');
  if (g.skipped) {
    md.push(g.skipped, '');
    continue;
  }
  for (const s of g.scenarios) {
    md.push(markdownTable({ ...s, rows: s.rows }), '');
  }
}
if (warnings.length) {
  md.push('## Warnings', '');
  for (const w of warnings) md.push(`- ${w}`);
  md.push('');
}

fs.mkdirSync(resultsDir, { recursive: true });
fs.writeFileSync(path.join(resultsDir, `${outBase}.json`), JSON.stringify(json, null, 1) + '\n');
fs.writeFileSync(path.join(resultsDir, `${outBase}.md`), md.join('\n'));
fs.writeFileSync(path.join(resultsDir, `${outBase}.svg`), renderSvg({ title, subtitle, verdicts: allVerdicts }));
say('');
say(`wrote bench/results/${outBase}.json, ${outBase}.md, ${outBase}.svg`);

const removed = cleanup();
if (removed) say(`removed ${removed.files} temp files and directories in ${(removed.ms / 1000).toFixed(1)} s`);
say(`total ${(durationMs / 1000).toFixed(1)} s${waitedMs ? ` (of which ${(waitedMs / 1000).toFixed(0)} s waiting for a quiet filesystem)` : ''}, cleanup included: ${((now() - started) / 1000).toFixed(1)} s`);
if (broken > 0) exitCode = 1;
process.exitCode = exitCode;
