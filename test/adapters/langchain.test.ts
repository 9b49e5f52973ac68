// stepstore/langchain on the filesystem and on Redis (the same tests for both):
// a RunnableWithMessageHistory chain whose conversation a new process resumes,
// LangChain's stored message form round-tripping exactly across restarts,
// addMessages as one batch, clear() as a boundary or a deletion, and the
// store mode the adapter needs.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  AIMessage,
  HumanMessage,
  SystemMessage,
  ToolMessage,
  mapChatMessagesToStoredMessages,
  type BaseMessage,
  type StoredMessage,
} from '@langchain/core/messages';
import type { BasePromptValueInterface } from '@langchain/core/prompt_values';
import { ChatPromptTemplate, MessagesPlaceholder } from '@langchain/core/prompts';
import { RunnableLambda, RunnableWithMessageHistory } from '@langchain/core/runnables';
import { FakeListChatModel } from '@langchain/core/utils/testing';
import type { Store } from 'stepstore';
import { StepstoreChatMessageHistory } from 'stepstore/langchain';
import type { Fixture, Harness } from '../conformance/harness.js';
import { fsHarness } from '../helpers/fs-harness.js';
import { describeWithRedis, redisHarness } from '../helpers/redis-harness.js';

const CHILD = fileURLToPath(new URL('./langchain.child.mjs', import.meta.url));
const SYSTEM = 'You answer in one word.';
const AGENT = 'helpdesk';

async function runChild<T>(fixture: Fixture, task: Record<string, unknown>): Promise<T> {
  const { stdout } = await promisify(execFile)(process.execPath, [CHILD, JSON.stringify({ store: fixture.workerSpec(), task })]);
  return JSON.parse(stdout) as T;
}

/** What JSON keeps of a value (undefined-valued keys go), as the store holds it. */
function jsonOf<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** The test's chain: prompt -> recorder (what the model is given) -> scripted model, with its history in `store`. */
function chatChain(store: Store, responses: string[]) {
  const received: BaseMessage[][] = [];
  const prompt = ChatPromptTemplate.fromMessages([['system', SYSTEM], new MessagesPlaceholder('history'), ['human', '{question}']]);
  const recorder = RunnableLambda.from((promptValue: BasePromptValueInterface) => {
    received.push(promptValue.toChatMessages());
    return promptValue;
  });
  const chain = new RunnableWithMessageHistory({
    runnable: prompt.pipe(recorder).pipe(new FakeListChatModel({ responses })),
    getMessageHistory: StepstoreChatMessageHistory.factory(store, { agent: AGENT }),
    inputMessagesKey: 'question',
    historyMessagesKey: 'history',
  });
  const ask = async (sessionId: string, question: string) =>
    (await chain.invoke({ question }, { configurable: { sessionId } })) as BaseMessage;
  return { ask, received };
}

const turnsOf = (messages: StoredMessage[]) => messages.map((m) => `${m.type}:${String(m.data.content)}`);

/** Every kind of message a tool-using conversation holds, with ids, kwargs and metadata. */
function toolConversation(): BaseMessage[] {
  return [
    new SystemMessage({ content: 'You can look up the weather.', id: 'sys-1' }),
    new HumanMessage({
      content: [
        { type: 'text', text: 'Weather in Paris? See the map.' },
        { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
      ],
      id: 'human-1',
      name: 'ada',
      additional_kwargs: { locale: 'fr-FR', nested: { flags: [true, false, null] } },
    }),
    new AIMessage({
      content: '',
      id: 'ai-1',
      tool_calls: [
        { id: 'call_a', name: 'get_weather', args: { city: 'Paris', days: [1, 2, 3], units: { temp: 'C' } }, type: 'tool_call' },
        { id: 'call_b', name: 'get_time', args: {}, type: 'tool_call' },
      ],
      additional_kwargs: { reasoning: 'needs two tools' },
      response_metadata: { model_name: 'fake-1', finish_reason: 'tool_calls', logprobs: null },
      usage_metadata: { input_tokens: 12, output_tokens: 7, total_tokens: 19 },
    }),
    new ToolMessage({ content: '18°C, sunny', tool_call_id: 'call_a', name: 'get_weather', status: 'success', id: 'tool-1' }),
    new ToolMessage({ content: 'clock unavailable', tool_call_id: 'call_b', status: 'error', artifact: { retry: true } }),
    new AIMessage({ content: 'It is 18°C and sunny in Paris.', id: 'ai-2', response_metadata: { model_name: 'fake-1' } }),
  ];
}

function defineLangChainTests(harness: Harness): void {
  let fixture: Fixture;
  beforeEach(async () => {
    fixture = await harness.fixture();
  });
  afterEach(async () => {
    await fixture.dispose();
  });

  it('a RunnableWithMessageHistory conversation goes on in a new process, every turn stored in order', async () => {
    const store = await fixture.open({ messages: 'any' });
    const sessionId = 'thread 7f3a-91c2';
    const { ask, received } = chatChain(store, ['Hello', 'Blue', 'Seven']);
    expect((await ask(sessionId, 'Hi there')).content).toBe('Hello');
    expect((await ask(sessionId, 'Favourite colour?')).content).toBe('Blue');
    expect((await ask(sessionId, 'Lucky number?')).content).toBe('Seven');
    // Another conversation of the same agent stays apart.
    expect((await ask('someone else', 'Who am I?')).content).toBe('Hello');
    expect(turnsOf(mapChatMessagesToStoredMessages(received[2]!))).toEqual([
      `system:${SYSTEM}`,
      'human:Hi there',
      'ai:Hello',
      'human:Favourite colour?',
      'ai:Blue',
      'human:Lucky number?',
    ]);
    expect(turnsOf(mapChatMessagesToStoredMessages(received[3]!))).toEqual([`system:${SYSTEM}`, 'human:Who am I?']);
    const before = await StepstoreChatMessageHistory.open(store, { agent: AGENT, sessionId });
    const earlier = mapChatMessagesToStoredMessages(await before.getMessages());
    await store.close();

    const child = await runChild<{ answer: string; received: StoredMessage[] }>(fixture, {
      name: 'turn',
      system: SYSTEM,
      agent: AGENT,
      sessionId,
      question: 'And the first thing I said?',
      responses: ['Hi'],
    });
    expect(child.answer).toBe('Hi');
    // The model in the new process was given the earlier turns exactly as stored (AI message ids included).
    expect(child.received).toEqual([
      jsonOf(new SystemMessage(SYSTEM).toDict()),
      ...jsonOf(earlier),
      jsonOf(new HumanMessage('And the first thing I said?').toDict()),
    ]);

    const reopened = await fixture.open({ messages: 'any' });
    const sessions = await reopened.listSessions({ agent: AGENT, createdBy: sessionId });
    expect(sessions).toHaveLength(1);
    expect(sessions[0]!.meta.framework).toBe('langchain');
    const snapshot = (await reopened.loadSession<StoredMessage>(sessions[0]!.handle))!;
    expect(turnsOf(snapshot.history.map((entry) => entry.message))).toEqual([
      'human:Hi there',
      'ai:Hello',
      'human:Favourite colour?',
      'ai:Blue',
      'human:Lucky number?',
      'ai:Seven',
      'human:And the first thing I said?',
      'ai:Hi',
    ]);
    expect(snapshot.steps).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('tool calls, tool messages, system messages, content blocks, kwargs and ids round-trip exactly across restarts', async () => {
    const messages = toolConversation();
    const expected = mapChatMessagesToStoredMessages(messages);
    const store = await fixture.open({ messages: 'any' });
    const history = await StepstoreChatMessageHistory.open(store, { agent: AGENT, sessionId: 'tools' });
    expect(history.handle).toBeNull();
    await history.addMessages(messages.slice(0, 3));
    await history.addMessage(messages[3]!);
    await history.addMessages(messages.slice(4));
    const handle = history.handle!;
    await store.close();

    const reopened = await fixture.open({ messages: 'any' });
    // Each step holds exactly LangChain's stored form of its message.
    const snapshot = (await reopened.loadSession(handle))!;
    expect(snapshot.history.map((entry) => entry.message)).toEqual(jsonOf(expected));
    const back = await (await StepstoreChatMessageHistory.open(reopened, { agent: AGENT, sessionId: 'tools' })).getMessages();
    expect(mapChatMessagesToStoredMessages(back)).toEqual(expected);
    expect(back.map((m) => m.constructor.name)).toEqual(messages.map((m) => m.constructor.name));
    const ai = back[2] as AIMessage;
    expect(ai.tool_calls).toEqual((messages[2] as AIMessage).tool_calls);
    expect(ai.usage_metadata).toEqual({ input_tokens: 12, output_tokens: 7, total_tokens: 19 });
    expect((back[4] as ToolMessage).status).toBe('error');
    expect((back[4] as ToolMessage).artifact).toEqual({ retry: true });
    await reopened.close();

    const dumped = await runChild<{ handle: string; classes: string[]; messages: StoredMessage[] }>(fixture, {
      name: 'dump',
      agent: AGENT,
      sessionId: 'tools',
    });
    expect(dumped.handle).toBe(handle);
    expect(dumped.classes).toEqual(['SystemMessage', 'HumanMessage', 'AIMessage', 'ToolMessage', 'ToolMessage', 'AIMessage']);
    expect(dumped.messages).toEqual(jsonOf(expected));
  });

  it('binary content comes back as bytes (stored as tagged base64)', async () => {
    const store = await fixture.open({ messages: 'any' });
    const history = await StepstoreChatMessageHistory.open(store, { agent: AGENT, sessionId: 'bytes' });
    const bytes = new Uint8Array([0, 1, 127, 128, 255]);
    await history.addMessage(new HumanMessage({ content: [{ type: 'file', data: bytes, mimeType: 'application/octet-stream' }] }));
    const reopened = await fixture.open({ messages: 'any' });
    const stored = (await reopened.loadSession<StoredMessage>(history.handle!))!.history[0]!.message;
    expect(stored.data.content).toEqual([{ type: 'file', data: { $stepstore_bytes: 'AAF/gP8=' }, mimeType: 'application/octet-stream' }]);
    const [back] = await (await StepstoreChatMessageHistory.open(reopened, { handle: history.handle! })).getMessages();
    const block = (back!.content as unknown as { data: unknown }[])[0]!;
    expect(block.data).toBeInstanceOf(Uint8Array);
    expect(Array.from(block.data as Uint8Array)).toEqual([0, 1, 127, 128, 255]);
  });

  it('addMessages writes its messages as one batch: one call, consecutive steps, all or nothing', async () => {
    const store = await fixture.open({ messages: 'any', maxStepBytes: 4096 });
    const history = await StepstoreChatMessageHistory.open(store, { agent: AGENT, sessionId: 'batch' });
    await history.addMessage(new HumanMessage('first'));
    const append = vi.spyOn(store, 'appendMessages');
    const written = store.stats().stepsWritten;
    const batch = Array.from({ length: 5 }, (_, i) => (i % 2 === 0 ? new AIMessage(`answer ${i}`) : new HumanMessage(`question ${i}`)));
    await history.addMessages(batch);
    expect(append).toHaveBeenCalledTimes(1);
    expect(append.mock.calls[0]![1]).toHaveLength(5);
    expect(store.stats().stepsWritten - written).toBe(5);
    expect((await store.loadSession(history.handle!))!.steps).toEqual([1, 2, 3, 4, 5, 6]);

    // A batch with one message the store cannot hold lands not at all.
    const tooLarge = new AIMessage('x'.repeat(10_000));
    await expect(history.addMessages([new HumanMessage('lost'), tooLarge])).rejects.toMatchObject({ code: 'STEP_TOO_LARGE' });
    expect((await store.readSteps(history.handle!)).map((record) => record.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(await history.getMessages()).toHaveLength(6);
  });

  it('clear() after a restart empties the history but keeps the steps; later messages follow the boundary', async () => {
    const store = await fixture.open({ messages: 'any' });
    const history = await StepstoreChatMessageHistory.open(store, { agent: AGENT, sessionId: 'clear' });
    await history.addMessages([new HumanMessage('old question'), new AIMessage('old answer')]);
    const handle = history.handle!;
    await store.close();

    const restarted = await fixture.open({ messages: 'any' });
    const reopened = await StepstoreChatMessageHistory.open(restarted, { agent: AGENT, sessionId: 'clear' });
    expect(await reopened.getMessages()).toHaveLength(2);
    await reopened.clear();
    expect(await reopened.getMessages()).toEqual([]);
    const steps = await restarted.readSteps(handle);
    expect(steps.map((record) => record.kind)).toEqual(['entry', 'entry', 'compact']);
    expect((steps[0]!.line as unknown as { message: StoredMessage }).message.data.content).toBe('old question');
    expect(await (await StepstoreChatMessageHistory.open(restarted, { handle })).getMessages()).toEqual([]);

    await reopened.addMessage(new HumanMessage('new question'));
    expect(reopened.handle).toBe(handle);
    const again = await StepstoreChatMessageHistory.open(await fixture.open({ messages: 'any' }), { agent: AGENT, sessionId: 'clear' });
    expect(turnsOf(mapChatMessagesToStoredMessages(await again.getMessages()))).toEqual(['human:new question']);
  });

  it("clear() with { clear: 'delete' } deletes the session; the next write starts a new one", async () => {
    const store = await fixture.open({ messages: 'any' });
    // An older session of the pair, which clearing the newer one must not bring back.
    const older = await store.createSession(AGENT, 'gone');
    await store.appendMessages(older, [{ message: new HumanMessage('older conversation').toDict() }]);
    await store.createSession(AGENT, 'gone');
    const history = await StepstoreChatMessageHistory.open(store, { agent: AGENT, sessionId: 'gone', clear: 'delete' });
    await history.addMessages([new HumanMessage('secret'), new AIMessage('noted')]);
    const first = history.handle!;
    await store.close();

    const restarted = await fixture.open({ messages: 'any' });
    const reopened = await StepstoreChatMessageHistory.open(restarted, { agent: AGENT, sessionId: 'gone', clear: 'delete' });
    expect(reopened.handle).toBe(first);
    await reopened.clear();
    expect(await reopened.getMessages()).toEqual([]);
    expect(await restarted.loadSession(first)).toBeNull();
    expect((await restarted.listSessions({ agent: AGENT, createdBy: 'gone' })).map((s) => s.handle)).toEqual([older]);

    await reopened.addMessage(new HumanMessage('fresh start'));
    expect([first, older]).not.toContain(reopened.handle);
    expect(await restarted.findLatestSession(AGENT, 'gone')).toBe(reopened.handle);
    expect(turnsOf(mapChatMessagesToStoredMessages(await reopened.getMessages()))).toEqual(['human:fresh start']);
  });

  it('opens a given handle, reads only the last n with { last }, and refuses what is not LangChain history', async () => {
    const store = await fixture.open({ messages: 'any' });
    const handle = await store.createSession(AGENT, 'by-handle');
    const history = await StepstoreChatMessageHistory.open(store, { handle });
    await history.addMessages([new HumanMessage('one'), new AIMessage('two'), new HumanMessage('three')]);
    const tail = await StepstoreChatMessageHistory.open(store, { handle, last: 2 });
    expect(turnsOf(mapChatMessagesToStoredMessages(await tail.getMessages()))).toEqual(['ai:two', 'human:three']);

    await expect(StepstoreChatMessageHistory.open(store, { handle: `${AGENT}_nobody_1` })).rejects.toMatchObject({ code: 'SESSION_NOT_FOUND' });
    await store.appendMessages(handle, [{ message: { role: 'user', content: [{ type: 'text', text: 'crabtalk shape' }] } }]);
    await expect(history.getMessages()).rejects.toMatchObject({ code: 'INVALID_ENTRY', message: expect.stringContaining('step 4') });
  });

  it("needs a store opened with { messages: 'any' }", async () => {
    const store = await fixture.open();
    await expect(StepstoreChatMessageHistory.open(store, { agent: AGENT, sessionId: 'x' })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    expect(() => StepstoreChatMessageHistory.factory(store, { agent: AGENT })).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
    const anyStore = await fixture.open({ messages: 'any' });
    await expect(StepstoreChatMessageHistory.open(anyStore, { agent: AGENT, sessionId: 'x', clear: 'wipe' as 'delete' })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
    });
    expect(await store.listSessions()).toEqual([]);
  });
}

describe('stepstore/langchain on the filesystem', () => defineLangChainTests(fsHarness('file')));
describeWithRedis('stepstore/langchain on Redis', () => defineLangChainTests(redisHarness()));
