// Memory a store keeps per session of its root once its first lookup has run,
// measured in a fresh Node process so nothing earlier in the benchmark is
// resident. Usage: node --expose-gc heap-probe.mjs '{"root", "agent", "createdBy", "expected"}';
// prints one JSON line. Growth = heapUsed + arrayBuffers after gc, from
// before openStore to after the first findLatestSession (which builds the index).

import fs from 'node:fs';
import { openStore } from '../../dist/index.js';

const args = JSON.parse(process.argv[2]);
const sessions = fs.readdirSync(args.root).filter((name) => !name.startsWith('.')).length;

const settle = async () => {
  globalThis.gc?.();
  globalThis.gc?.();
  await new Promise((resolve) => setTimeout(resolve, 20));
  globalThis.gc?.();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, buffers: m.arrayBuffers };
};

const before = await settle();
const store = await openStore({ dir: args.root, durability: 'full', logger: { warn() {} } });
const found = await store.findLatestSession(args.agent, args.createdBy);
const after = await settle();
const out = {
  sessions,
  found,
  heapGrowth: after.heap - before.heap,
  bufferGrowth: after.buffers - before.buffers,
  bytesPerSession: (after.heap - before.heap + after.buffers - before.buffers) / sessions,
};
await store.close();
process.stdout.write(JSON.stringify(out) + '\n');
