// A Redis Cluster of its own for a test file: 3 masters + 3 replicas (by
// default) of the installed redis-server on loopback ports picked free, each
// node with its data (AOF, nodes.conf) in its own temp dir; started, waited
// for (cluster_state:ok everywhere, every replica in sync), and torn down by
// pid (SIGTERM, then SIGKILL) with its dirs removed. The one rule for tests
// that need it (withRedisCluster): they run when the cluster starts, fail
// under CI=true when it cannot, and are skipped elsewhere with one line
// saying why.

import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createClient, createCluster } from 'redis';
import { afterAll, it } from 'vitest';
import type { Store } from 'stepstore';
import { openRedisStore } from 'stepstore/redis';
import type { Fixture, Harness, StoreOverrides } from '../conformance/harness.js';
import { quietLogger } from './fs-harness.js';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const HOST = '127.0.0.1';

function clusterClientOf(rootNodes: { url: string }[], useReplicas: boolean) {
  return createCluster({ rootNodes, useReplicas, RESP: 2, defaults: { socket: { connectTimeout: 2000 } } });
}

function nodeClientOf(url: string) {
  return createClient({ url, RESP: 2, socket: { reconnectStrategy: false } });
}

/** A node-redis Cluster client, as RedisCluster.connect gives it. */
export type ClusterClient = ReturnType<typeof clusterClientOf>;
/** A plain node-redis client of one node, as RedisCluster.nodeClient gives it. */
export type NodeClient = ReturnType<typeof nodeClientOf>;
/** Client ports are drawn from here; each node's bus port is its port + 10000 (Redis' rule), so both must be free. */
const PORT_RANGE = { from: 21000, to: 24999 };
const BUS_OFFSET = 10000;

export interface ClusterNode {
  host: string;
  port: number;
  /** `redis://127.0.0.1:<port>` */
  url: string;
  /** The redis-server process: SIGKILL it to simulate a crashed node. */
  pid: number;
  /** The node's own temp dir (AOF, nodes-<port>.conf, redis.log). */
  dir: string;
  /** Its role when the cluster was created (a failover changes it: ask the cluster with roles()). */
  initialRole: 'master' | 'replica';
}

export interface ClusterOptions {
  masters?: number;
  replicasPerMaster?: number;
  /** cluster-node-timeout: how long before a silent master is failed over; default 2000 ms. */
  nodeTimeoutMs?: number;
  /** Extra `--name value` arguments for every node. */
  extraArgs?: string[];
}

export interface RedisCluster {
  readonly nodes: readonly ClusterNode[];
  readonly masters: readonly ClusterNode[];
  readonly replicas: readonly ClusterNode[];
  /** Seeds for node-redis: `{ url }` of every node. */
  readonly rootNodes: { url: string }[];
  /** A connected node-redis Cluster client on this cluster (RESP2, as the store's own clients); close it yourself. */
  connect(options?: { useReplicas?: boolean }): Promise<ClusterClient>;
  /** A connected plain client to one node, for CLUSTER / INFO / DEBUG commands; close it yourself. */
  nodeClient(node: ClusterNode): Promise<NodeClient>;
  /** Each live node's current role, from its own INFO replication. */
  roles(): Promise<Map<number, 'master' | 'replica'>>;
  /** Sends `signal` to one node's process and waits for it to exit. */
  kill(node: ClusterNode, signal?: NodeJS.Signals): Promise<void>;
  /** Waits until every live node says cluster_state:ok and every live replica is in sync with its master. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** SIGTERM every node (SIGKILL after 3 s), then removes their dirs. Idempotent. */
  stop(): Promise<void>;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ port, host: HOST, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** `count` distinct client ports whose bus ports are free too (checked by binding both on loopback). */
async function freePorts(count: number): Promise<number[]> {
  const picked: number[] = [];
  for (let tries = 0; picked.length < count && tries < 500; tries++) {
    const port = PORT_RANGE.from + Math.floor(Math.random() * (PORT_RANGE.to - PORT_RANGE.from));
    if (picked.some((p) => Math.abs(p - port) < 1)) continue;
    if ((await portFree(port)) && (await portFree(port + BUS_OFFSET))) picked.push(port);
  }
  if (picked.length < count) throw new Error(`found only ${picked.length} of ${count} free port pairs in ${PORT_RANGE.from}-${PORT_RANGE.to}`);
  return picked;
}

async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', HOST, '-p', String(port), ...args], { timeout: 10_000 });
  return stdout;
}

/** A failure no wait will mend: until() gives up at once. */
class Hopeless extends Error {}

async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (err) {
      if (err instanceof Hopeless) throw err;
      last = err;
    }
    await sleep(50);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? '' : `: ${String(last)}`}`);
}

function infoField(info: string, field: string): string | undefined {
  return new RegExp(`^${field}:(.*)$`, 'm').exec(info)?.[1]?.trim();
}

interface Running {
  node: ClusterNode;
  child: ChildProcess;
  exited: Promise<void>;
  /** Why the process could not be started (spawn's error), if so. */
  failure: () => string | undefined;
}

function startNode(port: number, dir: string, options: Required<ClusterOptions>): Running {
  const args = [
    '--port', String(port),
    '--bind', HOST,
    '--cluster-enabled', 'yes',
    '--cluster-config-file', `nodes-${port}.conf`,
    '--cluster-node-timeout', String(options.nodeTimeoutMs),
    '--appendonly', 'yes',
    '--save', '',
    // A master otherwise waits 5 s for more replicas before a full sync: startup would wait for it.
    '--repl-diskless-sync-delay', '0',
    '--dir', dir,
    '--logfile', join(dir, 'redis.log'),
    '--daemonize', 'no',
    ...options.extraArgs,
  ];
  const child = spawn('redis-server', args, { stdio: 'ignore' });
  let failure: string | undefined;
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    child.once('exit', () => resolve());
    child.once('error', (err) => {
      failure = err.message;
      resolve();
    });
  });
  // A test runner that dies without afterAll must not leave servers behind.
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  void exited.then(() => process.off('exit', reap));
  const node: ClusterNode = { host: HOST, port, url: `redis://${HOST}:${port}`, pid: child.pid ?? -1, dir, initialRole: 'master' };
  return { node, child, exited, failure: () => failure };
}

/**
 * Starts a cluster: picks free ports, starts the nodes, `redis-cli --cluster
 * create ... --cluster-replicas N --cluster-yes`, and waits for it to be
 * healthy. Throws (after tearing down what it started) when it cannot.
 */
export async function startRedisCluster(opts: ClusterOptions = {}): Promise<RedisCluster> {
  const options: Required<ClusterOptions> = { masters: 3, replicasPerMaster: 1, nodeTimeoutMs: 2000, extraArgs: [], ...opts };
  const count = options.masters * (1 + options.replicasPerMaster);
  const running: Running[] = [];
  let stopped: Promise<void> | null = null;

  const stop = () =>
    (stopped ??= (async () => {
      await Promise.all(
        running.map(async ({ child, exited, node }) => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          const killed = await Promise.race([exited.then(() => true), sleep(3000).then(() => false)]);
          if (!killed) {
            child.kill('SIGKILL');
            await exited;
          }
          await rm(node.dir, { recursive: true, force: true });
        }),
      );
    })());

  const alive = () => running.filter(({ child }) => child.exitCode === null && child.signalCode === null);

  async function waitHealthy(timeoutMs = 20_000): Promise<void> {
    for (const { node } of alive()) {
      await until(`cluster_state:ok on ${node.port}`, timeoutMs, async () => /cluster_state:ok/.test(await cli(node.port, 'CLUSTER', 'INFO')));
    }
    for (const { node } of alive()) {
      await until(`${node.port} in sync`, timeoutMs, async () => {
        const info = await cli(node.port, 'INFO', 'replication');
        if (infoField(info, 'role') !== 'slave') return true;
        return infoField(info, 'master_link_status') === 'up' && infoField(info, 'master_sync_in_progress') === '0';
      });
    }
  }

  try {
    const ports = await freePorts(count);
    for (const port of ports) {
      const dir = await mkdtemp(join(tmpdir(), `stepstore-cluster-${port}-`));
      running.push(startNode(port, dir, options));
    }
    for (const { node, exited, failure } of running) {
      let gone = false;
      void exited.then(() => (gone = true));
      await until(`redis-server on ${node.port} to answer PING`, 10_000, async () => {
        if (gone) throw new Hopeless(failure() ?? `redis-server on ${node.port} exited (see its redis.log)`);
        return (await cli(node.port, 'PING')).trim() === 'PONG';
      });
    }
    const { stdout } = await run(
      'redis-cli',
      ['--cluster', 'create', ...ports.map((p) => `${HOST}:${p}`), '--cluster-replicas', String(options.replicasPerMaster), '--cluster-yes'],
      { timeout: 30_000 },
    );
    if (!/All 16384 slots covered/.test(stdout)) throw new Error(`redis-cli --cluster create did not cover every slot:\n${stdout}`);
    await waitHealthy();
    for (const { node } of running) {
      node.initialRole = infoField(await cli(node.port, 'INFO', 'replication'), 'role') === 'slave' ? 'replica' : 'master';
    }
  } catch (err) {
    await stop();
    throw err;
  }

  const nodes = running.map(({ node }) => node);
  return {
    nodes,
    masters: nodes.filter((n) => n.initialRole === 'master'),
    replicas: nodes.filter((n) => n.initialRole === 'replica'),
    rootNodes: nodes.map(({ url }) => ({ url })),
    async connect({ useReplicas = false } = {}) {
      const cluster = clusterClientOf(nodes.map(({ url }) => ({ url })), useReplicas);
      cluster.on('error', () => undefined);
      await cluster.connect();
      return cluster;
    },
    async nodeClient(node) {
      const client = nodeClientOf(node.url);
      client.on('error', () => undefined);
      await client.connect();
      return client;
    },
    async roles() {
      const roles = new Map<number, 'master' | 'replica'>();
      for (const { node } of alive()) {
        roles.set(node.port, infoField(await cli(node.port, 'INFO', 'replication'), 'role') === 'slave' ? 'replica' : 'master');
      }
      return roles;
    },
    async kill(node, signal = 'SIGKILL') {
      const entry = running.find((r) => r.node === node);
      if (entry === undefined) throw new Error(`no node on port ${node.port}`);
      entry.child.kill(signal);
      await entry.exited;
    },
    waitHealthy,
    stop,
  };
}

let hinted = false;

/**
 * Starts a cluster for the tests of `body` (at collection time: the file's
 * tests are registered only once it is up) and stops it in afterAll. When it
 * cannot start: one failing test naming the cause under CI=true, otherwise
 * one skipped test after a line saying why. Await it at the top of a file.
 */
export async function withRedisCluster(what: string, body: (cluster: RedisCluster) => void, options?: ClusterOptions): Promise<void> {
  let cluster: RedisCluster;
  try {
    cluster = await startRedisCluster(options);
  } catch (err) {
    const cause = (err as Error).message;
    if (process.env.CI === 'true') {
      it('has a Redis Cluster to test against', () => {
        throw new Error(`cannot start a local Redis Cluster (CI=true): ${cause}`);
      });
    } else {
      if (!hinted) console.log(`skipping ${what}: cannot start a local Redis Cluster (redis-server 7+ and redis-cli on PATH are needed): ${cause}`);
      hinted = true;
      it.skip('needs a local Redis Cluster', () => undefined);
    }
    return;
  }
  afterAll(() => cluster.stop());
  body(cluster);
}

/** Deletes every key under `prefix` on every master `client` knows (tests only: SCAN is fine here). */
export async function deleteClusterKeys(client: ClusterClient, prefix: string): Promise<void> {
  for (const master of client.masters) {
    const node = await client.nodeClient(master);
    for await (const keys of node.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
      // Keys of one scan batch may lie in different slots: one DEL each.
      for (const key of keys) await node.del(key);
    }
  }
}

/**
 * Fresh stores on `cluster`, each fixture under its own prefix below
 * `keyPrefix`; every store gets the harness's one node-redis Cluster client
 * as `client` (the store never closes it: the harness does, in afterAll).
 * Register it inside the describe whose tests use it.
 */
export function redisClusterHarness(cluster: RedisCluster, keyPrefix = 'stepstore-test:'): Harness {
  let shared: Promise<ClusterClient> | null = null;
  const client = () => (shared ??= cluster.connect());
  afterAll(async () => {
    if (shared !== null) await (await shared).close();
  });
  return {
    async fixture(): Promise<Fixture> {
      const prefix = `${keyPrefix}${randomBytes(6).toString('hex')}:`;
      const opened: Store[] = [];
      return {
        async open(overrides: StoreOverrides = {}) {
          const store = await openRedisStore({ client: await client(), prefix, logger: quietLogger, ...overrides });
          opened.push(store);
          return store;
        },
        workerSpec: () => ({ kind: 'redis', url: cluster.nodes[0]!.url, prefix, cluster: cluster.rootNodes.map(({ url }) => url) }),
        async dispose() {
          await Promise.all(opened.map((store) => store.close()));
          await deleteClusterKeys(await client(), prefix);
        },
      };
    },
  };
}
