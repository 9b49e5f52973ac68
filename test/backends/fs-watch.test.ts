// store.watch() on the filesystem, where the backend's own means show: with
// the directory watch refused, or silent (a network filesystem written from
// another machine), the poll still delivers every step and the delete; and
// the watch wakes for steps, not for the session's meta being rewritten.

import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, type FsLayer, type StepRecord, type StepWatch, type Store } from 'stepstore';
import { nodeFs } from '../../src/backends/fs/durable.js';
import { makeTempDir, quietLogger } from '../helpers/fs-harness.js';
import { userMessage } from '../conformance/fixture.js';

let base = '';
const stores: Store[] = [];

async function open(layer?: FsLayer): Promise<Store> {
  const store = await openStore({ dir: `${base}/sessions`, logger: quietLogger, ...(layer === undefined ? {} : { fs: layer }) });
  stores.push(store);
  return store;
}

beforeEach(async () => {
  base = await makeTempDir('watch');
});

afterEach(async () => {
  await Promise.all(stores.splice(0).map((store) => store.close()));
  await fs.promises.rm(base, { recursive: true, force: true });
});

/** Watches only directories other than session ones (the root's own index keeps its watch). */
function layerWith(sessionWatch: 'refused' | 'silent'): FsLayer {
  return {
    ...nodeFs,
    watch: (path, onName, onError) => {
      if (!path.endsWith('_1')) return nodeFs.watch(path, onName, onError);
      if (sessionWatch === 'refused') throw new Error('no watching here');
      return { close() {} };
    },
  };
}

function follow(watch: StepWatch): { records: StepRecord[]; arrived: number[]; done: Promise<void> } {
  const records: StepRecord[] = [];
  const arrived: number[] = [];
  const done = (async () => {
    for await (const record of watch) {
      records.push(record);
      arrived.push(performance.now());
    }
  })();
  return { records, arrived, done };
}

async function until(what: string, test: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(5);
  }
}

describe('watching on the filesystem', () => {
  for (const kind of ['refused', 'silent'] as const) {
    it(`with the session directory's watch ${kind}, polls: every step arrives, a tenth of a second after it landed, and the delete ends it`, async () => {
      const watcher = await open(layerWith(kind));
      const writer = await open();
      const handle = await writer.createSession('crab', 'watch');
      expect(handle).toBe('crab_watch_1');
      const watch = await watcher.watch(handle);
      const { records, arrived, done } = follow(watch);
      await sleep(20);
      const latencies: number[] = [];
      for (let i = 0; i < 4; i++) {
        const sent = performance.now();
        await writer.appendMessages(handle, [userMessage(`m${i}`)]);
        // A silent watch is found out by the slow poll the first time: up to a second.
        await until(`step ${i + 1} arrives`, () => records.length > i, 3000);
        latencies.push(arrived[i]! - sent);
      }
      expect(records.map((r) => r.step)).toEqual([1, 2, 3, 4]);
      for (const latency of latencies.slice(1)) expect(latency).toBeLessThan(500);
      await writer.deleteSession(handle);
      await done;
      expect(watch.ended).toBe('deleted');
    });
  }

  it('is not woken by the meta being rewritten, only by steps', async () => {
    const store = await open();
    const handle = await store.createSession('crab', 'watch');
    await store.appendMessages(handle, [userMessage('first')]);
    const watch = await store.watch(handle);
    const { records, done } = follow(watch);
    await sleep(50);
    const before = store.stats().stepsRead;
    const meta = (await store.loadSession(handle))!.meta;
    const afterLoad = store.stats().stepsRead;
    for (let i = 0; i < 5; i++) {
      await store.updateMeta(handle, { ...meta, title: `title ${i}` });
      await sleep(50);
    }
    // Past the slow poll too: it sees the directory moved, and the watch having said so.
    await sleep(1100);
    expect(store.stats().stepsRead - afterLoad).toBe(0);
    expect(afterLoad - before).toBe(1);
    await store.appendMessages(handle, [userMessage('second')]);
    await until('the step arrives', () => records.length === 1);
    expect(records[0]!.step).toBe(2);
    await store.close();
    await done;
    expect(watch.ended).toBe('closed');
  });
});
