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

/** SESSION_NOT_FOUND for a handle an adapter was given that does not exist (or was deleted). */
export function isGone(err: unknown): boolean {
  return err instanceof StepStoreError && err.code === 'SESSION_NOT_FOUND';
}
