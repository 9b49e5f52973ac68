// stepstore/openai-agents against the real @openai/agents-core runner (a scripted
// Model, a function tool), on the filesystem and on Redis with the same tests;
// restarts are new stores or child processes (openai-agents.child.mjs).

import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Agent, Usage, run, setTracingDisabled, tool } from '@openai/agents-core';
import type { AgentInputItem, AgentOutputItem, Model, ModelRequest, ModelResponse, StreamEvent } from '@openai/agents-core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { StepStoreError, type Store } from 'stepstore';
import { StepstoreSession } from 'stepstore/openai-agents';
import type { Fixture, Harness } from '../conformance/harness.js';
import { fsHarness } from '../helpers/fs-harness.js';
import { describeWithRedis, redisHarness } from '../helpers/redis-harness.js';

setTracingDisabled(true);

const CHILD = fileURLToPath(new URL('./openai-agents.child.mjs', import.meta.url));
const execFileAsync = promisify(execFile);

interface ChildResult {
  handle: string;
  itemsBefore: AgentInputItem[];
  items: AgentInputItem[];
  inputs?: AgentInputItem[][];
  added?: AgentInputItem[][];
  output?: string;
}

async function runChild(fixture: Fixture, args: Record<string, unknown>): Promise<ChildResult> {
  const { stdout } = await execFileAsync(process.execPath, [CHILD, JSON.stringify({ store: fixture.workerSpec(), ...args })]);
  return JSON.parse(stdout) as ChildResult;
}

/** A Model answering each call with the next scripted output list, recording each request's input. */
class ScriptedModel implements Model {
  readonly inputs: AgentInputItem[][] = [];
  readonly #outputs: AgentOutputItem[][];

  constructor(outputs: AgentOutputItem[][]) {
    this.#outputs = [...outputs];
  }

  async getResponse(request: ModelRequest): Promise<ModelResponse> {
    this.inputs.push(structuredClone(typeof request.input === 'string' ? [{ role: 'user', content: request.input }] : request.input));
    const output = this.#outputs.shift();
    if (output === undefined) throw new Error('scripted model: no output left');
    return { usage: new Usage(), output, responseId: `resp_${this.inputs.length}` };
  }

  // eslint-disable-next-line require-yield
  async *getStreamedResponse(): AsyncIterable<StreamEvent> {
    throw new Error('scripted model: streaming is not scripted');
  }
}

const getWeather = tool({
  name: 'get_weather',
  description: 'The weather in a city',
  parameters: z.object({ city: z.string() }),
  execute: async ({ city }) => `Sunny in ${city}`,
});

function say(id: string, text: string): AgentOutputItem {
  return { type: 'message', role: 'assistant', status: 'completed', id, content: [{ type: 'output_text', text }] };
}

const user = (content: string): AgentInputItem => ({ type: 'message', role: 'user', content });
const assistant = (text: string): AgentInputItem => say(`msg_${text.length}`, text) as AgentInputItem;
const compactionItem: AgentInputItem = { type: 'compaction', encrypted_content: 'opaque-summary-of-earlier-turns' } as AgentInputItem;

/** Records every list the SDK hands the session's addItems. */
function spyOnAddItems(session: StepstoreSession): AgentInputItem[][] {
  const added: AgentInputItem[][] = [];
  const addItems = session.addItems.bind(session);
  session.addItems = async (items) => {
    added.push(JSON.parse(JSON.stringify(items)) as AgentInputItem[]);
    return addItems(items);
  };
  return added;
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const err = await promise.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(err).toBeInstanceOf(StepStoreError);
  expect((err as StepStoreError).code).toBe(code);
}

function sessionTests(harness: Harness): void {
  let fixture: Fixture;
  let store: Store;
  beforeEach(async () => {
    fixture = await harness.fixture();
    store = await fixture.open({ messages: 'any' });
  });
  afterEach(async () => {
    await fixture.dispose();
  });

  /** Closes `store` and opens a new one on the same storage, as a restarted process would. */
  async function restart(): Promise<Store> {
    await store.close();
    store = await fixture.open({ messages: 'any' });
    return store;
  }

  it('runs three SDK turns with a tool call, and a fourth in a new process sees all of them', async () => {
    const session = await StepstoreSession.open(store, { agent: 'weather', sender: 'tg:42' });
    const handle = await session.getSessionId();
    expect(handle).toBe('weather_tg-42_1');
    expect((await store.loadSession(handle))!.meta.framework).toBe('openai-agents');
    const added = spyOnAddItems(session);
    const toolCall: AgentOutputItem = {
      type: 'function_call',
      callId: 'call_paris',
      name: 'get_weather',
      arguments: '{"city":"Paris"}',
      status: 'completed',
    };
    const model = new ScriptedModel([
      [say('msg_1', 'Hello! Ask me about the weather.')],
      [toolCall],
      [say('msg_2', 'It is sunny in Paris.')],
      [say('msg_3', 'You are welcome.')],
    ]);
    const agent = new Agent({ name: 'weather', instructions: 'Answer about the weather.', model, tools: [getWeather] });
    await run(agent, 'Hi', { session });
    const second = await run(agent, 'What is the weather in Paris?', { session });
    expect(second.finalOutput).toBe('It is sunny in Paris.');
    await run(agent, 'Thanks', { session });
    // The tool's result went back to the model within turn 2.
    expect(model.inputs[2]!.at(-1)).toMatchObject({ type: 'function_call_result', callId: 'call_paris', output: { text: 'Sunny in Paris' } });
    await store.close();

    const turnsOneToThree = added.flat();
    expect(turnsOneToThree.map((item) => ('role' in item ? item.role : item.type))).toEqual([
      'user',
      'assistant',
      'user',
      'function_call',
      'function_call_result',
      'assistant',
      'user',
      'assistant',
    ]);
    const fourth = await runChild(fixture, {
      open: { agent: 'weather', sender: 'tg:42' },
      task: 'turn',
      input: 'And tomorrow?',
      script: [[say('msg_4', 'Sunny again.')]],
    });
    expect(fourth.handle).toBe(handle);
    expect(fourth.output).toBe('Sunny again.');
    // Turn 4's model input: the whole history of turns 1-3 in order, then the new message.
    expect(fourth.inputs![0]).toEqual([...turnsOneToThree, user('And tomorrow?')]);
    expect(fourth.inputs![0]![3]).toMatchObject({ type: 'function_call', name: 'get_weather', arguments: '{"city":"Paris"}' });

    // What is stored is exactly what the SDK handed addItems, one step per item.
    const everything = [...turnsOneToThree, ...fourth.added!.flat()];
    store = await fixture.open({ messages: 'any' });
    const steps = await store.readSteps(handle);
    expect(steps.map((record) => record.kind)).toEqual(everything.map(() => 'entry'));
    expect(steps.map((record) => (record.line as { message: unknown }).message)).toEqual(everything);
    expect(fourth.items).toEqual(everything);
  });

  it('popItem removes the newest item durably, also one held by a compaction', async () => {
    const session = await StepstoreSession.open(store, { agent: 'bot', sender: 'pop' });
    expect(await session.popItem()).toBeUndefined();
    await session.addItems([user('one'), assistant('two'), user('three')]);
    expect(await session.popItem()).toEqual(user('three'));
    const handle = await session.getSessionId();

    await restart();
    const reopened = await StepstoreSession.open(store, { handle });
    expect(await reopened.getItems()).toEqual([user('one'), assistant('two')]);
    expect((await store.readSteps(handle)).map((record) => record.step)).toEqual([1, 2]);

    await reopened.replaceHistoryWithCompaction([compactionItem, assistant('two')]);
    expect(await reopened.popItem()).toEqual(assistant('two'));
    await restart();
    const again = await StepstoreSession.open(store, { handle });
    expect(await again.getItems()).toEqual([compactionItem]);
    expect(await again.popItem()).toEqual(compactionItem);
    expect(await again.popItem()).toBeUndefined();
    expect(await again.getItems()).toEqual([]);
    // Every pop of an archived item is a new boundary: the entries before them are still on disk.
    expect((await store.readSteps(handle)).map((record) => record.kind)).toEqual(['entry', 'entry', 'compact', 'compact', 'compact']);
  });

  it('clearSession sets a boundary: after a restart getItems is empty and the old steps are on disk', async () => {
    const session = await StepstoreSession.open(store, { agent: 'bot', sender: 'clear' });
    const before = [user('one'), assistant('two'), user('three')];
    await session.addItems(before);
    await session.clearSession();
    const handle = await session.getSessionId();
    await store.close();

    const child = await runChild(fixture, { open: { agent: 'bot', sender: 'clear' }, task: 'items' });
    expect(child.handle).toBe(handle);
    expect(child.items).toEqual([]);
    store = await fixture.open({ messages: 'any' });
    const steps = await store.readSteps(handle);
    expect(steps.map((record) => record.kind)).toEqual(['entry', 'entry', 'entry', 'compact']);
    expect(steps.slice(0, 3).map((record) => (record.line as { message: unknown }).message)).toEqual(before);

    const reopened = await StepstoreSession.open(store, { handle });
    await reopened.addItems([user('after')]);
    expect(await reopened.getItems()).toEqual([user('after')]);
  });

  it("clearSession with { clear: 'delete' } deletes the session; the next write makes a new one", async () => {
    const session = await StepstoreSession.open(store, { agent: 'bot', sender: 'gone', clear: 'delete' });
    const first = await session.getSessionId();
    await session.addItems([user('one')]);
    await session.clearSession();
    expect(await store.loadSession(first)).toBeNull();
    expect(await session.getItems()).toEqual([]);
    await session.addItems([user('two')]);
    const second = await session.getSessionId();
    expect(second).not.toBe(first);
    expect(second).toBe('bot_gone_2');

    await restart();
    const reopened = await StepstoreSession.open(store, { agent: 'bot', sender: 'gone' });
    expect(await reopened.getSessionId()).toBe(second);
    expect(await reopened.getItems()).toEqual([user('two')]);
    expect((await store.loadSession(second))!.meta.framework).toBe('openai-agents');
  });

  it('replaceHistoryWithCompaction keeps the old steps, and after a restart replay (and the SDK) starts at the boundary', async () => {
    const session = await StepstoreSession.open(store, { agent: 'weather', sender: 'compact' });
    const handle = await session.getSessionId();
    const history = [user('u1'), assistant('a1'), user('u2'), assistant('a2'), user('u3'), assistant('a3')];
    await session.addItems(history);
    expect(await session.getItems()).toEqual(history);
    const replacement = [compactionItem, user('u3'), assistant('a3')];
    await session.replaceHistoryWithCompaction(replacement);
    await store.close();

    // A new process: getItems gives the replacement, and the SDK's next turn starts from it.
    const turn = await runChild(fixture, { open: { handle }, task: 'turn', input: 'u4', script: [[say('msg_4', 'a4')]] });
    expect(turn.itemsBefore).toEqual(replacement);
    expect(turn.inputs![0]).toEqual([...replacement, user('u4')]);
    const a4 = say('msg_4', 'a4') as AgentInputItem;
    expect(turn.items).toEqual([...replacement, user('u4'), a4]);

    store = await fixture.open({ messages: 'any' });
    const steps = await store.readSteps(handle);
    expect(steps.map((record) => record.kind)).toEqual([...history.map(() => 'entry'), 'compact', 'entry', 'entry']);
    expect(steps.slice(0, 6).map((record) => (record.line as { message: unknown }).message)).toEqual(history);
    const reopened = await StepstoreSession.open(store, { handle });
    // A limit reaching past the entries after the boundary takes the rest from the archive.
    expect(await reopened.getItems(2)).toEqual([user('u4'), a4]);
    expect(await reopened.getItems(3)).toEqual([assistant('a3'), user('u4'), a4]);
    expect(await reopened.getItems(10)).toEqual([...replacement, user('u4'), a4]);
  });

  it('replaceHistoryWithCompaction is CONFLICT when another writer appended since this session read', async () => {
    const session = await StepstoreSession.open(store, { agent: 'bot', sender: 'race' });
    await session.addItems([user('u1'), assistant('a1')]);
    expect(await session.getItems()).toHaveLength(2);
    const other = await StepstoreSession.open(store, { handle: await session.getSessionId() });
    await other.addItems([user('from the other writer')]);
    await expectCode(session.replaceHistoryWithCompaction([compactionItem]), 'CONFLICT');
    expect(await other.getItems()).toEqual([user('u1'), assistant('a1'), user('from the other writer')]);
    // Read again, it applies.
    expect(await session.getItems()).toHaveLength(3);
    await session.replaceHistoryWithCompaction([compactionItem]);
    expect(await other.getItems()).toEqual([compactionItem]);
  });

  it('getItems(limit) reads only about limit steps of a 500-item session', async () => {
    const session = await StepstoreSession.open(store, { agent: 'bot', sender: 'long' });
    const items = Array.from({ length: 500 }, (_, i) => (i % 2 === 0 ? user(`u${i}`) : assistant(`a${i}`)));
    await session.addItems(items);
    const before = store.stats().stepsRead;
    expect(await session.getItems(5)).toEqual(items.slice(-5));
    // `last: n` reads one step more, to tell whether older entries exist; one more is the highest step (the fence of a later compaction).
    expect(store.stats().stepsRead - before).toBeLessThanOrEqual(7);
    expect(await session.getItems(0)).toEqual([]);
    expect(await session.getItems()).toEqual(items);
  });

  it('applyHistoryTransaction: append_items is idempotent per operation id, across a restart', async () => {
    const session = await StepstoreSession.open(store, { agent: 'bot', sender: 'tx' });
    const handle = await session.getSessionId();
    await session.addItems([user('u1')]);
    const transaction = { type: 'append_items' as const, items: [assistant('a1'), user('u2')] };
    await session.applyHistoryTransaction({ operationId: 'op-1', transaction });
    await session.applyHistoryTransaction({ operationId: 'op-1', transaction: structuredClone(transaction) });
    expect(await session.getItems()).toEqual([user('u1'), assistant('a1'), user('u2')]);

    const [, stored] = await store.readSteps(handle);
    const line = stored!.line as Record<string, unknown>;
    expect(line.operation_id).toBe('op-1');
    expect(line.transaction_digest).toMatch(/^[0-9a-f]{64}$/);
    expect(line.message).toEqual(assistant('a1'));

    await restart();
    const reopened = await StepstoreSession.open(store, { handle });
    await reopened.applyHistoryTransaction({ operationId: 'op-1', transaction });
    expect(await reopened.getItems()).toHaveLength(3);
    const written = store.stats().stepsWritten;
    await expectCode(
      reopened.applyHistoryTransaction({ operationId: 'op-1', transaction: { type: 'append_items', items: [assistant('other')] } }),
      'CONFLICT',
    );
    expect(store.stats().stepsWritten).toBe(written);
    expect(await reopened.getItems()).toEqual([user('u1'), assistant('a1'), user('u2')]);
  });

  it('applyHistoryTransaction: replace_suffix checks the tail, then replaces it', async () => {
    const session = await StepstoreSession.open(store, { agent: 'bot', sender: 'suffix' });
    const handle = await session.getSessionId();
    await session.addItems([user('u1'), assistant('blocked output'), user('u2')]);
    const stepsBefore = await store.readSteps(handle);

    await expectCode(
      session.applyHistoryTransaction({
        operationId: 'op-mismatch',
        transaction: { type: 'replace_suffix', expectedSuffix: [assistant('something else'), user('u2')], replacement: [assistant('x')] },
      }),
      'CONFLICT',
    );
    expect(await store.readSteps(handle)).toEqual(stepsBefore);

    const replace = {
      operationId: 'op-replace',
      transaction: {
        type: 'replace_suffix' as const,
        // Key order differs from what is stored: compared as JSON values.
        expectedSuffix: [{ content: [{ text: 'blocked output', type: 'output_text' }], id: 'msg_14', status: 'completed', role: 'assistant', type: 'message' } as AgentInputItem, user('u2')],
        replacement: [assistant('accepted output'), user('u2')],
      },
    };
    await session.applyHistoryTransaction(replace);
    expect(await session.getItems()).toEqual([user('u1'), assistant('accepted output'), user('u2')]);
    await session.applyHistoryTransaction(replace);

    await restart();
    const reopened = await StepstoreSession.open(store, { handle });
    expect(await reopened.getItems()).toEqual([user('u1'), assistant('accepted output'), user('u2')]);
    const steps = await store.readSteps(handle);
    expect(steps.map((record) => record.step)).toEqual([1, 2, 3]);
    expect((steps[1]!.line as Record<string, unknown>).operation_id).toBe('op-replace');
  });

  it('applyHistoryTransaction: a suffix reaching into a compaction, an empty replacement, binary items', async () => {
    const session = await StepstoreSession.open(store, { agent: 'bot', sender: 'deep' });
    const handle = await session.getSessionId();
    await session.addItems([user('u1'), assistant('a1')]);
    await session.replaceHistoryWithCompaction([compactionItem, assistant('a1')]);
    await session.addItems([user('u2')]);
    const deep = {
      operationId: 'op-deep',
      transaction: { type: 'replace_suffix' as const, expectedSuffix: [assistant('a1'), user('u2')], replacement: [assistant('a1 again')] },
    };
    await session.applyHistoryTransaction(deep);
    expect(await session.getItems()).toEqual([compactionItem, assistant('a1 again')]);
    await session.applyHistoryTransaction(deep);
    expect(await session.getItems()).toEqual([compactionItem, assistant('a1 again')]);

    // An empty replacement writes no entry: an event records the operation, so a retry is still a no-op.
    const drop = { operationId: 'op-drop', transaction: { type: 'replace_suffix' as const, expectedSuffix: [assistant('a1 again')], replacement: [] } };
    await session.applyHistoryTransaction(drop);
    await session.applyHistoryTransaction(drop);
    expect(await session.getItems()).toEqual([compactionItem]);
    expect((await store.readSteps(handle, { last: 1 }))[0]!.kind).toBe('event');

    // Binary survives the store as tagged base64, in entries and in a compaction's archive.
    const bytes = new Uint8Array([0, 1, 2, 250, 255]);
    const withFile = { type: 'message', role: 'user', content: [{ type: 'input_file', file: bytes }] } as unknown as AgentInputItem;
    await session.applyHistoryTransaction({ operationId: 'op-file', transaction: { type: 'append_items', items: [withFile] } });
    await restart();
    const reopened = await StepstoreSession.open(store, { handle });
    const [, stored] = await reopened.getItems();
    expect((stored as unknown as { content: { file: unknown }[] }).content[0]!.file).toEqual(bytes);
    await reopened.replaceHistoryWithCompaction([compactionItem, withFile]);
    expect(await reopened.getItems()).toEqual([compactionItem, withFile]);
    // A Buffer is bytes too (its toJSON must not turn it into { type: 'Buffer', data }).
    const withBuffer = { type: 'message', role: 'user', content: [{ type: 'input_file', file: Buffer.from(bytes) }] } as unknown as AgentInputItem;
    await reopened.addItems([withBuffer]);
    const [last] = await (await StepstoreSession.open(store, { handle })).getItems(1);
    expect((last as unknown as { content: { file: unknown }[] }).content[0]!.file).toEqual(bytes);
  });

  it('needs a handle that exists', async () => {
    await expectCode(StepstoreSession.open(store, { handle: 'bot_nobody_7' }), 'SESSION_NOT_FOUND');
  });
}

describe('stepstore/openai-agents on the filesystem', () => {
  sessionTests(fsHarness('none'));

  it('refuses a store not opened with { messages: "any" }', async () => {
    const fixture = await fsHarness('none').fixture();
    try {
      const crabtalkStore = await fixture.open();
      await expectCode(StepstoreSession.open(crabtalkStore, { agent: 'bot', sender: 'u' }), 'INVALID_OPTION');
      expect(await crabtalkStore.listSessions()).toEqual([]);
    } finally {
      await fixture.dispose();
    }
  });
});

describeWithRedis('stepstore/openai-agents on Redis', () => {
  sessionTests(redisHarness());

  it('refuses a store not opened with { messages: "any" }', async () => {
    const fixture = await redisHarness().fixture();
    try {
      await expectCode(StepstoreSession.open(await fixture.open(), { handle: 'bot_u_1' }), 'INVALID_OPTION');
    } finally {
      await fixture.dispose();
    }
  });
});
