// stepstore/langgraph: a LangGraph checkpointer (BaseCheckpointSaver) on a
// stepstore Store. One session per thread (the thread id is the sender), one
// event step per put and per putWrites, read newest first in pages so that
// the latest checkpoint of a long thread costs a few steps.
//
// Step shapes (events, so they are never replayed as messages):
//   { event: 'langgraph_checkpoint', ns, id, parent_id, checkpoint, metadata,
//     new_versions, channel_values, value_steps, writes_before }
//     `checkpoint` is the checkpoint without its channel_values;
//     `channel_values` holds the channels of `new_versions` (what changed
//     at this checkpoint) and, for a checkpoint with a parent, any other
//     channel whose holder is not found in the session;
//     `value_steps` names, for every other channel of
//     checkpoint.channel_versions, the step of the checkpoint holding its
//     value at that version (found through the parent at put time);
//     `writes_before` lists the steps of writes to this checkpoint stored
//     before it (the Pregel loop defers a put until the previous one is done,
//     while its tasks' writes go out at once).
//   { event: 'langgraph_writes', ns, checkpoint_id, task_id, task_path,
//     writes: [{ channel, idx, value }] }
// Every serialised value is what serde.dumpsTyped gives: a 'json' value is
// stored as the parsed JSON itself (readable with the CLI); anything else, or
// a JSON value that would look like the tag, as { stepstore_serde: type, base64 }.

import type { RunnableConfig } from '@langchain/core/runnables';
import type {
  ChannelVersions,
  Checkpoint,
  CheckpointListOptions,
  CheckpointMetadata,
  CheckpointPendingWrite,
  CheckpointTuple,
  PendingWrite,
  SerializerProtocol,
} from '@langchain/langgraph-checkpoint';
import { StepStoreError, invalidOption, isStepStoreError } from '../errors.js';
import type { Store } from '../store.js';
import type { EventLine, StepRecord } from '../types.js';
import { FRAMEWORK_FIELD, importPeer, isGone, latestOrCreate, requireAnyMessages } from './common.js';

const ENTRY_POINT = 'stepstore/langgraph';
const FRAMEWORK = 'langgraph';

const { BaseCheckpointSaver, TASKS, WRITES_IDX_MAP, compareWritesSortKeys, maxChannelVersion, writesSortKey } = await importPeer(
  '@langchain/langgraph-checkpoint',
  ENTRY_POINT,
  () => import('@langchain/langgraph-checkpoint'),
);

export const CHECKPOINT_EVENT = 'langgraph_checkpoint';
export const WRITES_EVENT = 'langgraph_writes';

/** The key naming a value stored as bytes: `{ stepstore_serde: type, base64 }`. */
const SERDE_TAG = 'stepstore_serde';

/** Writes steps kept for checkpoints not put yet, at most (the oldest are forgotten first). */
const MAX_WRITES_AHEAD = 4096;

/**
 * Events do not bump a session's updated_at, which listSessions orders by and
 * prune judges by: a put refreshes it, at most once a minute per thread.
 */
const TOUCH_INTERVAL_MS = 60_000;

/** Steps read by the first page of a newest-first read; each further page doubles, up to the cap. */
const FIRST_PAGE = 8;
const MAX_PAGE = 256;

export interface StepstoreSaverOptions {
  /** The agent name of the thread sessions (the thread id is the sender); default 'langgraph'. */
  agent?: string;
  /** Serialiser of checkpoints, metadata and writes; default LangGraph's JsonPlusSerializer. */
  serde?: SerializerProtocol;
}

interface CheckpointStep {
  step: number;
  ns: string;
  id: string;
  parentId: string | undefined;
  line: Record<string, unknown>;
}

interface WritesStep {
  step: number;
  ns: string;
  checkpointId: string;
  taskId: string;
  taskPath: string;
  writes: { channel: string; idx: number; value: unknown }[];
}

type ParsedStep = { kind: 'checkpoint'; value: CheckpointStep } | { kind: 'writes'; value: WritesStep } | { kind: 'other'; step: number };

/** Where the value of each channel of a checkpoint lives (its own step or an ancestor's), with the versions it holds. */
interface ChannelHolders {
  id: string;
  versions: ChannelVersions;
  steps: Record<string, number>;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isTagged(value: unknown): value is { [SERDE_TAG]: string; base64: string } {
  return isRecord(value) && Object.hasOwn(value, SERDE_TAG);
}

function keyOf(ns: string, id: string): string {
  return `${ns}\u0000${id}`;
}

function parseStep(record: StepRecord): ParsedStep {
  const line = record.line as Record<string, unknown>;
  if (record.kind === 'event' && typeof line.ns === 'string') {
    if (line.event === CHECKPOINT_EVENT && typeof line.id === 'string') {
      const parentId = typeof line.parent_id === 'string' ? line.parent_id : undefined;
      return { kind: 'checkpoint', value: { step: record.step, ns: line.ns, id: line.id, parentId, line } };
    }
    if (line.event === WRITES_EVENT && typeof line.checkpoint_id === 'string' && typeof line.task_id === 'string' && Array.isArray(line.writes)) {
      return {
        kind: 'writes',
        value: {
          step: record.step,
          ns: line.ns,
          checkpointId: line.checkpoint_id,
          taskId: line.task_id,
          taskPath: typeof line.task_path === 'string' ? line.task_path : '',
          writes: line.writes as WritesStep['writes'],
        },
      };
    }
  }
  return { kind: 'other', step: record.step };
}

/** A session's steps newest first, read in growing pages; single older steps on demand. */
class StepCursor {
  /** Newest first, contiguous from the session's highest step. */
  readonly #seen: ParsedStep[] = [];
  readonly #byStep = new Map<number, ParsedStep>();
  #exhausted = false;
  #page = FIRST_PAGE;

  constructor(
    private readonly store: Store,
    private readonly handle: string,
  ) {}

  /** The index-th step counting back from the newest, or undefined past the first step. */
  async get(index: number): Promise<ParsedStep | undefined> {
    while (index >= this.#seen.length && (await this.#more()));
    return this.#seen[index];
  }

  /** The step numbered `step` (one read when it is older than the pages read so far). */
  async at(step: number): Promise<ParsedStep | undefined> {
    const known = this.#byStep.get(step);
    if (known !== undefined) return known;
    const [record] = await this.store.readSteps(this.handle, { after: step - 1, limit: 1 });
    if (record === undefined || record.step !== step) return undefined;
    const parsed = parseStep(record);
    this.#byStep.set(step, parsed);
    return parsed;
  }

  async #more(): Promise<boolean> {
    if (this.#exhausted) return false;
    const oldest = this.#seen.at(-1);
    const lowest = oldest === undefined ? undefined : stepOf(oldest);
    if (lowest !== undefined && lowest <= 1) {
      this.#exhausted = true;
      return false;
    }
    const page = this.#page;
    const records =
      lowest === undefined ? await this.store.readSteps(this.handle, { last: page }) : await this.store.readSteps(this.handle, { before: lowest, limit: page });
    if (records.length < page) this.#exhausted = true;
    this.#page = Math.min(page * 2, MAX_PAGE);
    for (let i = records.length - 1; i >= 0; i--) {
      const record = records[i]!;
      const parsed = this.#byStep.get(record.step) ?? parseStep(record);
      this.#byStep.set(record.step, parsed);
      this.#seen.push(parsed);
    }
    return records.length > 0;
  }
}

function stepOf(parsed: ParsedStep): number {
  return parsed.kind === 'other' ? parsed.step : parsed.value.step;
}

/** A thread's checkpoints newest first, with the writes stored after each (all of them: writes follow their checkpoint). */
class ThreadReader {
  readonly cursor: StepCursor;
  #scanned = 0;
  /** Newest first. */
  readonly #ordered: CheckpointStep[] = [];
  readonly #checkpoints = new Map<string, CheckpointStep>();
  /** Newest first. */
  readonly #writes = new Map<string, WritesStep[]>();

  constructor(store: Store, handle: string) {
    this.cursor = new StepCursor(store, handle);
  }

  /** The index-th checkpoint counting back from the newest, or undefined past the oldest. */
  async checkpointAt(index: number): Promise<CheckpointStep | undefined> {
    while (index >= this.#ordered.length && (await this.#scanCheckpoint()));
    return this.#ordered[index];
  }

  /** Checkpoint `id` of namespace `ns`, or the newest of `ns` when id is undefined. */
  async find(ns: string, id: string | undefined): Promise<CheckpointStep | undefined> {
    if (id !== undefined) {
      const known = this.#checkpoints.get(keyOf(ns, id));
      if (known !== undefined) return known;
    } else {
      const newest = this.#ordered.find((checkpoint) => checkpoint.ns === ns);
      if (newest !== undefined) return newest;
    }
    while (await this.#scanCheckpoint()) {
      const next = this.#ordered.at(-1)!;
      if (next.ns === ns && (id === undefined || next.id === id)) return next;
    }
    return undefined;
  }

  /** The writes stored for a checkpoint already returned, oldest first. */
  writesOf(ns: string, id: string): WritesStep[] {
    return (this.#writes.get(keyOf(ns, id)) ?? []).slice().reverse();
  }

  /** Reads on to the next older checkpoint; false at the start of the session. */
  async #scanCheckpoint(): Promise<boolean> {
    for (;;) {
      const parsed = await this.cursor.get(this.#scanned);
      if (parsed === undefined) return false;
      this.#scanned++;
      if (parsed.kind === 'writes') {
        const key = keyOf(parsed.value.ns, parsed.value.checkpointId);
        const list = this.#writes.get(key);
        if (list === undefined) this.#writes.set(key, [parsed.value]);
        else list.push(parsed.value);
      } else if (parsed.kind === 'checkpoint') {
        const key = keyOf(parsed.value.ns, parsed.value.id);
        // A checkpoint put twice: the newest put stands, as in MemorySaver.
        if (this.#checkpoints.has(key)) continue;
        this.#checkpoints.set(key, parsed.value);
        this.#ordered.push(parsed.value);
        return true;
      }
    }
  }
}

function threadIdOf(config: RunnableConfig): string | undefined {
  const threadId: unknown = config.configurable?.thread_id;
  if (threadId === undefined || threadId === null) return undefined;
  if (typeof threadId !== 'string') throw invalidOption('configurable.thread_id must be a string');
  return threadId;
}

function namespaceOf(config: RunnableConfig): string | undefined {
  const ns: unknown = config.configurable?.checkpoint_ns;
  if (ns === undefined || ns === null) return undefined;
  if (typeof ns !== 'string') throw invalidOption('configurable.checkpoint_ns must be a string');
  return ns;
}

function checkpointIdOf(config: RunnableConfig | undefined): string | undefined {
  const id: unknown = config?.configurable?.checkpoint_id;
  return typeof id === 'string' && id !== '' ? id : undefined;
}

function missingThread(what: string): StepStoreError {
  return invalidOption(`${what}: the config has no configurable.thread_id (LangGraph needs one per conversation thread)`);
}

export class StepstoreSaver extends BaseCheckpointSaver<number> {
  readonly store: Store;
  readonly agent: string;
  /** thread id -> the handle of its session, as last resolved by this saver. */
  readonly #handles = new Map<string, string>();
  /** handle + ns -> where the channel values of the latest checkpoint put there live. */
  readonly #latestPut = new Map<string, ChannelHolders>();
  /** handle + ns + checkpoint id -> writes steps stored for it by this saver since its last put there (claimed by its next put). */
  readonly #writesAhead = new Map<string, number[]>();
  /** handle -> when this saver last refreshed its updated_at (Date.now()). */
  readonly #touched = new Map<string, number>();
  /** thread id -> the tail of its queue of writes (put, putWrites, deleteThread run in call order). */
  readonly #queues = new Map<string, Promise<void>>();

  constructor(store: Store, options: StepstoreSaverOptions = {}) {
    const { agent = FRAMEWORK, serde } = options;
    if (serde !== undefined && (typeof serde?.dumpsTyped !== 'function' || typeof serde?.loadsTyped !== 'function')) {
      throw invalidOption('serde must have dumpsTyped and loadsTyped methods');
    }
    super(serde);
    requireAnyMessages(store, ENTRY_POINT);
    if (typeof agent !== 'string') throw invalidOption('agent must be a string');
    this.store = store;
    this.agent = agent;
  }

  async getTuple(config: RunnableConfig): Promise<CheckpointTuple | undefined> {
    const threadId = threadIdOf(config);
    if (threadId === undefined) return undefined;
    const ns = namespaceOf(config) ?? '';
    const id = checkpointIdOf(config);
    await this.#settled(threadId);
    return this.#onSession(threadId, false, async (handle) => {
      const reader = new ThreadReader(this.store, handle);
      const found = await reader.find(ns, id);
      if (found === undefined) return undefined;
      const tuple = await this.#tuple(reader, threadId, found);
      if (id !== undefined) tuple.config = config;
      return tuple;
    });
  }

  async *list(config: RunnableConfig, options: CheckpointListOptions = {}): AsyncGenerator<CheckpointTuple> {
    const { before, filter } = options;
    let remaining = options.limit;
    const threadId = threadIdOf(config);
    const ns = namespaceOf(config);
    const wantedId = checkpointIdOf(config);
    const beforeId = checkpointIdOf(before);
    const threads = threadId !== undefined ? [threadId] : await this.#threadIds();
    for (const thread of threads) {
      await this.#settled(thread);
      const handle = await this.#handle(thread, false);
      if (handle === null) continue;
      const reader = new ThreadReader(this.store, handle);
      for (let index = 0; ; index++) {
        let found: CheckpointStep | undefined;
        try {
          found = await reader.checkpointAt(index);
        } catch (err) {
          if (!isGone(err)) throw err;
          this.#forget(thread);
          found = undefined;
        }
        if (found === undefined) break;
        if (ns !== undefined && found.ns !== ns) continue;
        if (wantedId !== undefined && found.id !== wantedId) continue;
        if (beforeId !== undefined && !(found.id < beforeId)) continue;
        if (filter !== undefined) {
          const metadata = (await this.#decode(found.line.metadata)) as Record<string, unknown>;
          if (!Object.entries(filter).every(([key, value]) => metadata?.[key] === value)) continue;
        }
        if (remaining !== undefined) {
          if (remaining <= 0) return;
          remaining -= 1;
        }
        yield await this.#tuple(reader, thread, found);
      }
    }
  }

  async put(config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata, newVersions: ChannelVersions): Promise<RunnableConfig> {
    const threadId = threadIdOf(config);
    if (threadId === undefined) throw missingThread('put');
    const ns = namespaceOf(config) ?? '';
    const parentId = checkpointIdOf(config);
    const stored = await this.#serial(threadId, () =>
      this.#onSession(threadId, true, async (handle) => {
        await this.#touch(handle, threadId);
        const parent = parentId === undefined ? undefined : await this.#holders(handle, ns, parentId);
        const { channel_values: channelValues, ...rest } = checkpoint;
        const versions = { ...(checkpoint.channel_versions ?? {}) };
        const hasValue = (channel: string) => Object.hasOwn(channelValues ?? {}, channel);
        const own = Object.keys(newVersions ?? {}).filter(hasValue);
        const valueSteps: Record<string, number> = {};
        for (const channel of Object.keys(versions)) {
          if (Object.hasOwn(newVersions ?? {}, channel)) continue;
          const held = parent?.steps[channel];
          if (held !== undefined && parent!.versions[channel] === versions[channel]) valueSteps[channel] = held;
          // A parent whose holder of the channel is not in this session (put in a session deleted since): the value is kept
          // here. Without a parent, as in MemorySaver, only the channels of new_versions are stored.
          else if (parentId !== undefined && hasValue(channel)) own.push(channel);
        }
        const writesBefore = this.#writesAhead.get(keyOf(keyOf(handle, ns), checkpoint.id)) ?? [];
        const build = async (asBytes: boolean): Promise<EventLine> => {
          const values: Record<string, unknown> = {};
          for (const channel of own) values[channel] = await this.#encode(channelValues[channel], asBytes);
          return {
            event: CHECKPOINT_EVENT,
            ns,
            id: checkpoint.id,
            parent_id: parentId ?? null,
            checkpoint: await this.#encode(rest, asBytes),
            metadata: await this.#encode(metadata, asBytes),
            new_versions: { ...(newVersions ?? {}) },
            channel_values: values,
            value_steps: valueSteps,
            writes_before: writesBefore,
          };
        };
        const step = await this.#append(handle, build);
        this.#forgetWritesAhead(handle, ns, checkpoint.id);
        const steps = { ...valueSteps };
        for (const channel of own) steps[channel] = step;
        this.#latestPut.set(keyOf(handle, ns), { id: checkpoint.id, versions, steps });
        return { configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: checkpoint.id } };
      }),
    );
    if (stored === undefined) throw new StepStoreError('SESSION_NOT_FOUND', `the session of thread ${threadId} was deleted while the checkpoint was written`);
    return stored;
  }

  async putWrites(config: RunnableConfig, writes: PendingWrite[], taskId: string, taskPath?: string): Promise<void> {
    const threadId = threadIdOf(config);
    if (threadId === undefined) throw missingThread('putWrites');
    const checkpointId = checkpointIdOf(config);
    if (checkpointId === undefined) throw invalidOption('putWrites: the config has no configurable.checkpoint_id');
    if (typeof taskId !== 'string') throw invalidOption('putWrites: taskId must be a string');
    const ns = namespaceOf(config) ?? '';
    if (writes.length === 0) return;
    await this.#serial(threadId, () =>
      this.#onSession(threadId, true, async (handle) => {
        const build = async (asBytes: boolean): Promise<EventLine> => {
          const stored: WritesStep['writes'] = [];
          for (const [idx, [channel, value]] of writes.entries()) {
            stored.push({ channel, idx: WRITES_IDX_MAP[channel] ?? idx, value: await this.#encode(value, asBytes) });
          }
          return { event: WRITES_EVENT, ns, checkpoint_id: checkpointId, task_id: taskId, task_path: taskPath ?? '', writes: stored };
        };
        const step = await this.#append(handle, build);
        this.#rememberWriteAhead(keyOf(keyOf(handle, ns), checkpointId), step);
      }),
    );
  }

  /** Deletes every session of (agent, threadId), so a later put starts a new one. */
  async deleteThread(threadId: string): Promise<void> {
    if (typeof threadId !== 'string') throw invalidOption('deleteThread: threadId must be a string');
    await this.#serial(threadId, async () => {
      const sessions = await this.store.listSessions({ agent: this.agent, createdBy: threadId });
      for (const { handle } of sessions) await this.store.deleteSession(handle);
      this.#forget(threadId);
    });
  }

  async #tuple(reader: ThreadReader, threadId: string, found: CheckpointStep): Promise<CheckpointTuple> {
    const { line, ns, id, parentId } = found;
    const checkpoint = (await this.#decode(line.checkpoint)) as Checkpoint;
    const own = isRecord(line.channel_values) ? line.channel_values : {};
    const valueSteps = isRecord(line.value_steps) ? line.value_steps : {};
    const values: Record<string, unknown> = {};
    for (const channel of Object.keys(checkpoint.channel_versions ?? {})) {
      if (Object.hasOwn(own, channel)) {
        values[channel] = await this.#decode(own[channel]);
        continue;
      }
      const held = valueSteps[channel];
      if (typeof held !== 'number') continue;
      const holder = await reader.cursor.at(held);
      if (holder?.kind !== 'checkpoint' || !isRecord(holder.value.line.channel_values)) continue;
      if (Object.hasOwn(holder.value.line.channel_values, channel)) values[channel] = await this.#decode(holder.value.line.channel_values[channel]);
    }
    checkpoint.channel_values = values;
    const tuple: CheckpointTuple = {
      config: { configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: id } },
      checkpoint,
      metadata: (await this.#decode(line.metadata)) as CheckpointMetadata,
      pendingWrites: await this.#pendingWrites(await this.#writesOf(reader, found)),
    };
    if (parentId !== undefined) {
      tuple.parentConfig = { configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: parentId } };
      // Checkpoints before format 4 kept pending sends as writes of the parent: move them into channel_values, as MemorySaver does.
      if (checkpoint.v < 4) {
        const parent = await reader.find(ns, parentId);
        const parentWrites = parent === undefined ? [] : await this.#pendingWrites(await this.#writesOf(reader, parent));
        checkpoint.channel_values[TASKS] = parentWrites.filter(([, channel]) => channel === TASKS).map(([, , value]) => value);
        checkpoint.channel_versions ??= {};
        const versions = Object.values(checkpoint.channel_versions);
        checkpoint.channel_versions[TASKS] = versions.length > 0 ? maxChannelVersion(...versions) : this.getNextVersion(undefined);
      }
    }
    return tuple;
  }

  /** The writes to a checkpoint: those stored before it (writes_before), then those after it; oldest first. */
  async #writesOf(reader: ThreadReader, found: CheckpointStep): Promise<WritesStep[]> {
    const before: WritesStep[] = [];
    const listed = Array.isArray(found.line.writes_before) ? found.line.writes_before : [];
    for (const step of listed) {
      if (typeof step !== 'number' || step >= found.step) continue;
      const parsed = await reader.cursor.at(step);
      if (parsed?.kind === 'writes' && parsed.value.ns === found.ns && parsed.value.checkpointId === found.id) before.push(parsed.value);
    }
    before.sort((a, b) => a.step - b.step);
    return [...before, ...reader.writesOf(found.ns, found.id)];
  }

  #rememberWriteAhead(key: string, step: number): void {
    const steps = this.#writesAhead.get(key);
    if (steps !== undefined) steps.push(step);
    else {
      this.#writesAhead.set(key, [step]);
      if (this.#writesAhead.size > MAX_WRITES_AHEAD) this.#writesAhead.delete(this.#writesAhead.keys().next().value!);
    }
  }

  /** After a put of `id`: its writes ahead are claimed, and those of older checkpoints of the namespace will never be (puts come in order). */
  #forgetWritesAhead(handle: string, ns: string, id: string): void {
    const prefix = `${keyOf(handle, ns)}\u0000`;
    for (const key of this.#writesAhead.keys()) {
      if (key.startsWith(prefix) && key.slice(prefix.length) <= id) this.#writesAhead.delete(key);
    }
  }

  /** MemorySaver's rules: a regular write (idx >= 0) is kept the first time its (task, idx) is written, a special one overwritten; writesSortKey order. */
  async #pendingWrites(steps: WritesStep[]): Promise<CheckpointPendingWrite[]> {
    const byKey = new Map<string, { taskId: string; taskPath: string; idx: number; channel: string; value: unknown }>();
    for (const step of steps) {
      for (const write of step.writes) {
        const key = `${step.taskId}\u0000${write.idx}`;
        if (write.idx >= 0 && byKey.has(key)) continue;
        byKey.set(key, { taskId: step.taskId, taskPath: step.taskPath, idx: write.idx, channel: write.channel, value: write.value });
      }
    }
    const ordered = [...byKey.values()].sort((a, b) =>
      compareWritesSortKeys(writesSortKey(a.taskPath, a.taskId, a.idx), writesSortKey(b.taskPath, b.taskId, b.idx)),
    );
    const pending: CheckpointPendingWrite[] = [];
    for (const write of ordered) pending.push([write.taskId, write.channel, await this.#decode(write.value)]);
    return pending;
  }

  /** Where the channel values of checkpoint `id` live: the latest put of this saver, else read back from the session. */
  async #holders(handle: string, ns: string, id: string): Promise<ChannelHolders | undefined> {
    const latest = this.#latestPut.get(keyOf(handle, ns));
    if (latest?.id === id) return latest;
    const reader = new ThreadReader(this.store, handle);
    const found = await reader.find(ns, id);
    if (found === undefined) return undefined;
    const checkpoint = (await this.#decode(found.line.checkpoint)) as Checkpoint;
    const steps: Record<string, number> = {};
    if (isRecord(found.line.value_steps)) {
      for (const [channel, step] of Object.entries(found.line.value_steps)) if (typeof step === 'number') steps[channel] = step;
    }
    if (isRecord(found.line.channel_values)) for (const channel of Object.keys(found.line.channel_values)) steps[channel] = found.step;
    return { id, versions: checkpoint.channel_versions ?? {}, steps };
  }

  /** Appends one event; a line the store refuses as JSON (lone surrogates, deep nesting) is stored again with every value as bytes. */
  async #append(handle: string, build: (asBytes: boolean) => Promise<EventLine>): Promise<number> {
    let steps: number[];
    try {
      steps = await this.store.appendEvents(handle, [await build(false)]);
    } catch (err) {
      if (!isStepStoreError(err, 'INVALID_ENTRY')) throw err;
      steps = await this.store.appendEvents(handle, [await build(true)]);
    }
    return steps[0]!;
  }

  async #encode(value: unknown, asBytes: boolean): Promise<unknown> {
    const [type, bytes] = await this.serde.dumpsTyped(value);
    if (type === 'json' && !asBytes) {
      try {
        const parsed: unknown = JSON.parse(new TextDecoder().decode(bytes));
        if (!isTagged(parsed)) return parsed;
      } catch {
        // Not JSON after all: kept as bytes below.
      }
    }
    return { [SERDE_TAG]: type, base64: Buffer.from(bytes).toString('base64') };
  }

  async #decode(stored: unknown): Promise<unknown> {
    if (isTagged(stored)) {
      const bytes = Buffer.from(stored.base64, 'base64');
      return this.serde.loadsTyped(stored[SERDE_TAG], new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    }
    return this.serde.loadsTyped('json', JSON.stringify(stored));
  }

  async #touch(handle: string, threadId: string): Promise<void> {
    const now = Date.now();
    const last = this.#touched.get(handle);
    if (last !== undefined && now - last < TOUCH_INTERVAL_MS) return;
    const session = (await this.store.listSessions({ agent: this.agent, createdBy: threadId })).find((s) => s.handle === handle);
    if (session === undefined) return;
    await this.store.updateMeta(handle, { ...session.meta, updated_at: new Date(now).toISOString() });
    this.#touched.set(handle, now);
  }

  /** Threads with a LangGraph session of this agent. */
  async #threadIds(): Promise<string[]> {
    const sessions = await this.store.listSessions({ agent: this.agent });
    const threads = new Set<string>();
    for (const { meta } of sessions) if (meta[FRAMEWORK_FIELD] === FRAMEWORK) threads.add(meta.created_by);
    return [...threads];
  }

  async #handle(threadId: string, create: boolean): Promise<string | null> {
    const known = this.#handles.get(threadId);
    if (known !== undefined) return known;
    const handle = create ? await latestOrCreate(this.store, this.agent, threadId, FRAMEWORK) : await this.store.findLatestSession(this.agent, threadId);
    if (handle !== null) this.#handles.set(threadId, handle);
    return handle;
  }

  /**
   * Runs `op` on the thread's session (created when `create`); a session
   * deleted meanwhile (by another process) is resolved again, once. Without
   * `create`, a thread with no session gives undefined.
   */
  async #onSession<T>(threadId: string, create: boolean, op: (handle: string) => Promise<T>): Promise<T | undefined> {
    for (let attempt = 1; ; attempt++) {
      const handle = await this.#handle(threadId, create);
      if (handle === null) return undefined;
      try {
        return await op(handle);
      } catch (err) {
        if (!isGone(err) || attempt === 2) {
          if (isGone(err) && !create) return undefined;
          throw err;
        }
        this.#forget(threadId);
      }
    }
  }

  #forget(threadId: string): void {
    const handle = this.#handles.get(threadId);
    this.#handles.delete(threadId);
    if (handle === undefined) return;
    for (const key of this.#latestPut.keys()) if (key.startsWith(`${handle}\u0000`)) this.#latestPut.delete(key);
    for (const key of this.#writesAhead.keys()) if (key.startsWith(`${handle}\u0000`)) this.#writesAhead.delete(key);
    this.#touched.delete(handle);
  }

  #serial<T>(threadId: string, op: () => Promise<T>): Promise<T> {
    const run = (this.#queues.get(threadId) ?? Promise.resolve()).then(op);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.#queues.set(threadId, tail);
    void tail.then(() => {
      if (this.#queues.get(threadId) === tail) this.#queues.delete(threadId);
    });
    return run;
  }

  /** Waits for the writes to `threadId` this saver has queued (reads see them). */
  async #settled(threadId: string): Promise<void> {
    await this.#queues.get(threadId);
  }
}
