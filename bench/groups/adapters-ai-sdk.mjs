// The adapters group's AI SDK scenarios: saveChat / loadChat (fs at full,
// Redis) next to the pattern the AI SDK's persistence guide shows (one JSON
// file per chat, rewritten whole on every save with writeFile, read back with
// readFile + JSON.parse), the same file written atomically and fsynced, and
// an in-memory Map. A turn saves the full list with one new user and one new
// assistant message; a resume loads the chat.

import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { check } from '../lib/harness.mjs';
import { WARM_SAVES, ANSWER_CHARS, USER_CHARS, measured, onStepstore, prepareOn, stepstoreBackends, text } from './adapters-common.mjs';

const { loadChat, saveChat } = await import('../../dist/adapters/ai-sdk.js');

/** saveChat's default agent: a chat is the latest session of (CHAT_AGENT, chat id). */
const CHAT_AGENT = 'ai-sdk';

const turnMessages = (i) => [
  { id: `user-${i}`, role: 'user', parts: [{ type: 'text', text: text('u', i, USER_CHARS) }] },
  { id: `assistant-${i}`, role: 'assistant', parts: [{ type: 'step-start' }, { type: 'text', text: text('a', i, ANSWER_CHARS), state: 'done' }] },
];

function historyMessages(n) {
  const list = [];
  for (let i = 0; list.length < n; i++) list.push(...turnMessages(i));
  return list.slice(0, n);
}

/** The guide's file format: JSON.stringify(messages, null, 2). */
const chatJson = (messages) => JSON.stringify(messages, null, 2);

let turns = 1_000_000;

/** Untimed: the full list the SDK hands onFinish, one user and one assistant message longer. */
function nextList(s) {
  const id = ++turns;
  s.list = [...s.list, ...turnMessages(id)];
  return s.list;
}

function expectChat(messages, expected) {
  check(messages.length === expected.length, `chat holds ${messages.length} messages, expected ${expected.length}`);
  check(messages.at(-1).id === expected.at(-1).id && messages.at(-1).parts[1]?.text === expected.at(-1).parts[1]?.text, `newest message is ${messages.at(-1)?.id}, expected ${expected.at(-1).id}`);
  check(messages[0].id === expected[0].id, 'the oldest message differs');
}

/** Durable whole-file rewrite: temp file, write, fsync, rename over the chat's file, fsync the directory. */
async function writeDurably(file, data) {
  const temp = `${file}.tmp`;
  const handle = await fsp.open(temp, 'w', 0o600);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fsp.rename(temp, file);
  const dir = await fsp.open(path.dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

export default {
  id: 'ai-sdk',
  title: 'AI SDK chat persistence',
  turnUnit: 'turn (the full list, one user and one assistant message longer)',
  /** saveChat appends only the new messages: its cost should not grow with the history. */
  flatSave: true,
  saveNote: 'saveChat reads the stored chat (and reads it again after writing) to find what changed, then appends only the new messages',
  async setup(env, { sizes, withRedis }) {
    const backends = stepstoreBackends(env, 'ai-sdk', withRedis);
    const histories = new Map(sizes.map((n) => [n, historyMessages(n)]));
    for (const b of backends) {
      await prepareOn(b, async (store) => {
        for (const n of sizes) for (const role of ['save', 'resume']) await saveChat(store, `${role}-${n}`, histories.get(n));
      });
    }
    const fileDir = env.dir('adapters', 'ai-sdk', 'files');
    const files = new Map(sizes.map((n) => [n, path.join(fileDir, `resume-${n}.json`)]));
    for (const n of sizes) fs.writeFileSync(files.get(n), chatJson(histories.get(n)));
    const chats = new Map(sizes.map((n) => [`resume-${n}`, [...histories.get(n)]]));
    return { backends, histories, files, chats };
  },
  historyOf: (state, n) => state.histories.get(n),
  saveVariants(state, n, reps) {
    const chatId = `save-${n}`;
    const variants = state.backends.map((b) => ({
      id: b.id,
      label: `${b.label}: saveChat(full list)`,
      run: onStepstore(b, reps, {
        warm: WARM_SAVES,
        bytes: true,
        session: (store) => store.findLatestSession(CHAT_AGENT, chatId),
        prepare(s) {
          s.list ??= state.histories.get(n);
          return nextList(s);
        },
        op: (s, list) => saveChat(s.store, chatId, list),
        async after(s, results) {
          check(results.every((r) => r.appended === 2 && r.retracted === 0), `saveChat appended ${results.map((r) => r.appended).join(',')}, expected 2 each`);
          expectChat(await loadChat(s.store, chatId), s.list);
        },
      }),
    }));
    const fileRun = (write) =>
      measured(reps, {
        warm: WARM_SAVES,
        open(ctx) {
          const file = path.join(ctx.dir(), `${chatId}.json`);
          fs.writeFileSync(file, chatJson(state.histories.get(n)));
          return { file, list: state.histories.get(n) };
        },
        prepare: nextList,
        op: (s, list) => write(s.file, chatJson(list)),
        after: (s) => expectChat(JSON.parse(fs.readFileSync(s.file, 'utf8')), s.list),
        bytes: true,
      });
    variants.push({
      id: 'json-file',
      label: 'one JSON file per chat, writeFile(JSON.stringify(messages)) (the AI SDK guide)',
      run: fileRun((file, data) => fsp.writeFile(file, data)),
    });
    variants.push({
      id: 'json-file-fsync',
      label: 'the same file written durably (temp, fsync, rename, fsync dir)',
      run: fileRun(writeDurably),
    });
    variants.push({
      id: 'map',
      label: 'in-memory Map, chats.set(id, messages)',
      run: measured(reps, {
        warm: WARM_SAVES,
        open: () => ({ chats: new Map([[chatId, state.histories.get(n)]]), list: state.histories.get(n) }),
        prepare: nextList,
        op: (s, list) => s.chats.set(chatId, list),
        after: (s) => expectChat(s.chats.get(chatId), s.list),
      }),
    });
    return variants;
  },
  resumeVariants(state, n, reps) {
    const chatId = `resume-${n}`;
    const expected = state.histories.get(n);
    const variants = state.backends.map((b) => ({
      id: b.id,
      label: `${b.label}: loadChat`,
      run: onStepstore(b, reps, {
        stats: true,
        op: (s) => loadChat(s.store, chatId),
        after: (_s, results) => results.forEach((messages) => expectChat(messages, expected)),
      }),
    }));
    variants.push({
      id: 'json-file',
      label: 'readFile + JSON.parse of the chat\'s file (the AI SDK guide)',
      run: measured(reps, {
        open: () => ({}),
        op: async () => JSON.parse(await fsp.readFile(state.files.get(n), 'utf8')),
        after: (_s, results) => results.forEach((messages) => expectChat(messages, expected)),
      }),
    });
    variants.push({
      id: 'map',
      label: 'in-memory Map, chats.get(id)',
      run: measured(reps, {
        open: () => ({}),
        op: () => state.chats.get(chatId),
        after: (_s, results) => results.forEach((messages) => expectChat(messages, expected)),
      }),
    });
    return variants;
  },
};
