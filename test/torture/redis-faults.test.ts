// Torture part 8, Redis faults, each on an own redis-server (appendonly yes,
// appendfsync always) started for this file. Invariants:
// - a server SIGKILLed mid-append and restarted on its dir still holds every
//   step a writer had acknowledged, byte-identical, and nothing twice;
// - a reply lost between send and delivery (a proxy drops the connection
//   after the server executed the request) is retried without writing twice;
// - agent and sender names with `: * ? [ ] \ { }` give distinct sessions that
//   never see each other's steps, and no key is made outside the prefix; a
//   prefix with glob characters never reaches another prefix's keys;
// - the whole conformance suite passes as an ACL user allowed only the
//   store's key prefix and the commands the store uses.

import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Store } from 'stepstore';
import { openRedisStore } from 'stepstore/redis';
import { liveCount } from '../conformance/fixture.js';
import { runConformance } from '../conformance/index.js';
import { startWorker, type Worker } from '../helpers/children.js';
import { quietLogger } from '../helpers/fs-harness.js';
import { deleteKeys, redisHarness } from '../helpers/redis-harness.js';
import { Ledger, checkLedger, randomInt, recordingLogger, sleep } from './lib/ledger.js';
import { FlakyProxy } from './lib/proxy.js';
import { RedisServer, redisServerVersion } from './lib/redis-server.js';
import { iterations, report } from './summary.js';

const version = redisServerVersion();
const KILL_ROUNDS = iterations(4, 25);
const DROPS = iterations(18, 144);

/** What the parts of this file ran, for the one report line. */
const tally = { serverKills: 0, killAcked: 0, drops: 0, names: 0, aclTests: 0, lost: 0, workerErrors: [] as string[] };

function waitForMore(worker: Worker, count: number, limitMs: number): Promise<void> {
  const target = worker.lines.length + count;
  const deadline = Date.now() + limitMs;
  return (async () => {
    while (worker.lines.length < target && worker.child.exitCode === null && Date.now() < deadline) await sleep(5);
  })();
}

/** The dropped reply, which must have happened by the time the call it belongs to returned. */
async function within<T>(dropped: Promise<T>): Promise<T> {
  const late = sleep(200).then(() => {
    throw new Error('no request matched: the store did not send the request this drop was armed for');
  });
  return Promise.race([dropped, late]);
}

function userMessage(text: string) {
  return { message: { role: 'user', content: [{ type: 'text', text }] } };
}

/** crabtalk's user_steered event carrying `content`. */
function steered(content: string) {
  return { event: 'user_steered', content, ts: new Date().toISOString() };
}

if (version === null) {
  if (process.env.CI === 'true') {
    describe('torture 8: redis faults', () => {
      it('has a redis-server binary to start', () => {
        throw new Error('no redis-server on PATH (CI=true): install Redis 7 or set REDIS_SERVER_BIN');
      });
    });
  } else {
    console.log('skipping the Redis fault tests: no redis-server binary on PATH (set REDIS_SERVER_BIN to run them).');
    describe.skip('torture 8: redis faults', () => {
      it('needs a redis-server binary', () => undefined);
    });
  }
} else {
  afterAll(() => {
    report({
      part: '8. redis faults',
      invariant:
        'acknowledged steps survive a SIGKILLed server; a retried write after a lost reply lands once; hostile names never collide or leave the prefix; conformance passes as a prefix-limited ACL user',
      tried:
        `${tally.serverKills} server SIGKILLs mid-append (${tally.killAcked} acknowledged steps checked); ` +
        `${tally.drops} replies dropped after execution; ${tally.names} hostile names and prefixes; ` +
        `the conformance suite as a prefix-limited ACL user (${tally.aclTests} tests run)`,
      iterations: KILL_ROUNDS + DROPS,
      faults: tally.serverKills + tally.drops,
      lost: tally.lost,
      notes:
        `${version.replace(/ sha=.*$/, '')}` +
        (tally.workerErrors.length > 0 ? `; ${tally.workerErrors.length} writes failed` : ''),
    });
  });

  describe('torture 8: redis faults', () => {
    let server: RedisServer;

    beforeAll(async () => {
      server = await RedisServer.start();
    });

    afterAll(async () => {
      await server?.destroy();
    });

    it(`a server SIGKILLed mid-append ${KILL_ROUNDS} times keeps every acknowledged step, byte-identical and once`, async () => {
      const prefix = 'kill:';
      const setup = await openRedisStore({ url: server.url, prefix, logger: quietLogger });
      const handles = [await setup.createSession('crab', 'tg:1'), await setup.createSession('crab', 'tg:2')];
      await setup.close();
      const ledger = new Ledger();
      for (const handle of handles) ledger.sessions.add(handle);
      const spec = { kind: 'redis' as const, url: server.url, prefix };

      for (let round = 0; round < KILL_ROUNDS; round++) {
        const workers = [0, 1, 2].map((w) =>
          startWorker(spec, {
            name: 'append-shared',
            handles,
            agent: 'crab',
            refreshEvery: 16,
            tag: `r${round}w${w}`,
            count: null,
            maxBatch: 5,
            pad: 300,
            eventsEvery: 4,
          }),
        );
        workers.push(startWorker(spec, { name: 'create-loop', agent: 'crab', senders: ['tg:1', 'cli'], count: null, delayMs: 10 }));
        await Promise.all(workers.map((worker) => waitForMore(worker, 1 + randomInt(30), 10_000)));
        await server.stop('SIGKILL');
        tally.serverKills += 1;
        await sleep(randomInt(300));
        await server.restart();
        // The writers retry across the restart (retryForMs 10 s) and go on.
        await Promise.all(workers.map((worker) => waitForMore(worker, 3, 10_000)));
        for (const worker of workers) worker.child.kill('SIGKILL');
        for (const [w, worker] of workers.entries()) {
          await worker.exited;
          ledger.absorb(`round ${round} worker ${w}`, worker.lines);
        }
        tally.workerErrors.push(...ledger.errors.splice(0).map((e) => `${e.worker} ${e.op}: ${e.error} ${e.message}`));
        expect(ledger.doubles, 'one step acknowledged twice').toEqual([]);

        const store = await openRedisStore({ url: server.url, prefix, logger: recordingLogger() });
        try {
          const { lost } = await checkLedger(store, ledger);
          tally.lost += lost.length;
          expect(lost, `round ${round}: acknowledged writes lost over a server SIGKILL`).toEqual([]);
          for (const { handle, meta } of await store.listSessions()) {
            const steps = await store.readSteps(handle);
            const texts = steps.map((s) => JSON.stringify(s.line));
            expect(new Set(texts).size, `round ${round}: ${handle} holds a step twice`).toBe(texts.length);
            expect(meta.message_count, `round ${round}: ${handle} counter moved with its steps`).toBe(liveCount(steps));
            expect((await store.loadSession(handle))!.diagnostics).toEqual([]);
          }
        } finally {
          await store.close();
        }
      }
      tally.killAcked = ledger.stepCount;
      // The server is back within a second and writers retry for 10 s (LOADING replies included), so no write may fail.
      expect(tally.workerErrors).toEqual([]);
    });

    it('a write sent while the restarted server still loads its AOF is retried until it can land, not failed', async () => {
      // Ballast, rewritten into the AOF's RDB base, which key-load-delay then makes slow to load.
      const admin = await server.admin();
      await admin.eval("for i = 1, 2000 do redis.call('SET', 'ballast:' .. i, string.rep('x', 1000)) end return 1", {
        keys: [],
        arguments: [],
      });
      await admin.bgRewriteAof();
      while (/aof_rewrite_in_progress:1|aof_rewrite_scheduled:1/.test(await admin.info('persistence'))) await sleep(20);
      await admin.close();
      const store = await openRedisStore({ url: server.url, prefix: 'loading:', logger: quietLogger });
      try {
        const handle = await store.createSession('crab', 'u');
        await server.stop('SIGKILL');
        tally.serverKills += 1;
        await server.restart({ args: ['--key-load-delay', '2000', '--loading-process-events-interval-bytes', '1024'], until: 'listening' });
        const probe = await server.admin();
        const loading = await probe.ping().then(
          () => false,
          (err: Error) => /LOADING/.test(err.message),
        );
        await probe.close();
        expect(loading, 'the write is sent while the server still loads').toBe(true);
        const started = Date.now();
        const appended = await store.appendMessages(handle, [userMessage('sent while loading')]).then(
          (steps) => steps,
          (err: Error) => err,
        );
        expect(appended, `after ${Date.now() - started} ms (the server was ${loading ? 'still loading' : 'ready'} before the call)`).toEqual([1]);
        expect((await store.readSteps(handle)).map((s) => s.line)).toEqual([userMessage('sent while loading')]);
      } finally {
        await store.close();
        // Back to a server without the load delay for the tests that follow.
        await server.stop('SIGTERM');
        await server.restart();
        const cleanup = await server.admin();
        await cleanup.flushAll();
        await cleanup.close();
      }
    });

    it(`${DROPS} replies lost after the server executed the request: every retried write lands exactly once`, async () => {
      const proxy = await FlakyProxy.start(server.port);
      const logger = recordingLogger();
      const store = await openRedisStore({ url: proxy.url, prefix: 'drop:', retryForMs: 5000, logger });
      try {
        const handle = await store.createSession('crab', 'tg:1');
        // Warm-up: every script once, so the server has them cached and the dropped replies are the scripts' own.
        await store.appendMessages(handle, [userMessage('warm-up')]);
        await store.appendEvents(handle, [steered('warm-up')]);
        await store.compact(handle, 'warm-up summary');
        await store.deleteSession(await store.createSession('crab', 'warm-up'));
        const connectionsBefore = proxy.connections;
        let lost = 0;
        const ops = ['append', 'batch', 'events', 'create', 'compact', 'claim', 'delete', 'list', 'read'] as const;

        for (let i = 0; i < DROPS; i++) {
          const op = ops[i % ops.length]!;
          const marker = `drop-${i}-${randomBytes(4).toString('hex')}`;
          const evalWith = (needle: string) => (args: string[]) => args[0] === 'EVALSHA' && args.some((a) => a.includes(needle));
          const count = async (content: string) =>
            (await store.readSteps(handle)).filter((s) => JSON.stringify(s.line).includes(content)).length;
          switch (op) {
            case 'append': {
              const dropped = proxy.dropReplyTo(evalWith(marker));
              const [step] = await store.appendMessages(handle, [userMessage(marker)]);
              const { reply } = await within(dropped);
              expect(reply, 'the lost reply was the script succeeding').toBe(`:${step}\r\n`);
              if ((await count(marker)) !== 1) lost += 1;
              expect(await count(marker)).toBe(1);
              break;
            }
            case 'batch': {
              const dropped = proxy.dropReplyTo(evalWith(marker));
              const steps = await store.appendMessages(handle, [0, 1, 2].map((j) => userMessage(`${marker}:${j}`)));
              expect((await within(dropped)).reply).toBe(`:${steps[0]}\r\n`);
              expect(steps).toEqual([steps[0]!, steps[0]! + 1, steps[0]! + 2]);
              for (const j of [0, 1, 2]) expect(await count(`${marker}:${j}`)).toBe(1);
              break;
            }
            case 'events': {
              const dropped = proxy.dropReplyTo(evalWith(marker));
              const [step] = await store.appendEvents(handle, [steered(marker)]);
              expect((await within(dropped)).reply).toBe(`:${step}\r\n`);
              expect(await count(marker)).toBe(1);
              break;
            }
            case 'create': {
              const sender = `Drop:${marker}`;
              const dropped = proxy.dropReplyTo(evalWith(JSON.stringify(sender)));
              const created = await store.createSession('crab', sender);
              expect((await within(dropped)).reply).toBe(':1\r\n');
              expect((await store.listSessions({ agent: 'crab', createdBy: sender })).map((s) => s.handle)).toEqual([created]);
              expect(await store.findLatestSession('crab', sender)).toBe(created);
              break;
            }
            case 'compact': {
              const summary = `summary ${marker}`;
              const dropped = proxy.dropReplyTo(evalWith(JSON.stringify(summary)));
              const archive = await store.compact(handle, summary);
              expect((await within(dropped)).reply).toMatch(/^:\d+\r\n$/);
              expect(await store.getArchive(archive)).toBe(summary);
              const markers = (await store.readSteps(handle)).filter((s) => (s.line as { archive_name?: string }).archive_name === archive);
              expect(markers, `one marker names ${archive}`).toHaveLength(1);
              expect((await store.loadSession(handle))!.archive).toBe(archive);
              break;
            }
            case 'claim': {
              // compact() first claims the archive's number in the base's directory; lose that reply.
              const summary = `summary ${marker}`;
              const dropped = proxy.dropReplyTo((args) => args[0] === 'EVALSHA' && args.some((a) => a.includes('{arc:')));
              const archive = await store.compact(handle, summary);
              expect((await within(dropped)).reply).toMatch(/^:\d+\r\n$/);
              expect(await store.getArchive(archive)).toBe(summary);
              const markers = (await store.readSteps(handle)).filter((s) => (s.line as { archive_name?: string }).archive_name === archive);
              expect(markers, `one marker names ${archive}`).toHaveLength(1);
              break;
            }
            case 'delete': {
              const victim = await store.createSession('crab', `del ${marker}`);
              await store.appendMessages(victim, [userMessage('to be deleted')]);
              await store.compact(victim, 'its summary');
              const metaKey = `{${victim.slice(0, victim.lastIndexOf('_'))}}:s:1:meta`;
              const dropped = proxy.dropReplyTo((args) => args[0] === 'EVALSHA' && args.some((a) => a.endsWith(metaKey)));
              expect(await store.deleteSession(victim), 'the retried delete reports the session deleted').toBe(true);
              await within(dropped);
              expect(await store.loadSession(victim)).toBeNull();
              expect(await store.deleteSession(victim)).toBe(false);
              break;
            }
            case 'list': {
              const dropped = proxy.dropReplyTo((args) => args[0] === 'ZREVRANGE');
              const listed = await store.listSessions({ agent: 'crab', createdBy: 'tg:1' });
              expect((await within(dropped)).reply.startsWith('*')).toBe(true);
              expect(listed.map((s) => s.handle)).toEqual([handle]);
              break;
            }
            case 'read': {
              await store.appendMessages(handle, [userMessage(marker)]);
              const expected = await store.loadSession(handle);
              const dropped = proxy.dropReplyTo((args) => args[0] === 'LRANGE');
              const snapshot = await store.loadSession(handle);
              expect((await within(dropped)).reply.startsWith('*')).toBe(true);
              expect(snapshot).toEqual(expected);
              expect(snapshot!.diagnostics).toEqual([]);
              expect(snapshot!.history.at(-1)).toEqual(userMessage(marker));
              break;
            }
          }
          tally.drops += 1;
        }
        expect(proxy.drops).toBe(DROPS);
        expect(proxy.connections - connectionsBefore, 'every drop was followed by a reconnect').toBeGreaterThanOrEqual(DROPS);

        // Across all of it: no step twice, and the counter is exactly crabtalk's count of the live conversation.
        const steps = await store.readSteps(handle);
        const texts = steps.map((s) => JSON.stringify(s.line));
        expect(new Set(texts).size).toBe(texts.length);
        expect((await store.loadSession(handle))!.meta.message_count).toBe(liveCount(steps));
        const repaired = await store.repair();
        expect(repaired.countersFixed).toEqual([]);
        expect(repaired.danglingMarkers).toEqual([]);
        expect(logger.warnings).toEqual([]);
        tally.lost += lost;
      } finally {
        await store.close();
        await proxy.close();
      }
    });

    describe('hostile names', () => {
      // Each test starts on an empty server, so "every key" means this test's keys.
      beforeEach(async () => {
        const admin = await server.admin();
        await admin.flushAll();
        await admin.close();
      });

      const agents = ['a:b', 'a*b', 'a?b', 'a[b]', 'a\\b', 'a{b}', 'a}b{', 'A:B', 'a:*?[]\\{}b', '{a}:b'];
      const senders = ['u:1', 'u*1', 'u?1', 'u[1]', 'u\\1', 'u{1}', '}u{1'];

      it('agents and senders with : * ? [ ] \\ { } give distinct sessions that never see each other, all keys inside the prefix', async () => {
        const prefix = 'names:';
        const store = await openRedisStore({ url: server.url, prefix, logger: quietLogger });
        try {
          const pairs = agents.flatMap((agent) => senders.map((sender) => ({ agent, sender })));
          // Shuffled, so the seqs of colliding slugs are not in name order.
          pairs.sort(() => Math.random() - 0.5);
          const handles = new Map<string, string>();
          const archives = new Map<string, string>();
          for (const { agent, sender } of pairs) {
            const key = JSON.stringify([agent, sender]);
            const handle = await store.createSession(agent, sender);
            handles.set(key, handle);
            await store.appendMessages(handle, [userMessage(`from ${key}`)]);
            archives.set(key, await store.compact(handle, `summary of ${key}`));
            await store.appendMessages(handle, [userMessage(`after ${key}`)]);
          }
          tally.names += pairs.length;
          expect(new Set(handles.values()).size, 'one session per pair').toBe(pairs.length);
          expect(new Set(archives.values()).size, 'one archive per pair').toBe(pairs.length);

          for (const { agent, sender } of pairs) {
            const key = JSON.stringify([agent, sender]);
            const handle = handles.get(key)!;
            expect(await store.findLatestSession(agent, sender)).toBe(handle);
            const snapshot = (await store.loadSession(handle, { withArchive: true }))!;
            expect(snapshot.meta.agent).toBe(agent);
            expect(snapshot.meta.created_by).toBe(sender);
            expect(snapshot.history).toEqual([userMessage(`after ${key}`)]);
            expect(snapshot.archiveContent).toBe(`summary of ${key}`);
            expect((await store.readSteps(handle)).map((s) => s.line)).toEqual([
              userMessage(`from ${key}`),
              { archive_name: archives.get(key), archived_at: expect.any(String) },
              userMessage(`after ${key}`),
            ]);
            expect((await store.listSessions({ agent, createdBy: sender })).map((s) => s.handle)).toEqual([handle]);
          }
          for (const agent of agents) {
            const listed = await store.listSessions({ agent });
            expect(listed.map((s) => s.handle).sort()).toEqual(
              senders.map((sender) => handles.get(JSON.stringify([agent, sender]))!).sort(),
            );
          }
          expect(await store.listSessions()).toHaveLength(pairs.length);

          // Deleting half leaves the other half, colliding slugs included, untouched.
          const [gone, kept] = [pairs.slice(0, pairs.length / 2), pairs.slice(pairs.length / 2)];
          for (const { agent, sender } of gone) expect(await store.deleteSession(handles.get(JSON.stringify([agent, sender]))!)).toBe(true);
          for (const { agent, sender } of kept) {
            const key = JSON.stringify([agent, sender]);
            expect((await store.loadSession(handles.get(key)!))!.history).toEqual([userMessage(`after ${key}`)]);
            expect(await store.getArchive(archives.get(key)!)).toBe(`summary of ${key}`);
          }
          for (const { agent, sender } of gone) expect(await store.getArchive(archives.get(JSON.stringify([agent, sender]))!)).toBeNull();

          const keys = await server.allKeys();
          expect(keys.length).toBeGreaterThan(0);
          expect(keys.filter((key) => !key.startsWith(prefix)), 'keys outside the prefix').toEqual([]);
          const repaired = await store.repair();
          expect(repaired.sessions).toBe(kept.length);
          const { sessions, dryRun, ...lists } = repaired;
          for (const [name, list] of Object.entries(lists)) expect(list, `repair ${name}`).toEqual([]);
        } finally {
          await store.close();
          await deleteKeys(server.url, prefix);
        }
      });

      it('a prefix with glob characters (* ? [ ] \\) never reaches the keys of a prefix its pattern would match', async () => {
        // Unescaped, `g*:*`, `g?:*`, `g[x]:*` and `g\x:*` all match the keys of `gx:`.
        const prefixes = ['gx:', 'g*:', 'g?:', 'g[x]:', 'g\\x:'];
        const stores: Store[] = [];
        try {
          for (const prefix of prefixes) stores.push(await openRedisStore({ url: server.url, prefix, logger: quietLogger }));
          // The same handles under every prefix, each with its counter drifted by hand and an orphan archive.
          for (const [i, store] of stores.entries()) {
            const handle = await store.createSession('crab', 'u');
            await store.appendMessages(handle, [userMessage(`under ${prefixes[i]}`)]);
            await store.compact(handle, `summary under ${prefixes[i]}`);
            const meta = (await store.loadSession(handle))!.meta;
            await store.updateMeta(handle, { ...meta, message_count: 40 + i });
            await store.importArchive('crab-gone-1-1', { owner: 'crab_gone_1', content: `orphan under ${prefixes[i]}` });
          }
          // Each repair fixes exactly its own prefix; the others keep their drift until their own repair.
          for (const [i, store] of stores.entries()) {
            const repaired = await store.repair();
            expect(repaired.sessions, `sessions seen by the repair of ${prefixes[i]}`).toBe(1);
            expect(repaired.countersFixed).toEqual([{ handle: 'crab_u_1', from: 40 + i, to: 1 }]);
            expect(repaired.orphanArchivesRemoved).toEqual(['crab-gone-1-1']);
            for (const other of stores.slice(i + 1)) {
              expect((await other.loadSession('crab_u_1'))!.meta.message_count).toBeGreaterThanOrEqual(40);
              // Its orphan is still there for its own repair to find.
              expect((await other.repair({ dryRun: true })).orphanArchivesRemoved).toEqual(['crab-gone-1-1']);
            }
          }
          for (const [i, store] of stores.entries()) {
            const snapshot = (await store.loadSession('crab_u_1', { withArchive: true }))!;
            expect(snapshot.history).toEqual([]);
            expect(snapshot.archiveContent).toBe(`summary under ${prefixes[i]}`);
            expect(snapshot.meta.message_count).toBe(1);
          }
          const keys = await server.allKeys();
          for (const key of keys) expect(prefixes.some((p) => key.startsWith(p)), key).toBe(true);
          tally.names += prefixes.length;
        } finally {
          await Promise.all(stores.map((store) => store.close()));
          // deleteKeys matches a glob: only the literal prefix's own keys go, by their exact names.
          const admin = await server.admin();
          const all = await server.allKeys();
          if (all.length > 0) await admin.del(all.filter((key) => prefixes.some((p) => key.startsWith(p))));
          await admin.close();
        }
      });
    });
  });

  describe('torture 8: the conformance suite as an ACL user limited to the prefix', () => {
    const USER = 'stepstore';
    const PASSWORD = randomBytes(12).toString('hex');
    const KEY_PREFIX = 'acl:';
    // Exactly the commands src/backends/redis sends and its scripts call, nothing else.
    const COMMANDS = [
      'evalsha', 'eval', 'exists', 'get', 'set', 'incr', 'del',
      'hget', 'hgetall', 'hset', 'hdel', 'hincrby',
      'llen', 'lrange', 'ltrim', 'rpush', 'sadd', 'smembers', 'srem',
      'zadd', 'zcard', 'zrange', 'zrevrange', 'zrem', 'zremrangebyrank', 'zscore',
      'scan',
    ];
    let server: RedisServer;
    let url = '';

    beforeAll(async () => {
      server = await RedisServer.start();
      const admin = await server.admin();
      await admin.sendCommand([
        'ACL', 'SETUSER', USER, 'reset', 'on', `>${PASSWORD}`, `~${KEY_PREFIX}*`, 'resetchannels', '-@all',
        ...COMMANDS.map((c) => `+${c}`),
      ]);
      await admin.set('outside:secret', 'not for the store');
      await admin.close();
      url = server.urlFor(USER, PASSWORD);
    });

    afterAll(async () => {
      await server?.destroy();
    });

    it('the ACL user really is limited: a key outside its prefix and a command it was not given are refused', async () => {
      const outside = await openRedisStore({ url, prefix: 'outside:', logger: quietLogger });
      try {
        const err = await outside.createSession('crab', 'u').then(
          () => null,
          (e: unknown) => e as Error & { code?: string },
        );
        expect(err?.code).toBe('IO_ERROR');
        expect(err?.message).toMatch(/NOPERM/);
      } finally {
        await outside.close();
      }
      const inside = await openRedisStore({ url, prefix: `${KEY_PREFIX}probe:`, logger: quietLogger });
      try {
        const handle = await inside.createSession('crab', 'u');
        expect(await inside.appendMessages(handle, [userMessage('hello')])).toEqual([1]);
        expect((await inside.repair()).sessions).toBe(1);
      } finally {
        await inside.close();
        await deleteKeys(url, `${KEY_PREFIX}probe:`);
      }
      const admin = await server.admin();
      expect(await admin.get('outside:secret')).toBe('not for the store');
      const denied = await admin.sendCommand(['ACL', 'DRYRUN', USER, 'FLUSHALL']);
      expect(String(denied)).toMatch(/no permissions/);
      await admin.close();
      tally.aclTests += 1;
    });

    const aclHarness = redisHarness(url, KEY_PREFIX, () => {
      tally.aclTests += 1;
    });
    runConformance('redis as an ACL user', aclHarness);
  });
}
