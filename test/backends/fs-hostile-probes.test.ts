// Filesystem probes of a hostile tester, each once a defect: planted huge
// numbers, files that are not what their name says (huge, sparse, sockets),
// metas with a "__proto__" key, locks dated in the future, the store's own
// folder swapped for a symlink after open, and a meta nobody can write in a
// process that never calls close().

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, type Store } from 'stepstore';
import { expectCode, textOf, userMessage } from '../conformance/fixture.js';
import { makeTempDir, quietLogger } from '../helpers/fs-harness.js';

let base: string;
let root: string;
let stores: Store[];
const cleanups: (() => void)[] = [];

beforeEach(async () => {
  base = await makeTempDir('hostile-probes');
  root = path.join(base, 'sessions');
  stores = [];
});

afterEach(async () => {
  await Promise.all(stores.map((store) => store.close().catch(() => undefined)));
  for (const cleanup of cleanups.splice(0)) cleanup();
  fs.rmSync(base, { recursive: true, force: true });
});

async function open(): Promise<Store> {
  const store = await openStore({ dir: root, logger: quietLogger });
  stores.push(store);
  return store;
}

const stepFile = (handle: string, step: number) => path.join(root, handle, `step-${String(step).padStart(6, '0')}`);

function plantSession(handle: string, meta: Record<string, unknown>): void {
  fs.mkdirSync(path.join(root, handle), { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(root, handle, 'meta'), JSON.stringify(meta), { mode: 0o600 });
}

const META = { agent: 'crab', created_by: 'eve', created_at: '2026-01-01T00:00:00Z', title: '', updated_at: '2026-01-01T00:00:00Z', message_count: 0 };

describe('hostile probes (fs)', () => {
  describe('numbers', () => {
    it('a planted session with a 16-digit seq past 2^53 - 1 is no session: createSession starts at 1, and its handle stays valid', async () => {
      const store = await open();
      plantSession('crab_eve_9999999999999999', META);
      const handle = await store.createSession('crab', 'eve');
      expect(handle).toBe('crab_eve_1');
      await store.appendMessages(handle, [userMessage('hi')]);
      expect((await store.loadSession(handle))!.history).toHaveLength(1);
    });

    it('with the highest seq taken, createSession fails CONFLICT at once instead of handing out a number it cannot count', async () => {
      await open();
      plantSession('crab_eve_9007199254740991', META);
      // In a child: the defect was a synchronous loop that never ended, which no test timeout interrupts.
      const script = `
        const { openStore } = await import('stepstore');
        const store = await openStore({ dir: ${JSON.stringify(root)}, logger: { warn() {} } });
        try { console.log(await store.createSession('crab', 'eve')); } catch (err) { console.log(err.code); }
        await store.close();
      `;
      const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
      expect(child.signal).toBeNull();
      expect(child.stdout.trim()).toBe('CONFLICT');
    });

    it('past a planted step-999999999999999 an append fails CONFLICT: it never gets a number load would not list', async () => {
      const store = await open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, [userMessage('one')]);
      fs.writeFileSync(path.join(root, handle, 'step-999999999999999'), JSON.stringify(userMessage('planted')), { mode: 0o600 });
      // This store's counter has not seen the plant: its next number is 2, which load lists.
      expect(await store.appendMessages(handle, [userMessage('two')])).toEqual([2]);
      // A store that counts the directory would need 10^15, which no listing counts.
      const fresh = await open();
      await expectCode(fresh.appendMessages(handle, [userMessage('three')]), 'CONFLICT');
      expect((await fresh.readSteps(handle)).map((s) => s.step)).toEqual([1, 2, 999999999999999]);
      expect(fs.readdirSync(path.join(root, handle)).filter((name) => name.startsWith('step-')).sort()).toEqual([
        'step-000001',
        'step-000002',
        'step-999999999999999',
      ]);
    });
  });

  describe('files that are not what their name says', () => {
    it('a step stretched to 2 GiB (sparse) is skipped with a diagnostic after an fstat, never read; repair reports it and goes on', async () => {
      const store = await open();
      const handle = await store.createSession('crab', 'u');
      const other = await store.createSession('crab', 'v');
      await store.appendMessages(handle, [userMessage('one'), userMessage('two'), userMessage('three')]);
      await store.appendMessages(other, [userMessage('fine')]);
      fs.truncateSync(stepFile(handle, 2), 2 ** 31);
      const snapshot = await store.loadSession(handle);
      expect(snapshot!.history.map(textOf)).toEqual(['one', 'three']);
      expect(snapshot!.diagnostics).toEqual([{ step: 2, reason: `step is ${2 ** 31} bytes, over the limit of ${4 * 1024 * 1024}` }]);
      expect((await store.readSteps(handle)).map((s) => s.step)).toEqual([1, 3]);
      const report = await store.repair({ dryRun: true });
      expect(report.unreadableSteps).toEqual([{ handle, step: 2, reason: `step is ${2 ** 31} bytes, over the limit of ${4 * 1024 * 1024}` }]);
      expect(report.sessions).toBe(2);
    });

    it('a step larger than maxStepBytes is a diagnostic', async () => {
      const store = await open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, [userMessage('one'), userMessage('two')]);
      fs.writeFileSync(stepFile(handle, 1), JSON.stringify(userMessage('x'.repeat(300))));
      const small = await openStore({ dir: root, logger: quietLogger, maxStepBytes: 200 });
      stores.push(small);
      const snapshot = await small.loadSession(handle);
      expect(snapshot!.history.map(textOf)).toEqual(['two']);
      expect(snapshot!.diagnostics[0]!.step).toBe(1);
    });

    it('a socket, a FIFO or a directory in place of a step is skipped as not a regular file', async () => {
      const store = await open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, [userMessage('one'), userMessage('two'), userMessage('three'), userMessage('four')]);
      fs.rmSync(stepFile(handle, 2));
      const server = net.createServer();
      await new Promise<void>((resolve) => server.listen(stepFile(handle, 2), resolve));
      cleanups.push(() => server.close());
      fs.rmSync(stepFile(handle, 3));
      expect(spawnSync('mkfifo', [stepFile(handle, 3)]).status).toBe(0);
      fs.rmSync(stepFile(handle, 4));
      fs.mkdirSync(stepFile(handle, 4));
      const snapshot = await store.loadSession(handle);
      expect(snapshot!.history.map(textOf)).toEqual(['one']);
      expect(snapshot!.diagnostics).toEqual([2, 3, 4].map((step) => ({ step, reason: 'step is not a regular file' })));
      expect((await store.repair({ dryRun: true })).unreadableSteps.map((s) => s.step)).toEqual([2, 3, 4]);
    });

    it('a meta stretched to 2 GiB is CORRUPT_META, skipped by list and reported by repair, which goes on', async () => {
      const store = await open();
      const handle = await store.createSession('crab', 'u');
      const other = await store.createSession('crab', 'v');
      await store.close();
      fs.truncateSync(path.join(root, handle, 'meta'), 2 ** 31);
      const reopened = await open();
      await expectCode(reopened.loadSession(handle), 'CORRUPT_META');
      expect((await reopened.listSessions()).map((s) => s.handle)).toEqual([other]);
      const report = await reopened.repair({ dryRun: true });
      expect(report.corruptMetas.map((m) => m.handle)).toEqual([handle]);
      expect(report.sessions).toBe(2);
    });

    it('an archive stretched to 2 GiB is not read: getArchive has none, repair reports it as corrupt', async () => {
      const store = await open();
      const handle = await store.createSession('crab', 'u');
      const name = await store.compact(handle, 'summary');
      fs.truncateSync(path.join(root, '.stepstore', 'archives', name), 2 ** 31);
      expect(await store.getArchive(name)).toBeNull();
      expect((await store.repair({ dryRun: true })).corruptArchives).toEqual([name]);
    });
  });

  describe('metas and locks', () => {
    it('a meta holding a "__proto__" key is decoded without prototype effects, and can be written back', async () => {
      const store = await open();
      fs.mkdirSync(path.join(root, 'crab_eve_1'), { mode: 0o700 });
      fs.writeFileSync(
        path.join(root, 'crab_eve_1', 'meta'),
        '{"agent":"crab","created_by":"eve","created_at":"2026-01-01T00:00:00Z","__proto__":{"title":"inherited","polluted":true}}',
        { mode: 0o600 },
      );
      const meta = (await store.loadSession('crab_eve_1'))!.meta;
      expect(Object.getPrototypeOf(meta)).toBe(Object.prototype);
      expect(meta.title).toBe('');
      expect('polluted' in meta).toBe(false);
      expect(Object.keys(meta)).toContain('__proto__');
      await store.updateMeta('crab_eve_1', meta);
      await store.updateMeta('crab_eve_1', { ...meta, title: 'renamed' });
      const stored = JSON.parse(fs.readFileSync(path.join(root, 'crab_eve_1', 'meta'), 'utf8')) as Record<string, unknown>;
      expect(stored.title).toBe('renamed');
      expect(Object.prototype.hasOwnProperty.call(stored, '__proto__')).toBe(true);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });

    it('a meta lock dated in the future is stale: updateMeta breaks it at once, and repair removes it', async () => {
      const store = await open();
      const handle = await store.createSession('crab', 'u');
      const lock = path.join(root, handle, '.meta.lock');
      const plant = () => {
        fs.writeFileSync(lock, '');
        const future = new Date(Date.now() + 3600_000);
        fs.utimesSync(lock, future, future);
      };
      plant();
      const meta = (await store.loadSession(handle))!.meta;
      const started = Date.now();
      await store.updateMeta(handle, { ...meta, title: 'done' });
      // Not a timing assertion: the defect waited out the 12 s lock wait and then failed.
      expect(Date.now() - started).toBeLessThan(10_000);
      expect((await store.loadSession(handle))!.meta.title).toBe('done');
      plant();
      const report = await store.repair();
      expect(report.leftoversRemoved).toContain(`${handle}/.meta.lock`);
      expect(fs.existsSync(lock)).toBe(false);
    });

    it('a process that never calls close() exits even when its meta cannot be written, after a warning', { timeout: 90_000 }, async (ctx) => {
      const store = await open();
      const handle = await store.createSession('crab', 'u');
      await store.close();
      const meta = path.join(root, handle, 'meta');
      if (spawnSync('chattr', ['+i', meta]).status !== 0) {
        ctx.skip(); // needs root and a filesystem with the immutable flag
        return;
      }
      cleanups.push(() => spawnSync('chattr', ['-i', meta]));
      const script = `
        const { openStore } = await import('stepstore');
        const store = await openStore({ dir: ${JSON.stringify(root)}, logger: { warn: (m) => console.error('warn:', m) } });
        console.log(JSON.stringify(await store.appendMessages(${JSON.stringify(handle)}, ${JSON.stringify([userMessage('hi')])})));
      `;
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          resolve(false);
        }, 60_000);
        child.on('close', () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      expect(exited, `the process did not exit within 60 s: ${stderr.slice(-500)}`).toBe(true);
      expect(stdout.trim()).toBe('[1]');
      expect(stderr).toMatch(/meta bump of crab_u_1 dropped/);
      expect(await (await open()).readSteps(handle)).toHaveLength(1);
    });
  });

  describe("the store's own folders", () => {
    it('.stepstore swapped for a symlink after the store opened is refused: nothing is written outside the root', async () => {
      const store = await open();
      const handle = await store.createSession('crab', 'u');
      await store.compact(handle, 'first');
      const outside = path.join(base, 'outside');
      fs.mkdirSync(path.join(outside, 'archives'), { recursive: true });
      fs.renameSync(path.join(root, '.stepstore'), path.join(base, 'moved-away'));
      fs.symlinkSync(outside, path.join(root, '.stepstore'));
      await expectCode(store.compact(handle, 'second'), 'UNSAFE_ROOT');
      await expectCode(store.deleteSession(handle), 'UNSAFE_ROOT');
      expect(fs.readdirSync(path.join(outside, 'archives'))).toEqual([]);
      expect(fs.readdirSync(outside).sort()).toEqual(['archives']);
      expect((await store.loadSession(handle))).not.toBeNull();
    });
  });
});
