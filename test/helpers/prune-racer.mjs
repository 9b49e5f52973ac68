// A child process for the prune race (test/conformance/prune.ts): opens the
// store described by argv[2] (a WorkerStoreSpec), prints `{ ready }`, then for
// each stdin line `{ id, handle, delayMs }` waits delayMs, appends one message
// to handle and prints `{ id, acked, tAck }` (tAck: process.hrtime, in ns, the
// machine-wide monotonic clock) or `{ id, acked: false, code }`.

import readline from 'node:readline';

const spec = JSON.parse(process.argv[2]);
const store =
  spec.kind === 'fs'
    ? await (await import('stepstore')).openStore({ dir: spec.dir, durability: spec.durability, logger: { warn() {} } })
    : await (await import('./redis-spec.mjs')).openRedisFromSpec(spec);
const say = (line) => process.stdout.write(JSON.stringify(line) + '\n');
say({ ready: true });

const pending = [];
for await (const text of readline.createInterface({ input: process.stdin })) {
  const { id, handle, delayMs } = JSON.parse(text);
  pending.push(
    (async () => {
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      try {
        await store.appendMessages(handle, [{ message: { role: 'user', content: [{ type: 'text', text: `race ${id}` }] } }]);
        say({ id, acked: true, tAck: String(process.hrtime.bigint()) });
      } catch (err) {
        say({ id, acked: false, code: err.code ?? String(err) });
      }
    })(),
  );
}
await Promise.all(pending);
await (spec.kind === 'fs' ? store.close() : (await import('./redis-spec.mjs')).closeRedisFromSpec(store));
