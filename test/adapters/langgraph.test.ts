// stepstore/langgraph on the filesystem and on Redis: a compiled StateGraph
// interrupted in this process and resumed by a new one, deleteThread after a
// restart, the cost of reading the latest checkpoint of a long thread, exact
// round-trips of what the serde produces, and putWrites' overwrite rules.

import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { RunnableConfig } from '@langchain/core/runnables';
import { HumanMessage, AIMessage, type BaseMessage } from '@langchain/core/messages';
import { Annotation, END, MessagesAnnotation, START, StateGraph, interrupt } from '@langchain/langgraph';
import { ERROR, JsonPlusSerializer, uuid6, type Checkpoint, type SerializerProtocol } from '@langchain/langgraph-checkpoint';
import { StepStoreError, type Store } from 'stepstore';
import { StepstoreSaver } from 'stepstore/langgraph';
import type { Fixture, Harness } from '../conformance/harness.js';
import { useFixture } from '../conformance/fixture.js';
import { fsHarness } from '../helpers/fs-harness.js';
import { describeWithRedis, redisHarness } from '../helpers/redis-harness.js';

const execFileAsync = promisify(execFile);
const RESUME_CHILD = fileURLToPath(new URL('./langgraph-resume.child.mjs', import.meta.url));

// The graph of langgraph-resume.child.mjs, node for node.
const State = Annotation.Root({
  ...MessagesAnnotation.spec,
  log: Annotation<string[]>({ reducer: (a, b) => a.concat(b), default: () => [] }),
  blob: Annotation<Uint8Array>(),
  numbers: Annotation<number[]>(),
});

function buildGraph(saver: StepstoreSaver) {
  return new StateGraph(State)
    .addNode('draft', (state) => ({
      messages: [new AIMessage(`draft: ${String(state.messages.at(-1)!.content)}`)],
      log: ['draft'],
      blob: new Uint8Array([0, 1, 127, 128, 255]),
      numbers: [0.1 + 0.2, 2 ** 53 - 1, -1e-300, 1e21],
    }))
    .addNode('review', () => {
      const verdict = interrupt<{ question: string }, string>({ question: 'publish the draft?' });
      return { messages: [new HumanMessage(`review: ${verdict}`)], log: [`review:${verdict}`] };
    })
    .addNode('publish', () => ({ messages: [new AIMessage('published')], log: ['publish'] }))
    .addEdge(START, 'draft')
    .addEdge('draft', 'review')
    .addEdge('review', 'publish')
    .addEdge('publish', END)
    .compile({ checkpointer: saver });
}

interface ResumeReport {
  pendingBefore: string[];
  interruptsBefore: unknown[];
  final: { messages: { type: string; content: string }[]; log: string[]; blob: number[]; blobIsBytes: boolean; numbers: number[] };
  after: { next: string[]; log: string[] };
  history: { next: string[]; log: string[] }[];
}

async function resumeInChild(fixture: Fixture, threadId: string, answer: string): Promise<ResumeReport> {
  const { stdout } = await execFileAsync(process.execPath, [RESUME_CHILD, JSON.stringify({ store: fixture.workerSpec(), threadId, answer })]);
  return JSON.parse(stdout) as ResumeReport;
}

function checkpointOf(channelValues: Record<string, unknown>, versions: Record<string, number>): Checkpoint {
  return { v: 4, id: uuid6(-1), ts: new Date().toISOString(), channel_values: channelValues, channel_versions: versions, versions_seen: {} };
}

const messagesOf = (list: BaseMessage[]) => list.map((m) => ({ type: m.getType(), content: m.content }));

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

function saverSuite(makeHarness: () => Harness): void {
  const t = useFixture(makeHarness());
  const open = (): Promise<Store> => t.open({ messages: 'any' });

  it('resumes in a new process a graph interrupted in this one; both see the whole state and history', async () => {
    const store = await open();
    const threadId = 'thread-7';
    const config = { configurable: { thread_id: threadId } };
    const graph = buildGraph(new StepstoreSaver(store));
    await graph.invoke({ messages: [new HumanMessage('hello')] }, config);
    const paused = await graph.getState(config);
    expect(paused.next).toEqual(['review']);
    expect(paused.values.log).toEqual(['draft']);
    await store.close();

    const report = await resumeInChild(t.fixture, threadId, 'yes');
    expect(report.pendingBefore).toEqual(['review']);
    expect(report.interruptsBefore).toEqual([{ question: 'publish the draft?' }]);
    const expectedMessages = [
      { type: 'human', content: 'hello' },
      { type: 'ai', content: 'draft: hello' },
      { type: 'human', content: 'review: yes' },
      { type: 'ai', content: 'published' },
    ];
    expect(report.final.messages).toEqual(expectedMessages);
    expect(report.final.log).toEqual(['draft', 'review:yes', 'publish']);
    expect(report.final.blobIsBytes).toBe(true);
    expect(report.final.blob).toEqual([0, 1, 127, 128, 255]);
    expect(report.final.numbers).toEqual([0.1 + 0.2, 2 ** 53 - 1, -1e-300, 1e21]);
    expect(report.after).toEqual({ next: [], log: ['draft', 'review:yes', 'publish'] });
    // Newest first: the finished state down to the empty input checkpoint.
    expect(report.history[0]).toEqual({ next: [], log: ['draft', 'review:yes', 'publish'] });
    expect(report.history.at(-1)).toEqual({ next: ['__start__'], log: [] });
    expect(report.history.some((h) => h.next[0] === 'review' && h.log.join() === 'draft')).toBe(true);

    // And back here, on a new store instance: what the child wrote.
    const reopened = await t.open({ messages: 'any' });
    const again = buildGraph(new StepstoreSaver(reopened));
    const state = await again.getState(config);
    expect(state.next).toEqual([]);
    expect(messagesOf(state.values.messages)).toEqual(expectedMessages);
    expect(state.values.blob).toEqual(new Uint8Array([0, 1, 127, 128, 255]));
    const history = await collect(again.getStateHistory(config));
    expect(history.map((h) => ({ next: h.next, log: h.values.log ?? [] }))).toEqual(report.history);

    // One session for the thread, marked as LangGraph's, whose checkpoint steps a person can read.
    const sessions = await reopened.listSessions({ agent: 'langgraph' });
    expect(sessions.map((s) => [s.meta.created_by, s.meta.framework])).toEqual([[threadId, 'langgraph']]);
    const steps = await reopened.readSteps(sessions[0]!.handle);
    const readable = steps.some((s) => {
      const line = s.line as { event?: string; channel_values?: { messages?: { kwargs?: { content?: unknown } }[] } };
      return line.event === 'langgraph_checkpoint' && (line.channel_values?.messages ?? []).some((m) => m.kwargs?.content === 'published');
    });
    expect(readable).toBe(true);
  });

  it('deleteThread after a restart deletes every session of the thread and nothing else', async () => {
    const first = await open();
    // Two sessions of (langgraph, drop): the checkpoints go to the latest; deleteThread must take both.
    await first.createSession('langgraph', 'drop');
    const dropHandle = await first.createSession('langgraph', 'drop');
    const otherAgent = await first.createSession('other-agent', 'drop');
    const saver = new StepstoreSaver(first);
    const keepIds: string[] = [];
    for (const thread of ['keep', 'drop']) {
      let config: RunnableConfig = { configurable: { thread_id: thread } };
      for (let i = 0; i < 2; i++) {
        config = await saver.put(config, checkpointOf({ n: i }, { n: i + 1 }), { source: 'loop', step: i, parents: {} }, { n: i + 1 });
        await saver.putWrites(config, [['n', i + 10]], `task-${i}`);
        if (thread === 'keep') keepIds.push(config.configurable!.checkpoint_id as string);
      }
    }
    expect((await saver.getTuple({ configurable: { thread_id: 'drop' } }))?.checkpoint.channel_values).toEqual({ n: 1 });
    expect(await first.findLatestSession('langgraph', 'drop')).toBe(dropHandle);
    await first.close();

    const second = await t.open({ messages: 'any' });
    const restarted = new StepstoreSaver(second);
    await restarted.deleteThread('drop');
    expect(await restarted.getTuple({ configurable: { thread_id: 'drop' } })).toBeUndefined();
    expect(await collect(restarted.list({ configurable: { thread_id: 'drop' } }))).toEqual([]);
    expect(await second.listSessions({ agent: 'langgraph', createdBy: 'drop' })).toEqual([]);
    expect(await second.findLatestSession('other-agent', 'drop')).toBe(otherAgent);
    const kept = await collect(restarted.list({}));
    expect(kept.map((t) => t.checkpoint.id)).toEqual([keepIds[1], keepIds[0]]);
    expect(kept[0]!.pendingWrites).toEqual([['task-1', 'n', 11]]);

    // Durable: a third store instance sees the same, and a new put starts a new session.
    const third = await t.open({ messages: 'any' });
    const later = new StepstoreSaver(third);
    expect(await later.getTuple({ configurable: { thread_id: 'drop' } })).toBeUndefined();
    expect((await later.getTuple({ configurable: { thread_id: 'keep' } }))?.checkpoint.id).toBe(keepIds[1]);
    await later.put({ configurable: { thread_id: 'drop' } }, checkpointOf({ n: 'new' }, { n: 1 }), { source: 'input', step: -1, parents: {} }, { n: 1 });
    const reborn = await later.getTuple({ configurable: { thread_id: 'drop' } });
    expect(reborn?.checkpoint.channel_values).toEqual({ n: 'new' });
    expect(reborn?.parentConfig).toBeUndefined();
    const newHandle = await third.findLatestSession('langgraph', 'drop');
    expect(newHandle).not.toBeNull();
    expect(newHandle).not.toBe(dropHandle);
  });

  it('reads the latest checkpoint of a 300-checkpoint thread in a few steps', async () => {
    const store = await open();
    const saver = new StepstoreSaver(store);
    const ids: string[] = [];
    let config: RunnableConfig = { configurable: { thread_id: 'long', checkpoint_ns: '' } };
    for (let i = 0; i < 300; i++) {
      // `messages` is written once, at the first checkpoint; `counter` changes at every one.
      const checkpoint = checkpointOf({ messages: ['first'], counter: i }, { messages: 1, counter: i + 1 });
      config = await saver.put(config, checkpoint, { source: 'loop', step: i, parents: {} }, i === 0 ? { messages: 1, counter: 1 } : { counter: i + 1 });
      await saver.putWrites(config, [['counter', i + 1]], `task-${i}`);
      ids.push(checkpoint.id);
    }
    await store.close();

    const reopened = await t.open({ messages: 'any' });
    const restarted = new StepstoreSaver(reopened);
    const before = reopened.stats().stepsRead;
    const latest = await restarted.getTuple({ configurable: { thread_id: 'long' } });
    const cost = reopened.stats().stepsRead - before;
    expect(latest?.checkpoint.id).toBe(ids[299]);
    expect(latest?.checkpoint.channel_values).toEqual({ messages: ['first'], counter: 299 });
    expect(latest?.pendingWrites).toEqual([['task-299', 'counter', 300]]);
    expect(latest?.parentConfig?.configurable?.checkpoint_id).toBe(ids[298]);
    // One page of the newest steps, and the one step holding `messages`: not the 600 steps of the thread.
    expect(cost).toBeLessThanOrEqual(10);

    const listedBefore = reopened.stats().stepsRead;
    const newest = await collect(restarted.list({ configurable: { thread_id: 'long' } }, { limit: 3 }));
    expect(newest.map((t) => t.checkpoint.id)).toEqual([ids[299], ids[298], ids[297]]);
    expect(reopened.stats().stepsRead - listedBefore).toBeLessThanOrEqual(10);

    // An old checkpoint by id: still exact, with its own writes.
    const old = await restarted.getTuple({ configurable: { thread_id: 'long', checkpoint_ns: '', checkpoint_id: ids[150] } });
    expect(old?.checkpoint.channel_values).toEqual({ messages: ['first'], counter: 150 });
    expect(old?.pendingWrites).toEqual([['task-150', 'counter', 151]]);
    const all = await collect(restarted.list({ configurable: { thread_id: 'long' } }));
    expect(all.map((t) => t.checkpoint.id)).toEqual(ids.slice().reverse());
  });

  it('round-trips exactly what the serde gives: bytes, numbers, tag look-alikes, lone surrogates, a non-JSON serde', async () => {
    const store = await open();
    const saver = new StepstoreSaver(store);
    const numbers = [0.1 + 0.2, 2 ** 53 - 1, -1e-300, 1e21, 5e-324, 1.7976931348623157e308];
    const lookalike = { stepstore_serde: 'json', base64: 'bm90IHJlYWxseQ==' };
    const values = { bytes: new Uint8Array([0, 255, 10]), numbers, lookalike, map: new Map([['k', 1]]) };
    const versions = { bytes: 1, numbers: 1, lookalike: 1, map: 1 };
    const config = await saver.put({ configurable: { thread_id: 'values' } }, checkpointOf(values, versions), { source: 'input', step: -1, parents: {} }, versions);
    await saver.putWrites(config, [['raw', new Uint8Array([1, 2, 3])]], 'bytes-task');
    const surrogate = { text: 'a\ud800b' };
    const next = await saver.put(config, checkpointOf({ ...values, surrogate }, { ...versions, surrogate: 1 }), { source: 'loop', step: 0, parents: {} }, { surrogate: 1 });

    const reopened = await t.open({ messages: 'any' });
    const restarted = new StepstoreSaver(reopened);
    const first = await restarted.getTuple(config);
    const stored = first!.checkpoint.channel_values as typeof values;
    expect(stored.bytes).toBeInstanceOf(Uint8Array);
    expect(Array.from(stored.bytes)).toEqual([0, 255, 10]);
    expect(stored.numbers.every((n, i) => Object.is(n, numbers[i]))).toBe(true);
    expect(stored.lookalike).toEqual(lookalike);
    expect(stored.map).toEqual(new Map([['k', 1]]));
    const [write] = first!.pendingWrites!;
    expect(write![2]).toBeInstanceOf(Uint8Array);
    expect(Array.from(write![2] as Uint8Array)).toEqual([1, 2, 3]);
    const second = await restarted.getTuple(next);
    expect(second!.checkpoint.channel_values).toEqual({ ...values, surrogate });

    // As stored: JSON as JSON, bytes and look-alikes tagged, a step the store refuses as JSON all bytes.
    const [handle] = (await reopened.listSessions({ agent: 'langgraph', createdBy: 'values' })).map((s) => s.handle);
    const [putStep, writesStep, surrogateStep] = (await reopened.readSteps(handle!)).map((s) => s.line as Record<string, any>);
    expect(putStep!.channel_values.numbers).toEqual(numbers);
    expect(putStep!.channel_values.lookalike.stepstore_serde).toBe('json');
    expect(writesStep!.writes[0].value).toEqual({ stepstore_serde: 'bytes', base64: 'AQID' });
    expect(surrogateStep!.channel_values.surrogate.stepstore_serde).toBe('json');

    // A serde of its own type: stored as tagged bytes, given back to it.
    class ReversedJson implements SerializerProtocol {
      readonly #json = new JsonPlusSerializer();
      async dumpsTyped(data: unknown): Promise<[string, Uint8Array]> {
        const [, bytes] = await this.#json.dumpsTyped(data);
        return ['reversed-json', new TextEncoder().encode([...new TextDecoder().decode(bytes)].reverse().join(''))];
      }
      async loadsTyped(type: string, data: Uint8Array | string): Promise<unknown> {
        expect(type).toBe('reversed-json');
        const text = typeof data === 'string' ? data : new TextDecoder().decode(data);
        return this.#json.loadsTyped('json', [...text].reverse().join(''));
      }
    }
    const custom = new StepstoreSaver(reopened, { agent: 'custom', serde: new ReversedJson() });
    const customConfig = await custom.put({ configurable: { thread_id: 't' } }, checkpointOf({ n: [1, 2] }, { n: 1 }), { source: 'input', step: -1, parents: {} }, { n: 1 });
    expect((await custom.getTuple(customConfig))?.checkpoint.channel_values).toEqual({ n: [1, 2] });
    const customSteps = await reopened.readSteps((await reopened.findLatestSession('custom', 't'))!);
    expect((customSteps[0]!.line as Record<string, any>).checkpoint.stepstore_serde).toBe('reversed-json');
  });

  it('a put refreshes the session updated_at (events alone do not), so prune spares a thread in use', async () => {
    const store = await open();
    const active = await store.createSession('langgraph', 'active');
    const idle = await store.createSession('langgraph', 'idle');
    await new Promise((resolve) => setTimeout(resolve, 20));
    const cutoff = new Date();
    await new Promise((resolve) => setTimeout(resolve, 5));
    const saver = new StepstoreSaver(store);
    await saver.put({ configurable: { thread_id: 'active' } }, checkpointOf({ n: 1 }, { n: 1 }), { source: 'input', step: -1, parents: {} }, { n: 1 });
    const [summary] = await store.listSessions({ agent: 'langgraph', createdBy: 'active' });
    expect(summary!.handle).toBe(active);
    expect(Date.parse(summary!.meta.updated_at)).toBeGreaterThanOrEqual(cutoff.getTime());
    const report = await store.prune({ olderThan: cutoff, agent: 'langgraph', dryRun: true });
    expect(report.deleted.map((s) => s.handle)).toEqual([idle]);
  });

  it('putWrites keeps the first regular write and the last special write of a (task, index)', async () => {
    const store = await open();
    const saver = new StepstoreSaver(store);
    const config = await saver.put({ configurable: { thread_id: 'w' } }, checkpointOf({}, {}), { source: 'input', step: -1, parents: {} }, {});
    await saver.putWrites(config, [['a', 1]], 't1');
    await saver.putWrites(config, [['a', 2]], 't1');
    await saver.putWrites(config, [[ERROR, 'first error']], 't1');
    await saver.putWrites(config, [[ERROR, 'second error']], 't1');
    await saver.putWrites(config, [['b', 3]], 't0');
    const reopened = new StepstoreSaver(await t.open({ messages: 'any' }));
    // Ordered by (task path, task id, index): t0 first; ERROR's index is negative.
    expect((await reopened.getTuple(config))?.pendingWrites).toEqual([
      ['t0', 'b', 3],
      ['t1', ERROR, 'second error'],
      ['t1', 'a', 1],
    ]);
    // Channel versions: the base class's integers, as MemorySaver's.
    expect([saver.getNextVersion(undefined), saver.getNextVersion(1), saver.getNextVersion(41)]).toEqual([1, 2, 42]);
  });
}

describe('StepstoreSaver on the filesystem', () => {
  saverSuite(() => fsHarness('none'));

  it('refuses a store in crabtalk message mode with INVALID_OPTION', async () => {
    const fixture = await fsHarness('none').fixture();
    try {
      const store = await fixture.open();
      expect(() => new StepstoreSaver(store)).toThrow(StepStoreError);
      expect(() => new StepstoreSaver(store)).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
    } finally {
      await fixture.dispose();
    }
  });
});

describeWithRedis('StepstoreSaver on Redis', () => {
  saverSuite(() => redisHarness());
});
