// stepstore/langchain: a LangChain chat message history (BaseListChatMessageHistory)
// kept in a stepstore session, one step per message. Each entry's `message` is
// LangChain's own stored form of the message (what mapChatMessagesToStoredMessages
// gives), so it reads back through mapStoredMessagesToChatMessages unchanged.

import type { BaseMessage, StoredMessage } from '@langchain/core/messages';
import { StepStoreError, invalidOption, sessionNotFound } from '../errors.js';
import type { Store } from '../store.js';
import type { HistoryEntry } from '../types.js';
import { FRAMEWORK_FIELD, decodeBytes, importPeer, isGone, latestOrCreate, requireAnyMessages, taggedBytes } from './common.js';

const ENTRY_POINT = 'stepstore/langchain';
const FRAMEWORK = 'langchain';

const { BaseListChatMessageHistory } = await importPeer('@langchain/core', ENTRY_POINT, () => import('@langchain/core/chat_history'));
const { mapChatMessagesToStoredMessages, mapStoredMessagesToChatMessages } = await importPeer('@langchain/core', ENTRY_POINT, () =>
  import('@langchain/core/messages'),
);

/** What clear() does: 'boundary' (default) keeps the steps and starts the history afresh after a boundary; 'delete' deletes the session. */
export type ClearMode = 'boundary' | 'delete';

export interface HistoryOptions {
  clear?: ClearMode;
  /** getMessages() returns at most the last `last` messages of the history. */
  last?: number;
}

/** The conversation of (agent, sessionId): its latest session, or a new one made on the first write. */
export interface ConversationTarget extends HistoryOptions {
  agent: string;
  sessionId: string;
}

/** One given session. */
export interface HandleTarget extends HistoryOptions {
  handle: string;
}

interface State {
  handle: string | null;
  /** (agent, sender) when the history follows a conversation rather than one handle. */
  readonly conversation: { agent: string; sender: string } | null;
  /** False once clear({ clear: 'delete' }) deleted the session: the next write makes a new one instead of resuming an older one. */
  resumable: boolean;
}

export class StepstoreChatMessageHistory extends BaseListChatMessageHistory {
  lc_namespace = ['langchain', 'stores', 'message', 'stepstore'];

  readonly #store: Store;
  readonly #state: State;
  readonly #clearMode: ClearMode;
  readonly #last: number | undefined;

  private constructor(store: Store, state: State, options: HistoryOptions) {
    super();
    this.#store = store;
    this.#state = state;
    this.#clearMode = options.clear ?? 'boundary';
    this.#last = options.last;
  }

  /**
   * `{ agent, sessionId }`: LangChain's session id is the sender; resumes the
   * latest session of the pair or creates one (meta `framework: 'langchain'`)
   * on the first write. `{ handle }`: that session, which must exist.
   * The store must be opened with `{ messages: 'any' }`.
   */
  static async open(store: Store, target: ConversationTarget | HandleTarget): Promise<StepstoreChatMessageHistory> {
    requireAnyMessages(store, ENTRY_POINT);
    if (typeof target !== 'object' || target === null) throw invalidOption('open takes { agent, sessionId } or { handle }');
    checkHistoryOptions(target);
    if ('handle' in target && target.handle !== undefined) {
      if ('agent' in target || 'sessionId' in target) throw invalidOption('give either { handle } or { agent, sessionId }, not both');
      // readSteps fails with SESSION_NOT_FOUND (or INVALID_HANDLE) before anything is written to a session that is not there.
      await store.readSteps(target.handle, { last: 1 });
      return new StepstoreChatMessageHistory(store, { handle: target.handle, conversation: null, resumable: false }, target);
    }
    const { agent, sessionId } = target as ConversationTarget;
    if (typeof agent !== 'string' || typeof sessionId !== 'string') throw invalidOption('open takes { agent, sessionId } (strings) or { handle }');
    const handle = await store.findLatestSession(agent, sessionId);
    return new StepstoreChatMessageHistory(store, { handle, conversation: { agent, sender: sessionId }, resumable: true }, target);
  }

  /** For RunnableWithMessageHistory: `getMessageHistory: StepstoreChatMessageHistory.factory(store, { agent })`. */
  static factory(store: Store, options: { agent: string } & HistoryOptions): (sessionId: string) => Promise<StepstoreChatMessageHistory> {
    requireAnyMessages(store, ENTRY_POINT);
    if (typeof options !== 'object' || options === null || typeof options.agent !== 'string') throw invalidOption('factory takes { agent }');
    checkHistoryOptions(options);
    return (sessionId) => StepstoreChatMessageHistory.open(store, { ...options, sessionId });
  }

  /** The session this history reads and writes; null until the first write of a conversation with no session yet. */
  get handle(): string | null {
    return this.#state.handle;
  }

  /** The messages after the session's last boundary (a clear(), a compaction), oldest first. */
  async getMessages(): Promise<BaseMessage[]> {
    const state = this.#state;
    if (state.handle === null && state.conversation !== null && state.resumable) {
      state.handle = await this.#store.findLatestSession(state.conversation.agent, state.conversation.sender);
    }
    for (let attempt = 1; ; attempt++) {
      const handle = state.handle;
      if (handle === null) return [];
      const snapshot = await this.#store.loadSession(handle, this.#last === undefined ? undefined : { last: this.#last });
      if (snapshot !== null) return snapshot.history.map((entry, i) => toChatMessage(entry, snapshot.steps[i]!, handle));
      if (state.conversation === null) throw sessionNotFound(handle);
      // Deleted elsewhere: the conversation goes on in the latest session of the pair (another process may have started
      // one), else it is empty until its next write. Re-resolved once: a session deleted again meanwhile reads as empty.
      const latest = attempt === 1 ? await this.#store.findLatestSession(state.conversation.agent, state.conversation.sender) : null;
      state.handle = latest === handle ? null : latest;
    }
  }

  async addMessage(message: BaseMessage): Promise<void> {
    await this.addMessages([message]);
  }

  /** One appendMessages call: the batch lands whole (one step per message, numbered consecutively) or not at all. */
  override async addMessages(messages: BaseMessage[]): Promise<void> {
    if (!Array.isArray(messages)) throw new StepStoreError('INVALID_ENTRY', 'addMessages takes an array of messages');
    if (messages.length === 0) return;
    const entries: HistoryEntry<object>[] = messages.map((message) => ({ message: toStoredMessage(message) }));
    const state = this.#state;
    const handle = await this.#writableHandle();
    try {
      await this.#store.appendMessages(handle, entries);
    } catch (err) {
      if (!isGone(err) || state.conversation === null) throw err;
      // The session was deleted by another process: the conversation goes on in its latest (or a new) session.
      state.handle = null;
      await this.#store.appendMessages(await this.#writableHandle(), entries);
    }
  }

  /**
   * 'boundary' (default): a compaction boundary, so the steps stay in the
   * session and getMessages() returns [] until the next write. 'delete':
   * deletes the session; the next write starts a new session of the pair.
   */
  override async clear(): Promise<void> {
    const state = this.#state;
    if (this.#clearMode === 'delete') {
      if (state.handle !== null) await this.#store.deleteSession(state.handle);
      if (state.conversation === null) return;
      state.handle = null;
      state.resumable = false;
      return;
    }
    if (state.handle === null && state.conversation !== null && state.resumable) {
      state.handle = await this.#store.findLatestSession(state.conversation.agent, state.conversation.sender);
    }
    if (state.handle === null) return;
    await this.#store.compact(state.handle, '');
  }

  async #writableHandle(): Promise<string> {
    const state = this.#state;
    if (state.handle !== null) return state.handle;
    const { agent, sender } = state.conversation!;
    state.handle = state.resumable
      ? await latestOrCreate(this.#store, agent, sender, FRAMEWORK)
      : await this.#store.createSession(agent, sender, { fields: { [FRAMEWORK_FIELD]: FRAMEWORK } });
    state.resumable = true;
    return state.handle;
  }
}

function checkHistoryOptions(options: HistoryOptions): void {
  if (options.clear !== undefined && options.clear !== 'boundary' && options.clear !== 'delete') {
    throw invalidOption("clear must be 'boundary' or 'delete'");
  }
  if (options.last !== undefined && (!Number.isSafeInteger(options.last) || options.last < 1)) {
    throw invalidOption('last must be a positive integer');
  }
}

/** LangChain's stored form of `message`, with any Uint8Array of the message kept as a tagged base64 object. */
function toStoredMessage(message: BaseMessage): StoredMessage {
  const [stored] = mapChatMessagesToStoredMessages([message]);
  if (stored === undefined) throw new StepStoreError('INVALID_ENTRY', 'not a LangChain message');
  const source = message as unknown as Record<string, unknown>;
  const data = stored.data as unknown as Record<string, unknown>;
  for (const key of Object.keys(data)) data[key] = keepBytes(data[key], source[key]);
  return stored;
}

/**
 * `stored` (LangChain's JSON copy of `original`) with each Uint8Array of
 * `original` put back as tagged bytes: LangChain's own stored form turns
 * bytes into `{"0": .., "1": ..}`.
 */
function keepBytes(stored: unknown, original: unknown): unknown {
  if (original instanceof Uint8Array) return taggedBytes(original);
  if (Array.isArray(original) && Array.isArray(stored)) return stored.map((item, i) => keepBytes(item, original[i]));
  if (isObject(original) && isObject(stored)) {
    for (const key of Object.keys(stored)) stored[key] = keepBytes(stored[key], original[key]);
  }
  return stored;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

function toChatMessage(entry: HistoryEntry, step: number, handle: string): BaseMessage {
  const stored = entry.message as Partial<StoredMessage>;
  if (typeof stored.type !== 'string' || !isObject(stored.data)) {
    throw new StepStoreError('INVALID_ENTRY', `step ${step} of ${handle} is not a LangChain stored message`);
  }
  try {
    const [message] = mapStoredMessagesToChatMessages([{ type: stored.type, data: decodeBytes(stored.data) as StoredMessage['data'] }]);
    return message!;
  } catch (err) {
    throw new StepStoreError('INVALID_ENTRY', `step ${step} of ${handle} is not a LangChain stored message: ${(err as Error).message}`, { cause: err });
  }
}
