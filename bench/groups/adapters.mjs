// Framework adapters: the cost of one turn's save and of a resume through
// each adapter (stepstore on fs at full and on Redis), next to what each
// framework offers or recommends instead, on sessions that already hold a
// small and a large history. A store that appends a turn should cost the same
// at both sizes; one that rewrites the whole list grows with it. Each
// adapter's scenarios live in adapters-<framework>.mjs; an adapter whose
// module fails to load is skipped with a warning.

import path from 'node:path';
import { fdatasyncFloor } from '../lib/floors.mjs';
import { REDIS_URL, WARM_SAVES, fmt, readParseFloor, redisAnswers, removeRedisKeys, writeHistoryFile } from './adapters-common.mjs';

/**
 * The adapters in table order; each module default-exports { id, title, turnUnit, setup(env, { sizes, withRedis }),
 * historyOf(state, n), saveVariants(state, n, reps), resumeVariants(state, n, reps), flatSave?, saveNote?, resumeNote?, teardown? }.
 */
const ADAPTERS = ['openai-agents', 'langchain', 'langgraph', 'ai-sdk'];

/** A stepstore save at the largest size may cost at most this much times the same save at the smallest (where the adapter appends only the turn). */
const FLAT_SAVE_MAX = 1.5;
/** Appends per run of the fdatasync floor: enough that one slow flush does not make the round's floor. */
const FLOOR_APPENDS = 20;

async function loadAdapters(env) {
  const loaded = [];
  for (const id of ADAPTERS) {
    try {
      loaded.push((await import(`./adapters-${id}.mjs`)).default);
    } catch (err) {
      env.warn(`adapters: ${id} skipped: its module did not load (${err?.message ?? err})`);
    }
  }
  return loaded;
}

export default {
  id: 'adapters',
  title: 'Framework adapters: one turn\'s save and a resume, small and large history, vs the frameworks\' own stores',
  /** A round is ~100 runs, each followed by a `sync`: 5 rounds unless --rounds says otherwise. */
  maxRounds: 5,
  async setup(env) {
    const { adapterSizes: sizes } = env.params;
    const withRedis = await redisAnswers();
    if (!withRedis) env.warn(`adapters: Redis variants skipped: no Redis server at ${REDIS_URL} (start redis-server or set REDIS_URL)`);
    const floorDir = env.dir('adapters', 'floor-files');
    const adapters = [];
    try {
      for (const adapter of await loadAdapters(env)) {
        let state;
        try {
          state = await adapter.setup(env, { sizes, withRedis });
        } catch (err) {
          env.warn(`adapters: ${adapter.id} skipped: its setup failed (${err?.message ?? err})`);
          continue;
        }
        const files = new Map(sizes.map((n) => [n, writeHistoryFile(floorDir, `${adapter.id}-${n}.json`, adapter.historyOf(state, n))]));
        adapters.push({ adapter, state, files });
      }
    } catch (err) {
      if (withRedis) await removeRedisKeys();
      throw err;
    }
    const state = { sizes, withRedis, adapters };
    // One untimed pass warms the JIT and the page cache; a smoke run (--quick) skips it to stay under a minute.
    if (!env.quick) {
      for (const s of this.scenarios(state, env)) {
        for (const item of [...s.floors, ...s.variants]) await env.warm(item.run, 'adapters', 'warmup');
      }
    }
    return state;
  },
  async teardown(state) {
    for (const { adapter, state: adapterState } of state.adapters) await adapter.teardown?.(adapterState);
    if (state.withRedis) await removeRedisKeys();
  },
  scenarios(state, env) {
    const { adapterSaveReps: saveReps, adapterResumeReps: resumeReps } = env.params;
    const smallest = Math.min(...state.sizes);
    const where = `stepstore on fs at full${state.withRedis ? ` and on Redis at ${REDIS_URL}` : ''}`;
    const out = [];
    for (const { adapter, state: adapterState, files } of state.adapters) {
      for (const n of state.sizes) {
        const variants = adapter.saveVariants(adapterState, n, saveReps).map((v) => ({ ref: 'fdatasync', ...v }));
        if (adapter.flatSave && n !== smallest) {
          for (const v of variants) {
            // The first save after openStore lists the session's directory once: it grows with the history by design.
            if (v.id.startsWith('stepstore-') && !v.id.endsWith('-first')) v.targets = [{ kind: 'vs', scenario: `${adapter.id}-save-${smallest}`, max: FLAT_SAVE_MAX }];
          }
        }
        out.push({
          id: `${adapter.id}-save-${n}`,
          title: `${adapter.title}: save one ${adapter.turnUnit} into a history of ${fmt(n)} messages (${where})`,
          unit: 'turn',
          note: `time per turn; ${saveReps} turns per run, each timed on its own, the history growing by each, after ${WARM_SAVES} untimed; one store (or framework store) per run, opened untimed (the first save after openStore is the openai-agents '-first' row); stepstore sessions are rewound to ${fmt(n)} messages after each run, untimed; written = this process's write_bytes (/proc/self/io) over the timed call (rows writing files in this process only: Redis writes in its own)${adapter.saveNote ? `; ${adapter.saveNote}` : ''}`,
          floors: [{ id: 'fdatasync', short: 'fdatasync', label: 'floor: write + fdatasync of ~1 KB to one open file', run: fdatasyncFloor(FLOOR_APPENDS) }],
          variants,
        });
      }
      for (const n of state.sizes) {
        out.push({
          id: `${adapter.id}-resume-${n}`,
          title: `${adapter.title}: resume a history of ${fmt(n)} messages (${where})`,
          unit: 'resume',
          note: `time per resume; ${resumeReps} per run; stores opened untimed (a server keeps its store open); steps read = store.stats().stepsRead per call${adapter.resumeNote ? `; ${adapter.resumeNote}` : ''}`,
          floors: [
            {
              id: 'read',
              short: 'read + parse',
              label: `floor: readFileSync + JSON.parse of the same ${fmt(n)} messages in one file (${path.basename(files.get(n))})`,
              run: readParseFloor(files.get(n), 2 * resumeReps, n),
            },
          ],
          variants: adapter.resumeVariants(adapterState, n, resumeReps).map((v) => ({ ref: 'read', ...v })),
        });
      }
    }
    return out;
  },
};
