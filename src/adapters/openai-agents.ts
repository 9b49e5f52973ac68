// stepstore/openai-agents: a durable `Session` for the OpenAI Agents SDK
// (@openai/agents-core). Each item the SDK hands over is one history entry
// `{ message: item }`; compactions and clears are stepstore compact markers whose
// archive holds the items that stand in for everything before the marker.

import { createHash } from 'node:crypto';
import type {
  AgentInputItem,
  Session,
  SessionHistoryTransactionArgs,
  SessionHistoryTransactionAwareSession,
} from '@openai/agents-core';
import { StepStoreError, invalidEntry, invalidOption, sessionNotFound } from '../errors.js';
import type { Store } from '../store.js';
import type { HistoryEntry, StepRecord } from '../types.js';
import { FRAMEWORK_FIELD, decodeBytes, isGone, requireAnyMessages, taggedBytes } from './common.js';

const ADAPTER = 'stepstore/openai-agents';
const FRAMEWORK = 'openai-agents';
/** Marks an archive summary this adapter wrote: `{ stepstore_items: FRAMEWORK, items: [...] }`. */
const ARCHIVE_TAG = 'stepstore_items';
/** Entry-level fields of the entries a history transaction writes (never inside `message`). */
const OPERATION_FIELD = 'operation_id';
const DIGEST_FIELD = 'transaction_digest';
/** The event recording a transaction that wrote no entry (an empty append or replacement). */
const OPERATION_EVENT = 'openai-agents-transaction';
const SCAN_PAGE = 256;

export interface StepstoreSessionOptions {
  /**
   * With `sender`: the latest session of this pair, looked up again when it was
   * deleted meanwhile; created (meta `framework: 'openai-agents'`) by the first
   * write or getSessionId() when there is none (reading creates nothing).
   */
  agent?: string;
  sender?: string;
  /** Exactly this session; SESSION_NOT_FOUND when it does not exist (or is deleted later). */
  handle?: string;
  /**
   * What clearSession() does. 'boundary' (default): a compact marker; the history
   * before it stays on disk (readSteps) and getItems() returns []. 'delete': the
   * session is deleted; the next write (or getSessionId) creates a new session of
   * the same agent and sender, so getSessionId() then returns a new handle.
   */
  clear?: 'boundary' | 'delete';
}

type Entry = HistoryEntry<StoredItem>;
/** An item as stored: what JSON keeps of it, binary as tagged base64 (decodeItem gives the SDK's item back). */
type StoredItem = Record<string, unknown>;

/** The items after the last boundary as the store holds them: the archive's items first, then the entries. */
interface HistoryView {
  archiveItems: StoredItem[];
  entries: { step: number; item: StoredItem }[];
  /** The session's highest step when it was read (entries, events and markers alike). */
  highestStep: number;
  /** Operation id -> digest, from the entries and events after the boundary. */
  operations: Map<string, string>;
}

export class StepstoreSession implements Session, SessionHistoryTransactionAwareSession {
  readonly #store: Store;
  readonly #agent: string;
  readonly #sender: string;
  readonly #clear: 'boundary' | 'delete';
  /** Opened by agent and sender: a session deleted elsewhere gives way to the pair's latest one. */
  readonly #byConversation: boolean;
  /** null: no session yet (or it was deleted by this object's clearSession). */
  #handle: string | null;
  /** Set by clearSession() in 'delete' mode: reads see nothing, the next write creates a new session. */
  #deleted = false;
  /**
   * The highest step this object knows the session had at its last read or own
   * write (undefined: unknown). replaceHistoryWithCompaction fences on it, so that
   * an item another writer appended since is never silently hidden behind the marker.
   */
  #seenStep: number | undefined;

  private constructor(store: Store, handle: string | null, agent: string, sender: string, clear: 'boundary' | 'delete', byConversation: boolean) {
    this.#store = store;
    this.#handle = handle;
    this.#byConversation = byConversation;
    this.#agent = agent;
    this.#sender = sender;
    this.#clear = clear;
  }

  /** Opens the session of (agent, sender) or the session `handle`; the store must be opened with `{ messages: 'any' }`. */
  static async open(store: Store, options: StepstoreSessionOptions): Promise<StepstoreSession> {
    requireAnyMessages(store, ADAPTER);
    if (typeof options !== 'object' || options === null) throw invalidOption(`${ADAPTER}: options must be an object`);
    const { agent, sender, handle, clear = 'boundary' } = options;
    if (clear !== 'boundary' && clear !== 'delete') throw invalidOption(`${ADAPTER}: clear must be 'boundary' or 'delete'`);
    if (handle !== undefined) {
      if (agent !== undefined || sender !== undefined) throw invalidOption(`${ADAPTER}: give either handle or agent and sender`);
      if (typeof handle !== 'string') throw invalidOption(`${ADAPTER}: handle must be a string`);
      const snapshot = await store.loadSession(handle, { last: 1 });
      if (snapshot === null) throw sessionNotFound(handle);
      return new StepstoreSession(store, handle, snapshot.meta.agent, snapshot.meta.created_by, clear, false);
    }
    if (typeof agent !== 'string' || typeof sender !== 'string') {
      throw invalidOption(`${ADAPTER}: give a handle, or an agent and a sender (strings)`);
    }
    return new StepstoreSession(store, await store.findLatestSession(agent, sender), agent, sender, clear, true);
  }

  /**
   * The session's handle, creating the session when the conversation has none yet;
   * after a clearSession() in 'delete' mode, the handle of the new session this creates.
   */
  async getSessionId(): Promise<string> {
    return this.#writableSession();
  }

  /**
   * The latest `limit` items (all without it) after the last compaction or clear,
   * oldest first. With a limit, only the last `limit` entries (and the session's
   * highest step) are read, and the archive only when they do not reach back to the
   * boundary. [] when the conversation has no session yet (none is created).
   */
  async getItems(limit?: number): Promise<AgentInputItem[]> {
    if (limit !== undefined && (typeof limit !== 'number' || Number.isNaN(limit))) throw invalidOption(`${ADAPTER}: limit must be a number`);
    if (limit !== undefined && limit <= 0) return [];
    const want = limit === undefined || limit === Infinity ? undefined : Math.min(Math.floor(limit), Number.MAX_SAFE_INTEGER - 1);
    if (want === 0) return [];
    return this.#withSession(false, [], (handle) => this.#readItems(handle, want));
  }

  async #readItems(handle: string, want: number | undefined): Promise<AgentInputItem[]> {
    // The highest step is read first: whatever lands after it is never counted as seen.
    const highest = await this.#highestStep(handle);
    const snapshot = await this.#store.loadSession<Record<string, unknown>>(handle, want === undefined ? { withArchive: true } : { last: want });
    if (snapshot === null) throw sessionNotFound(handle);
    const entryItems = snapshot.history.map((entry) => decodeItem(entry.message));
    // An entry above `highest` landed in between and is returned: the history up to it is what was read.
    this.#seenStep = Math.max(highest, snapshot.steps.at(-1) ?? 0);
    if (snapshot.truncated === true || snapshot.archive === null) return entryItems;
    if (want !== undefined && entryItems.length >= want) return entryItems;
    const content = want === undefined ? (snapshot.archiveContent ?? null) : await this.#store.getArchive(snapshot.archive);
    const archiveItems = archiveItemsOf(snapshot.archive, content);
    const fromArchive = want === undefined ? archiveItems : archiveItems.slice(Math.max(0, archiveItems.length - (want - entryItems.length)));
    return [...fromArchive.map(decodeItem), ...entryItems];
  }

  /** Appends the items in one all-or-nothing write (one step each); nothing for an empty list. */
  async addItems(items: AgentInputItem[]): Promise<void> {
    if (!Array.isArray(items)) throw invalidEntry(`${ADAPTER}: addItems takes an array of items`);
    if (items.length === 0) return;
    const entries = items.map((item) => ({ message: encodeItem(item) }));
    await this.#withSession(true, undefined, async (handle) => {
      this.#noteWrite(await this.#store.appendMessages(handle, entries));
    });
  }

  /**
   * Removes the newest item durably and returns it; undefined when there is none.
   * An entry goes by a rewind to just before its step (events after it go too); an
   * item held in the archive (after a compaction) by a new fenced compact marker.
   */
  async popItem(): Promise<AgentInputItem | undefined> {
    return this.#withSession(false, undefined, (handle) => this.#popFrom(handle));
  }

  async #popFrom(handle: string): Promise<AgentInputItem | undefined> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const highest = await this.#highestStep(handle);
      const snapshot = await this.#store.loadSession<Record<string, unknown>>(handle, { last: 1 });
      if (snapshot === null) throw sessionNotFound(handle);
      const entry = snapshot.history[0];
      const step = snapshot.steps[0];
      if (entry !== undefined && step !== undefined) {
        // An entry above the step read first landed in between: read again.
        if (step > highest) continue;
        // Fenced: a step another writer appends meanwhile is never retracted with it (CONFLICT, then read again).
        if (!(await this.#rewindFenced(handle, step - 1, highest))) continue;
        return decodeItem(entry.message);
      }
      if (snapshot.archive === null) return undefined;
      const archiveItems = archiveItemsOf(snapshot.archive, await this.#store.getArchive(snapshot.archive));
      const popped = archiveItems.at(-1);
      if (popped === undefined) return undefined;
      if (await this.#compactFenced(handle, archiveItems.slice(0, -1), highest)) return decodeItem(popped);
    }
    throw new StepStoreError('CONFLICT', `popItem: ${handle} kept changing under concurrent writes`);
  }

  /** See StepstoreSessionOptions.clear. A session holding no items is left as it is ('boundary' mode). */
  async clearSession(): Promise<void> {
    if (this.#clear === 'delete') {
      await this.#withSession(false, undefined, async (handle) => {
        if (!(await this.#store.deleteSession(handle))) throw sessionNotFound(handle);
      });
      this.#handle = null;
      this.#deleted = true;
      this.#seenStep = undefined;
      return;
    }
    await this.#withSession(false, undefined, async (handle) => {
      if ((await this.#readItems(handle, 1)).length === 0) return;
      await this.#store.compact(handle, archiveSummary([]));
      this.#seenStep = undefined;
    });
  }

  /**
   * Replaces the history with `items` (the SDK's compaction item and the suffix it
   * keeps): one compact marker whose archive holds `items`, so the marker never
   * stands without them; everything before stays on disk. Fenced on the highest step
   * this object last saw (read or wrote): an entry appended since by another writer is
   * CONFLICT. Without any read or write yet, on the session's highest step now.
   */
  async replaceHistoryWithCompaction(items: AgentInputItem[]): Promise<void> {
    if (!Array.isArray(items)) throw invalidEntry(`${ADAPTER}: replaceHistoryWithCompaction takes an array of items`);
    const normalized = items.map(encodeItem);
    await this.#withSession(true, undefined, async (handle) => {
      let expected = this.#seenStep;
      if (expected === undefined) expected = await this.#highestStep(handle);
      else {
        // Events landing after what this object saw are trace data: they do not count as a change of history.
        const since = await this.#store.readSteps(handle, { after: expected });
        if (since.some((record) => record.kind !== 'event')) {
          throw new StepStoreError('CONFLICT', `${handle} changed since it was last read: compaction not applied`);
        }
        expected = since.at(-1)?.step ?? expected;
      }
      if (!(await this.#compactFenced(handle, normalized, expected))) {
        throw new StepStoreError('CONFLICT', `${handle} changed while compacting: compaction not applied`);
      }
    });
  }

  /**
   * The SDK's idempotent history change. Idempotency looks back over the entries and
   * events after the last boundary (compaction or clear): an operation id seen there
   * with the same digest is a no-op, with another digest CONFLICT. `append_items` is one
   * fenced write (atomic); `replace_suffix` checks the tail, rewinds before the suffix
   * and appends the replacement fenced (two writes: see the README for the window).
   */
  async applyHistoryTransaction(args: SessionHistoryTransactionArgs): Promise<void> {
    const { operationId, transaction, digest } = checkTransaction(args);
    await this.#withSession(true, undefined, (handle) => this.#applyTransaction(handle, operationId, transaction, digest));
  }

  async #applyTransaction(handle: string, operationId: string, transaction: StoredTransaction, digest: string): Promise<void> {
    const view = await this.#readView(handle);
    const applied = view.operations.get(operationId);
    if (applied !== undefined) {
      if (applied === digest) return;
      throw new StepStoreError('CONFLICT', `operation ${operationId} was already applied to ${handle} with a different transaction`);
    }
    const marks = { [OPERATION_FIELD]: operationId, [DIGEST_FIELD]: digest };
    if (transaction.type === 'append_items') {
      await this.#appendOperation(handle, transaction.items, marks, view.highestStep);
      return;
    }
    const { expectedSuffix, replacement } = transaction;
    const current: StoredItem[] = [...view.archiveItems, ...view.entries.map((entry) => entry.item)];
    const start = current.length - expectedSuffix.length;
    if (start < 0 || !expectedSuffix.every((item, i) => canonicalJson(item) === canonicalJson(current[start + i]))) {
      throw new StepStoreError('CONFLICT', `the history of ${handle} does not end with the expected suffix: nothing changed`);
    }
    const fromEntries = Math.min(expectedSuffix.length, view.entries.length);
    const fromArchive = expectedSuffix.length - fromEntries;
    let base = view.highestStep;
    if (fromArchive > 0) {
      // The suffix reaches into the archive: a new marker keeps the archive's other items, the entries go behind it.
      if (!(await this.#compactFenced(handle, view.archiveItems.slice(0, view.archiveItems.length - fromArchive), base))) {
        throw new StepStoreError('CONFLICT', `${handle} changed while replacing its suffix: nothing changed`);
      }
      base += 1;
    } else if (fromEntries > 0) {
      const firstStep = view.entries[view.entries.length - fromEntries]!.step;
      if (!(await this.#rewindFenced(handle, firstStep - 1, base))) {
        throw new StepStoreError('CONFLICT', `${handle} changed while replacing its suffix: nothing changed`);
      }
      base = firstStep - 1;
    }
    await this.#appendOperation(handle, replacement, marks, base);
  }

  async #appendOperation(handle: string, items: StoredItem[], marks: Record<string, string>, expectedStep: number): Promise<void> {
    if (items.length === 0) {
      this.#noteWrite(await this.#store.appendEvents(handle, [{ event: OPERATION_EVENT, ...marks }], { expectedStep }), expectedStep);
      return;
    }
    const entries = items.map((item) => ({ ...marks, message: item }));
    this.#noteWrite(await this.#store.appendMessages(handle, entries, { expectedStep }), expectedStep);
  }

  /** Retracts the steps after `toStep` only while `expectedStep` is the highest; false on CONFLICT. */
  async #rewindFenced(handle: string, toStep: number, expectedStep: number): Promise<boolean> {
    try {
      await this.#store.rewind(handle, toStep, { expectedStep });
    } catch (err) {
      if (err instanceof StepStoreError && err.code === 'CONFLICT') return false;
      throw err;
    }
    this.#seenStep = toStep;
    return true;
  }

  /** A compact marker whose archive holds `items`, landing only right after `expectedStep`; false on CONFLICT. */
  async #compactFenced(handle: string, items: StoredItem[], expectedStep: number): Promise<boolean> {
    try {
      await this.#store.compact(handle, archiveSummary(items), { expectedStep });
    } catch (err) {
      if (err instanceof StepStoreError && err.code === 'CONFLICT') return false;
      throw err;
    }
    this.#seenStep = expectedStep + 1;
    return true;
  }

  /** The entries, events and archive after the last boundary, read newest first page by page. */
  async #readView(handle: string): Promise<HistoryView> {
    const after: StepRecord[] = [];
    let boundary: StepRecord | undefined;
    let page = await this.#store.readSteps(handle, { last: SCAN_PAGE });
    const highestStep = page.at(-1)?.step ?? 0;
    for (;;) {
      const boundaryAt = page.findLastIndex((record) => record.kind === 'compact' || record.kind === 'legacy-compact');
      if (boundaryAt >= 0) {
        boundary = page[boundaryAt];
        after.unshift(...page.slice(boundaryAt + 1));
        break;
      }
      after.unshift(...page);
      const oldest = page[0];
      if (page.length < SCAN_PAGE || oldest === undefined || oldest.step <= 1) break;
      page = await this.#store.readSteps(handle, { before: oldest.step, limit: SCAN_PAGE });
      if (page.length === 0) break;
    }
    const operations = new Map<string, string>();
    const entries: HistoryView['entries'] = [];
    for (const record of after) {
      const line = record.line as Record<string, unknown>;
      if (record.kind === 'entry') entries.push({ step: record.step, item: (line as Entry).message });
      if (record.kind === 'entry' || (record.kind === 'event' && line.event === OPERATION_EVENT)) {
        const id = line[OPERATION_FIELD];
        const digest = line[DIGEST_FIELD];
        if (typeof id === 'string' && typeof digest === 'string') operations.set(id, digest);
      }
    }
    let archiveItems: StoredItem[] = [];
    const archiveName = boundary?.kind === 'compact' ? (boundary.line as { archive_name: string }).archive_name : null;
    if (archiveName !== null) archiveItems = archiveItemsOf(archiveName, await this.#store.getArchive(archiveName));
    this.#seenStep = highestStep;
    return { archiveItems, entries, highestStep, operations };
  }

  /** The session's highest step (entries, events and markers alike); SESSION_NOT_FOUND when it is gone. */
  async #highestStep(handle: string): Promise<number> {
    const [newest] = await this.#store.readSteps(handle, { last: 1 });
    return newest?.step ?? 0;
  }

  /**
   * The session to read: the one this object holds; else, opened by agent and
   * sender and not after its own delete-mode clear, the pair's latest. null: none.
   */
  async #existingSession(): Promise<string | null> {
    if (this.#handle !== null || !this.#byConversation || this.#deleted) return this.#handle;
    const found = await this.#store.findLatestSession(this.#agent, this.#sender);
    if (found !== null) this.#adopt(found);
    return found;
  }

  /** The session to write: the existing one, or a new session of the pair. */
  async #writableSession(): Promise<string> {
    const existing = await this.#existingSession();
    if (existing !== null) return existing;
    const created = await this.#store.createSession(this.#agent, this.#sender, { fields: { [FRAMEWORK_FIELD]: FRAMEWORK } });
    this.#adopt(created);
    this.#deleted = false;
    return created;
  }

  /** Takes `handle` as this object's session; it has seen none of it yet (the conversation looked empty). */
  #adopt(handle: string): void {
    this.#handle = handle;
    this.#seenStep = 0;
  }

  /**
   * Runs `action` on the session (`none` when there is none and `write` is false).
   * Opened by agent and sender, a session deleted meanwhile (SESSION_NOT_FOUND) gives
   * way to the pair's latest session (or, to write, a new one) and `action` runs once
   * more; opened by handle, SESSION_NOT_FOUND stands.
   */
  async #withSession<T>(write: boolean, none: T, action: (handle: string) => Promise<T>): Promise<T> {
    const handle = write ? await this.#writableSession() : await this.#existingSession();
    if (handle === null) return none;
    try {
      return await action(handle);
    } catch (err) {
      if (!isGone(err) || !this.#byConversation || this.#handle !== handle) throw err;
      this.#handle = null;
      this.#seenStep = undefined;
      const next = write ? await this.#writableSession() : await this.#existingSession();
      if (next === null) return none;
      return action(next);
    }
  }

  /** Keeps #seenStep only when this write followed right on what this object had seen. */
  #noteWrite(steps: number[], expectedStep = this.#seenStep): void {
    const first = steps[0];
    this.#seenStep = expectedStep !== undefined && first === expectedStep + 1 ? steps.at(-1) : undefined;
  }
}

/** The archive summary standing for `items` (JSON, tagged so that foreign summaries are told apart). */
function archiveSummary(items: StoredItem[]): string {
  return JSON.stringify({ [ARCHIVE_TAG]: FRAMEWORK, items });
}

/**
 * The items an archive stands for: this adapter's own list; a summary written by
 * anything else (crabtalk's compaction) as one user message, as crabtalk resumes it.
 */
function archiveItemsOf(name: string, content: string | null): StoredItem[] {
  if (content === null) return [{ role: 'user', content: `[archived context unavailable: ${name}]` }];
  try {
    const parsed = JSON.parse(content) as Record<string, unknown> | null;
    if (typeof parsed === 'object' && parsed !== null && parsed[ARCHIVE_TAG] === FRAMEWORK && Array.isArray(parsed.items)) {
      return parsed.items as StoredItem[];
    }
  } catch {
    // Not this adapter's JSON: a plain-text summary.
  }
  return [{ role: 'user', content }];
}

/** The item as JSON keeps it (undefined-valued keys dropped), binary as tagged base64. */
function encodeItem(item: unknown): StoredItem {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) throw invalidEntry(`${ADAPTER}: an item must be an object`);
  let text: string | undefined;
  try {
    text = JSON.stringify(item, function (this: Record<string, unknown>, key: string, value: unknown) {
      // The holder's own value: a Buffer's toJSON has already run on `value`.
      const original = this[key];
      return original instanceof Uint8Array || original instanceof ArrayBuffer ? taggedBytes(original) : value;
    });
  } catch (err) {
    throw new StepStoreError('INVALID_ENTRY', `${ADAPTER}: an item is not JSON-serialisable`, { cause: err });
  }
  if (text === undefined) throw invalidEntry(`${ADAPTER}: an item is not JSON-serialisable`);
  return JSON.parse(text) as StoredItem;
}

function decodeItem(message: StoredItem): AgentInputItem {
  return decodeBytes(message) as AgentInputItem;
}

/** JSON with keys sorted: equal for deep-equal JSON values whatever their key order. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) => {
    if (typeof inner !== 'object' || inner === null || Array.isArray(inner)) return inner;
    return Object.fromEntries(Object.keys(inner).sort().map((key) => [key, (inner as Record<string, unknown>)[key]]));
  });
}

/** A transaction with its items as they will be stored. */
type StoredTransaction =
  | { type: 'append_items'; items: StoredItem[] }
  | { type: 'replace_suffix'; expectedSuffix: StoredItem[]; replacement: StoredItem[] };

/** The transaction normalised as it will be stored, and its digest (sha256 of its canonical JSON). */
function checkTransaction(args: SessionHistoryTransactionArgs): { operationId: string; transaction: StoredTransaction; digest: string } {
  if (typeof args !== 'object' || args === null) throw invalidOption(`${ADAPTER}: applyHistoryTransaction takes { operationId, transaction }`);
  const { operationId, transaction } = args;
  if (typeof operationId !== 'string' || operationId.trim() === '') throw invalidOption(`${ADAPTER}: operationId must be a non-empty string`);
  if (typeof transaction !== 'object' || transaction === null) throw invalidOption(`${ADAPTER}: transaction must be an object`);
  const items = (list: unknown, field: string): StoredItem[] => {
    if (!Array.isArray(list)) throw invalidOption(`${ADAPTER}: transaction.${field} must be an array`);
    return list.map(encodeItem);
  };
  let normalized: StoredTransaction;
  if (transaction.type === 'append_items') normalized = { type: 'append_items', items: items(transaction.items, 'items') };
  else if (transaction.type === 'replace_suffix') {
    normalized = {
      type: 'replace_suffix',
      expectedSuffix: items(transaction.expectedSuffix, 'expectedSuffix'),
      replacement: items(transaction.replacement, 'replacement'),
    };
  } else throw invalidOption(`${ADAPTER}: unsupported transaction type`);
  const digest = createHash('sha256').update(canonicalJson(normalized)).digest('hex');
  return { operationId, transaction: normalized, digest };
}
