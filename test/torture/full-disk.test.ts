// Part 4 of the torture suite: a real full disk. A 1 MiB tmpfs is filled with
// appends of steps of a few KB (and a meta update too large to fit) until the
// disk refuses. Invariant: each call either lands whole or fails IO_ERROR;
// nothing truncated becomes visible (steps and meta); after a session is
// deleted to free space the store appends again and its counters come out
// exact. Needs root (mount -t tmpfs); where mounting is refused, the part
// says so in one line and is skipped.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StepStoreError, openStore, type Durability, type HistoryEntry, type Store } from 'stepstore';
import { dropDir, scratchDir } from './lib/scratch.js';
import { iterations, report } from './summary.js';
import { doneEvent, liveCount, userMessage } from '../conformance/fixture.js';

const SIZE = '1m';

let base: string;
let mountable: string | null = null;

function mount(dir: string): string | null {
  const result = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${SIZE},mode=0700`, 'tmpfs', dir], { encoding: 'utf8' });
  return result.status === 0 ? null : (result.stderr || result.error?.message || `exit ${result.status}`).trim();
}

function umount(dir: string): void {
  spawnSync('umount', [dir]);
}

beforeAll(() => {
  base = scratchDir('full-disk');
  const probe = path.join(base, 'probe');
  fs.mkdirSync(probe);
  const refused = mount(probe);
  if (refused === null) umount(probe);
  else mountable = refused;
});

afterAll(() => {
  if (base !== undefined) dropDir(base);
});

/** A deterministic generator, so a failing iteration can be replayed. */
function generator(seed: number): (n: number) => number {
  let state = seed >>> 0 || 1;
  return (n) => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) % n;
  };
}

const message = (tag: string, bytes: number): HistoryEntry => userMessage(`${tag}:${'x'.repeat(bytes)}`);
/** A crabtalk event padded to 6 KB (extra fields are kept, and ignored by crabtalk). */
const paddedEvent = { ...doneEvent(), pad: 'p'.repeat(6000) };

interface Tally {
  /** Warnings the store logged (meta bumps it could not write while the disk was full). */
  warnings: number;
  appendsTried: number;
  appendsFailed: number;
  otherTried: number;
  otherFailed: number;
  lost: number;
  problems: string[];
}

function isIoError(err: unknown): boolean {
  return err instanceof StepStoreError && err.code === 'IO_ERROR';
}

/** The raw directory of a session: each step file must be an acknowledged one, whole; the meta whole. */
function checkDisk(root: string, handle: string, acked: Map<number, string>, tally: Tally, where: string): void {
  const dir = path.join(root, handle);
  const names = fs.readdirSync(dir);
  const steps = names.filter((n) => n.startsWith('step-'));
  for (const name of steps) {
    const n = Number(name.slice(5));
    const expected = acked.get(n);
    const text = fs.readFileSync(path.join(dir, name), 'utf8');
    if (expected === undefined) tally.problems.push(`${where}: ${handle}/${name} is visible but was never acknowledged (${text.length} bytes)`);
    else if (text !== expected) tally.problems.push(`${where}: ${handle}/${name} is truncated or wrong (${text.length} of ${expected.length} bytes)`);
  }
  for (const n of acked.keys()) {
    if (!steps.includes(`step-${String(n).padStart(6, '0')}`)) {
      tally.problems.push(`${where}: acknowledged step ${n} of ${handle} is gone`);
      tally.lost += 1;
    }
  }
  // Temp files of refused writes are gone too: on a full disk they would hold the space.
  const leftovers = names.filter((n) => n.startsWith('.tmp-') || /^meta\.[0-9a-f]+$/.test(n));
  if (leftovers.length > 0) tally.problems.push(`${where}: ${handle} keeps temp files of refused writes: ${leftovers.join(', ')}`);
  const meta = fs.readFileSync(path.join(dir, 'meta'), 'utf8');
  try {
    JSON.parse(meta);
  } catch {
    tally.problems.push(`${where}: meta of ${handle} is torn (${meta.length} bytes)`);
  }
}

async function oneIteration(i: number, durability: Durability, tally: Tally): Promise<void> {
  const mnt = path.join(base, `mnt-${i}`);
  fs.mkdirSync(mnt);
  const refused = mount(mnt);
  if (refused !== null) throw new Error(`mount failed after the probe worked: ${refused}`);
  const warnings: string[] = [];
  let store: Store | null = null;
  try {
    const root = path.join(mnt, 'sessions');
    store = await openStore({ dir: root, durability, logger: { warn: (m) => void warnings.push(m) } });
    const rand = generator(i + 1);
    const where = `iteration ${i} (${durability})`;
    const filler = await store.createSession('crab', 'filler');
    const target = await store.createSession('crab', 'target');
    const acked = new Map<string, Map<number, string>>([
      [filler, new Map()],
      [target, new Map()],
    ]);
    const messages = new Map<string, HistoryEntry[]>([
      [filler, []],
      [target, []],
    ]);
    const append = async (handle: string, batch: HistoryEntry[]): Promise<boolean> => {
      tally.appendsTried += 1;
      try {
        const numbers = await store!.appendMessages(handle, batch);
        numbers.forEach((n, k) => acked.get(handle)!.set(n, JSON.stringify(batch[k])));
        messages.get(handle)!.push(...batch);
        return true;
      } catch (err) {
        tally.appendsFailed += 1;
        if (!isIoError(err)) tally.problems.push(`${where}: a failed append rejected with ${String(err)}, not IO_ERROR`);
        return false;
      }
    };

    // Fill the disk: until five appends in a row are refused.
    let refusedInARow = 0;
    for (let n = 0; refusedInARow < 5 && n < 2000; n++) {
      const handle = n % 3 === 0 ? target : filler;
      const batch = Array.from({ length: 1 + rand(4) }, (_, k) => message(`${n}.${k}`, 1000 + rand(7000)));
      refusedInARow = (await append(handle, batch)) ? 0 : refusedInARow + 1;
    }
    expect(tally.appendsFailed, `${where}: the disk never filled`).toBeGreaterThan(0);

    // Other writes on the full disk: whole or IO_ERROR, and nothing torn.
    const before = (await store.loadSession(target))!.meta;
    const others: [string, () => Promise<unknown>][] = [
      ['updateMeta with a 300 KB title', () => store!.updateMeta(target, { ...before, title: 't'.repeat(300_000) })],
      ['compact', () => store!.compact(target, 's'.repeat(20_000))],
      ['createSession', () => store!.createSession('crab', 'newcomer')],
      ['appendEvents', () => store!.appendEvents(target, [paddedEvent])],
    ];
    for (const [what, call] of others) {
      tally.otherTried += 1;
      try {
        const result = await call();
        if (what === 'updateMeta with a 300 KB title') {
          expect((await store.loadSession(target))!.meta.title.length, `${where}: ${what}`).toBe(300_000);
        }
        if (what === 'compact') {
          expect(await store.getArchive(result as string), `${where}: ${what}`).toBe('s'.repeat(20_000));
          acked.get(target)!.set((await store.readSteps(target)).at(-1)!.step, JSON.stringify((await store.readSteps(target)).at(-1)!.line));
          messages.set(target, []);
        }
        if (what === 'appendEvents') {
          const [n] = result as number[];
          acked.get(target)!.set(n!, JSON.stringify(paddedEvent));
        }
        if (what === 'createSession') acked.set(result as string, new Map());
      } catch (err) {
        tally.otherFailed += 1;
        if (!isIoError(err)) tally.problems.push(`${where}: ${what} rejected with ${String(err)}, not IO_ERROR`);
      }
    }
    for (const [handle, steps] of acked) checkDisk(root, handle, steps, tally, `${where}, disk full`);
    // Through the store: nothing skipped, history exactly the acknowledged messages.
    const snapshot = await store.loadSession(target);
    expect(snapshot?.diagnostics, where).toEqual([]);
    expect(snapshot?.history, where).toEqual(messages.get(target));
    const meta = snapshot!.meta;
    expect(meta.title === before.title || meta.title.length === 300_000, `${where}: meta title is whole`).toBe(true);

    // Free space by deleting the filler; the store goes on.
    expect(await store.deleteSession(filler), `${where}: deleting to free space`).toBe(true);
    acked.delete(filler);
    const tail = message('after freeing space', 100);
    const [n] = await store.appendMessages(target, [tail]);
    acked.get(target)!.set(n!, JSON.stringify(tail));
    messages.get(target)!.push(tail);
    expect((await store.loadSession(target))?.history.at(-1), where).toEqual(tail);
    await store.close();
    store = null;
    for (const [handle, steps] of acked) checkDisk(root, handle, steps, tally, `${where}, after freeing`);
    tally.warnings += warnings.length;
    // Meta bumps refused while the disk was full are written once there is room: counters exact.
    const reopened = await openStore({ dir: root, logger: { warn() {} } });
    try {
      for (const handle of acked.keys()) {
        const steps = await reopened.readSteps(handle);
        const entries = liveCount(steps);
        const count = (await reopened.loadSession(handle))!.meta.message_count;
        if (count !== entries) tally.problems.push(`${where}: message_count of ${handle} is ${count}, its live conversation holds ${entries} messages`);
      }
    } finally {
      await reopened.close();
    }
  } finally {
    if (store !== null) await store.close().catch(() => undefined);
    umount(mnt);
    fs.rmdirSync(mnt);
  }
}

describe('4. full disk', () => {
  it('on a full 1 MiB tmpfs every write lands whole or fails IO_ERROR, nothing truncated is visible, and the store goes on once space is freed', async (ctx) => {
    if (mountable !== null) {
      console.log(`torture 4. full disk: skipped, this machine does not let the tests mount a tmpfs (${mountable})`);
      report({ part: '4. full disk', invariant: 'skipped', tried: 'nothing', iterations: 0, faults: 0, lost: 0, notes: `skipped: mount -t tmpfs refused (${mountable})` });
      ctx.skip();
      return;
    }
    const tally: Tally = { warnings: 0, appendsTried: 0, appendsFailed: 0, otherTried: 0, otherFailed: 0, lost: 0, problems: [] };
    const count = iterations(3, 30);
    const levels: Durability[] = ['full', 'file', 'none'];
    for (let i = 0; i < count; i++) await oneIteration(i, levels[i % levels.length]!, tally);
    report({
      part: '4. full disk',
      invariant: 'on a full disk each write lands whole or fails IO_ERROR; nothing truncated is visible (meta included); after freeing space the store continues with exact counters',
      tried: `${count} fills of a 1 MiB tmpfs, ${tally.appendsTried} appends (${tally.appendsFailed} refused), ${tally.otherTried} other writes on the full disk (${tally.otherFailed} refused)`,
      iterations: count,
      faults: tally.appendsFailed + tally.otherFailed,
      lost: tally.lost,
      notes:
        `${tally.warnings} warnings about meta writes refused by the full disk` +
        (tally.problems.length > 0 ? `; ${tally.problems.length} problems` : ''),
    });
    expect(tally.problems).toEqual([]);
    expect(tally.lost).toBe(0);
  });
});
