// `stepstore/redis`: the same Store API on a Redis server, for runtimes that
// span machines. node-redis is an optional peer dependency, loaded only here.

import { Connection, type RedisLike } from './backends/redis/client.js';
import { RedisBackend } from './backends/redis/index.js';
import { invalidOption } from './errors.js';
import { resolveCommonOptions, Store, type CommonOptions } from './store.js';

export interface RedisStoreOptions extends CommonOptions {
  /** Server to connect to; default `REDIS_URL`, else `redis://127.0.0.1:6379`. Ignored with `client`. */
  url?: string;
  /** An already connected node-redis client (or Cluster) to use; the store never closes it. */
  client?: RedisLike;
  /** Prepended to every key; default `stepstore:`. Must not contain `{` or `}` (hash tags). */
  prefix?: string;
  /**
   * After every write, wait until the server has fsynced it to its AOF
   * (WAITAOF, Redis 7.2+ with appendonly yes). Default false: an append is
   * as durable as the server's `appendfsync` makes it.
   */
  waitForAof?: boolean | { replicas?: number; timeoutMs?: number };
  /**
   * After every write, wait until `replicas` replicas of the node that took
   * it have acknowledged it (WAIT, on that node: a Cluster's slot master),
   * else reject IO_ERROR; the write has happened then and is not undone.
   * `true` is `{ replicas: 1, timeoutMs: 1000 }`. Default false: an
   * acknowledged write may be lost when its master fails before replicating it.
   */
  waitForReplicas?: boolean | { replicas: number; timeoutMs: number };
  /**
   * How long to keep retrying a request whose reply was lost to a dropped
   * connection; default 10 s. The server remembers each write request for
   * twice this (at least this + 1 s), so a retry is never written twice.
   */
  retryForMs?: number;
}

/** `major.minor` of the server, from INFO server. */
async function serverVersion(conn: Connection): Promise<[number, number]> {
  const info = String(await conn.read('', ['INFO', 'server']));
  const match = /redis_version:(\d+)\.(\d+)/.exec(info);
  return match === null ? [0, 0] : [Number(match[1]), Number(match[2])];
}

/** waitForReplicas as WAIT's arguments, or null for none; throws INVALID_OPTION. */
function replicasToWaitFor(option: RedisStoreOptions['waitForReplicas']): { replicas: number; timeoutMs: number } | null {
  if (option === undefined || option === false) return null;
  if (option === true) return { replicas: 1, timeoutMs: 1000 };
  const valid =
    typeof option === 'object' &&
    option !== null &&
    Number.isSafeInteger(option.replicas) &&
    option.replicas >= 1 &&
    Number.isSafeInteger(option.timeoutMs) &&
    option.timeoutMs >= 1;
  if (!valid) throw invalidOption('waitForReplicas must be true, false or { replicas: integer >= 1, timeoutMs: integer >= 1 }');
  return { replicas: option.replicas, timeoutMs: option.timeoutMs };
}

export async function openRedisStore(options: RedisStoreOptions = {}): Promise<Store> {
  if (typeof options !== 'object' || options === null) throw invalidOption('openRedisStore needs an options object');
  const common = resolveCommonOptions(options);
  const { prefix = 'stepstore:', retryForMs = 10_000, waitForAof = false } = options;
  if (typeof prefix !== 'string' || /[{}]/.test(prefix)) throw invalidOption('prefix must be a string without { or }');
  if (options.url !== undefined && typeof options.url !== 'string') throw invalidOption('url must be a string');
  if (!Number.isSafeInteger(retryForMs) || retryForMs < 0) throw invalidOption('retryForMs must be a non-negative integer');
  const aof =
    waitForAof === false
      ? null
      : { replicas: 0, timeoutMs: 1000, ...(typeof waitForAof === 'object' ? waitForAof : {}) };
  const connectionOptions = { retryForMs, waitForAof: aof, waitForReplicas: replicasToWaitFor(options.waitForReplicas) };
  const conn =
    options.client !== undefined
      ? new Connection(options.client, false, connectionOptions)
      : await Connection.open(options.url ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', connectionOptions);
  if (aof !== null) {
    let version: [number, number];
    try {
      version = await serverVersion(conn);
    } catch (err) {
      await conn.close().catch(() => undefined);
      throw err;
    }
    const [major, minor] = version;
    if (major < 7 || (major === 7 && minor < 2)) {
      await conn.close();
      throw invalidOption(`waitForAof needs WAITAOF (Redis 7.2 or newer); this server is ${major}.${minor}`);
    }
  }
  const backend = new RedisBackend({ conn, prefix, logger: common.logger, messages: common.messages, stats: { stepsRead: 0, stepsWritten: 0, metaWrites: 0, syncs: 0 } });
  return new Store(backend, common);
}

export { Store } from './store.js';
export type { RedisLike } from './backends/redis/client.js';
