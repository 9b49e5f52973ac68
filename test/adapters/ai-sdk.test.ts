// stepstore/ai-sdk on a directory and on Redis, driven by the real AI SDK:
// streamText on a scripted mock language model, its UI message stream consumed
// to the end with originalMessages and server-side message ids, and the full
// list saved in onFinish. A new process (ai-sdk-turn.child.mjs) resumes the
// chat; two processes (ai-sdk-race.child.mjs) save one chat at once. Checks
// that a save writes only what changed (edits, regenerations and continuations
// rewind), that racing saves never mix two lists, and the refusals.

import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  convertToModelMessages,
  createIdGenerator,
  stepCountIs,
  streamText,
  tool,
  validateUIMessages,
  type UIMessage,
} from 'ai';
import { MockLanguageModelV3, simulateReadableStream } from 'ai/test';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Store } from 'stepstore';
import { loadChat, saveChat } from 'stepstore/ai-sdk';
import type { Fixture, Harness } from '../conformance/harness.js';
import { codeOf } from '../helpers/codes.js';
import { fsHarness } from '../helpers/fs-harness.js';
import { describeWithRedis, redisHarness } from '../helpers/redis-harness.js';

const execFileAsync = promisify(execFile);
const TURN_CHILD = fileURLToPath(new URL('./ai-sdk-turn.child.mjs', import.meta.url));
const RACE_CHILD = fileURLToPath(new URL('./ai-sdk-race.child.mjs', import.meta.url));

/** What JSON keeps of a value: what the store holds and hands back. */
const json = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

const userMessage = (id: string, text: string): UIMessage => ({ id, role: 'user', parts: [{ type: 'text', text }] });

const usage = {
  inputTokens: { total: 1, noCache: 1, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: 1, text: 1, reasoning: undefined },
};

/**
 * The scripted model: after a tool result it reports the result; asked about
 * the weather it calls `weather`; asked to confirm it calls `confirm` (a tool
 * the client answers); otherwise it answers `answer <call number> to: <text>`.
 */
function scriptedModel(): MockLanguageModelV3 {
  const model: MockLanguageModelV3 = new MockLanguageModelV3({
    doStream: async ({ prompt }) => {
      const last = prompt.at(-1)!;
      const lastUser = prompt.findLast((message) => message.role === 'user')!;
      const asked = lastUser.content.map((part) => (part.type === 'text' ? part.text : '')).join('');
      const toolCall = (toolName: string, input: object) => [
        { type: 'tool-call' as const, toolCallId: `call-${model.doStreamCalls.length}`, toolName, input: JSON.stringify(input) },
        { type: 'finish' as const, finishReason: { unified: 'tool-calls' as const, raw: 'tool_calls' }, usage },
      ];
      let text: string;
      if (last.role === 'tool') {
        const result = last.content.find((part) => part.type === 'tool-result')!;
        text = `after ${result.toolName}: ${JSON.stringify(result.output)}`;
      } else if (asked.includes('weather')) {
        return { stream: simulateReadableStream({ chunks: toolCall('weather', { city: 'Oslo' }), chunkDelayInMs: 0 }) };
      } else if (asked.includes('confirm')) {
        return { stream: simulateReadableStream({ chunks: toolCall('confirm', { question: 'Go ahead?' }), chunkDelayInMs: 0 }) };
      } else text = `answer ${model.doStreamCalls.length} to: ${asked}`;
      const chunks = [
        { type: 'text-start' as const, id: 'text-1' },
        { type: 'text-delta' as const, id: 'text-1', delta: text.slice(0, 5) },
        { type: 'text-delta' as const, id: 'text-1', delta: text.slice(5) },
        { type: 'text-end' as const, id: 'text-1' },
        { type: 'finish' as const, finishReason: { unified: 'stop' as const, raw: 'stop' }, usage },
      ];
      return { stream: simulateReadableStream({ chunks, chunkDelayInMs: 0 }) };
    },
  });
  return model;
}

const tools = {
  weather: tool({
    description: 'Current weather of a city',
    inputSchema: z.object({ city: z.string() }),
    execute: async ({ city }) => ({ city, celsius: 7 }),
  }),
  // No execute: the client answers it, then sends the chat back (a continuation).
  confirm: tool({ description: 'Ask the user', inputSchema: z.object({ question: z.string() }), outputSchema: z.string() }),
};

const chatMessageId = createIdGenerator({ prefix: 'msg', size: 16 });

interface Turn {
  messages: UIMessage[];
  isContinuation: boolean;
}

/**
 * One server turn as the SDK's persistence guide writes it: the model gets
 * `messages`, the UI stream (toUIMessageStream, or toUIMessageStreamResponse's
 * body) is read to the end, and onFinish saves the full list.
 */
async function serverTurn(store: Store, chatId: string, messages: UIMessage[], via: 'stream' | 'response' = 'stream'): Promise<Turn> {
  const result = streamText({
    model: scriptedModel(),
    messages: await convertToModelMessages(messages, { tools }),
    tools,
    stopWhen: stepCountIs(5),
  });
  let saved: Turn | undefined;
  const options = {
    originalMessages: messages,
    generateMessageId: chatMessageId,
    onFinish: async ({ messages: all, isContinuation }: Turn) => {
      await saveChat(store, chatId, all);
      saved = { messages: all, isContinuation };
    },
  };
  if (via === 'stream') {
    for await (const chunk of result.toUIMessageStream(options)) void chunk;
  } else {
    const response = result.toUIMessageStreamResponse(options);
    expect(await response.text()).toContain('data: ');
  }
  // The SDK awaits onFinish before it ends the stream: the save is done by then.
  expect(saved).toBeDefined();
  return saved!;
}

async function sessionOf(store: Store, chatId: string): Promise<string> {
  const handle = await store.findLatestSession('ai-sdk', chatId);
  expect(handle).not.toBeNull();
  return handle!;
}

/** The entries the session holds (steps read back), and its meta's message_count. */
async function stored(store: Store, chatId: string): Promise<{ steps: { step: number; text: string }[]; messageCount: number }> {
  const handle = await sessionOf(store, chatId);
  const steps = (await store.readSteps(handle)).filter((record) => record.kind === 'entry');
  const listed = await store.listSessions({ agent: 'ai-sdk', createdBy: chatId });
  return { steps: steps.map(({ step, text }) => ({ step, text })), messageCount: listed.find((s) => s.handle === handle)!.meta.message_count };
}

function chatSuite(harness: Harness): void {
  let fixture: Fixture;
  let store: Store;
  let chatId: string;
  beforeEach(async () => {
    fixture = await harness.fixture();
    store = await fixture.open({ messages: 'any' });
    chatId = `chat-${Math.random().toString(36).slice(2, 10)}`;
  });
  afterEach(async () => {
    await fixture.dispose();
  });

  /** Turn 1 (a text answer) and turn 2 (weather: tool call, tool result, text over two steps). */
  async function twoTurns(): Promise<UIMessage[]> {
    expect(await loadChat(store, chatId)).toEqual([]);
    const first = await serverTurn(store, chatId, [userMessage('u1', 'hi')]);
    expect(await loadChat(store, chatId)).toStrictEqual(json(first.messages));
    const history = await loadChat(store, chatId);
    const second = await serverTurn(store, chatId, [...history, userMessage('u2', 'weather in Oslo?')], 'response');
    expect(second.messages).toHaveLength(4);
    return second.messages;
  }

  it('two SDK turns saved in onFinish resume in a new process, whose model gets the text, the tool call and its result', async () => {
    const afterTwo = await twoTurns();
    const [, answer1, , answer2] = afterTwo;
    expect(answer1!.id).toMatch(/^msg-/);
    expect(answer2!.parts).toMatchObject([
      { type: 'step-start' },
      { type: 'tool-weather', state: 'output-available', input: { city: 'Oslo' }, output: { city: 'Oslo', celsius: 7 } },
      { type: 'step-start' },
      { type: 'text', text: 'after weather: {"type":"json","value":{"city":"Oslo","celsius":7}}' },
    ]);
    const handle = await sessionOf(store, chatId);
    expect((await store.loadSession(handle))!.meta.framework).toBe('ai-sdk');

    const task = { store: fixture.workerSpec(), chatId, userId: 'u3', userText: 'thanks' };
    const { stdout } = await execFileAsync(process.execPath, [TURN_CHILD, JSON.stringify(task)]);
    const child = JSON.parse(stdout) as { loaded: UIMessage[]; prompt: unknown[]; messages: UIMessage[] };
    expect(child.loaded).toStrictEqual(json(afterTwo));
    expect(child.prompt).toMatchObject([
      { role: 'user', content: [{ type: 'text', text: 'hi' }] },
      { role: 'assistant', content: [{ type: 'text', text: (answer1!.parts[1] as { text: string }).text }] },
      { role: 'user', content: [{ type: 'text', text: 'weather in Oslo?' }] },
      { role: 'assistant', content: [{ type: 'tool-call', toolName: 'weather', input: { city: 'Oslo' } }] },
      { role: 'tool', content: [{ type: 'tool-result', toolName: 'weather', output: { type: 'json', value: { city: 'Oslo', celsius: 7 } } }] },
      { role: 'assistant', content: [{ type: 'text', text: (answer2!.parts[3] as { text: string }).text }] },
      { role: 'user', content: [{ type: 'text', text: 'thanks' }] },
    ]);
    expect(child.prompt).toHaveLength(7);
    expect(child.messages).toHaveLength(6);
    const reopened = await fixture.open({ messages: 'any' });
    const final = await loadChat(reopened, chatId);
    expect(final).toStrictEqual(child.messages);
    expect(await validateUIMessages({ messages: final })).toStrictEqual(final);
    expect(await stored(reopened, chatId)).toMatchObject({ messageCount: 6 });
  });

  it('saving the same list again writes nothing; the next turn appends only its two messages', async () => {
    const afterTwo = await twoTurns();
    const before = await stored(store, chatId);
    const written = store.stats().stepsWritten;
    expect(await saveChat(store, chatId, afterTwo)).toMatchObject({ retracted: 0, appended: 0 });
    expect(store.stats().stepsWritten).toBe(written);
    // The same messages with their keys in another order are the same messages.
    const reordered = afterTwo.map(({ parts, role, id }) => ({ parts, role, id }));
    expect(await saveChat(store, chatId, reordered)).toMatchObject({ retracted: 0, appended: 0 });
    expect(store.stats().stepsWritten).toBe(written);

    await serverTurn(store, chatId, [...afterTwo, userMessage('u3', 'more')]);
    expect(store.stats().stepsWritten).toBe(written + 2);
    const after = await stored(store, chatId);
    expect(after.steps.slice(0, 4)).toStrictEqual(before.steps);
    expect(after.messageCount).toBe(6);

    // An empty list (the user cleared the chat) retracts everything.
    expect(await saveChat(store, chatId, [])).toMatchObject({ retracted: 6, appended: 0 });
    expect(await loadChat(store, chatId)).toStrictEqual([]);
    expect(await stored(store, chatId)).toStrictEqual({ steps: [], messageCount: 0 });
  });

  it('an edited earlier user message rewinds to just before it and appends the rest', async () => {
    const afterTwo = await twoTurns();
    const before = await stored(store, chatId);
    await serverTurn(store, chatId, [...afterTwo, userMessage('u3', 'one more')]);
    expect((await stored(store, chatId)).steps).toHaveLength(6);

    // The user edits u2 (same id, new text): the client drops what followed it and sends the chat again.
    const edited = [...afterTwo.slice(0, 2), userMessage('u2', 'hello again')];
    const written = store.stats().stepsWritten;
    const turn = await serverTurn(store, chatId, edited);
    expect(turn.messages).toHaveLength(4);
    expect(store.stats().stepsWritten).toBe(written + 2);
    const after = await stored(store, chatId);
    expect(after.steps.map((s) => s.step)).toStrictEqual([1, 2, 3, 4]);
    expect(after.steps.slice(0, 2)).toStrictEqual(before.steps.slice(0, 2));
    expect(after.steps.map((s) => s.text).join('\n')).not.toContain('weather in Oslo?');
    expect(after.messageCount).toBe(4);
    expect(await loadChat(store, chatId)).toStrictEqual(json(turn.messages));
  });

  it('a regenerated last answer (a new id) replaces the stored one', async () => {
    const afterTwo = await twoTurns();
    const written = store.stats().stepsWritten;
    const turn = await serverTurn(store, chatId, afterTwo.slice(0, 3));
    expect(turn.messages[3]!.id).not.toBe(afterTwo[3]!.id);
    expect(store.stats().stepsWritten).toBe(written + 1);
    const loaded = await loadChat(store, chatId);
    expect(loaded).toStrictEqual(json(turn.messages));
    expect(loaded.map((m) => m.id)).not.toContain(afterTwo[3]!.id);
    expect(await stored(store, chatId)).toMatchObject({ messageCount: 4 });
  });

  it('a continuation under the same id (a client-side tool answered) replaces the stored message, no duplicate', async () => {
    const asked = await serverTurn(store, chatId, [userMessage('u1', 'please confirm')]);
    const pending = asked.messages[1]!;
    expect(pending.parts).toMatchObject([{ type: 'step-start' }, { type: 'tool-confirm', state: 'input-available' }]);
    // The client answers the tool call (addToolOutput) and sends the chat back.
    const answered = {
      ...pending,
      parts: pending.parts.map((part) => (part.type === 'tool-confirm' ? { ...part, state: 'output-available', output: 'yes' } : part)),
    } as UIMessage;
    const written = store.stats().stepsWritten;
    const turn = await serverTurn(store, chatId, [asked.messages[0]!, answered]);
    expect(turn.isContinuation).toBe(true);
    expect(turn.messages).toHaveLength(2);
    expect(turn.messages[1]!.id).toBe(pending.id);
    expect(turn.messages[1]!.parts.at(-1)).toMatchObject({ type: 'text', text: 'after confirm: {"type":"text","value":"yes"}' });
    expect(store.stats().stepsWritten).toBe(written + 1);
    const loaded = await loadChat(store, chatId);
    expect(loaded).toStrictEqual(json(turn.messages));
    expect(await stored(store, chatId)).toMatchObject({ messageCount: 2, steps: [{ step: 1 }, { step: 2 }] });
  });

  it('after a compaction, a client list that still holds older messages is lined up on the first message stored since', async () => {
    const first = await serverTurn(store, chatId, [userMessage('u1', 'hi')]);
    await store.compact(await sessionOf(store, chatId), 'The user said hi.');
    expect(await loadChat(store, chatId)).toEqual([]);
    const second = await serverTurn(store, chatId, [userMessage('u2', 'and now?')]);
    expect(await loadChat(store, chatId)).toStrictEqual(json(second.messages));
    const clientList = [...first.messages, ...second.messages, userMessage('u3', 'still there?')];
    expect(await saveChat(store, chatId, clientList)).toMatchObject({ retracted: 0, appended: 1 });
    expect((await loadChat(store, chatId)).map((m) => m.id)).toStrictEqual([...second.messages.map((m) => m.id), 'u3']);
  });

  it('two processes saving the same chats at once leave each chat the whole list of one save, never a mix', async () => {
    const base = await twoTurns();
    // 16 chats, each raced once by both processes at the same instant: 12 holding the two turns
    // already, 4 new (both first saves create the chat's session).
    const chats = Array.from({ length: 16 }, (_, i) => `${chatId}-${i}`);
    for (const chat of chats.slice(4)) await saveChat(store, chat, base);
    const startAt = Date.now() + 1500;
    type Save = { ok?: true; retracted?: number; appended?: number; error?: string };
    const run = (tag: string) =>
      execFileAsync(process.execPath, [RACE_CHILD, JSON.stringify({ store: fixture.workerSpec(), chats, base, tag, startAt, periodMs: 40 })]).then(
        ({ stdout }) => stdout.trim().split('\n').map((line) => JSON.parse(line) as { chat: string; saves: Save[] }),
      );
    const [left, right] = await Promise.all([run('left'), run('right')]);
    const saves = [...left!, ...right!].flatMap((line) => line.saves);
    for (const save of saves) expect(save.error ?? 'ok').toBe('ok');
    // The races happened: saves found the other side's turns in the way and retracted them.
    expect(saves.filter((save) => save.retracted! > 0).length).toBeGreaterThan(0);

    const turns = (tag: string) => ['u1', 'a1', 'u2', 'a2'].map((id) => `${tag}-${id}`);
    const reopened = await fixture.open({ messages: 'any' });
    for (const chat of chats) {
      const final = await loadChat(reopened, chat);
      expect(final.slice(0, 4)).toStrictEqual(json(base));
      // The last save to finish is a side's second: its whole list, and nothing of the other side.
      expect([turns('left'), turns('right')]).toContainEqual(final.slice(4).map((m) => m.id));
      expect((await reopened.loadSession(await sessionOf(reopened, chat)))!.meta.framework).toBe('ai-sdk');
      const { steps, messageCount } = await stored(reopened, chat);
      expect(steps).toHaveLength(8);
      expect(messageCount).toBe(8);
    }
  });

  it('a save that loses every race gives up with CONFLICT after maxAttempts, none of its messages written', async () => {
    const afterTwo = await twoTurns();
    const rival = await fixture.open({ messages: 'any' });
    let rivalWrites = 0;
    // The store as saveChat sees it, with another writer landing a message right before each of its appends.
    const raced = new Proxy(store, {
      get(target, property) {
        if (property === 'appendMessages') {
          return async (...args: Parameters<Store['appendMessages']>) => {
            await rival.appendMessages(args[0], [{ message: userMessage(`rival-${++rivalWrites}`, 'me first') }]);
            return target.appendMessages(...args);
          };
        }
        const value = Reflect.get(target, property, target) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const mine = [...afterTwo, userMessage('u3', 'mine')];
    expect(await codeOf(saveChat(raced, chatId, mine, { maxAttempts: 3 }))).toBe('CONFLICT');
    expect(rivalWrites).toBe(3);
    const ids = (await loadChat(store, chatId)).map((m) => m.id);
    expect(ids).not.toContain('u3');
    expect(ids.slice(0, 4)).toStrictEqual(afterTwo.map((m) => m.id));
    // Unraced, the same save goes through and retracts the rival's message.
    expect(await saveChat(store, chatId, mine)).toMatchObject({ appended: 1 });
    expect(await loadChat(store, chatId)).toStrictEqual(json(mine));
  });

  it('of two first saves that each created a session, the one whose session is older deletes it and saves into the newer', async () => {
    const rival = await fixture.open({ messages: 'any' });
    let rivalHandle: string | undefined;
    // The store as saveChat sees it, with the other first save creating its own session right after this one's.
    const raced = new Proxy(store, {
      get(target, property) {
        if (property === 'createSession') {
          return async (...args: Parameters<Store['createSession']>) => {
            const handle = await target.createSession(...args);
            rivalHandle = await rival.createSession(...args);
            await saveChat(rival, chatId, [userMessage('r1', 'rival first')]);
            return handle;
          };
        }
        const value = Reflect.get(target, property, target) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const mine = [userMessage('u1', 'mine first')];
    const { handle } = await saveChat(raced, chatId, mine);
    expect(handle).toBe(rivalHandle);
    const sessions = await store.listSessions({ agent: 'ai-sdk', createdBy: chatId });
    expect(sessions.map((s) => s.handle)).toStrictEqual([rivalHandle]);
    expect(await loadChat(store, chatId)).toStrictEqual(json(mine));
  });

  it('custom metadata and data parts round-trip through the UIMessage type parameter', async () => {
    type Tagged = UIMessage<{ createdAt: number; model?: string }, { weather: { city: string; celsius: number } }>;
    const messages: Tagged[] = [
      { id: 'u1', role: 'user', metadata: { createdAt: 1, model: undefined }, parts: [{ type: 'text', text: 'hi' }] },
      { id: 'a1', role: 'assistant', metadata: { createdAt: 2 }, parts: [{ type: 'data-weather', id: 'w1', data: { city: 'Oslo', celsius: 7 } }] },
    ];
    await saveChat<Tagged>(store, chatId, messages);
    const loaded = await loadChat<Tagged>(store, chatId);
    expect(loaded).toStrictEqual(json(messages));
    expect(loaded[0]!.metadata).toStrictEqual({ createdAt: 1 });
    // undefined-valued keys are what JSON drops: the list saved again is the same list.
    expect(await saveChat(store, chatId, messages)).toMatchObject({ appended: 0, retracted: 0 });
  });

  it('refuses a store not opened with messages any, and a message without an id or with binary data, writing nothing', async () => {
    const crabtalkOnly = await fixture.open();
    expect(await codeOf(loadChat(crabtalkOnly, chatId))).toBe('INVALID_OPTION');
    expect(await codeOf(saveChat(crabtalkOnly, chatId, [userMessage('u1', 'hi')]))).toBe('INVALID_OPTION');
    expect(await store.findLatestSession('ai-sdk', chatId)).toBeNull();

    const noId = { role: 'user', parts: [{ type: 'text', text: 'hi' }] } as unknown as UIMessage;
    expect(await codeOf(saveChat(store, chatId, [noId]))).toBe('INVALID_ENTRY');
    expect(await store.findLatestSession('ai-sdk', chatId)).toBeNull();

    await saveChat(store, chatId, [userMessage('u1', 'hi')]);
    const written = store.stats().stepsWritten;
    expect(await codeOf(saveChat(store, chatId, [userMessage('u1', 'hi'), userMessage('u2', 'ok'), noId]))).toBe('INVALID_ENTRY');
    expect(await codeOf(saveChat(store, chatId, [userMessage('u1', 'hi'), userMessage('u1', 'twice')]))).toBe('INVALID_ENTRY');
    const binary = { id: 'u2', role: 'user', parts: [], metadata: { bytes: new Uint8Array([1, 2]) } } as UIMessage;
    expect(await codeOf(saveChat(store, chatId, [userMessage('u1', 'hi'), binary]))).toBe('INVALID_ENTRY');
    const buffer = { ...binary, metadata: { bytes: Buffer.from('ab') } } as UIMessage;
    expect(await codeOf(saveChat(store, chatId, [userMessage('u1', 'hi'), buffer]))).toBe('INVALID_ENTRY');
    expect(store.stats().stepsWritten).toBe(written);
    expect(await loadChat(store, chatId)).toStrictEqual([userMessage('u1', 'hi')]);
    expect(await codeOf(saveChat(store, chatId, [], { maxAttempts: 0 }))).toBe('INVALID_OPTION');
  });
}

describe('stepstore/ai-sdk on a directory', () => chatSuite(fsHarness('file')));
describeWithRedis('stepstore/ai-sdk on Redis', () => chatSuite(redisHarness()));
