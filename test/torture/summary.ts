// Torture parts report what they ran and what was lost, the same way: one line
// on stdout (seen in CI logs) and a JSON file per part under
// torture-results/, which `npm run torture` gathers into one table.

import fs from 'node:fs';
import path from 'node:path';

/** `ci` inside `npm test` (a slice), `full` under `npm run torture`. */
export const SCALE: 'ci' | 'full' = process.env.TORTURE === 'full' ? 'full' : 'ci';

/** Picks the iteration count for the current scale; TORTURE_ITERATIONS overrides both. */
export function iterations(ci: number, full: number): number {
  const forced = Number(process.env.TORTURE_ITERATIONS);
  return Number.isSafeInteger(forced) && forced > 0 ? forced : SCALE === 'full' ? full : ci;
}

export interface PartSummary {
  /** e.g. `1. kill loop (fs)` */
  part: string;
  /** The invariant checked after every iteration, in one sentence. */
  invariant: string;
  /** What was tried, e.g. `200 iterations, 6 processes, 1,240 SIGKILLs`. */
  tried: string;
  iterations: number;
  /** Faults injected, inputs tried, kills sent: whatever the part counts. */
  faults: number;
  /** Acknowledged data that did not survive: must be 0. */
  lost: number;
  /** Anything else worth a line (skips and why). */
  notes?: string;
}

const RESULTS = path.resolve('torture-results');

export function report(summary: PartSummary): void {
  const line = `torture ${summary.part}: ${summary.tried}; faults ${summary.faults}; lost ${summary.lost}` +
    (summary.notes ? ` (${summary.notes})` : '');
  console.log(line);
  fs.mkdirSync(RESULTS, { recursive: true });
  const file = path.join(RESULTS, `${summary.part.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').toLowerCase()}.json`);
  fs.writeFileSync(file, JSON.stringify({ ...summary, scale: SCALE, at: new Date().toISOString() }, null, 2) + '\n');
}
