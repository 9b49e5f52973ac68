// The fs backend's index of the root: lookups cost what one pair holds, not
// what the root holds (counted filesystem calls, roots made by hand), and stay
// exact when the watch of the root is refused or misses changes. Large
// listings answer from cached metas: a meta another stepstore replaced is read
// at once, one changed by another program after the background check, and a
// meta rewritten within one clock tick is never mistaken for the old one.

import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, type FsLayer, type Store } from 'stepstore';
import { nodeFs } from '../../src/backends/fs/durable.js';
import { makeTempDir, quietLogger } from '../helpers/fs-harness.js';
import { userMessage } from '../conformance/fixture.js';

type Counts = Record<string, number>;

/** node:fs, counting every call by name; `watch` replaced when given. */
function countingFs(watch?: FsLayer['watch']): { layer: FsLayer; counts: Counts; reset(): void } {
  const counts: Counts = {};
  const layer = {} as FsLayer;
  for (const [name, call] of Object.entries(nodeFs) as [keyof FsLayer, (...args: unknown[]) => unknown][]) {
    (layer as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
      counts[name] = (counts[name] ?? 0) + 1;
      return name === 'watch' && watch !== undefined ? (watch as (...a: unknown[]) => unknown)(...args) : call(...args);
    };
  }
  return { layer, counts, reset: () => Object.keys(counts).forEach((k) => delete counts[k]) };
}

/** A meta as createSession writes it. */
function metaText(agent: string, sender: string, at: string, title = ''): string {
  return JSON.stringify({ agent, created_by: sender, created_at: at, title, updated_at: at, message_count: 0 });
}

/** `pairs` pairs of `perPair` sessions, made by hand (as crabtalk or a restore would), all older than a minute. */
function makeRoot(root: string, pairs: number, perPair: number): void {
  fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  const base = Date.now() - 3_600_000;
  for (let p = 0; p < pairs; p++) {
    for (let seq = 1; seq <= perPair; seq++) {
      const dir = path.join(root, `bench_user-${p}_${seq}`);
      fs.mkdirSync(dir, { mode: 0o700 });
      const at = new Date(base + (p * perPair + seq) * 1000).toISOString();
      fs.writeFileSync(path.join(dir, 'meta'), metaText('bench', `user-${p}`, at), { mode: 0o600 });
    }
  }
}

/** Replaces a meta the way crabtalk does (temp file, rename), with a new updated_at and title. */
function plainMetaWrite(root: string, handle: string, title: string): void {
  const file = path.join(root, handle, 'meta');
  const meta = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  Object.assign(meta, { title, updated_at: new Date().toISOString() });
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(meta), { mode: 0o600 });
  fs.renameSync(`${file}.tmp`, file);
}

let base = '';
const stores: Store[] = [];

beforeEach(async () => {
  base = await makeTempDir('root-index');
});

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  await fs.promises.rm(base, { recursive: true, force: true });
});

async function open(root: string, layer: FsLayer = nodeFs, logger: { warn(message: string): void } = quietLogger): Promise<Store> {
  const store = await openStore({ dir: root, durability: 'none', fs: layer, logger });
  stores.push(store);
  return store;
}

describe('the root index', () => {
  it('find, pair list and create make the same filesystem calls in a root of 6,000 sessions as in one of 60', async () => {
    const work: Counts[] = [];
    for (const pairs of [6, 600]) {
      const root = path.join(base, `r${pairs}`);
      makeRoot(root, pairs, 10);
      const { layer, counts, reset } = countingFs();
      const store = await open(root, layer);
      expect(await store.findLatestSession('bench', 'user-0')).toBe('bench_user-0_10'); // the first look lists the root
      reset();
      expect(await store.findLatestSession('bench', 'user-3')).toBe('bench_user-3_10');
      expect((await store.listSessions({ agent: 'bench', createdBy: 'user-4' })).map((s) => s.handle)).toHaveLength(10);
      expect(await store.createSession('bench', 'user-5')).toBe('bench_user-5_11');
      expect(await store.findLatestSession('bench', 'user-5')).toBe('bench_user-5_11');
      work.push({ ...counts });
    }
    expect(work[1]).toEqual(work[0]);
    const calls = Object.values(work[0]!).reduce((a, b) => a + b, 0);
    expect(calls).toBeLessThan(80);
    // No listing of the root after the first look.
    expect(work[0]!.opendir ?? 0).toBe(0);
    expect(work[0]!.readdir ?? 0).toBe(0);
    expect(work[0]!.readdirTyped ?? 0).toBe(0);
  });

  it('reads the root once, not on every lookup, while nothing changes', async () => {
    const root = path.join(base, 'r');
    makeRoot(root, 50, 2);
    const { layer, counts } = countingFs();
    const store = await open(root, layer);
    for (let i = 0; i < 50; i++) expect(await store.findLatestSession('bench', `user-${i}`)).toBe(`bench_user-${i}_2`);
    await store.listSessions({ agent: 'bench', createdBy: 'user-7' });
    expect(counts.opendir).toBe(1);
    expect(counts.readdir ?? 0).toBe(0);
  });

  for (const [name, watch] of [
    ['refused (the platform cannot watch)', () => {
      throw Object.assign(new Error('ENOSPC: inotify watch limit reached'), { code: 'ENOSPC' });
    }],
    ['silent (it misses every change, as on a network filesystem)', () => ({ close() {} })],
  ] as [string, FsLayer['watch']][]) {
    it(`stays exact when the watch of the root is ${name}: a new listing whenever the root changed`, async () => {
      const root = path.join(base, 'r');
      makeRoot(root, 20, 3);
      const warnings: string[] = [];
      const { layer } = countingFs(watch);
      const store = await open(root, layer, { warn: (m: string) => void warnings.push(m) });
      const other = await open(root);
      expect(await store.findLatestSession('bench', 'user-1')).toBe('bench_user-1_3');
      // Creates and deletes in the same clock tick as the last look, one after another.
      for (let i = 0; i < 60; i++) {
        const made = await other.createSession('bench', 'user-1');
        expect(await store.findLatestSession('bench', 'user-1')).toBe(made);
        if (i % 3 === 0) {
          await other.deleteSession(made);
          expect(await store.findLatestSession('bench', 'user-1')).not.toBe(made);
        }
        fs.mkdirSync(path.join(root, `bench_user-2_${100 + i}`));
        fs.writeFileSync(path.join(root, `bench_user-2_${100 + i}`, 'meta'), metaText('bench', 'user-2', new Date().toISOString()));
        expect(await store.findLatestSession('bench', 'user-2')).toBe(`bench_user-2_${100 + i}`);
      }
      expect(warnings.length).toBeGreaterThan(0);
    });
  }
});

describe('large listings', () => {
  const SESSIONS = 1_200; // above the size up to which a listing checks every meta

  it('show a meta another store replaced at once, one another program replaced after the background check', async () => {
    const root = path.join(base, 'r');
    makeRoot(root, SESSIONS / 10, 10);
    await sleep(100); // metas younger than a clock tick or so are read, never trusted
    const { layer, counts, reset } = countingFs();
    const store = await open(root, layer);
    const first = await store.listSessions({ limit: 3 });
    expect(first.map((s) => s.handle)).toEqual(['bench_user-119_10', 'bench_user-119_9', 'bench_user-119_8']);
    reset();
    const again = await store.listSessions({ limit: 3 });
    expect(again.map((s) => s.handle)).toEqual(first.map((s) => s.handle));
    // Answered from what it knew: only the three it returns were read.
    expect(counts.openSync).toBeLessThanOrEqual(3);

    const other = await open(root);
    await other.appendMessages('bench_user-5_2', [userMessage('back again')]);
    await other.close(); // its meta bump is written now
    expect((await store.listSessions({ limit: 1 }))[0]).toMatchObject({ handle: 'bench_user-5_2', meta: { message_count: 1 } });

    plainMetaWrite(root, 'bench_user-9_4', 'edited by another program');
    let seen = -1;
    for (let call = 0; call < 40 && seen < 0; call++) {
      const [top] = await store.listSessions({ limit: 1 });
      if (top!.handle === 'bench_user-9_4') seen = call;
      else await sleep(50);
    }
    expect(seen).toBeGreaterThanOrEqual(0);
    expect((await store.listSessions({ limit: 1 }))[0]!.meta.title).toBe('edited by another program');
    // A pair's listing (small) checks every meta: it sees such a change at once.
    plainMetaWrite(root, 'bench_user-20_1', 'edited again');
    const pair = await store.listSessions({ agent: 'bench', createdBy: 'user-20' });
    expect(pair[0]).toMatchObject({ handle: 'bench_user-20_1', meta: { title: 'edited again' } });
  });

  it('never mistake a meta rewritten in place, same size, within one clock tick, for the one they read', async () => {
    const root = path.join(base, 'r');
    makeRoot(root, 2, 3);
    await sleep(100);
    const store = await open(root);
    const file = path.join(root, 'bench_user-1_2', 'meta');
    const other = JSON.parse(fs.readFileSync(path.join(root, 'bench_user-1_3', 'meta'), 'utf8')) as { updated_at: string };
    const pivot = Date.parse(other.updated_at);
    for (let round = 0; round < 30; round++) {
      // In place: same inode, same size; updated_at before or after the pair's newest, in turn.
      const newer = round % 2 === 0;
      const at = new Date(pivot + (newer ? 3_600_000 : -3_600_000)).toISOString();
      fs.writeFileSync(file, metaText('bench', 'user-1', at));
      const [first] = await store.listSessions({ agent: 'bench', createdBy: 'user-1', limit: 1 });
      expect(first!.handle).toBe(newer ? 'bench_user-1_2' : 'bench_user-1_3');
      if (round % 5 === 4) await sleep(120); // and now and then long enough for the cache to trust what it read
    }
  });
});
