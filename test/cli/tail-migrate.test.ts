// `stepstore tail` (and -f following steps another process appends, on disk
// and on Redis) and `stepstore migrate` (directory to directory and to and
// from Redis, idempotent), plus the reading commands on Redis.

import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeWithRedis } from '../helpers/redis-harness.js';
import { CLI, REPO, cliFixture, parseJson, redisUrl, run, seedConversation, textMessage } from './helpers.js';

interface Running {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
  /** Resolves once stdout satisfies `test`; rejects after `ms`. */
  waitFor(test: (stdout: string) => boolean, ms?: number): Promise<void>;
}

function start(args: string[]): Running {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    async waitFor(test, ms = 10_000) {
      const deadline = Date.now() + ms;
      while (!test(out)) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`timed out; stdout:\n${out}\nstderr:\n${err}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

/** Appends one message from another process, as an agent runtime would. */
async function appendElsewhere(store: { kind: 'fs'; dir: string } | { kind: 'redis'; prefix: string }, handle: string, content: string): Promise<void> {
  const open =
    store.kind === 'fs'
      ? `const { openStore } = await import('stepstore'); const s = await openStore({ dir: ${JSON.stringify(store.dir)} });`
      : `const { openRedisStore } = await import('stepstore/redis'); const s = await openRedisStore({ url: ${JSON.stringify(redisUrl)}, prefix: ${JSON.stringify(store.prefix)} });`;
  const script = `${open} await s.appendMessages(${JSON.stringify(handle)}, [${JSON.stringify(textMessage('user', content))}]); await s.close();`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`appending process failed: ${err}`);
}

const stepsOf = (jsonl: string) => jsonl.trimEnd().split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { step: number }).step);

describe('tail on a directory', () => {
  const t = cliFixture('tail', { seed: true });

  it('prints the last steps, numbered, and -n chooses how many', async () => {
    const result = await run(['--dir', t.root, 'tail', t.handle, '-n', '2']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/#5 ══ compacted: .*\n#6 assistant · agent forecaster\n  Tomorrow: rain.\n$/);
    expect(result.stdout).not.toContain('#4');
    expect(stepsOf((await run(['--dir', t.root, 'tail', t.handle, '--json'])).stdout)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('follows with -f: a step appended by another process is printed, and Ctrl-C ends it with exit 0', async () => {
    // A poll interval far longer than the test: only the directory watch can deliver the step in time.
    const tail = start(['--dir', t.root, 'tail', '-f', '--interval', '600000', t.handle, '-n', '1', '--json']);
    await tail.waitFor((out) => stepsOf(out).includes(6));
    await new Promise((r) => setTimeout(r, 100)); // the watch is set up right after the first lines
    await appendElsewhere({ kind: 'fs', dir: t.root }, t.handle, 'typed in another process');
    await tail.waitFor((out) => out.includes('typed in another process'), 5000);
    tail.child.kill('SIGINT');
    expect(await tail.exited).toBe(0);
    const lines = tail.stdout().trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.at(-1)).toEqual({ handle: t.handle, step: 7, kind: 'entry', line: textMessage('user', 'typed in another process') });
    expect(tail.stderr()).toBe('');
  });

  it('ends -f with exit 1 and one line when the session is deleted', async () => {
    const tail = start(['--dir', t.root, 'tail', '-f', '--interval', '100', t.handle]);
    await tail.waitFor((out) => out.includes('following'));
    await t.store.deleteSession(t.handle);
    expect(await tail.exited).toBe(1);
    expect(tail.stderr().trimEnd()).toBe(`stepstore: ${t.handle}: the session was deleted while following it; run "stepstore list --dir ${t.root}" to see the sessions left`);
  });

  it('migrates every session to another directory, and a second run copies nothing', async () => {
    const owl = await t.store.createSession('owl', 'web:7');
    await t.store.appendMessages(owl, [textMessage('user', 'hoot')]);
    const copy = path.join(t.base, 'copy');
    const first = await run(['--dir', t.root, 'migrate', '--to', copy, '--json']);
    expect(first.code).toBe(0);
    expect(parseJson(first)).toEqual({ from: t.root, to: copy, sessions: 2, sessions_created: 2, steps_copied: 7, archives_copied: 1 });
    const second = await run(['--dir', t.root, 'migrate', '--to', copy]);
    expect(second.stdout).toBe(
      `Migrated 2 sessions from ${t.root} to ${copy}:\n  0 new, 0 steps and 0 archives copied.\n  The target already had everything (migrate copies only what is missing).\n`,
    );
    const target = await t.stores.fs(copy);
    expect(await target.loadSession(t.handle, { withArchive: true })).toEqual(await t.store.loadSession(t.handle, { withArchive: true }));
  });

  it('refuses to migrate a store onto itself', async () => {
    const result = await run(['--dir', t.root, 'migrate', '--to', t.root]);
    expect(result.code).toBe(2);
    expect(result.stderr.trimEnd()).toBe(`stepstore: ${t.root}: the target is the store being migrated; name another directory, Redis server or --to-prefix`);
  });
});

describeWithRedis('on Redis', () => {
  const t = cliFixture('tail', { backend: 'redis' });
  const redis = t.args;

  it('lists and shows sessions stored in Redis under --prefix', async () => {
    const store = await t.stores.redis(t.prefix);
    const handle = await seedConversation(store);
    const listed = await run(redis('list'));
    expect(listed.code).toBe(0);
    // crabtalk's count after the compaction: the summary and the one message after it.
    expect(listed.stdout).toMatch(new RegExp(`^${handle}\\s+crab\\s+tg:12345\\s+2\\s+less than a minute ago$`, 'm'));
    const shown = await run(redis('show', handle, '--archive'));
    expect(shown.stdout).toContain('User asked for the Lisbon weather: 19 C and sunny.');
    expect(shown.stdout).toContain('Tomorrow: rain.');
    const elsewhere = await run(['--redis', redisUrl, '--prefix', `${t.prefix}other:`, 'list', '--json']);
    expect(parseJson(elsewhere)).toEqual({ sessions: [] });
  });

  it('follows with -f by polling: a step appended by another process is printed', async () => {
    const store = await t.stores.redis(t.prefix);
    const handle = await seedConversation(store);
    const tail = start(redis('tail', '-f', '--interval', '100', handle, '-n', '1', '--json'));
    await tail.waitFor((out) => stepsOf(out).includes(6));
    await appendElsewhere({ kind: 'redis', prefix: t.prefix }, handle, 'sent through Redis');
    await tail.waitFor((out) => out.includes('sent through Redis'), 5000);
    tail.child.kill('SIGINT');
    expect(await tail.exited).toBe(0);
    expect(stepsOf(tail.stdout())).toEqual([6, 7]);
  });

  it('migrates a directory to Redis and back, identical both ways and idempotent', async () => {
    const root = path.join(t.base, 'sessions');
    const fsStore = await t.stores.fs(root);
    const handle = await seedConversation(fsStore);
    const there = await run(['--dir', root, 'migrate', '--to', redisUrl, '--to-prefix', t.prefix, '--json']);
    expect(there.code).toBe(0);
    expect(parseJson(there)).toMatchObject({ sessions: 1, sessions_created: 1, steps_copied: 6, archives_copied: 1 });
    expect(parseJson(await run(['--dir', root, 'migrate', '--to', redisUrl, '--to-prefix', t.prefix, '--json']))).toMatchObject({ sessions_created: 0, steps_copied: 0 });
    const back = path.join(t.base, 'back');
    expect((await run(redis('migrate', '--to', back))).code).toBe(0);
    const expected = await fsStore.loadSession(handle, { withArchive: true });
    expect(await (await t.stores.redis(t.prefix)).loadSession(handle, { withArchive: true })).toEqual(expected);
    expect(await (await t.stores.fs(back)).loadSession(handle, { withArchive: true })).toEqual(expected);
  });

  it('reports an unreachable server as one line naming it', async () => {
    const result = await run(['--redis', 'redis://127.0.0.1:1', 'list']);
    expect(result.code).toBe(1);
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(result.stderr.trimEnd()).toMatch(/^stepstore: redis:\/\/127\.0\.0\.1:1: cannot connect to Redis \(.*\); check that the server is running and that the URL is right$/);
  }, 15_000);
});
