// Running the built CLI as a user would: `node dist/cli/index.js ...` in a
// child process (optionally on a pseudo-terminal through util-linux `script`),
// on real temp directories, and on Redis under a unique key prefix; and
// cliFixture, the per-test set-up and clean-up every CLI test file shares.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach } from 'vitest';
import { openStore, type Store } from 'stepstore';
import { openRedisStore } from 'stepstore/redis';
import { makeTempDir, quietLogger } from '../helpers/fs-harness.js';
import { REDIS_URL, deleteKeys } from '../helpers/redis-harness.js';

export const CLI = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url));
export const REPO = fileURLToPath(new URL('../..', import.meta.url));

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** An environment without the variables that change colour or the default directory. */
function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of ['NO_COLOR', 'FORCE_COLOR', 'STEPSTORE_DIR', 'STEPSTORE_CRABTALK_MEMORY', 'CI']) delete env[key];
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

export interface RunOptions {
  input?: string;
  env?: Record<string, string | undefined>;
  cwd?: string;
}

/** Runs the CLI to completion with stdin a pipe (or /dev/null): no terminal anywhere. */
export function run(args: string[], opts: RunOptions = {}): Promise<Result> {
  return runCommand(process.execPath, [CLI, ...args], opts);
}

function runCommand(command: string, args: string[], opts: RunOptions): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: opts.cwd ?? REPO,
      env: cleanEnv(opts.env),
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}

const shellQuote = (arg: string) => `'${arg.replace(/'/g, `'\\''`)}'`;

/**
 * Runs the CLI on a pseudo-terminal (stdin, stdout and stderr all a TTY),
 * typing `input`; the output is everything the terminal showed, \r removed.
 */
export async function runOnTerminal(args: string[], input = '', env: Record<string, string | undefined> = {}): Promise<Result> {
  const command = [process.execPath, CLI, ...args].map(shellQuote).join(' ');
  const result = await runCommand('script', ['-qec', command, '/dev/null'], { input, env: { TERM: 'xterm', ...env } });
  return { ...result, stdout: result.stdout.replace(/\r/g, '') };
}

/** Stores made by a test, closed afterwards. */
export class Stores {
  readonly #opened: Store[] = [];

  async fs(dir: string): Promise<Store> {
    const store = await openStore({ dir, logger: quietLogger, durability: 'none' });
    this.#opened.push(store);
    return store;
  }

  async redis(prefix: string): Promise<Store> {
    const store = await openRedisStore({ url: REDIS_URL, prefix, logger: quietLogger });
    this.#opened.push(store);
    return store;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.#opened.splice(0).map((s) => s.close()));
  }
}

/** A fresh temp base directory and the sessions root inside it (not created). */
export async function tempRoot(label: string): Promise<{ base: string; root: string; dispose(): Promise<void> }> {
  const base = await makeTempDir(`cli-${label}`);
  return { base, root: path.join(base, 'sessions'), dispose: () => fs.promises.rm(base, { recursive: true, force: true }) };
}

/** Every file under `dir` with its content and mode, to prove that nothing changed. */
export function snapshotTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    const full = path.join(dir, rel);
    const stat = fs.lstatSync(full);
    if (stat.isDirectory()) {
      out[rel] = `dir ${(stat.mode & 0o777).toString(8)}`;
      for (const name of fs.readdirSync(full)) walk(path.join(rel, name));
    } else out[rel] = `${(stat.mode & 0o777).toString(8)} ${fs.readFileSync(full, 'utf8')}`;
  };
  if (fs.existsSync(dir)) walk('.');
  return out;
}

/** A message of one text block, as crabtalk builds user and assistant messages. */
export function textMessage(role: string, text: string) {
  return { message: { role, content: [{ type: 'text', text }] } };
}

/**
 * The session the tests mostly look at, in crabtalk's shapes: two turns with a
 * tool call, an event, the tool's result, a compaction, one turn after.
 */
export async function seedConversation(store: Store, agent = 'crab', sender = 'tg:12345'): Promise<string> {
  const handle = await store.createSession(agent, sender);
  await store.appendMessages(handle, [
    textMessage('user', 'Weather in Lisbon?'),
    {
      message: {
        role: 'assistant',
        content: [
          { type: 'text', text: 'Checking.' },
          { type: 'tool_use', id: 'c1', name: 'weather', input: { city: 'Lisbon' } },
        ],
      },
    },
  ]);
  await store.appendEvents(handle, [{ event: 'tool_start', calls: [{ id: 'c1', name: 'weather', arguments: '{}' }], ts: '2026-03-25T10:00:00Z' }]);
  await store.appendMessages(handle, [
    { message: { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'c1', name: 'weather', content: '19 C, sunny' }] } },
  ]);
  await store.compact(handle, 'User asked for the Lisbon weather: 19 C and sunny.');
  await store.appendMessages(handle, [{ agent: 'forecaster', ...textMessage('assistant', 'Tomorrow: rain.') }]);
  return handle;
}

export const redisUrl = REDIS_URL;

/** A unique key prefix per test, and its keys deleted afterwards. */
export function redisPrefix(label: string): { prefix: string; dispose(): Promise<void> } {
  const prefix = `stepstore-cli-test:${label}:${process.pid}:${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}:`;
  return { prefix, dispose: () => deleteKeys(REDIS_URL, prefix) };
}

/** What each test of a file that calls cliFixture gets afresh; read it inside tests and hooks only. */
export interface CliFixture {
  /** A fresh temp directory, removed after the test. */
  readonly base: string;
  /** `base/sessions`: the store's directory (on Redis, not created). */
  readonly root: string;
  /** Stores the test opens; all closed after it. */
  readonly stores: Stores;
  /** A store open on `root` (not on Redis). */
  readonly store: Store;
  /** The session of seedConversation (with `seed: true`). */
  readonly handle: string;
  /** A unique key prefix, its keys deleted after the test (on Redis only). */
  readonly prefix: string;
  /** The options naming the fixture's store, then `args`: `--dir root`, or `--redis URL --prefix prefix`. */
  args(...args: string[]): string[];
  /** Runs the CLI on the fixture's store: `run(args(...args))`. */
  cli(...args: string[]): Promise<Result>;
  /** Closes the stores, so that what they held back is written, and opens `store` on `root` again. */
  reopen(): Promise<void>;
}

/**
 * Registers beforeEach/afterEach in the current suite (or file) that give
 * each test a fresh CliFixture: on a directory, a store open on `root`
 * (holding the conversation of seedConversation with `seed: true`); on Redis
 * (`backend: 'redis'`), a fresh key prefix and no store opened. Afterwards the
 * stores are closed, then the prefix's keys and the temp directory removed.
 * `label` goes into the names of the temp directory and of the prefix.
 */
export function cliFixture(label: string, { backend = 'fs', seed = false }: { backend?: 'fs' | 'redis'; seed?: boolean } = {}): CliFixture {
  let disposeKeys: (() => Promise<void>) | undefined;
  let disposeDir: (() => Promise<void>) | undefined;
  const fixture: { -readonly [K in keyof CliFixture]: CliFixture[K] } = {
    base: '',
    root: '',
    stores: new Stores(),
    store: undefined as unknown as Store,
    handle: '',
    prefix: '',
    args: (...args) => [...(backend === 'redis' ? ['--redis', REDIS_URL, '--prefix', fixture.prefix] : ['--dir', fixture.root]), ...args],
    cli: (...args) => run(fixture.args(...args)),
    async reopen() {
      await fixture.stores.closeAll();
      fixture.store = await fixture.stores.fs(fixture.root);
    },
  };

  beforeEach(async () => {
    fixture.stores = new Stores();
    ({ base: fixture.base, root: fixture.root, dispose: disposeDir } = await tempRoot(label));
    if (backend === 'redis') {
      ({ prefix: fixture.prefix, dispose: disposeKeys } = redisPrefix(label));
    } else {
      fixture.store = await fixture.stores.fs(fixture.root);
      if (seed) fixture.handle = await seedConversation(fixture.store);
    }
  });

  afterEach(async () => {
    await fixture.stores.closeAll();
    await disposeKeys?.();
    await disposeDir?.();
    disposeKeys = disposeDir = undefined;
  });

  return fixture;
}

export function parseJson(result: Result): Record<string, unknown> {
  try {
    return JSON.parse(result.stdout) as Record<string, unknown>;
  } catch {
    throw new Error(`stdout is not one JSON document (exit ${result.code}):\n${result.stdout}\nstderr:\n${result.stderr}`);
  }
}
