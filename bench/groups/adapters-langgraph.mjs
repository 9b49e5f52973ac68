// The adapters group's LangGraph scenarios: StepstoreSaver (fs at full,
// Redis) next to MemorySaver and SqliteSaver (a database file, WAL). A turn
// is put + putWrites of a checkpoint whose channel_values hold every message
// so far, as a MessagesAnnotation graph's checkpoints do (each checkpoint
// carries the whole state of the channels that changed); a resume is
// getTuple of the thread's latest checkpoint.

import path from 'node:path';
import { AIMessage, HumanMessage, mapChatMessagesToStoredMessages } from '@langchain/core/messages';
import { MemorySaver, uuid6 } from '@langchain/langgraph-checkpoint';
import { SqliteSaver } from '@langchain/langgraph-checkpoint-sqlite';
import { check } from '../lib/harness.mjs';
import { WARM_SAVES, ANSWER_CHARS, USER_CHARS, measured, onStepstore, prepareOn, stepstoreBackends, text } from './adapters-common.mjs';

const { StepstoreSaver } = await import('../../dist/adapters/langgraph.js');

/** StepstoreSaver's default agent: a thread's session is the latest of (THREAD_AGENT, thread id). */
const THREAD_AGENT = 'langgraph';

const turnMessages = (i) => [
  new HumanMessage({ content: text('h', i, USER_CHARS), id: `human-${i}` }),
  new AIMessage({ content: text('a', i, ANSWER_CHARS), id: `ai-${i}` }),
];

function historyMessages(n) {
  const list = [];
  for (let i = 0; list.length < n; i++) list.push(...turnMessages(i));
  return list.slice(0, n);
}

/** A checkpoint of `messages` at channel version `version`, as the Pregel loop writes one after a node ran. */
function checkpointOf(messages, version) {
  return {
    v: 4,
    id: uuid6(-1),
    ts: new Date().toISOString(),
    channel_values: { messages },
    channel_versions: { messages: version },
    versions_seen: { agent: { messages: version - 1 } },
  };
}

const metadataOf = (step) => ({ source: 'loop', step, parents: {} });
const threadConfig = (threadId) => ({ configurable: { thread_id: threadId } });

let turns = 1_000_000;

/** Puts the thread's first checkpoint, holding `messages`; returns the config naming it. */
async function seedThread(saver, threadId, messages) {
  return saver.put({ configurable: { thread_id: threadId, checkpoint_ns: '' } }, checkpointOf(messages, 1), metadataOf(0), { messages: 1 });
}

/** Untimed: the next turn's checkpoint (the messages so far and one human and one AI message more). */
function nextTurn(s) {
  const id = ++turns;
  const [human, ai] = turnMessages(id);
  s.messages = [...s.messages, human, ai];
  s.version += 1;
  s.turnIds.push(id);
  return { checkpoint: checkpointOf(s.messages, s.version), ai, taskId: `task-${id}` };
}

/** One turn: the checkpoint, then the node's write to it (what the next step reads). */
async function putTurn(saver, s, { checkpoint, ai, taskId }) {
  const config = await saver.put(s.config, checkpoint, metadataOf(s.version), { messages: s.version });
  await saver.putWrites(config, [['messages', [ai]]], taskId);
  s.config = config;
}

async function expectLatest(saver, threadId, n, newest) {
  const tuple = await saver.getTuple(threadConfig(threadId));
  const messages = tuple?.checkpoint.channel_values.messages;
  check(Array.isArray(messages) && messages.length === n, `latest checkpoint holds ${messages?.length} messages, expected ${n}`);
  check(String(messages.at(-1).content) === String(newest.content), 'latest checkpoint: the newest message differs');
  return tuple;
}

export default {
  id: 'langgraph',
  title: 'LangGraph checkpointer',
  turnUnit: 'step (put + putWrites of the whole message list)',
  saveNote: 'LangGraph stores each checkpoint\'s changed channels whole, so every saver writes the whole message list each turn; a fresh StepstoreSaver per run also refreshes the session\'s updated_at (a meta write) on its first put',
  async setup(env, { sizes, withRedis }) {
    const backends = stepstoreBackends(env, 'langgraph', withRedis);
    const histories = new Map(sizes.map((n) => [n, historyMessages(n)]));
    const seeds = new Map();
    for (const b of backends) {
      await prepareOn(b, async (store) => {
        const saver = new StepstoreSaver(store);
        for (const n of sizes) {
          for (const role of ['save', 'resume']) seeds.set(`${b.id}:${role}-${n}`, await seedThread(saver, `${role}-${n}`, histories.get(n)));
        }
      });
    }
    const memory = new MemorySaver();
    const sqliteDir = env.dir('adapters', 'langgraph', 'sqlite');
    const sqlite = SqliteSaver.fromConnString(path.join(sqliteDir, 'checkpoints.db'));
    for (const n of sizes) {
      await seedThread(memory, `resume-${n}`, histories.get(n));
      await seedThread(sqlite, `resume-${n}`, histories.get(n));
    }
    return { backends, histories, seeds, memory, sqlite };
  },
  async teardown(state) {
    state.sqlite.db.close();
  },
  historyOf: (state, n) => mapChatMessagesToStoredMessages(state.histories.get(n)),
  saveVariants(state, n, reps) {
    const threadId = `save-${n}`;
    const fresh = (config) => ({ messages: state.histories.get(n), version: 1, turnIds: [], config });
    const variants = state.backends.map((b) => ({
      id: b.id,
      label: `${b.label}: StepstoreSaver put + putWrites`,
      run: onStepstore(b, reps, {
        warm: WARM_SAVES,
        bytes: true,
        session: (store) => store.findLatestSession(THREAD_AGENT, threadId),
        prepare(s) {
          if (!s.saver) Object.assign(s, fresh(state.seeds.get(`${b.id}:${threadId}`)), { saver: new StepstoreSaver(s.store) });
          return nextTurn(s);
        },
        op: (s, turn) => putTurn(s.saver, s, turn),
        after: (s) => expectLatest(new StepstoreSaver(s.store), threadId, s.messages.length, s.messages.at(-1)),
      }),
    }));
    variants.push({
      id: 'memory',
      label: 'MemorySaver put + putWrites (in memory)',
      run: measured(reps, {
        warm: WARM_SAVES,
        async open() {
          const saver = new MemorySaver();
          return { saver, ...fresh(await seedThread(saver, threadId, state.histories.get(n))) };
        },
        prepare: nextTurn,
        op: (s, turn) => putTurn(s.saver, s, turn),
        after: (s) => expectLatest(s.saver, threadId, s.messages.length, s.messages.at(-1)),
      }),
    });
    variants.push({
      id: 'sqlite',
      label: 'SqliteSaver put + putWrites (@langchain/langgraph-checkpoint-sqlite, a file, WAL)',
      run: measured(reps, {
        warm: WARM_SAVES,
        async open(ctx) {
          const saver = SqliteSaver.fromConnString(path.join(ctx.dir(), 'checkpoints.db'));
          return { saver, ...fresh(await seedThread(saver, threadId, state.histories.get(n))) };
        },
        prepare: nextTurn,
        op: (s, turn) => putTurn(s.saver, s, turn),
        async after(s) {
          await expectLatest(s.saver, threadId, s.messages.length, s.messages.at(-1));
          const rows = s.saver.db.prepare('SELECT COUNT(*) AS n FROM checkpoints WHERE thread_id = ?').get(threadId).n;
          check(rows === 1 + s.turnIds.length, `SQLite holds ${rows} checkpoints, expected ${1 + s.turnIds.length}`);
        },
        close: (s) => s.saver.db.close(),
        bytes: true,
      }),
    });
    return variants;
  },
  resumeVariants(state, n, reps) {
    const threadId = `resume-${n}`;
    const expected = state.histories.get(n);
    const expectTuples = (results) => {
      for (const tuple of results) {
        const messages = tuple?.checkpoint.channel_values.messages;
        check(Array.isArray(messages) && messages.length === n, `getTuple gave ${messages?.length} messages, expected ${n}`);
        check(String(messages.at(-1).content) === String(expected.at(-1).content), 'getTuple: the newest message differs');
        check(typeof messages[0].getType === 'function' && messages[0].getType() === 'human', 'getTuple: messages did not come back as LangChain messages');
      }
    };
    const variants = state.backends.map((b) => ({
      id: b.id,
      label: `${b.label}: new StepstoreSaver + getTuple(latest)`,
      run: onStepstore(b, reps, {
        stats: true,
        op: (s) => new StepstoreSaver(s.store).getTuple(threadConfig(threadId)),
        after: (_s, results) => expectTuples(results),
      }),
    }));
    variants.push({
      id: 'memory',
      label: 'MemorySaver getTuple(latest) (in memory)',
      run: measured(reps, { open: () => ({}), op: () => state.memory.getTuple(threadConfig(threadId)), after: (_s, results) => expectTuples(results) }),
    });
    variants.push({
      id: 'sqlite',
      label: 'SqliteSaver getTuple(latest) (an open database)',
      run: measured(reps, { open: () => ({}), op: () => state.sqlite.getTuple(threadConfig(threadId)), after: (_s, results) => expectTuples(results) }),
    });
    return variants;
  },
};

