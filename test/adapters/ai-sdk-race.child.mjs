// A child process for test/adapters/ai-sdk.test.ts: one of two servers saving
// the same chats at once. Chat i (of `chats`, each already holding `base`) is
// raced at startAt + i * periodMs (ms since the epoch, the same for both
// servers): this one saves base + its turn 1, then base + turns 1 and 2 (its
// messages are `${tag}-u1`, `${tag}-a1`, ...). Prints one JSON line per chat:
// { chat, saves: [{ ok: true, retracted, appended } | { error: code }, ...] }.
//
// argv[2]: { store: { kind: 'fs', dir, durability } | { kind: 'redis', url, prefix }, chats, base, tag, startAt, periodMs }

import { saveChat } from 'stepstore/ai-sdk';

const { store: spec, chats, base, tag, startAt, periodMs } = JSON.parse(process.argv[2]);

const store =
  spec.kind === 'fs'
    ? await (await import('stepstore')).openStore({ dir: spec.dir, durability: spec.durability, messages: 'any', logger: { warn() {} } })
    : await (await import('stepstore/redis')).openRedisStore({ url: spec.url, prefix: spec.prefix, messages: 'any', logger: { warn() {} } });

const turn = (round) => [
  { id: `${tag}-u${round}`, role: 'user', parts: [{ type: 'text', text: `${tag} asks ${round}` }] },
  { id: `${tag}-a${round}`, role: 'assistant', parts: [{ type: 'step-start' }, { type: 'text', text: `${tag} answers ${round}`, state: 'done' }] },
];

for (const [i, chat] of chats.entries()) {
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, startAt + i * periodMs - Date.now())));
  const saves = [];
  for (const list of [[...base, ...turn(1)], [...base, ...turn(1), ...turn(2)]]) {
    try {
      const { retracted, appended } = await saveChat(store, chat, list);
      saves.push({ ok: true, retracted, appended });
    } catch (err) {
      if (typeof err?.code !== 'string') throw err;
      saves.push({ error: err.code });
    }
  }
  process.stdout.write(JSON.stringify({ chat, saves }) + '\n');
}
await store.close();
