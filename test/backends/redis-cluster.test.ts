// The shared conformance suite on a local Redis Cluster this file starts
// (3 masters + 3 replicas, test/helpers/redis-cluster.ts), each store given a
// node-redis Cluster client as `client`; then what only a cluster shows: that
// the scripts touch only the keys they declare (watched on the servers with
// MONITOR), and that repair() reaches the keys of every master. Under CI=true
// a cluster that cannot start fails the run; elsewhere these tests are skipped
// with one line saying why.

import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { runConformance } from '../conformance/index.js';
import { useFixture } from '../conformance/fixture.js';
import { redisClusterHarness, withRedisCluster, type ClusterNode, type RedisCluster } from '../helpers/redis-cluster.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const user = (text: string) => ({ message: { role: 'user', content: [{ type: 'text', text }] } });

/** The quoted arguments of one MONITOR line, unescaped. */
function monitorArgs(text: string): string[] {
  return [...text.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map(([, arg]) =>
    arg!.replace(/\\x([0-9a-f]{2})|\\(.)/gi, (_, hex: string | undefined, ch: string) => (hex !== undefined ? String.fromCharCode(parseInt(hex, 16)) : ch === 'n' ? '\n' : ch)),
  );
}

/** `redis-cli monitor` on each node: every command each one runs, those run by scripts marked `[0 lua]`. */
function monitor(nodes: readonly ClusterNode[]) {
  const outputs = nodes.map((node) => {
    const child = spawn('redis-cli', ['-h', node.host, '-p', String(node.port), 'monitor'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let text = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    const exited = new Promise((resolve) => child.on('close', resolve));
    return { child, exited, text: () => text };
  });
  return {
    ready: sleep(300),
    async stop(): Promise<string[][]> {
      await sleep(300);
      for (const { child } of outputs) child.kill('SIGTERM');
      await Promise.all(outputs.map(({ exited }) => exited));
      return outputs.map(({ text }) => text().split('\n'));
    },
  };
}

/**
 * The keys each script touched that its EVALSHA did not declare, from MONITOR
 * lines (a script's commands follow its EVALSHA, unbroken: scripts are atomic),
 * keys found by the server itself (COMMAND GETKEYS). Only scripts whose
 * declared keys start with `prefix`; `seen` counts their commands.
 */
async function undeclaredKeys(cluster: RedisCluster, lines: string[], prefix: string, seen: { commands: number }): Promise<string[]> {
  const client = await cluster.nodeClient(cluster.nodes[0]!);
  const found: string[] = [];
  let declared: Set<string> | null = null;
  try {
    for (const line of lines) {
      const match = /^\d+\.\d+ \[\d+ ([^\]]+)\] (.*)$/.exec(line);
      if (match === null) continue;
      const args = monitorArgs(match[2]!);
      if (match[1] !== 'lua') {
        const command = args[0]!.toUpperCase();
        const keys = command === 'EVALSHA' || command === 'EVAL' ? args.slice(3, 3 + Number(args[2])) : [];
        declared = keys.length > 0 && keys.every((key) => key.startsWith(prefix)) ? new Set(keys) : null;
        continue;
      }
      if (declared === null) continue;
      seen.commands += 1;
      const keys = (await client.sendCommand(['COMMAND', 'GETKEYS', ...args]).catch(() => [])) as string[];
      for (const key of keys) if (!declared.has(String(key))) found.push(`${args[0]} ${String(key)}`);
    }
  } finally {
    await client.close();
  }
  return found;
}

await withRedisCluster('the Redis Cluster suite', (cluster) => {
  const harness = redisClusterHarness(cluster);
  runConformance('redis cluster', harness);

  describe('redis cluster: what only a cluster shows', () => {
    const t = useFixture(harness);

    it('create, append, compact, fork, rewind and delete touch only keys declared in their KEYS', async () => {
      const store = await t.open();
      // Before watching: a session holding an archive.
      const source = await store.createSession('crab', 'keys');
      await store.appendMessages(source, [user('one'), user('two')]);
      await store.compact(source, 'summary of one and two');

      const watching = monitor(cluster.masters);
      await watching.ready;
      const forked = await store.fork(source, { atStep: 3 }); // holds the archive too: a holders set
      await store.deleteSession(await store.createSession('crab', 'keys')); // a deleted seq below the next create
      const fresh = await store.createSession('crab', 'keys');
      await store.appendMessages(fresh, [user('three')]);
      await store.compact(fresh, 'summary of three');
      await store.appendMessages(fresh, [user('four')]);
      expect(await store.rewind(fresh, 1)).toBe(2); // retracts the marker: its archive is released
      expect(await store.deleteSession(source)).toBe(true); // the fork still holds the archive
      expect(await store.deleteSession(forked)).toBe(true); // its last holder: the archive goes
      const lines = (await watching.stop()).flat();

      expect(await store.loadSession(source)).toBeNull();
      expect(await store.loadSession(forked)).toBeNull();
      const seen = { commands: 0 };
      const prefix = t.fixture.workerSpec().kind === 'redis' ? (t.fixture.workerSpec() as { prefix: string }).prefix : '';
      expect(await undeclaredKeys(cluster, lines, prefix, seen)).toEqual([]);
      expect(seen.commands).toBeGreaterThan(20);
    });

    it('repair() finds the sessions of every master: all re-enter the list index', async () => {
      const store = await t.open();
      const handles: string[] = [];
      for (let i = 0; i < 12; i++) handles.push(await store.createSession('crab', `pair-${i}`));
      const client = await cluster.connect();
      try {
        const { prefix } = t.fixture.workerSpec() as { prefix: string };
        // The pairs lie in slots of more than one master, else this proves nothing.
        const owners = new Set<number>();
        for (const handle of handles) {
          const [agent, sender] = handle.split('_');
          const slot = Number(await client.sendCommand(undefined, true, ['CLUSTER', 'KEYSLOT', `{${agent}_${sender}}`]));
          owners.add(Number(client.getSlotMaster(slot).port));
        }
        expect(owners.size).toBeGreaterThan(1);
        // A crash between a script and the index update (the index is in a slot of its own) leaves them out.
        await client.del(`${prefix}{index}:sessions`);
      } finally {
        await client.close();
      }
      expect((await store.listSessions({ agent: 'crab' })).length).toBe(0);
      const report = await store.repair();
      expect(report.sessions).toBe(12);
      expect(report.indexEntriesFixed.sort()).toEqual(handles.map((handle) => `added ${handle} to the list index`).sort());
      expect((await store.listSessions({ agent: 'crab' })).map((s) => s.handle).sort()).toEqual([...handles].sort());
    });
  });
});
