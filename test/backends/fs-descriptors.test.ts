// Descriptor back-pressure in the fs backend: a process whose descriptor
// table is nearly full (`ulimit -n 64`) runs 300 appends and 300 loads on one
// store at once. They queue for descriptors rather than fail with EMFILE, and
// every step lands exactly once. In process, through an injected FsLayer: a
// small descriptor table (EMFILE past a cap) is waited out the same way, meta
// bumps included (close() drops none), and an EMFILE that never clears fails
// every operation with IO_ERROR, promptly.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { StepStoreError, openStore, type FsLayer, type Store } from 'stepstore';
import { nodeFs } from '../../src/backends/fs/durable.js';

const CHILD = fileURLToPath(new URL('./fs-descriptors.child.mjs', import.meta.url));
const PROJECT = fileURLToPath(new URL('../..', import.meta.url));

interface Outcome {
  appends: { ok: number; failed: Record<string, number> };
  loads: { ok: number; failed: Record<string, number> };
  burstMs: number;
  mismatches: string[];
  warnings: number;
  firstWarning: string | null;
}

function runChild(dir: string, sessions: number, fdLimit: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', `ulimit -n ${fdLimit} && exec "$0" "$@"`, process.execPath, CHILD, dir, String(sessions)], {
      cwd: PROJECT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

describe('fs backend under a low descriptor limit', () => {
  it('300 appends and 300 loads at once under ulimit -n 64 all succeed, and every step is stored once', async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'stepstore-fds-'));
    dirs.push(base);
    const { code, stdout, stderr } = await runChild(path.join(base, 'sessions'), 300, 64);
    expect(code, stderr).toBe(0);
    const outcome = JSON.parse(stdout.trim().split('\n').at(-1)!) as Outcome;
    expect({ appends: outcome.appends, loads: outcome.loads }).toEqual({
      appends: { ok: 300, failed: {} },
      loads: { ok: 300, failed: {} },
    });
    expect(outcome.mismatches).toEqual([]);
    expect(outcome.warnings, outcome.firstWarning ?? '').toBe(0);
  });
});

const { O_CREAT, O_DIRECTORY } = fs.constants;
const msg = (text: string) => ({ message: { role: 'user', content: [{ type: 'text', text }] } });

function emfile(path: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`EMFILE: too many open files, open '${path}'`);
  err.code = 'EMFILE';
  return err;
}

/** node:fs, where openSync fails with EMFILE while `state.cap` descriptors it opened are open, or whenever `refuse` says so. */
function limitedFs(cap: number, refuse: (flags: number) => boolean = () => false) {
  const state = { open: 0, refused: 0, cap };
  const layer: FsLayer = {
    ...nodeFs,
    openSync(path, flags, mode) {
      if (state.open >= state.cap || refuse(flags)) {
        state.refused += 1;
        throw emfile(path);
      }
      const fd = nodeFs.openSync(path, flags, mode);
      state.open += 1;
      return fd;
    },
    closeSync(fd) {
      state.open -= 1;
      nodeFs.closeSync(fd);
    },
  };
  return { layer, state };
}

async function seeded(store: Store, count: number): Promise<string[]> {
  const handles: string[] = [];
  for (let i = 0; i < count; i++) {
    const handle = await store.createSession('crab', 'tg:1');
    await store.appendMessages(handle, [msg(`${i}:seed`)]);
    handles.push(handle);
  }
  return handles;
}

describe('fs backend with a small descriptor table (in process)', () => {
  it('appends and loads queue for descriptors and retry after EMFILE: all succeed, each step stored once', async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'stepstore-fds-'));
    dirs.push(base);
    const { layer, state } = limitedFs(8);
    const warnings: string[] = [];
    const store = await openStore({ dir: path.join(base, 'sessions'), fs: layer, logger: { warn: (message: string) => void warnings.push(message) } });
    const handles = await seeded(store, 100);
    const batchOf = (i: number) => Array.from({ length: i % 4 === 0 ? 5 : 1 }, (_, k) => msg(`${i}:new${k}`));
    const results = await Promise.allSettled(
      handles.flatMap((handle, i) => [store.appendMessages(handle, batchOf(i)), store.loadSession(handle)]),
    );
    expect(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
    expect(state.refused).toBeGreaterThan(0);
    await store.close();
    // No meta write gave up on the shortage, not even at close.
    expect(warnings).toEqual([]);
    const check = await openStore({ dir: path.join(base, 'sessions'), logger: { warn() {} } });
    for (const [i, handle] of handles.entries()) {
      const snapshot = await check.loadSession(handle);
      expect(snapshot?.history).toEqual([msg(`${i}:seed`), ...batchOf(i)]);
      expect(snapshot?.meta.message_count).toBe(1 + batchOf(i).length);
    }
    await check.close();
  });

  it('close() writes every queued bump when meta writes meet EMFILE: they wait their turn, none is dropped', async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'stepstore-fds-'));
    dirs.push(base);
    const root = path.join(base, 'sessions');
    const seeding = await openStore({ dir: root, logger: { warn() {} } });
    const handles = await seeded(seeding, 20);
    await seeding.close();
    const { layer, state } = limitedFs(Number.POSITIVE_INFINITY);
    const warnings: string[] = [];
    const store = await openStore({ dir: root, fs: layer, logger: { warn: (message: string) => void warnings.push(message) } });
    // Another process holds every meta lock, so the timer writes none of the bumps: all are queued at close.
    const locks = handles.map((handle) => path.join(root, handle, '.meta.lock'));
    for (const lock of locks) fs.writeFileSync(lock, '', { flag: 'wx' });
    await Promise.all(handles.map((handle, i) => store.appendMessages(handle, [msg(`${i}:new`)])));
    for (const lock of locks) fs.rmSync(lock);
    // Room for one descriptor: while one meta write syncs its directory, the opens of the others fail with EMFILE.
    state.cap = 1;
    await store.close();
    expect(state.refused).toBeGreaterThan(0);
    expect(warnings).toEqual([]);
    const check = await openStore({ dir: root, logger: { warn() {} } });
    expect(await Promise.all(handles.map(async (handle) => (await check.loadSession(handle))?.meta.message_count))).toEqual(handles.map(() => 2));
    await check.close();
  });

  it('an EMFILE that never clears fails every concurrent append and load with IO_ERROR at once, and the store works once it clears', async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'stepstore-fds-'));
    dirs.push(base);
    let refusing = false;
    // Session directories still open, so appends hold descriptors across awaits while every file open fails.
    const { layer } = limitedFs(Number.POSITIVE_INFINITY, (flags) => refusing && ((flags & O_CREAT) !== 0 || (flags & O_DIRECTORY) === 0));
    const store = await openStore({ dir: path.join(base, 'sessions'), fs: layer, logger: { warn() {} } });
    const handles = await seeded(store, 50);
    refusing = true;
    const started = performance.now();
    const results = await Promise.allSettled(handles.flatMap((handle) => [store.appendMessages(handle, [msg('lost')]), store.loadSession(handle)]));
    const elapsed = performance.now() - started;
    expect(results.map((r) => (r.status === 'rejected' && r.reason instanceof StepStoreError ? r.reason.code : r.status))).toEqual(
      handles.flatMap(() => ['IO_ERROR', 'IO_ERROR']),
    );
    // Well under the 10 s stall bound: they failed at once, none waited out the watchdog.
    expect(elapsed).toBeLessThan(5000);
    refusing = false;
    for (const [i, handle] of handles.entries()) {
      expect(await store.appendMessages(handle, [msg('after')])).toHaveLength(1);
      expect((await store.loadSession(handle))?.history).toEqual([msg(`${i}:seed`), msg('after')]);
    }
    await store.close();
  });
});
