// An own redis-server for the tests that kill, restart or reconfigure a
// server: a free loopback port, its own temp dir, `appendonly yes`,
// `appendfsync always` and no RDB snapshots, so every write it acknowledges
// is in its AOF. Stopped by pid (SIGKILL or SIGTERM), restarted on the same
// dir and port.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createClient } from 'redis';

const BINARY = process.env.REDIS_SERVER_BIN ?? 'redis-server';

/** The redis-server binary's version line, or null when there is none to run. */
export function redisServerVersion(): string | null {
  const result = spawnSync(BINARY, ['--version'], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : null;
}

/** A loopback port nobody listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class RedisServer {
  readonly port: number;
  readonly dir: string;
  readonly #extraArgs: string[];
  #child: ChildProcess | null = null;
  #log = '';
  /** How many times the server was started (1 + restarts). */
  starts = 0;

  private constructor(port: number, dir: string, extraArgs: string[]) {
    this.port = port;
    this.dir = dir;
    this.#extraArgs = extraArgs;
  }

  /** Starts a server on a free port in a fresh temp dir; `extraArgs` are more `--option value` pairs. */
  static async start(extraArgs: string[] = []): Promise<RedisServer> {
    const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'stepstore-redis-'));
    // A port can be taken between the probe and the bind: try a few.
    for (let attempt = 0; ; attempt++) {
      const server = new RedisServer(await freePort(), dir, extraArgs);
      try {
        await server.restart();
        return server;
      } catch (err) {
        if (attempt >= 4) throw err;
      }
    }
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** The URL of this server for an ACL user. */
  urlFor(user: string, password: string): string {
    return `redis://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${this.port}`;
  }

  get pid(): number | null {
    return this.#child?.pid ?? null;
  }

  get running(): boolean {
    return this.#child !== null;
  }

  /**
   * Starts the server process on the same dir and port (loading its AOF) and
   * waits until it answers PING, or with `until: 'listening'` only until it
   * answers at all (a LOADING error counts). `args`: more options for this start only.
   */
  async restart(opts: { args?: string[]; until?: 'ready' | 'listening' } = {}): Promise<void> {
    if (this.#child !== null) throw new Error('redis-server is already running');
    const args = [
      '--port', String(this.port),
      '--bind', '127.0.0.1',
      '--dir', this.dir,
      '--appendonly', 'yes',
      '--appendfsync', 'always',
      '--save', '',
      '--daemonize', 'no',
      '--protected-mode', 'yes',
      '--loglevel', 'warning',
      ...this.#extraArgs,
      ...(opts.args ?? []),
    ];
    const child = spawn(BINARY, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#log = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (this.#log = (this.#log + chunk).slice(-8000)));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.#log = (this.#log + chunk).slice(-8000)));
    let exited: string | null = null;
    child.on('error', (err) => (exited = `could not start ${BINARY}: ${err.message}`));
    child.on('exit', (code, signal) => {
      exited ??= `exited with ${code ?? signal}`;
      if (this.#child === child) this.#child = null;
    });
    this.#child = child;
    this.starts += 1;
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (exited !== null) throw new Error(`redis-server on port ${this.port} ${exited}: ${this.#log}`);
      if (await this.#answersPing(opts.until === 'listening')) return;
      if (Date.now() > deadline) {
        await this.stop('SIGKILL');
        throw new Error(`redis-server on port ${this.port} did not answer PING within 15 s: ${this.#log}`);
      }
      await sleep(20);
    }
  }

  async #answersPing(loadingCounts: boolean): Promise<boolean> {
    const client = createClient({ url: this.url, socket: { connectTimeout: 500, reconnectStrategy: false } });
    client.on('error', () => undefined);
    try {
      await client.connect();
      // LOADING replies (AOF still being read) are errors: not ready yet.
      const pong = await client.ping();
      await client.close();
      return pong === 'PONG';
    } catch (err) {
      client.destroy();
      return loadingCounts && /LOADING/.test(String((err as Error).message));
    }
  }

  /** Stops the server by its pid and waits until it has exited. */
  async stop(signal: 'SIGKILL' | 'SIGTERM' = 'SIGTERM'): Promise<void> {
    const child = this.#child;
    if (child === null) return;
    const gone = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
    child.kill(signal);
    await gone;
    this.#child = null;
  }

  /** A connected admin client (no ACL user), for setup and inspection. */
  async admin() {
    const client = createClient({ url: this.url, RESP: 2 });
    client.on('error', () => undefined);
    await client.connect();
    return client;
  }

  /** Every key on the server (tests only). */
  async allKeys(): Promise<string[]> {
    const client = await this.admin();
    try {
      const keys: string[] = [];
      for await (const batch of client.scanIterator({ COUNT: 1000 })) keys.push(...batch);
      return keys;
    } finally {
      await client.close();
    }
  }

  /** Stops the server (SIGKILL) and removes its dir. */
  async destroy(): Promise<void> {
    await this.stop('SIGKILL');
    await fs.promises.rm(this.dir, { recursive: true, force: true });
  }
}
