// The connection to Redis, and the one import site of the `redis` package:
// sending commands (to a client or a Cluster), running the scripts by SHA with
// a fallback on NOSCRIPT, retrying requests whose reply was lost (a retry is
// never sent once the retry window has closed, so the scripts need remember a
// request only for that window, see rememberForMs), waiting for the AOF fsync
// when asked, and for replicas when asked (WAIT), and turning failures into
// StepStoreErrors.

import { createHash } from 'node:crypto';
import { ClientClosedError, ErrorReply, createClient } from 'redis';
import { StepStoreError, sessionNotFound } from '../../errors.js';

export type Reply = null | number | string | Reply[] | { [field: string]: Reply };

/** What the backend needs of a node-redis client: a standalone client or a Cluster. */
export interface RedisLike {
  sendCommand(...args: never[]): Promise<unknown>;
  readonly isReady: boolean;
  close?(): Promise<void>;
  quit?(): Promise<unknown>;
}

export interface ConnectionOptions {
  /** Run writes again after a lost reply for this long (they carry ids, so none lands twice). */
  retryForMs: number;
  /** After every write, WAITAOF 1 <replicas> <timeout>. */
  waitForAof: { replicas: number; timeoutMs: number } | null;
  /** After every write, WAIT <replicas> <timeout> on the node that took it. */
  waitForReplicas?: { replicas: number; timeoutMs: number } | null;
}

/** How long opening a store waits for the server to answer. */
const CONNECT_TIMEOUT_MS = 5_000;

/**
 * How much longer than the retry window a request is remembered, at least:
 * for a retry sent just before the window closed and still on its way to the
 * server (the network, a server busy for a moment).
 */
const REMEMBER_MARGIN_MS = 1_000;

const isCluster = (client: RedisLike) => 'getSlotMaster' in client;

/** Error replies that mean the command did not run and will once the server is ready. */
const NOT_YET = /^(LOADING|TRYAGAIN|MASTERDOWN|CLUSTERDOWN|BUSY) /;

/**
 * Worth another try: a failure of the connection (the request may or may not
 * have run: writes carry ids for that), or a reply saying the server is not
 * ready yet (loading its data after a restart, a failover). Not: other error
 * replies, a client closed on purpose.
 */
export function retryable(err: unknown): boolean {
  if (!(err instanceof Error) || err instanceof StepStoreError || err instanceof ClientClosedError) return false;
  const name = err.constructor.name;
  if (name === 'ClientClosedError') return false;
  // A client from another copy of node-redis is judged by name.
  const reply = err instanceof ErrorReply || ['SimpleError', 'BlobError', 'ErrorReply', 'MultiErrorReply'].includes(name);
  return reply ? NOT_YET.test(err.message) : true;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class Connection {
  readonly #client: RedisLike;
  readonly #owned: boolean;
  readonly #options: ConnectionOptions;
  readonly #shas = new Map<string, string>();

  constructor(client: RedisLike, owned: boolean, options: ConnectionOptions) {
    this.#client = client;
    this.#owned = owned;
    this.#options = options;
  }

  /**
   * How long a write script remembers its request id, so that a retry of it is
   * answered from memory instead of written again: every retry is sent within
   * retryForMs of the first attempt (a retry still queued then is aborted, never
   * sent), so the window plus a margin (retryForMs again, at least 1 s) covers
   * every execution of one request, whatever other writers do meanwhile.
   */
  get rememberForMs(): number {
    const window = this.#options.retryForMs;
    return window + Math.max(window, REMEMBER_MARGIN_MS);
  }

  /** A Cluster client: a script may touch one slot only. */
  get clustered(): boolean {
    return isCluster(this.#client);
  }

  static async open(url: string, options: ConnectionOptions): Promise<Connection> {
    let connected = false;
    let client: ReturnType<typeof createClient>;
    try {
      client = createClient({
        url,
        RESP: 2,
        socket: {
          connectTimeout: CONNECT_TIMEOUT_MS,
          // Fail fast when the server is not there at all; once connected, keep reconnecting.
          reconnectStrategy: (retries: number, cause: Error) => (connected ? Math.min(20 * 2 ** retries, 500) : cause),
        },
      });
    } catch (err) {
      throw new StepStoreError('INVALID_OPTION', `url ${JSON.stringify(url)} is not a Redis URL: ${(err as Error).message}`, { cause: err });
    }
    client.on('error', () => {
      // Reconnects are automatic; failed commands reject and are retried or reported.
    });
    try {
      await client.connect();
      connected = true;
    } catch (err) {
      throw new StepStoreError('IO_ERROR', `cannot connect to Redis at ${url}: ${(err as Error).message}`, { cause: err });
    }
    return new Connection(client as unknown as RedisLike, true, options);
  }

  /**
   * Sends one command; `key` routes it on a Cluster. Errors are mapped, never
   * retried. `signal`: give the command up (AbortError) if it is still waiting
   * to be written (offline) when it fires; once written it is not withdrawn.
   */
  async send(key: string, args: string[], readonly = false, signal?: AbortSignal): Promise<Reply> {
    try {
      const client = this.#client as unknown as {
        sendCommand(...a: unknown[]): Promise<Reply>;
      };
      const options = signal === undefined ? [] : [{ abortSignal: signal }];
      return isCluster(this.#client)
        ? await client.sendCommand(key, readonly, args, ...options)
        : await client.sendCommand(args, ...options);
    } catch (err) {
      throw toStoreError(err);
    }
  }

  /** Reads retried while the connection is down, up to retryForMs. */
  read(key: string, args: string[]): Promise<Reply> {
    return this.#retrying((signal) => this.send(key, args, true, signal));
  }

  /** Runs a script by SHA (loading it on NOSCRIPT); a write, retried after a lost reply. */
  async script(source: string, keys: string[], args: (string | number)[]): Promise<Reply> {
    // The command is built once; every attempt sends the same one (a retry carries the same request id).
    const command = ['EVALSHA', this.#shaOf(source), String(keys.length), ...keys];
    for (const arg of args) command.push(String(arg));
    const reply = await this.#retrying((signal) => this.#evalsha(source, keys[0]!, command, signal));
    if (this.#options.waitForAof !== null) await this.#waitForAof(keys[0]!);
    await this.#waitForReplicas(keys[0]!);
    return reply;
  }

  /** A plain write command (idempotent ones only), retried after a lost reply. */
  async write(key: string, args: string[]): Promise<Reply> {
    const reply = await this.#retrying((signal) => this.send(key, args, false, signal));
    await this.#waitForAof(key);
    await this.#waitForReplicas(key);
    return reply;
  }

  #shaOf(source: string): string {
    let sha = this.#shas.get(source);
    if (sha === undefined) {
      sha = createHash('sha1').update(source).digest('hex');
      this.#shas.set(source, sha);
    }
    return sha;
  }

  /** Sends `command` (EVALSHA sha numkeys keys... args...); on NOSCRIPT, the same as EVAL of `source`. */
  async #evalsha(source: string, key: string, command: string[], signal?: AbortSignal): Promise<Reply> {
    try {
      return await this.send(key, command, false, signal);
    } catch (err) {
      if (!(err instanceof StepStoreError) || !/NOSCRIPT/.test(String((err.cause as Error)?.message))) throw err;
      return this.send(key, ['EVAL', source, ...command.slice(2)], false, signal);
    }
  }

  async #waitForAof(key: string): Promise<void> {
    const wait = this.#options.waitForAof;
    if (wait === null) return;
    const [local] = (await this.send(key, ['WAITAOF', '1', String(wait.replicas), String(wait.timeoutMs)])) as number[];
    if (local !== 1) throw new StepStoreError('IO_ERROR', 'WAITAOF: the write was not fsynced to the AOF in time');
  }

  /**
   * WAIT on the connection that carried the write of `key` (a Cluster: its
   * slot master's): the write is not reported done until `replicas` replicas
   * have acknowledged it. A shortfall (or a lost WAIT) rejects IO_ERROR; the
   * write itself has happened and is not undone.
   */
  async #waitForReplicas(key: string): Promise<void> {
    const wait = this.#options.waitForReplicas;
    if (wait === null || wait === undefined) return;
    const args = ['WAIT', String(wait.replicas), String(wait.timeoutMs)];
    let acknowledged: number;
    try {
      // A Cluster client fans a keyless WAIT out to every master: send it to the key's master alone.
      const { getNodeClientForKey } = this.#client as { getNodeClientForKey?: (key: string, readonly: boolean) => Promise<{ sendCommand(a: string[]): Promise<unknown> }> };
      acknowledged = Number(
        typeof getNodeClientForKey === 'function'
          ? await (await getNodeClientForKey.call(this.#client, key, false)).sendCommand(args)
          : await this.send(key, args),
      );
    } catch (err) {
      const cause = toStoreError(err);
      throw new StepStoreError('IO_ERROR', `the write happened (it is not undone) but WAIT for ${wait.replicas} replica(s) failed: ${cause.message}`, { cause: err });
    }
    if (acknowledged < wait.replicas) {
      throw new StepStoreError(
        'IO_ERROR',
        `the write happened (it is not undone) but only ${acknowledged} of ${wait.replicas} replica(s) acknowledged it within ${wait.timeoutMs} ms`,
      );
    }
  }

  /**
   * Runs `attempt` until it succeeds, fails for good or retryForMs has passed.
   * The first attempt may wait for the connection as long as it takes; a
   * retry gets a signal that aborts it if it is still unsent at the deadline,
   * so no execution of one request comes later than the window allows.
   */
  async #retrying<T>(attempt: (signal?: AbortSignal) => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.#options.retryForMs;
    for (let delay = 20, first = true; ; delay = Math.min(delay * 2, 500), first = false) {
      try {
        return await attempt(first ? undefined : AbortSignal.timeout(Math.max(1, deadline - Date.now())));
      } catch (err) {
        const cause = err instanceof StepStoreError ? err.cause : err;
        if (err instanceof StepStoreError && err.code !== 'IO_ERROR') throw err;
        if (!retryable(cause) || Date.now() + delay > deadline) throw err;
        await sleep(delay);
      }
    }
  }

  /**
   * Every key matching `pattern`, by SCAN on each master (a Cluster's keys
   * are spread over its masters; a standalone server is its own one). A key
   * may be listed once per master it was on while the scan ran (a slot
   * moving): each is listed once. For repair only: never on a hot path.
   */
  async scanMasters(pattern: string): Promise<string[]> {
    const cluster = this.#client as unknown as ClusterNodes;
    const nodes: { sendCommand(args: string[]): Promise<unknown> }[] = [];
    if (this.clustered) {
      for (const master of cluster.masters) nodes.push(await cluster.nodeClient(master));
    } else {
      nodes.push({ sendCommand: (args) => this.send('', args, true) });
    }
    const keys = new Set<string>();
    for (const node of nodes) {
      let cursor = '0';
      do {
        const reply = await this.#retrying(async () => {
          try {
            return (await node.sendCommand(['SCAN', cursor, 'MATCH', pattern, 'COUNT', '1000'])) as [string, Reply[]];
          } catch (err) {
            throw toStoreError(err);
          }
        });
        cursor = String(reply[0]);
        for (const key of reply[1]) keys.add(String(key));
      } while (cursor !== '0');
    }
    return [...keys];
  }

  async close(): Promise<void> {
    if (!this.#owned) return;
    const client = this.#client;
    await (client.close?.() ?? client.quit?.());
  }

  /**
   * A new, unconnected client to the same server with the same options, for
   * pub/sub (watch.ts); null on a Cluster or a client that cannot duplicate itself.
   */
  pubSubClient(): PubSubClient | null {
    if (this.clustered) return null;
    const { duplicate } = this.#client as { duplicate?: () => unknown };
    return typeof duplicate === 'function' ? (duplicate.call(this.#client) as PubSubClient) : null;
  }
}

/** What scanMasters uses of a node-redis Cluster client: its masters, and a client of each. */
interface ClusterNodes {
  readonly masters: unknown[];
  nodeClient(node: unknown): Promise<{ sendCommand(args: string[]): Promise<unknown> }>;
}

/** What watch.ts uses of a node-redis client in pub/sub mode. */
export interface PubSubClient {
  connect(): Promise<unknown>;
  pSubscribe(patterns: string[], listener: (message: string, channel: string) => void): Promise<void>;
  pUnsubscribe(patterns: string[], listener: (message: string, channel: string) => void): Promise<void>;
  on(event: 'error' | 'ready', listener: (...args: unknown[]) => void): unknown;
  unref?(): void;
  close?(): Promise<void>;
  quit?(): Promise<unknown>;
  destroy?(): void;
}

/** Redis error replies and connection failures as IO_ERROR, except the scripts' own NOTFOUND and CONFLICT. */
export function toStoreError(err: unknown): StepStoreError {
  if (err instanceof StepStoreError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const notFound = /STEPSTORE_NOTFOUND (\S+)/.exec(message);
  if (notFound !== null) return sessionNotFound(notFound[1]!);
  const conflict = /STEPSTORE_CONFLICT (.*)/.exec(message);
  if (conflict !== null) return new StepStoreError('CONFLICT', conflict[1]!);
  if (message.includes('STEPSTORE_NOSEQ')) return new StepStoreError('CONFLICT', 'no seq is left for this pair: the highest one is taken');
  return new StepStoreError('IO_ERROR', `Redis: ${message}`, { cause: err });
}
