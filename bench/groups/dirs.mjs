// Directories: a sessions root with many sessions; findLatestSession and
// listSessions against plain synchronous directory scans.
//
// The root is made outside timing: one session through the API (to confirm
// the layout), the rest copied with fs calls under canonical names
// `bench_user-{i}_1`, each with a meta like the one createSession writes
// (see src/backends/fs/paths.ts and the README's On-disk format section).

import fs from 'node:fs';
import path from 'node:path';
import { openStore } from '../../dist/index.js';
import { check, countingLogger } from '../lib/harness.mjs';
import { repeated } from '../lib/floors.mjs';

function listSync(root) {
  const out = [];
  for (const name of fs.readdirSync(root)) {
    if (name.startsWith('.')) continue;
    out.push({ handle: name, meta: JSON.parse(fs.readFileSync(path.join(root, name, 'meta'), 'utf8')) });
  }
  return out;
}

export default {
  id: 'dirs',
  title: 'Directories: a root with many sessions',
  async setup(env) {
    const count = env.params.dirSessions;
    const root = path.join(env.dir('dirs', 'prep'), 'root');
    const logger = countingLogger();
    let store = await openStore({ dir: root, durability: 'none', logger });
    const first = await store.createSession('bench', 'user-0');
    await store.close();
    check(first === 'bench_user-0_1', `API created ${first}, expected bench_user-0_1`);
    const template = JSON.parse(fs.readFileSync(path.join(root, first, 'meta'), 'utf8'));
    const keys = Object.keys(template).join(',');
    check(keys === 'agent,created_by,created_at,title,updated_at,message_count', `meta layout changed: ${keys}`);
    const base = Date.now() - (count + 1000) * 1000; // all older than the API-made session
    for (let i = 1; i < count; i++) {
      const dir = path.join(root, `bench_user-${i}_1`);
      fs.mkdirSync(dir, 0o700);
      const at = new Date(base + i * 1000).toISOString();
      const meta = { agent: 'bench', created_by: `user-${i}`, created_at: at, title: '', updated_at: at, message_count: 0 };
      fs.writeFileSync(path.join(dir, 'meta'), JSON.stringify(meta), { mode: 0o600 });
    }
    // The store must see them all, in its own order.
    store = await openStore({ dir: root, durability: 'none', logger });
    const listed = await store.listSessions();
    check(listed.length === count, `listSessions sees ${listed.length} of ${count}`);
    check(listed[0].handle === first && listed[1].handle === `bench_user-${count - 1}_1`, 'listSessions order is not newest first');
    const target = Math.floor(count / 2);
    check((await store.findLatestSession('bench', `user-${target}`)) === `bench_user-${target}_1`, 'findLatestSession misses a copied session');
    await store.close();
    check(logger.warnings === 0, `store warned: ${logger.first}`);
    const state = { root, count, target };
    for (const s of this.scenarios(state, env)) for (const item of [...s.floors, ...s.variants]) await env.warm(item.run, 'dirs', 'warmup');
    return state;
  },
  scenarios(state, env) {
    const { root, count, target } = state;
    const { findReps, listReps } = env.params;
    const expected = `bench_user-${target}_1`;
    return [
      {
        id: `find-${count}`,
        title: `findLatestSession among ${count} sessions`,
        unit: 'call',
        note: `${findReps} calls per round; p50/p99 per call`,
        floors: [
          {
            id: 'readdir',
            label: 'floor: one readdirSync of the root',
            run: repeated(findReps, () => fs.readdirSync(root), (names) => check(names.length >= count, `readdir saw ${names.length}`)),
          },
        ],
        variants: [
          {
            id: 'findLatestSession',
            label: `findLatestSession('bench', 'user-${target}')`,
            ref: 'readdir',
            targets: [{ kind: 'ratio', ref: 'readdir', max: 1.5 }],
            run: async (ctx) => {
              const store = await openStore({ dir: root, durability: 'full', logger: countingLogger() });
              const result = await repeated(findReps, () => store.findLatestSession('bench', `user-${target}`), (found) =>
                check(found === expected, `found ${found}, expected ${expected}`),
              )(ctx);
              await store.close();
              return result;
            },
          },
        ],
      },
      {
        id: `list-${count}`,
        title: `listSessions of ${count} sessions`,
        unit: 'call',
        note: `${listReps} calls per round; stall = longest gap of a 1 ms timer`,
        meter: true,
        floors: [
          {
            id: 'sync-list',
            label: 'floor: readdirSync + readFileSync + JSON.parse of each meta',
            run: repeated(listReps, () => listSync(root), (all) => check(all.length === count, `sync list saw ${all.length}`)),
          },
        ],
        variants: [
          {
            id: 'listSessions',
            label: 'listSessions()',
            ref: 'sync-list',
            targets: [
              { kind: 'ratio', ref: 'sync-list', max: 1.5 },
              { kind: 'stall', max: 20 },
            ],
            run: async (ctx) => {
              const logger = countingLogger();
              const store = await openStore({ dir: root, durability: 'full', logger });
              const result = await repeated(listReps, () => store.listSessions(), (all) => {
                check(all.length === count, `listSessions returned ${all.length}, expected ${count}`);
                check(all[1].handle === `bench_user-${count - 1}_1`, 'listSessions order');
                check(logger.warnings === 0, `store warned: ${logger.first}`);
              })(ctx);
              await store.close();
              return result;
            },
          },
        ],
      },
    ];
  },
};
