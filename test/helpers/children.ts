// Spawning test/helpers/worker.mjs: run to completion, or run and kill.

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { WorkerStoreSpec } from '../conformance/harness.js';

const WORKER = fileURLToPath(new URL('./worker.mjs', import.meta.url));

export type WorkerTask =
  | { name: 'append'; handle: string; tag: string; count: number | null }
  | { name: 'append-batches'; handle: string; tag: string; count: number | null; maxBatch: number; pad: number }
  /** One batch per size, of messages `${tag}:${i}:${j}` (every third batch events); lines `{ i, steps }` (test/conformance/watch.ts). */
  | { name: 'append-sizes'; handle: string; tag: string; sizes: number[] }
  | { name: 'create'; agent: string; sender: string; count: number }
  | { name: 'delete'; handle: string }
  | { name: 'create-compact'; agent: string; sender: string; tag: string }
  /** Lines `{ i, op: 'create' | 'delete', handle }`: each session is deleted right after its create is printed. */
  | { name: 'create-delete'; agent: string; sender: string; count: number }
  /**
   * Fenced writes racing another worker (test/conformance/history.ts): round r starts at startAt + r * periodMs
   * (ms since the epoch) once the rounds before it are written, and writes with expectedStep = their step count;
   * rounds cycle messages, events (batches of `batch`) and every 5th a compact. Lines
   * `{ round, expectedStep, kind, steps | archive }`, or `{ round, expectedStep, kind, error }` for a StepStoreError.
   */
  | { name: 'fenced-race'; handle: string; tag: string; rounds: number; batch: number; startAt: number; periodMs: number }
  /** Single messages `${tag}:${i}` for durationMs; lines as 'append'. */
  | { name: 'append-for'; handle: string; tag: string; durationMs: number }
  /** For durationMs: rewinds to 0..maxBack below the highest step, then waits delayMs; lines `{ i, toStep, retracted }`. */
  | { name: 'rewind-loop'; handle: string; durationMs: number; maxBack: number; delayMs: number }
  | { name: 'append-then-retract'; handle: string; tag: string; durationMs: number }
  | PlainTask
  // The torture tasks: they print StepStoreErrors as `{ op, error, message }` lines and go on.
  | {
      name: 'append-shared';
      handles: string[];
      /** Also append to the sessions listed for this agent, refreshed every `refreshEvery` batches. */
      agent: string | null;
      refreshEvery: number;
      tag: string;
      count: number | null;
      maxBatch: number;
      pad: number;
      /** Every n-th batch is events rather than messages; 0 for none. */
      eventsEvery: number;
      /**
       * A `share` (0..1) of the ops go to the sessions of (agent, sender) instead, where a churn worker
       * deletes the newest: appends (every compactEvery-th a compact; 0 for never) to the newest
       * session known or any known one, stale handles included; their lines carry t0/t1 as in churn.
       */
      pair?: {
        agent: string;
        sender: string;
        /** Handles known from the start (with their created_at, or '?'), e.g. sessions already deleted. */
        handles: { handle: string; born: string }[];
        share: number;
        refreshEvery: number;
        compactEvery: number;
      };
    }
  | { name: 'create-loop'; agent: string; senders: string[]; count: number | null; delayMs: number }
  | { name: 'compact-loop'; handles: string[]; agent: string | null; refreshEvery: number; tag: string; count: number | null; delayMs: number }
  | {
      // Deletes the newest session of (agent, sender), creates the next, appends 1..batches batches to it and
      // compacts every compactEvery-th one; lines carry t0/t1 (µs, machine-wide monotonic clock).
      name: 'churn';
      agent: string;
      sender: string;
      tag: string;
      count: number | null;
      batches: number;
      maxBatch: number;
      pad: number;
      eventsEvery: number;
      /** 0 for never. */
      compactEvery: number;
      delayMs: number;
    }
  | {
      name: 'mixed';
      tag: string;
      agent: string;
      sender: string;
      /** A session every worker appends to and loads; never deleted. */
      sharedHandle: string;
      durationMs: number;
      /** RSS is taken after this long, and again at the end. */
      warmupMs: number;
      maxOwn: number;
      maxBatch: number;
      pad: number;
    };

/**
 * crabtalk's own writes to an fs root (the spec's dir), by a worker that opens no store. Lines
 * `{ i, op: 'create', handle, created_at }` once a session's meta is in place, `{ i, op: 'delete', handle }`
 * once its directory is gone, and with metaAfterMs `{ i, op: 'mkdir', handle }` once its directory is made.
 */
export type PlainTask =
  | {
      name: 'plain-create';
      agent: string;
      sender: string;
      /** `{agent}_{sender}_{seq}`, made in this order. */
      handles: string[];
      /** `rm -rf` each session right after making it. */
      removeEach: boolean;
      /** How long after its mkdir a session's meta is written; 0 for at once. */
      metaAfterMs: number;
      /** A pause of pauseMs after every pauseEvery sessions; 0 for none. */
      pauseEvery: number;
      pauseMs: number;
    }
  | { name: 'plain-remove'; handles: string[] };

export interface Worker {
  child: ChildProcess;
  /** Parsed JSON lines printed so far, one per acknowledged operation. */
  lines: Record<string, unknown>[];
  /** Resolves with the exit code (or signal) once the child has exited and its output is read. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

export function startWorker(store: WorkerStoreSpec, task: WorkerTask, options: { nodeArgs?: string[] } = {}): Worker {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), WORKER, JSON.stringify({ store, task })], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  let pending = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk;
    let newline: number;
    while ((newline = pending.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(pending.slice(0, newline)) as Record<string, unknown>);
      pending = pending.slice(newline + 1);
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  // A failed spawn (EAGAIN, ENOMEM) is reported through stderr rather than as an uncaught error.
  child.on('error', (err) => (stderr += `spawn failed: ${err.message}\n`));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
  return { child, lines, exited };
}

/** Runs a worker to completion; rejects when it fails. */
export async function runWorker(store: WorkerStoreSpec, task: WorkerTask): Promise<Record<string, unknown>[]> {
  const worker = startWorker(store, task);
  const { code, stderr } = await worker.exited;
  if (code !== 0) throw new Error(`worker exited with ${code}: ${stderr}`);
  return worker.lines;
}

/** Runs workers side by side to completion; rejects (after all have exited) when any failed. */
export async function runWorkers(store: WorkerStoreSpec, tasks: WorkerTask[]): Promise<Record<string, unknown>[][]> {
  const results = await Promise.allSettled(tasks.map((task) => runWorker(store, task)));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<Record<string, unknown>[]>).value);
}

/** Resolves once the worker has printed at least `count` lines (or exited). */
export async function waitForLines(worker: Worker, count: number): Promise<void> {
  while (worker.lines.length < count && worker.child.exitCode === null && worker.child.signalCode === null) {
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}
