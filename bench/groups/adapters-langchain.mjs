// The adapters group's LangChain scenarios: StepstoreChatMessageHistory (fs
// at full, Redis) next to @langchain/core's InMemoryChatMessageHistory and
// @langchain/redis's RedisChatMessageHistory (an LPUSH per message, LRANGE
// of the whole list on read) on the same Redis server. A turn is
// addMessages([human, ai]); a resume is open + getMessages().

import { InMemoryChatMessageHistory } from '@langchain/core/chat_history';
import { AIMessage, HumanMessage, mapChatMessagesToStoredMessages } from '@langchain/core/messages';
import { check } from '../lib/harness.mjs';
import { WARM_SAVES, AGENT, ANSWER_CHARS, REDIS_BASE, REDIS_URL, USER_CHARS, measured, onStepstore, prepareOn, stepstoreBackends, text } from './adapters-common.mjs';

const { StepstoreChatMessageHistory } = await import('../../dist/adapters/langchain.js');

/** @langchain/redis is optional here: without it the Redis baseline is left out. */
let RedisChatMessageHistory = null;
try {
  ({ RedisChatMessageHistory } = await import('@langchain/redis'));
} catch {
  // not installed
}

const turnMessages = (i) => [new HumanMessage({ content: text('h', i, USER_CHARS) }), new AIMessage({ content: text('a', i, ANSWER_CHARS), id: `run-${i}` })];

function historyMessages(n) {
  const list = [];
  for (let i = 0; list.length < n; i++) list.push(...turnMessages(i));
  return list.slice(0, n);
}

let turns = 1_000_000;

const textOf = (message) => String(message.content).split(':')[0];

/** The history holds n messages plus the turns written, the newest last. */
function expectTurns(messages, n, turnIds) {
  check(messages.length === n + 2 * turnIds.length, `history holds ${messages.length} messages, expected ${n + 2 * turnIds.length}`);
  check(textOf(messages.at(-1)) === `a${turnIds.at(-1)}`, `newest message is ${textOf(messages.at(-1))}, expected a${turnIds.at(-1)}`);
}

function expectHistory(messages, expected) {
  check(messages.length === expected.length, `resume got ${messages.length} messages, expected ${expected.length}`);
  check(messages.at(-1).content === expected.at(-1).content && messages.at(-1).getType() === expected.at(-1).getType(), 'resume: the newest message differs');
  check(messages[0].content === expected[0].content, 'resume: the oldest message differs');
}

export default {
  id: 'langchain',
  title: 'LangChain chat message history',
  turnUnit: 'turn (human + AI message)',
  /** addMessages appends the turn's messages: its cost should not grow with the history. */
  flatSave: true,
  async setup(env, { sizes, withRedis }) {
    const backends = stepstoreBackends(env, 'langchain', withRedis);
    const histories = new Map(sizes.map((n) => [n, historyMessages(n)]));
    for (const b of backends) {
      await prepareOn(b, async (store) => {
        for (const n of sizes) {
          for (const role of ['save', 'resume']) {
            const history = await StepstoreChatMessageHistory.open(store, { agent: AGENT, sessionId: `${role}-${n}` });
            const messages = histories.get(n);
            for (let i = 0; i < messages.length; i += 500) await history.addMessages(messages.slice(i, i + 500));
          }
        }
      });
    }
    const inMemory = new Map(sizes.map((n) => [n, new InMemoryChatMessageHistory([...histories.get(n)])]));
    const state = { backends, histories, inMemory, redis: null };
    if (withRedis && RedisChatMessageHistory === null) env.warn('adapters: langchain: @langchain/redis is not installed, its RedisChatMessageHistory baseline is left out');
    if (withRedis && RedisChatMessageHistory !== null) {
      // One config object: @langchain/redis keeps one client per config object.
      const config = { url: REDIS_URL };
      const open = (key) => {
        const history = new RedisChatMessageHistory({ sessionId: `${REDIS_BASE}lc-redis:${key}`, config });
        return history;
      };
      const first = open('probe');
      first.client.on('error', () => undefined);
      state.redis = { config, open, client: first.client };
      for (const n of sizes) {
        for (const role of ['save', 'resume']) await open(`${role}-${n}`).addMessages(histories.get(n));
      }
    }
    return state;
  },
  async teardown(state) {
    if (state.redis?.client.isOpen) await state.redis.client.quit();
  },
  historyOf: (state, n) => mapChatMessagesToStoredMessages(state.histories.get(n)),
  saveVariants(state, n, reps) {
    const nextTurn = (s) => {
      const id = ++turns;
      s.turnIds.push(id);
      return turnMessages(id);
    };
    const variants = state.backends.map((b) => ({
      id: b.id,
      label: `${b.label}: StepstoreChatMessageHistory.addMessages([human, ai])`,
      run: onStepstore(b, reps, {
        warm: WARM_SAVES,
        bytes: true,
        session: (store) => store.findLatestSession(AGENT, `save-${n}`),
        async prepare(s) {
          s.history ??= await StepstoreChatMessageHistory.open(s.store, { handle: s.handle });
          s.turnIds ??= [];
          return nextTurn(s);
        },
        op: (s, messages) => s.history.addMessages(messages),
        after: async (s) => expectTurns(await s.history.getMessages(), n, s.turnIds),
      }),
    }));
    variants.push({
      id: 'memory',
      label: 'InMemoryChatMessageHistory.addMessages([human, ai]) (@langchain/core)',
      run: measured(reps, {
        warm: WARM_SAVES,
        open: () => ({ history: new InMemoryChatMessageHistory([...state.histories.get(n)]), turnIds: [] }),
        prepare: nextTurn,
        op: (s, messages) => s.history.addMessages(messages),
        after: async (s) => expectTurns(await s.history.getMessages(), n, s.turnIds),
      }),
    });
    if (state.redis) {
      variants.push({
        id: 'langchain-redis',
        label: 'RedisChatMessageHistory.addMessages([human, ai]) (@langchain/redis, LPUSH each)',
        run: measured(reps, {
          warm: WARM_SAVES,
          open: () => ({ history: state.redis.open(`save-${n}`), turnIds: [] }),
          prepare: nextTurn,
          op: (s, messages) => s.history.addMessages(messages),
          async after(s) {
            expectTurns(await s.history.getMessages(), n, s.turnIds);
            // Back to n messages (the newest are at the head of its list), untimed.
            await s.history.client.lTrim(s.history.sessionId, 2 * s.turnIds.length, -1);
            check((await s.history.client.lLen(s.history.sessionId)) === n, 'the Redis baseline list was not trimmed back');
          },
        }),
      });
    }
    return variants;
  },
  resumeVariants(state, n, reps) {
    const expected = state.histories.get(n);
    const variants = state.backends.map((b) => ({
      id: b.id,
      label: `${b.label}: StepstoreChatMessageHistory.open + getMessages()`,
      run: onStepstore(b, reps, {
        stats: true,
        op: async (s) => (await StepstoreChatMessageHistory.open(s.store, { agent: AGENT, sessionId: `resume-${n}` })).getMessages(),
        after: (_s, results) => results.forEach((messages) => expectHistory(messages, expected)),
      }),
    }));
    variants.push({
      id: 'memory',
      label: 'InMemoryChatMessageHistory.getMessages() (in memory)',
      run: measured(reps, {
        open: () => ({}),
        op: () => state.inMemory.get(n).getMessages(),
        after: (_s, results) => results.forEach((messages) => expectHistory(messages, expected)),
      }),
    });
    if (state.redis) {
      variants.push({
        id: 'langchain-redis',
        label: 'new RedisChatMessageHistory + getMessages() (@langchain/redis, LRANGE of the list)',
        run: measured(reps, {
          open: () => ({}),
          op: () => state.redis.open(`resume-${n}`).getMessages(),
          after: (_s, results) => results.forEach((messages) => expectHistory(messages, expected)),
        }),
      });
    }
    return variants;
  },
};
