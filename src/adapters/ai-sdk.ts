// stepstore/ai-sdk: chat persistence for the Vercel AI SDK (`ai` 6). A chat is
// the latest session of (agent, chatId); each UIMessage is one entry
// `{ message }`. saveChat takes the full list the SDK hands `onFinish` and
// writes only what changed: new messages are appended, an edited, regenerated
// or continued message rewinds the session to just before it.

import type { UIMessage } from 'ai';
import { StepStoreError, invalidEntry, invalidOption, sessionNotFound } from '../errors.js';
import type { Store } from '../store.js';
import { FRAMEWORK_FIELD, isGone, requireAnyMessages } from './common.js';

const ADAPTER = 'stepstore/ai-sdk';
const FRAMEWORK = 'ai-sdk';
const DEFAULT_AGENT = 'ai-sdk';
const DEFAULT_MAX_ATTEMPTS = 10;

export interface ChatOptions {
  /** The session's agent name; default 'ai-sdk'. The chat id is the session's sender. */
  agent?: string;
}

export interface SaveChatOptions extends ChatOptions {
  /**
   * How many times a save reads, writes and checks before giving up with
   * CONFLICT when other saves of the same chat keep racing it; default 10.
   */
  maxAttempts?: number;
}

export interface SaveChatResult {
  /** The session holding the chat; null when an empty list was saved for a chat never saved. */
  handle: string | null;
  /** Stored messages retracted because the list no longer has them as they were. */
  retracted: number;
  /** Messages appended. */
  appended: number;
}

/**
 * The chat's messages (those after the session's last compaction), or [] when
 * the chat was never saved. `M` types custom metadata, data and tool parts;
 * nothing is validated (`validateUIMessages` from 'ai' does that).
 */
export async function loadChat<M extends UIMessage = UIMessage>(store: Store, chatId: string, options: ChatOptions = {}): Promise<M[]> {
  requireAnyMessages(store, ADAPTER);
  const handle = await store.findLatestSession(options.agent ?? DEFAULT_AGENT, chatId);
  if (handle === null) return [];
  const snapshot = await store.loadSession<{ id?: unknown }>(handle);
  if (snapshot === null) return [];
  return snapshot.history.map((entry) => entry.message as unknown as M);
}

/**
 * Makes the chat hold exactly `messages` (the full list, as `onFinish`
 * receives it), writing only the difference: the messages after the longest
 * stored prefix that is unchanged (same id, same JSON) are retracted with
 * `rewind` and the rest appended in one fenced batch. Saving the same list
 * again writes nothing.
 *
 * Concurrent saves of one chat (any process): each save's rewind and append
 * are fenced on the highest step it read, and after writing the save reads the chat back;
 * when another save got in between, it reads again and redoes its difference,
 * up to `maxAttempts` times, then throws CONFLICT (its last write may then be
 * under the other save's; save again to settle). So the chat ends up holding
 * the whole list of the save that finished last, never a mix of two lists.
 * Two first saves of a new chat at once may each create a session: a save
 * that created one checks at the end that it is still the latest, and if not
 * deletes it and saves into the latest instead.
 *
 * Messages are stored as JSON keeps them (undefined-valued keys dropped).
 * INVALID_ENTRY, with nothing written, for a message without a string id, two
 * messages with one id, or binary data.
 */
export async function saveChat<M extends UIMessage = UIMessage>(
  store: Store,
  chatId: string,
  messages: readonly M[],
  options: SaveChatOptions = {},
): Promise<SaveChatResult> {
  requireAnyMessages(store, ADAPTER);
  const agent = options.agent ?? DEFAULT_AGENT;
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1) {
    throw invalidOption('maxAttempts must be a positive integer');
  }
  const wanted = normaliseAll(messages);
  let handle = await store.findLatestSession(agent, chatId);
  if (handle === null && wanted.length === 0) return { handle: null, retracted: 0, appended: 0 };
  let created = false;
  const done = { retracted: 0, appended: 0 };
  for (let attempt = 1; ; attempt++) {
    if (handle === null) {
      handle = await store.findLatestSession(agent, chatId);
      created = handle === null;
      handle ??= await store.createSession(agent, chatId, { fields: { [FRAMEWORK_FIELD]: FRAMEWORK } });
    }
    try {
      const plan = await planSave(store, handle, wanted);
      if (plan === null || (await writePlan(store, handle, plan, done))) {
        // Two first saves at once each create a session: the one created last is the chat; the other goes.
        const latest = created ? await store.findLatestSession(agent, chatId) : handle;
        if (latest === handle) return { handle, ...done };
        await store.deleteSession(handle);
        handle = latest;
        created = false;
      }
    } catch (err) {
      if (isGone(err)) handle = null;
      else if (!(err instanceof StepStoreError && err.code === 'CONFLICT')) throw err;
    }
    if (attempt >= maxAttempts) {
      throw new StepStoreError('CONFLICT', `saveChat: other saves of chat ${chatId} kept racing this one (${maxAttempts} attempts)`);
    }
  }
}

/** Writes `plan`, counting into `done`; true when the session then reads back as wanted (no other save got in between). */
async function writePlan(store: Store, handle: string, plan: SavePlan, done: { retracted: number; appended: number }): Promise<boolean> {
  // Fenced: a step another save appended since the read is never retracted unseen (CONFLICT: plan again).
  if (plan.rewindTo !== null) done.retracted += await store.rewind(handle, plan.rewindTo, { expectedStep: plan.highest });
  if (plan.append.length > 0) {
    const entries = plan.append.map((message) => ({ message }));
    done.appended += (await store.appendMessages(handle, entries, { expectedStep: plan.rewindTo ?? plan.highest })).length;
  }
  return (await planSave(store, handle, plan.wanted)) === null;
}

type Json = Record<string, unknown>;

interface SavePlan {
  wanted: Json[];
  /** The session's highest step when read: the fence of an append without a rewind. */
  highest: number;
  /** Rewind to this step first (null: nothing to retract). */
  rewindTo: number | null;
  append: Json[];
}

/** What to write so the session holds `wanted`; null when it already does. */
async function planSave(store: Store, handle: string, wanted: Json[]): Promise<SavePlan | null> {
  // The highest step is read before the history: a write landing in between then fails the fence.
  const [last] = await store.readSteps(handle, { last: 1 });
  const highest = last?.step ?? 0;
  const snapshot = await store.loadSession<Json>(handle);
  if (snapshot === null) throw sessionNotFound(handle);
  const stored = snapshot.history.map((entry) => entry.message);
  // After a compaction the session holds a suffix of the chat: line the list up on its first stored message.
  let offset = 0;
  if (snapshot.archive !== null && stored.length > 0) {
    const at = wanted.findIndex((message) => message.id === stored[0]!.id);
    if (at > 0) offset = at;
  }
  let same = 0;
  while (same < stored.length && offset + same < wanted.length && sameJson(stored[same]!, wanted[offset + same]!)) same++;
  const append = wanted.slice(offset + same);
  if (same === stored.length && append.length === 0) return null;
  const rewindTo = same < stored.length ? snapshot.steps[same]! - 1 : null;
  return { wanted, highest, rewindTo, append };
}

/** Deep equality of JSON values, key order aside. */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((item, i) => sameJson(item, b[i]));
  }
  const aKeys = Object.keys(a);
  if (aKeys.length !== Object.keys(b).length) return false;
  return aKeys.every((key) => Object.hasOwn(b, key) && sameJson((a as Json)[key], (b as Json)[key]));
}

/** The messages as JSON keeps them, checked: a string id each, no id twice, no binary data. */
function normaliseAll(messages: readonly UIMessage[]): Json[] {
  if (!Array.isArray(messages)) throw invalidEntry('saveChat takes an array of UIMessages');
  const seen = new Set<string>();
  return messages.map((message, index) => {
    if (typeof message !== 'object' || message === null) throw invalidEntry(`message ${index} is not an object`);
    const { id } = message as { id?: unknown };
    if (typeof id !== 'string' || id === '') {
      throw invalidEntry(`message ${index} has no id: generate ids server-side (generateMessageId) so saves can match messages`);
    }
    if (seen.has(id)) throw invalidEntry(`message id ${id} appears twice`);
    seen.add(id);
    let text: string;
    try {
      // `this[key]` is the value before toJSON (a Buffer's toJSON would hide it).
      text = JSON.stringify(message, function (this: Json, key: string, value: unknown) {
        const original = this[key];
        if (ArrayBuffer.isView(original) || original instanceof ArrayBuffer) {
          throw invalidEntry(`message ${id} holds binary data: encode it (e.g. as a data URL)`);
        }
        return value;
      });
    } catch (err) {
      if (err instanceof StepStoreError) throw err;
      // A BigInt, a cycle: not JSON.
      throw new StepStoreError('INVALID_ENTRY', `message ${id} is not JSON: ${(err as Error).message}`, { cause: err });
    }
    return JSON.parse(text) as Json;
  });
}
