// The adapters group's OpenAI Agents SDK scenarios: StepstoreSession (fs at
// full, Redis) next to the SDK's own MemorySession. A turn is the four items
// the runner hands addItems for a tool-using turn (user message,
// function_call, function_call_result, assistant message); a resume is
// StepstoreSession.open + getItems() (and getItems(20)).

import { MemorySession } from '@openai/agents-core';
import { check, countingLogger } from '../lib/harness.mjs';
import { WARM_SAVES, AGENT, ANSWER_CHARS, RESULT_CHARS, USER_CHARS, jsonCopy, measured, onStepstore, prepareOn, stepstoreBackends, text } from './adapters-common.mjs';

const { StepstoreSession } = await import('../../dist/adapters/openai-agents.js');

const TAIL = 20;

function turnItems(i) {
  const callId = `call_${i}`;
  return [
    { type: 'message', role: 'user', content: text('u', i, USER_CHARS) },
    { type: 'function_call', callId, name: 'get_weather', arguments: JSON.stringify({ city: `city ${i}` }), status: 'completed' },
    { type: 'function_call_result', callId, name: 'get_weather', status: 'completed', output: { type: 'text', text: text('r', i, RESULT_CHARS) } },
    { type: 'message', role: 'assistant', status: 'completed', id: `msg_${i}`, content: [{ type: 'output_text', text: text('a', i, ANSWER_CHARS) }] },
  ];
}

function historyItems(n) {
  const items = [];
  for (let i = 0; items.length < n; i++) items.push(...turnItems(i));
  return items.slice(0, n);
}

let turns = 1_000_000;

/** The call id of an item list's last function call: what checks compare. */
const lastCallId = (items) => items.findLast((item) => item.type === 'function_call')?.callId;

/**
 * The first save of a session after its store opens (on fs it lists the
 * session's directory once): each call gets a store of its own, opened untimed,
 * and closes it untimed before the next; the session is rewound after the run.
 */
function firstTurnRun(b, n, reps, expectTurns) {
  const sender = `save-${n}`;
  return measured(reps, {
    open: () => ({ store: null, logger: countingLogger(), turnIds: [], handle: null, base: 0 }),
    async prepare(s) {
      await s.store?.close();
      s.store = await b.open(s.logger);
      const session = await StepstoreSession.open(s.store, { agent: AGENT, sender });
      if (s.handle === null) {
        s.handle = await session.getSessionId();
        s.base = (await s.store.readSteps(s.handle, { last: 1 }))[0].step;
      }
      const id = ++turns;
      s.turnIds.push(id);
      return { session, items: turnItems(id) };
    },
    op: (_s, { session, items }) => session.addItems(items),
    async after(s) {
      expectTurns(await (await StepstoreSession.open(s.store, { handle: s.handle })).getItems(), s.turnIds);
      await s.store.rewind(s.handle, s.base);
      check((await s.store.readSteps(s.handle, { last: 1 }))[0].step === s.base, 'the session was not rewound');
      check(s.logger.warnings === 0, `store warned: ${s.logger.first}`);
    },
    close: (s) => s.store?.close(),
    bytes: b.backend === 'fs',
  });
}

export default {
  id: 'openai-agents',
  title: 'OpenAI Agents SDK session',
  turnUnit: 'turn (4 items)',
  /** addItems appends the turn's items: its cost should not grow with the history. */
  flatSave: true,
  async setup(env, { sizes, withRedis }) {
    const backends = stepstoreBackends(env, 'openai-agents', withRedis);
    const histories = new Map(sizes.map((n) => [n, historyItems(n)]));
    for (const b of backends) {
      await prepareOn(b, async (store) => {
        for (const n of sizes) {
          for (const role of ['save', 'resume']) {
            const session = await StepstoreSession.open(store, { agent: AGENT, sender: `${role}-${n}` });
            const items = histories.get(n);
            for (let i = 0; i < items.length; i += 500) await session.addItems(items.slice(i, i + 500));
          }
        }
      });
    }
    const memory = new Map(sizes.map((n) => [n, new MemorySession({ initialItems: histories.get(n) })]));
    return { backends, histories, memory };
  },
  historyOf: (state, n) => state.histories.get(n),
  saveVariants(state, n, reps) {
    const expectTurns = (items, turnIds) => {
      check(items.length === n + 4 * turnIds.length, `session holds ${items.length} items, expected ${n + 4 * turnIds.length}`);
      check(lastCallId(items) === `call_${turnIds.at(-1)}`, `last call ${lastCallId(items)}, expected call_${turnIds.at(-1)}`);
    };
    const variants = state.backends.map((b) => ({
      id: b.id,
      label: `${b.label}: StepstoreSession.addItems(turn)`,
      run: onStepstore(b, reps, {
        warm: WARM_SAVES,
        bytes: true,
        session: async (store) => (await StepstoreSession.open(store, { agent: AGENT, sender: `save-${n}` })).getSessionId(),
        async prepare(s) {
          s.session ??= await StepstoreSession.open(s.store, { handle: s.handle });
          s.turnIds ??= [];
          const id = ++turns;
          s.turnIds.push(id);
          return turnItems(id);
        },
        op: (s, items) => s.session.addItems(items),
        after: async (s) => expectTurns(await s.session.getItems(), s.turnIds),
      }),
    }));
    for (const b of state.backends) {
      variants.push({
        id: `${b.id}-first`,
        label: `${b.label}: the first addItems(turn) after openStore`,
        run: firstTurnRun(b, n, reps, expectTurns),
      });
    }
    variants.push({
      id: 'memory',
      label: 'MemorySession.addItems(turn) (@openai/agents-core, in memory)',
      run: measured(reps, {
        warm: WARM_SAVES,
        open: () => ({ session: new MemorySession({ initialItems: state.histories.get(n) }), turnIds: [] }),
        prepare(s) {
          const id = ++turns;
          s.turnIds.push(id);
          return turnItems(id);
        },
        op: (s, items) => s.session.addItems(items),
        after: async (s) => expectTurns(await s.session.getItems(), s.turnIds),
      }),
    });
    return variants;
  },
  resumeVariants(state, n, reps) {
    const expected = state.histories.get(n);
    const expectItems = (items, limit) => {
      const want = limit === undefined ? expected : expected.slice(-limit);
      check(items.length === want.length, `resume got ${items.length} items, expected ${want.length}`);
      check(JSON.stringify(items.at(-1)) === JSON.stringify(jsonCopy(want.at(-1))), 'resume: the newest item differs');
      check(JSON.stringify(items[0]) === JSON.stringify(jsonCopy(want[0])), 'resume: the oldest item differs');
    };
    const variants = [];
    for (const b of state.backends) {
      for (const limit of [undefined, TAIL]) {
        variants.push({
          id: limit === undefined ? b.id : `${b.id}-last${limit}`,
          label: `${b.label}: StepstoreSession.open + getItems(${limit ?? ''})`,
          run: onStepstore(b, reps, {
            stats: true,
            op: async (s) => (await StepstoreSession.open(s.store, { agent: AGENT, sender: `resume-${n}` })).getItems(limit),
            after: (_s, results) => results.forEach((items) => expectItems(items, limit)),
          }),
        });
      }
    }
    for (const limit of [undefined, TAIL]) {
      variants.push({
        id: limit === undefined ? 'memory' : `memory-last${limit}`,
        label: `MemorySession.getItems(${limit ?? ''}) (in memory)`,
        run: measured(reps, {
          open: () => ({}),
          op: () => state.memory.get(n).getItems(limit),
          after: (_s, results) => results.forEach((items) => expectItems(items, limit)),
        }),
      });
    }
    return variants;
  },
};
