#!/usr/bin/env node
// `npm run torture`: the torture suite (test/torture) at full size, then one
// table of what every part tried and what it lost, from torture-results/*.json
// (written by test/torture/summary.ts), also saved as torture-results/summary.md.
//
//   node scripts/torture.mjs [vitest filters...]   clean results, run TORTURE=full, report
//   node scripts/torture.mjs --report              only print the table of the results there are
//
// Exits non-zero when a test failed, a part lost anything, or no part reported.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS = path.join(root, 'torture-results');
const args = process.argv.slice(2);

function runVitest(filters) {
  fs.rmSync(RESULTS, { recursive: true, force: true });
  const vitest = path.join(root, 'node_modules', 'vitest', 'vitest.mjs');
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [vitest, 'run', ...(filters.length > 0 ? filters : ['test/torture'])], {
      cwd: root,
      stdio: 'inherit',
      env: { ...process.env, TORTURE: 'full' },
    });
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 1 : 0), seconds: (Date.now() - started) / 1000 }));
  });
}

function readResults() {
  if (!fs.existsSync(RESULTS)) return [];
  return fs
    .readdirSync(RESULTS)
    .filter((name) => name.endsWith('.json'))
    .map((name) => JSON.parse(fs.readFileSync(path.join(RESULTS, name), 'utf8')))
    .sort((a, b) => parseFloat(a.part) - parseFloat(b.part) || a.part.localeCompare(b.part));
}

const cell = (value) => String(value ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ');
const count = (n) => Number(n).toLocaleString('en-US');

function table(results) {
  const lines = [
    '| part | invariant | tried | iterations | faults | lost |',
    '|---|---|---|---:|---:|---:|',
    ...results.map(
      (r) =>
        `| ${cell(r.part)} | ${cell(r.invariant)} | ${cell(r.tried)}${r.notes ? ` (${cell(r.notes)})` : ''} | ${count(r.iterations)} | ${count(r.faults)} | ${count(r.lost)} |`,
    ),
  ];
  return lines.join('\n');
}

function report(results, run) {
  const scales = [...new Set(results.map((r) => r.scale))];
  const lost = results.reduce((sum, r) => sum + Number(r.lost), 0);
  const faults = results.reduce((sum, r) => sum + Number(r.faults), 0);
  const heading =
    `# Torture results\n\n` +
    `${results.length} parts at scale ${scales.join(' and ') || '-'}` +
    (run ? `, ${run.seconds.toFixed(0)} s, vitest exit code ${run.code}` : '') +
    `; ${count(faults)} faults injected in all; ${count(lost)} acknowledged writes lost.\n`;
  const body = `${heading}\n${table(results)}\n`;
  console.log(`\n${body}`);
  fs.mkdirSync(RESULTS, { recursive: true });
  fs.writeFileSync(path.join(RESULTS, 'summary.md'), body);
  console.log(`written to ${path.relative(root, path.join(RESULTS, 'summary.md'))}`);
  return lost;
}

const reportOnly = args.includes('--report');
const run = reportOnly ? null : await runVitest(args.filter((a) => a !== '--report'));
const results = readResults();
if (results.length === 0) {
  console.error('torture: no results in torture-results/: no part ran to its report');
  process.exit(1);
}
const lost = report(results, run);
if (lost > 0) console.error(`torture: ${lost} acknowledged writes lost`);
process.exit(lost > 0 ? 1 : (run?.code ?? 0));
