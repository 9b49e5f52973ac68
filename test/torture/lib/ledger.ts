// What the torture parts were told was done: every acknowledged step, session,
// compaction and delete, gathered from the workers' JSON lines (or the test's
// own calls); and the check that all of it is still in a store, byte for byte.

import fs from 'node:fs';
import path from 'node:path';
import type { Store } from 'stepstore';

export interface ErrorLine {
  worker: string;
  op: string;
  error: string;
  message: string;
}

/** `step-NNNNNN`, crabtalk's step file name. */
export function stepFileName(step: number): string {
  return `step-${String(step).padStart(6, '0')}`;
}

export class Ledger {
  /** handle -> step -> the exact JSON text the step must hold. */
  readonly steps = new Map<string, Map<number, string>>();
  readonly sessions = new Set<string>();
  readonly compactions: { handle: string; archive: string; summary: string }[] = [];
  /** Sessions whose delete was acknowledged: their steps are gone on purpose. */
  readonly deleted = new Set<string>();
  readonly errors: ErrorLine[] = [];
  /** How many times a create gave out a handle whose session had been deleted. */
  handlesReused = 0;
  /** Step numbers acknowledged twice (two writers told they own one step): must stay empty. */
  readonly doubles: string[] = [];

  get stepCount(): number {
    let n = 0;
    for (const steps of this.steps.values()) n += steps.size;
    return n;
  }

  addSteps(handle: string, numbers: number[], items: unknown[]): void {
    let steps = this.steps.get(handle);
    if (steps === undefined) this.steps.set(handle, (steps = new Map()));
    numbers.forEach((step, i) => {
      if (steps.has(step)) this.doubles.push(`${handle} step ${step}`);
      steps.set(step, JSON.stringify(items[i]));
    });
  }

  /**
   * Takes in the lines a worker printed (see test/helpers/worker.mjs), in
   * order. A handle can come back after a delete (on the filesystem a new
   * session takes the highest seq + 1, crabtalk's rule), so a delete forgets
   * what the handle held and a later create starts it afresh; this is exact
   * as long as one worker alone writes to and deletes its sessions.
   */
  absorb(worker: string, lines: Record<string, unknown>[]): void {
    for (const line of lines) {
      if (typeof line.error === 'string') {
        this.errors.push({ worker, op: String(line.op), error: line.error, message: String(line.message) });
      } else if (Array.isArray(line.steps) && typeof line.handle === 'string') {
        this.addSteps(line.handle, line.steps as number[], line.items as unknown[]);
      } else if (typeof line.archive === 'string' && typeof line.handle === 'string') {
        this.compactions.push({ handle: line.handle, archive: line.archive, summary: String(line.summary) });
      } else if (line.op === 'delete' && line.deleted === true) {
        const handle = String(line.handle);
        this.deleted.add(handle);
        this.sessions.delete(handle);
        this.steps.delete(handle);
        this.compactions.splice(0, this.compactions.length, ...this.compactions.filter((c) => c.handle !== handle));
      } else if (typeof line.handle === 'string' && (line.op === 'create' || typeof line.sender === 'string')) {
        if (this.deleted.delete(line.handle)) this.handlesReused += 1;
        this.sessions.add(line.handle);
      }
    }
  }
}

export interface LedgerCheck {
  /** Acknowledged steps, sessions and archives looked at. */
  checked: number;
  /** What did not survive, one line each: must be empty. */
  lost: string[];
}

/**
 * Checks that every acknowledged step is in `store` and holds exactly its JSON
 * (also byte for byte on disk when `dir` is the fs root), every created
 * session loads, and every compaction's archive and marker are there.
 * Sessions whose delete was acknowledged are skipped.
 */
export async function checkLedger(store: Store, ledger: Ledger, dir: string | null = null): Promise<LedgerCheck> {
  const lost: string[] = [];
  let checked = 0;
  const stepsOf = new Map<string, Map<number, unknown>>();
  const readAll = async (handle: string) => {
    let steps = stepsOf.get(handle);
    if (steps === undefined) {
      try {
        steps = new Map((await store.readSteps(handle)).map((s) => [s.step, s.line]));
      } catch (err) {
        lost.push(`${handle}: readSteps failed: ${(err as Error).message}`);
        steps = new Map();
      }
      stepsOf.set(handle, steps);
    }
    return steps;
  };
  for (const [handle, acked] of ledger.steps) {
    if (ledger.deleted.has(handle)) continue;
    const steps = await readAll(handle);
    for (const [step, json] of acked) {
      checked += 1;
      if (!steps.has(step)) {
        lost.push(`${handle} step ${step}: missing`);
        continue;
      }
      if (JSON.stringify(steps.get(step)) !== json) {
        lost.push(`${handle} step ${step}: holds ${JSON.stringify(steps.get(step)).slice(0, 120)}, not ${json.slice(0, 120)}`);
        continue;
      }
      if (dir !== null) {
        const raw = fs.readFileSync(path.join(dir, handle, stepFileName(step)), 'utf8');
        if (raw !== json) lost.push(`${handle} step ${step}: the file holds ${JSON.stringify(raw.slice(0, 120))}`);
      }
    }
  }
  for (const handle of ledger.sessions) {
    if (ledger.deleted.has(handle)) continue;
    checked += 1;
    if ((await store.loadSession(handle)) === null) lost.push(`session ${handle}: does not load`);
  }
  for (const { handle, archive, summary } of ledger.compactions) {
    if (ledger.deleted.has(handle)) continue;
    checked += 1;
    const content = await store.getArchive(archive);
    if (content !== summary) lost.push(`archive ${archive}: holds ${JSON.stringify(content)}`);
    const steps = await readAll(handle);
    const marked = [...steps.values()].some((line) => (line as { archive_name?: string }).archive_name === archive);
    if (!marked) lost.push(`${handle}: no compact marker names ${archive}`);
  }
  return { checked, lost };
}

/** A logger that keeps what it is told, to assert that nothing was skipped or torn. */
export function recordingLogger(): { warnings: string[]; warn(message: string): void } {
  const warnings: string[] = [];
  return { warnings, warn: (message: string) => void warnings.push(message) };
}

/** Every entry of the tree under `dir` (relative paths); for scanning an fs root. */
export function walk(dir: string): string[] {
  const found: string[] = [];
  const visit = (rel: string) => {
    for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel === '' ? entry.name : `${rel}/${entry.name}`;
      found.push(child);
      if (entry.isDirectory()) visit(child);
    }
  };
  visit('');
  return found;
}

/** Sets the times of everything under `dir` (and `dir`) `ms` into the past: "time passes" without waiting. */
export function age(dir: string, ms: number): void {
  const then = (Date.now() - ms) / 1000;
  // Deepest first, so no later change to a child moves a directory's mtime again.
  for (const rel of walk(dir).reverse()) fs.utimesSync(path.join(dir, rel), then, then);
  fs.utimesSync(dir, then, then);
}

/** Leftovers of interrupted writes by name (src/backends/fs/paths.ts). */
export function isLeftover(rel: string): boolean {
  const name = rel.slice(rel.lastIndexOf('/') + 1);
  return (
    name.startsWith('.tmp-') ||
    /^meta\.[0-9a-f]+$/.test(name) ||
    /\.tmp\.\d+\.\d+$/.test(name) ||
    name === '.meta.lock' ||
    /^\.stepstore\/trash\/[^/]+$/.test(rel)
  );
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const randomInt = (below: number) => Math.floor(Math.random() * below);
