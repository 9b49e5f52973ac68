// A handle names one conversation, on the filesystem too, when another writer
// (crabtalk reuses seqs by its own rule) deletes a session and makes a new one
// under the same name: a store's cached counter, a load in flight, a delete's
// archive removal and getArchive all stay with the conversation they began
// with. The other writer is played by plain fs calls here, and by a real child
// process where the point is a race.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, type FsLayer, type Store } from 'stepstore';
import { nodeFs } from '../../src/backends/fs/durable.js';
import { expectCode, textOf, userMessage } from '../conformance/fixture.js';
import { makeTempDir, quietLogger } from '../helpers/fs-harness.js';

let base: string;
let root: string;
let stores: Store[];

beforeEach(async () => {
  base = await makeTempDir('one-conversation');
  root = path.join(base, 'sessions');
  stores = [];
});

afterEach(async () => {
  await Promise.all(stores.map((store) => store.close()));
  fs.rmSync(base, { recursive: true, force: true });
});

async function open(layer?: FsLayer): Promise<Store> {
  const store = await openStore({ dir: root, logger: quietLogger, ...(layer === undefined ? {} : { fs: layer }) });
  stores.push(store);
  return store;
}

const metaOf = (createdAt: string, title = '') =>
  JSON.stringify({ agent: 'crab', created_by: 'u', created_at: createdAt, title, updated_at: createdAt, message_count: 0 });

/** What crabtalk does when it deletes `handle` (when still there) and starts a new conversation under the same name: another directory. */
function replaceExternally(handle: string, createdAt: string, contents: string[]): void {
  const dir = path.join(root, handle);
  if (fs.existsSync(dir)) fs.renameSync(dir, path.join(base, `gone-${Date.now()}-${Math.random()}`));
  fs.mkdirSync(dir, { mode: 0o700 });
  fs.writeFileSync(path.join(dir, 'meta'), metaOf(createdAt), { mode: 0o600 });
  contents.forEach((content, i) => {
    fs.writeFileSync(path.join(dir, `step-${String(i + 1).padStart(6, '0')}`), JSON.stringify(userMessage(content)), { mode: 0o600 });
  });
}

describe('a handle names one conversation (fs)', () => {
  it("a store's cached step counter never carries over to a new conversation under the same handle", async () => {
    const store = await open();
    const handle = await store.createSession('crab', 'u');
    for (let i = 0; i < 50; i++) await store.appendMessages(handle, [userMessage(`old ${i}`)]);
    replaceExternally(handle, '2030-01-01T00:00:00Z', ['new 1', 'new 2', 'new 3']);

    // The store last appended to the old conversation: its handle is stale, and nothing is written.
    await expectCode(store.appendMessages(handle, [userMessage('stale')]), 'SESSION_NOT_FOUND');
    expect((await store.readSteps(handle)).map((s) => s.step)).toEqual([1, 2, 3]);

    // Asked again, the store counts the new conversation's steps: the next number is 4, not 51.
    expect(await store.appendMessages(handle, [userMessage('new 4')])).toEqual([4]);
    await store.close();
    const reread = await (await open()).loadSession(handle);
    expect(reread!.history.map(textOf)).toEqual(['new 1', 'new 2', 'new 3', 'new 4']);
    expect(reread!.meta.created_at).toBe('2030-01-01T00:00:00Z');
    expect(reread!.meta.message_count).toBe(1); // the bump counted for the new conversation, not dropped
  });

  it("getArchive never serves an old conversation's summary to a new one under the same handle", async () => {
    const store = await open();
    const handle = await store.createSession('crab', 'u');
    const name = await store.compact(handle, 'the old conversation');
    expect(await store.getArchive(name)).toBe('the old conversation');
    replaceExternally(handle, '2030-01-01T00:00:00Z', ['new']);
    expect(await store.getArchive(name)).toBeNull();
    expect(await (await open()).getArchive(name)).toBeNull();
  });

  it("a delete removes only its own conversation's archives, not one compacted under the same handle meanwhile", async () => {
    const handleRef: { handle: string; made?: string } = { handle: '' };
    let writer: Store | undefined;
    // While the store deletes the old conversation (between its rename into the trash and its archive
    // removal), another writer starts a new conversation under the handle and compacts it.
    const layer: FsLayer = {
      ...nodeFs,
      removeTree: async (target) => {
        if (target.includes(`${path.sep}trash${path.sep}`) && handleRef.made === undefined) {
          replaceExternally(handleRef.handle, '2030-01-01T00:00:00Z', ['new']);
          handleRef.made = await writer!.compact(handleRef.handle, 'the new conversation');
        }
        return nodeFs.removeTree(target);
      },
    };
    const store = await open(layer);
    writer = await open();
    handleRef.handle = await store.createSession('crab', 'u');
    const old = await store.compact(handleRef.handle, 'the old conversation');
    expect(await store.deleteSession(handleRef.handle)).toBe(true);
    expect(handleRef.made).toBeDefined();
    expect(handleRef.made).not.toBe(old);
    expect(await writer.getArchive(handleRef.made!)).toBe('the new conversation');
    const resumed = await writer.loadSession(handleRef.handle, { withArchive: true });
    expect(resumed!.archiveContent).toBe('the new conversation');
    expect(await writer.getArchive(old)).toBeNull();
  });

  it('a load racing another process that replaces the session never mixes two conversations', { timeout: 120_000 }, async () => {
    const store = await open();
    const handle = await store.createSession('crab', 'u');
    // Two complete conversations to swap in, each step tagged with its conversation.
    const templates = ['A', 'B'].map((tag) => {
      const dir = path.join(base, `template-${tag}`);
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'meta'), metaOf(tag === 'A' ? '2030-01-01T00:00:00Z' : '2031-01-01T00:00:00Z', tag));
      for (let i = 1; i <= 3000; i++) fs.writeFileSync(path.join(dir, `step-${String(i).padStart(6, '0')}`), JSON.stringify(userMessage(`${tag}${i}`)));
      return dir;
    });
    // The other process: every 20-100 ms it links a fresh copy of the other template into place (a
    // new directory, as a delete and re-create make), until the parent tells it to stop.
    const script = `
      const fs = require('node:fs'), path = require('node:path');
      const [root, handle, base, a, b] = process.argv.slice(1);
      const target = path.join(root, handle);
      let round = 0, stop = false;
      process.stdin.on('data', () => (stop = true)).resume();
      (function swap() {
        if (stop) process.exit(0);
        const from = round % 2 === 0 ? a : b;
        const fresh = path.join(base, 'fresh-' + round);
        fs.mkdirSync(fresh, { mode: 0o700 });
        for (const name of fs.readdirSync(from)) fs.linkSync(path.join(from, name), path.join(fresh, name));
        fs.renameSync(target, path.join(base, 'old-' + round));
        fs.renameSync(fresh, target);
        round += 1;
        console.log('swapped');
        setTimeout(swap, 20 + Math.random() * 80);
      })();
    `;
    const child = spawn(process.execPath, ['-e', script, root, handle, base, ...templates], { stdio: ['pipe', 'pipe', 'inherit'] });
    let rounds = 0;
    child.stdout.on('data', (chunk: Buffer) => (rounds += chunk.toString().split('\n').length - 1));
    const exited = new Promise((resolve) => child.on('close', resolve));

    let loads = 0;
    let whole = 0;
    const deadline = Date.now() + 60_000;
    try {
      // Until the other process has replaced the session 30 times (or a minute has passed).
      while (rounds < 30 && Date.now() < deadline) {
        let snapshot;
        try {
          snapshot = await store.loadSession(handle);
        } catch (err) {
          // Replaced on every one of its tries: refused, never mixed.
          expect((err as { code?: string }).code).toBe('IO_ERROR');
          continue;
        }
        loads += 1;
        if (snapshot === null) continue; // between the two renames there is no session
        const tag = snapshot.meta.title;
        if (tag === '') continue; // the store's own first conversation
        const foreign = snapshot.history.filter((entry) => !textOf(entry).startsWith(tag));
        expect(foreign.length, `a load under meta ${tag} held ${foreign.length} steps of the other conversation`).toBe(0);
        expect(snapshot.history).toHaveLength(3000);
        whole += 1;
      }
    } finally {
      child.stdin.end('stop');
      await exited;
    }
    expect(rounds).toBeGreaterThanOrEqual(30);
    expect(loads).toBeGreaterThan(0);
    expect(whole).toBeGreaterThan(0);
  });
});
