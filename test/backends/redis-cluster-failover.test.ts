// waitForReplicas (WAIT after every write) and what a master failover does to
// acknowledged appends. On the standalone server at REDIS_URL (no replicas):
// the option is validated, and a write is done yet rejected IO_ERROR. On local
// Redis Clusters of this file's own (3 masters + 3 replicas each): concurrent
// streams append to sessions spread over every master, a master is SIGKILLed
// mid-load (one per shard, in turn; some while their replica lags behind a
// burst of writes), its replica takes over, the killed node comes back as its
// replica, the streams retry through it all, and every acknowledged step is
// read back. With waitForReplicas none may be lost; without it the figure is
// only reported (one `failover ...` line per run).

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createClient } from 'redis';
import { describe, expect, it } from 'vitest';
import type { Store } from 'stepstore';
import { openRedisStore } from 'stepstore/redis';
import { codeOf } from '../helpers/codes.js';
import { quietLogger } from '../helpers/fs-harness.js';
import { REDIS_URL, deleteKeys, describeWithRedis } from '../helpers/redis-harness.js';
import { deleteClusterKeys, startRedisCluster, withRedisCluster, type ClusterClient, type ClusterNode, type RedisCluster } from '../helpers/redis-cluster.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const user = (text: string) => ({ message: { role: 'user', content: [{ type: 'text', text }] } });
const textAt = (entry: { message: object }) => (entry.message as { content: { text: string }[] }).content[0]!.text;
const freshPrefix = () => `stepstore-test:failover:${randomBytes(6).toString('hex')}:`;

describeWithRedis('waitForReplicas on a standalone server', () => {
  it('refuses malformed values with INVALID_OPTION', async () => {
    const bad: unknown[] = ['yes', 1, null, {}, { replicas: 0, timeoutMs: 100 }, { replicas: 1.5, timeoutMs: 100 }, { replicas: 1, timeoutMs: 0 }, { replicas: 1 }, { timeoutMs: 100 }];
    for (const waitForReplicas of bad) {
      expect(await codeOf(openRedisStore({ url: REDIS_URL, prefix: freshPrefix(), waitForReplicas } as never)), JSON.stringify(waitForReplicas)).toBe('INVALID_OPTION');
    }
  });

  it('with no replica to acknowledge, every write rejects IO_ERROR and is done all the same', async () => {
    const prefix = freshPrefix();
    const plain = await openRedisStore({ url: REDIS_URL, prefix, logger: quietLogger });
    const waiting = await openRedisStore({ url: REDIS_URL, prefix, logger: quietLogger, waitForReplicas: { replicas: 1, timeoutMs: 50 } });
    try {
      const probe = createClient({ url: REDIS_URL }).on('error', () => undefined);
      await probe.connect();
      const info = await probe.info('replication');
      await probe.close();
      if (!/connected_slaves:0\b/.test(info)) {
        console.log(`skipping the no-replica check: the server at ${REDIS_URL} has replicas`);
        return;
      }
      expect(await codeOf(waiting.createSession('crab', 'wait'))).toBe('IO_ERROR');
      const handle = await plain.findLatestSession('crab', 'wait');
      expect(handle).not.toBeNull(); // created, though not acknowledged
      expect(await codeOf(waiting.appendMessages(handle!, [user('one')]))).toBe('IO_ERROR');
      expect(await codeOf(waiting.updateMeta(handle!, { ...(await plain.loadSession(handle!))!.meta, title: 'titled' }))).toBe('IO_ERROR');
      expect(await codeOf(waiting.compact(handle!, 'summary'))).toBe('IO_ERROR');
      expect(await codeOf(waiting.deleteSession(handle!))).toBe('IO_ERROR');
      expect(await plain.loadSession(handle!)).toBeNull(); // the delete happened
      // Reads never wait.
      expect(await waiting.findLatestSession('crab', 'wait')).toBeNull();
    } finally {
      await Promise.all([plain.close(), waiting.close()]);
      await deleteKeys(REDIS_URL, prefix);
    }
  });
});

interface Ack {
  handle: string;
  step: number;
  text: string;
}

interface KillResult {
  /** The killed master's replica was frozen (SIGSTOP) for LAG_MS, under a burst of writes, before the kill: it missed what the master took meanwhile. */
  lagging: boolean;
  /** Acknowledged appends to the sessions of the killed master's shard, and how many of them were not read back. */
  acknowledged: number;
  lost: number;
}

interface RunResult {
  kills: KillResult[];
  acknowledged: number;
  lost: number;
  rejected: number;
  ms: number;
}

/** How long a lagging kill freezes the replica before the master dies. */
const LAG_MS = 800;
const BURST = 'x'.repeat(1 << 20);

/** The port of the master that holds `handle`'s keys now. */
async function masterPortOf(client: ClusterClient, handle: string): Promise<number> {
  const [agent, sender] = handle.split('_');
  const slot = Number(await client.sendCommand(undefined, true, ['CLUSTER', 'KEYSLOT', `{${agent}_${sender}}`]));
  return Number(client.getSlotMaster(slot).port);
}

/**
 * Starts a killed node again on its port and data dir (as the harness started
 * it): it rejoins as a replica of the master that replaced it. Resolves once it
 * is in sync; the caller stops it (before the harness removes its dir).
 */
async function restartAsReplica(cluster: RedisCluster, node: ClusterNode): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    [
      '--port', String(node.port), '--bind', node.host,
      '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${node.port}.conf`, '--cluster-node-timeout', '2000',
      '--appendonly', 'yes', '--save', '', '--repl-diskless-sync-delay', '0',
      '--dir', node.dir, '--logfile', join(node.dir, 'redis.log'), '--daemonize', 'no',
    ],
    { stdio: 'ignore' },
  );
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      const client = await cluster.nodeClient(node);
      const info = await client.info('replication');
      await client.close();
      if (/role:slave/.test(info) && /master_link_status:up/.test(info) && /master_sync_in_progress:0/.test(info)) return child;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`restarted node ${node.port} did not come back as an in-sync replica`);
    }
    await sleep(100);
  }
}

/** The current replica of the master on `port` (one per master in these clusters). */
async function replicaOf(cluster: RedisCluster, port: number): Promise<ClusterNode> {
  const client = await cluster.nodeClient(cluster.nodes.find((n) => n.port === port)!);
  const info = await client.info('replication');
  await client.close();
  const replicaPort = Number(/slave0:ip=[^,]+,port=(\d+)/.exec(info)?.[1]);
  const replica = cluster.nodes.find((n) => n.port === replicaPort);
  if (replica === undefined) throw new Error(`master ${port} has no replica`);
  return replica;
}

/**
 * `streams` concurrent appenders, one session each, while the master of each
 * shard in turn is SIGKILLed (`lagging[k]`: its replica frozen for LAG_MS
 * first), failed over to its replica, and restarted as the new master's
 * replica; then every acknowledged step is read back.
 */
async function failoverRun(cluster: RedisCluster, options: { waitForReplicas: boolean; lagging: boolean[]; streams: number }): Promise<RunResult> {
  const started = Date.now();
  const prefix = freshPrefix();
  const client = await cluster.connect();
  const restarted: ChildProcess[] = [];
  let store: Store | null = null;
  try {
    store = await openRedisStore({ client, prefix, logger: quietLogger, waitForReplicas: options.waitForReplicas ? { replicas: 1, timeoutMs: 500 } : false });
    const handles: string[] = [];
    for (let i = 0; i < options.streams; i++) handles.push(await store.createSession('crab', `stream-${i}`));
    const shardOf = new Map<string, number>();
    for (const handle of handles) shardOf.set(handle, await masterPortOf(client, handle));
    expect(new Set(shardOf.values()).size).toBe(cluster.masters.length);
    // One filler session per master, for the bursts that put a replica behind.
    const fillerOf = new Map<number, string>();
    for (let i = 0; fillerOf.size < cluster.masters.length && i < 200; i++) {
      const handle = await store.createSession('crab', `filler-${i}`);
      const port = await masterPortOf(client, handle);
      if (!fillerOf.has(port)) fillerOf.set(port, handle);
    }
    await cluster.waitHealthy(); // the sessions are on the replicas before anything is killed

    const acks: Ack[] = [];
    let rejected = 0;
    let running = true;
    const streams = handles.map(async (handle, i) => {
      for (let n = 0; running; n++) {
        const text = `${i}:${n}`;
        // Retried until acknowledged (a rejected try may have landed: its step is then unacknowledged).
        while (running) {
          try {
            const [step] = await store!.appendMessages(handle, [user(text)]);
            acks.push({ handle, step: step!, text });
            break;
          } catch {
            rejected += 1;
            await sleep(50);
          }
        }
      }
    });

    const fillers: Promise<void>[] = [];
    await sleep(1000);
    for (const [k, lagging] of options.lagging.entries()) {
      const master = cluster.masters[k]!;
      if (lagging) {
        // The replica stops reading; a burst of 1 MB appends fills the socket
        // buffers between them, so the master holds unsent what it takes next.
        const replica = await replicaOf(cluster, master.port);
        process.kill(replica.pid, 'SIGSTOP');
        let filling = true;
        for (let f = 0; f < 3; f++) {
          fillers.push(
            (async () => {
              while (filling) await store!.appendMessages(fillerOf.get(master.port)!, [user(BURST)]).catch(() => sleep(20));
            })(),
          );
        }
        await sleep(LAG_MS);
        await cluster.kill(master, 'SIGKILL');
        filling = false;
        process.kill(replica.pid, 'SIGCONT');
      } else {
        await cluster.kill(master, 'SIGKILL');
      }
      await cluster.waitHealthy(30_000);
      restarted.push(await restartAsReplica(cluster, master));
      await sleep(500);
    }
    running = false;
    await Promise.all([...streams, ...fillers]);

    const reader = await openRedisStore({ client, prefix, logger: quietLogger });
    const readBack = new Map<string, Map<number, string>>();
    try {
      for (const handle of handles) {
        const snapshot = await reader.loadSession(handle);
        const texts = new Map<number, string>();
        snapshot?.history.forEach((entry, k) => texts.set(snapshot.steps[k]!, textAt(entry)));
        readBack.set(handle, texts);
      }
    } finally {
      await reader.close();
    }
    const isLost = (ack: Ack) => readBack.get(ack.handle)!.get(ack.step) !== ack.text;
    const kills = options.lagging.map((lagging, k) => {
      const onShard = acks.filter((ack) => shardOf.get(ack.handle) === cluster.masters[k]!.port);
      return { lagging, acknowledged: onShard.length, lost: onShard.filter(isLost).length };
    });
    return { kills, acknowledged: acks.length, lost: acks.filter(isLost).length, rejected, ms: Date.now() - started };
  } finally {
    await store?.close();
    await deleteClusterKeys(client, prefix).catch(() => undefined);
    await client.close();
    await Promise.all(
      restarted.map((child) => {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        return exited;
      }),
    );
  }
}

const report = (label: string, r: RunResult) => {
  const kinds = (lagging: boolean) => r.kills.filter((kill) => kill.lagging === lagging);
  const sum = (kills: KillResult[], field: 'acknowledged' | 'lost') => kills.reduce((total, kill) => total + kill[field], 0);
  const plain = kinds(false);
  const lagging = kinds(true);
  console.log(
    `failover ${label}: ${r.acknowledged} appends acknowledged, ${r.lost} lost, ${r.rejected} tries rejected, ${(r.ms / 1000).toFixed(1)} s; ` +
      `${plain.length} plain master kill(s): ${sum(plain, 'lost')} lost of ${sum(plain, 'acknowledged')} acknowledged on those shards; ` +
      `${lagging.length} kill(s) with the replica ${LAG_MS} ms behind: ${sum(lagging, 'lost')} lost of ${sum(lagging, 'acknowledged')}`,
  );
};

/** One kill per shard: the first a plain SIGKILL, the others with the replica lagging. */
const KILLS = [false, true, true];
const STREAMS = 24;

await withRedisCluster('the Redis Cluster failover tests', (cluster) => {
  describe('redis cluster: waitForReplicas and failover', () => {
    it('on a cluster, one replica of the slot master acknowledges every write; two cannot, and the write is done', async () => {
      const prefix = freshPrefix();
      const client = await cluster.connect();
      const one = await openRedisStore({ client, prefix, logger: quietLogger, waitForReplicas: true });
      const two = await openRedisStore({ client, prefix, logger: quietLogger, waitForReplicas: { replicas: 2, timeoutMs: 50 } });
      try {
        const handles: string[] = [];
        for (let i = 0; i < 6; i++) handles.push(await one.createSession('crab', `wait-${i}`));
        expect(new Set(await Promise.all(handles.map((h) => masterPortOf(client, h)))).size).toBeGreaterThan(1);
        for (const handle of handles) {
          expect(await one.appendMessages(handle, [user('acknowledged')])).toEqual([1]);
          expect(await codeOf(two.appendMessages(handle, [user('done, not acknowledged')]))).toBe('IO_ERROR');
          const snapshot = await one.loadSession(handle);
          expect(snapshot!.history.map(textAt)).toEqual(['acknowledged', 'done, not acknowledged']);
        }
      } finally {
        await Promise.all([one.close(), two.close()]);
        await deleteClusterKeys(client, prefix);
        await client.close();
      }
    });

    it(`with waitForReplicas, no acknowledged append is lost to ${KILLS.length} master kills`, async () => {
      const result = await failoverRun(cluster, { waitForReplicas: true, lagging: KILLS, streams: STREAMS });
      report('with waitForReplicas', result);
      expect(result.acknowledged).toBeGreaterThan(100);
      expect(result.lost).toBe(0);
    }, 60_000);

    // A cluster of its own, in the state the run above started from.
    it(`reports how many acknowledged appends ${KILLS.length} master kills lose`, async () => {
      const cluster = await startRedisCluster();
      try {
        const result = await failoverRun(cluster, { waitForReplicas: false, lagging: KILLS, streams: STREAMS });
        report('without waitForReplicas', result);
        expect(result.acknowledged).toBeGreaterThan(100);
      } finally {
        await cluster.stop();
      }
    }, 60_000);
  });
});
