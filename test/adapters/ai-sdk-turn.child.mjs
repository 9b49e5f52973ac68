// A child process for test/adapters/ai-sdk.test.ts: a new server process
// resuming a chat. It loads the chat (loadChat), adds a user message, runs one
// turn of the real AI SDK (streamText on a mock language model, consumed
// through toUIMessageStream with originalMessages), saves the full list in
// onFinish (saveChat), and prints one JSON line: the prompt the model got and
// the messages saved.
//
// argv[2]: { store: { kind: 'fs', dir, durability } | { kind: 'redis', url, prefix }, chatId, userId, userText }

import { convertToModelMessages, createIdGenerator, stepCountIs, streamText, tool } from 'ai';
import { MockLanguageModelV3, simulateReadableStream } from 'ai/test';
import { z } from 'zod';
import { loadChat, saveChat } from 'stepstore/ai-sdk';

const { store: spec, chatId, userId, userText } = JSON.parse(process.argv[2]);

const store =
  spec.kind === 'fs'
    ? await (await import('stepstore')).openStore({ dir: spec.dir, durability: spec.durability, messages: 'any', logger: { warn() {} } })
    : await (await import('stepstore/redis')).openRedisStore({ url: spec.url, prefix: spec.prefix, messages: 'any', logger: { warn() {} } });

const usage = {
  inputTokens: { total: 1, noCache: 1, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: 1, text: 1, reasoning: undefined },
};

// The same scripted model as the parent's: a text answer naming the last user text.
const model = new MockLanguageModelV3({
  doStream: async ({ prompt }) => {
    const lastUser = prompt.findLast((message) => message.role === 'user');
    const asked = lastUser.content.map((part) => part.text ?? '').join('');
    const text = `answer to: ${asked}`;
    const chunks = [
      { type: 'text-start', id: 'text-1' },
      { type: 'text-delta', id: 'text-1', delta: text.slice(0, 5) },
      { type: 'text-delta', id: 'text-1', delta: text.slice(5) },
      { type: 'text-end', id: 'text-1' },
      { type: 'finish', finishReason: { unified: 'stop', raw: 'stop' }, usage },
    ];
    return { stream: simulateReadableStream({ chunks, chunkDelayInMs: 0 }) };
  },
});

const weather = tool({
  description: 'Current weather of a city',
  inputSchema: z.object({ city: z.string() }),
  execute: async ({ city }) => ({ city, celsius: 7 }),
});

const loaded = await loadChat(store, chatId);
const messages = [...loaded, { id: userId, role: 'user', parts: [{ type: 'text', text: userText }] }];

const result = streamText({
  model,
  messages: await convertToModelMessages(messages),
  tools: { weather },
  stopWhen: stepCountIs(5),
});
let final;
const stream = result.toUIMessageStream({
  originalMessages: messages,
  generateMessageId: createIdGenerator({ prefix: 'msg', size: 16 }),
  // The SDK awaits onFinish before the stream ends.
  onFinish: async ({ messages: all }) => {
    await saveChat(store, chatId, all);
    final = all;
  },
});
for await (const chunk of stream) void chunk;
await store.close();

process.stdout.write(JSON.stringify({ loaded, prompt: model.doStreamCalls.at(-1).prompt, messages: final }) + '\n');
