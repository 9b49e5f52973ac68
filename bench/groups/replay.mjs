// Bounded replay: a long session with a compact marker near its end; a load
// must read only the tail after the marker, not the whole directory.

import path from 'node:path';
import { openStore } from '../../dist/index.js';
import { check, countingLogger } from '../lib/harness.mjs';
import { readStepsSync, readTailSync, repeated } from '../lib/floors.mjs';
import { messages, textOf } from '../lib/payload.mjs';
import { prepareSession } from './load.mjs';

const ARCHIVE = 'bench-archive';

export default {
  id: 'replay',
  title: 'Bounded replay: compact marker near the end of a long session',
  async setup(env) {
    const { replaySteps: total, replayTail: tail } = env.params;
    const root = path.join(env.dir('replay', 'prep'), 'root');
    const head = messages(total - tail - 1, 'H');
    const live = messages(tail, 'T');
    const handle = await prepareSession(root, 'bench', 'replay', [{ items: head }, { marker: ARCHIVE }, { items: live }]);
    const state = { root, handle, live, total, dir: path.join(root, handle) };
    for (const s of this.scenarios(state, env)) for (const item of [...s.floors, ...s.variants]) await env.warm(item.run, 'replay', 'warmup');
    return state;
  },
  scenarios(state, env) {
    const { root, handle, live, total, dir } = state;
    const tail = live.length;
    const reps = env.params.replayReps;
    return [
      {
        id: `replay-${total}`,
        title: `${total} steps, compact marker ${tail} steps from the end`,
        unit: 'load',
        note: `time per load; loadSession and the tail read repeated ${reps}x per round`,
        meter: true,
        floors: [
          {
            id: 'full-read',
            label: `full read: readdirSync + read + parse all ${total} steps`,
            run: repeated(1, () => readStepsSync(dir), (all) => check(all.length === total, `full read got ${all.length}`)),
          },
          {
            id: 'tail-read',
            label: `readdirSync + read + parse the ${tail} tail steps`,
            run: repeated(reps, () => readTailSync(dir, tail), (got) => {
              check(got.length === tail && textOf(got[tail - 1]) === textOf(live[tail - 1]), 'tail read differs');
            }),
          },
        ],
        variants: [
          {
            id: 'loadSession',
            label: 'loadSession',
            ref: ['full-read', 'tail-read'],
            targets: [
              { kind: 'ratio', ref: 'full-read', max: 0.1 },
              { kind: 'ratio', ref: 'tail-read', max: 2 },
            ],
            run: async (ctx) => {
              const logger = countingLogger();
              const store = await openStore({ dir: root, durability: 'full', logger });
              const result = await repeated(reps, () => store.loadSession(handle), (snap) => {
                check(snap.history.length === tail, `loadSession returned ${snap.history.length} entries, expected ${tail}`);
                check(snap.archive === ARCHIVE, `archive ${snap.archive}, expected ${ARCHIVE}`);
                check(textOf(snap.history[0]) === textOf(live[0]), 'first live entry differs');
                check(textOf(snap.history[tail - 1]) === textOf(live[tail - 1]), 'last live entry differs');
                check(logger.warnings === 0, `store warned: ${logger.first}`);
                const st = store.stats();
                return { info: { stepsReadPerLoad: st.stepsRead / reps } };
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
