// What every framework adapter shares: loading its framework (an optional
// peer) with a clear error when it is missing, checking that the store takes
// the framework's message shapes, and opening the session of a conversation.

import { StepStoreError, invalidOption, missingPeer } from '../errors.js';
import type { Store } from '../store.js';

/** The meta field naming the framework that wrote a session (an unknown field to crabtalk). */
export const FRAMEWORK_FIELD = 'framework';

/**
 * `load()` is the adapter's own `import()` of `pkg` (so bundlers see it);
 * a package that is not installed becomes MISSING_PEER naming what to install.
 */
export async function importPeer<T>(pkg: string, entryPoint: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    if (code === 'ERR_MODULE_NOT_FOUND' && String((err as Error).message).includes(pkg)) throw missingPeer(pkg, entryPoint, err);
    throw err;
  }
}

/** Framework messages are not crabtalk's shape: the store must be opened with `{ messages: 'any' }`. */
export function requireAnyMessages(store: Store, adapter: string): void {
  if (store.messages !== 'any') {
    throw invalidOption(`${adapter} stores the framework's own message objects: open the store with { messages: 'any' }`);
  }
}

/** The latest session of (agent, sender), or a new one recording `framework` in its meta. */
export async function latestOrCreate(store: Store, agent: string, sender: string, framework: string): Promise<string> {
  const latest = await store.findLatestSession(agent, sender);
  if (latest !== null) return latest;
  return store.createSession(agent, sender, { fields: { [FRAMEWORK_FIELD]: framework } });
}

/**
 * Bytes in a framework's message (an image, a file) are stored as
 * `{ "$stepstore_bytes": "<base64>" }`, which a step can hold, and read back
 * as a Uint8Array.
 */
export const BYTES_TAG = '$stepstore_bytes';

export function taggedBytes(bytes: Uint8Array | ArrayBuffer): { [BYTES_TAG]: string } {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  return { [BYTES_TAG]: Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('base64') };
}

/** `value` with every tagged bytes object turned back into a Uint8Array (a copy; `value` is not changed). */
export function decodeBytes(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(decodeBytes);
  if (typeof value !== 'object' || value === null) return value;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  if (keys.length === 1 && keys[0] === BYTES_TAG && typeof record[BYTES_TAG] === 'string') return new Uint8Array(Buffer.from(record[BYTES_TAG], 'base64'));
  const decoded: Record<string, unknown> = {};
  for (const key of keys) Object.defineProperty(decoded, key, { value: decodeBytes(record[key]), enumerable: true, writable: true, configurable: true });
  return decoded;
}

/** SESSION_NOT_FOUND for a handle an adapter was given that does not exist (or was deleted). */
export function isGone(err: unknown): boolean {
  return err instanceof StepStoreError && err.code === 'SESSION_NOT_FOUND';
}
