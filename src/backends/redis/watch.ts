// Wake-ups for a watcher of one session on Redis (Backend.changes): keyspace
// notifications of the session's steps list and meta hash, when the server
// publishes them (notify-keyspace-events holds K, and A or l; read, never
// set), on one pub/sub connection the store's watches share: opened with the
// first, closed with the last and when the store closes; a slow poll covers a
// lost notification. Otherwise a short poll; always on a Cluster, where a
// node publishes only its own keys' events, and following a slot's master
// through failovers and resharding is not worth it for a wake-up.

import type { Slug } from '../../format/slug.js';
import type { PubSubClient } from './client.js';
import { toRecord, type RedisContext } from './context.js';
import { globPrefix, sessionKeys } from './keys.js';

/** The poll behind notifications: only for one that was lost (a reconnect, a config change). */
const NOTIFIED_POLL_MS = 2000;
/** The poll that stands in for notifications. */
const POLL_MS = 200;
/** How long opening the pub/sub connection may take before the watch polls instead. */
const SUBSCRIBE_TIMEOUT_MS = 5000;

interface Subscriber {
  client: PubSubClient;
  /** Each feed's wake-up, called after a reconnect (notifications may have been lost meanwhile). */
  feeds: Set<() => void>;
}

interface WatchState {
  /** Aborted when the backend closes: every feed ends, and later ones end at once. */
  closing: AbortController;
  /** Feeds holding the subscriber. */
  users: number;
  /** Null inside: the server publishes no notifications usable here. */
  subscriber: Promise<Subscriber | null> | null;
}

const states = new WeakMap<RedisContext, WatchState>();

function stateOf(ctx: RedisContext): WatchState {
  let state = states.get(ctx);
  if (state === undefined) {
    state = { closing: new AbortController(), users: 0, subscriber: null };
    states.set(ctx, state);
  }
  return state;
}

/** Ends every watch of the backend and closes the pub/sub connection (the backend is closing). */
export async function closeWatches(ctx: RedisContext): Promise<void> {
  const state = stateOf(ctx);
  state.closing.abort();
  const subscriber = state.subscriber;
  state.subscriber = null;
  if (subscriber !== null) await closeSubscriber(await subscriber);
}

export async function* changes(ctx: RedisContext, slug: Slug, signal: AbortSignal): AsyncGenerator<void> {
  const state = stateOf(ctx);
  const stop = AbortSignal.any([signal, state.closing.signal]);
  if (stop.aborted) return;
  const wakes = new Wakes(stop);
  const keys = sessionKeys(ctx.prefix, slug);
  const patterns = [keys.steps, keys.meta].map((key) => `__keyspace@*__:${globPrefix(key)}`);
  // Any change to the steps; of the meta, its removal (hash field events, such as bumps, all start with h).
  const listener = (message: string, channel: string) => {
    if (channel.endsWith(keys.steps) || !message.startsWith('h')) wakes.poke();
  };
  state.users += 1;
  state.subscriber ??= openSubscriber(ctx);
  let subscribed: Subscriber | null = null;
  try {
    const subscriber = await wakes.unlessStopped(state.subscriber);
    if (subscriber !== null && subscriber !== undefined) {
      try {
        await subscriber.client.pSubscribe(patterns, listener);
        subscribed = subscriber;
        subscriber.feeds.add(wakes.poke);
      } catch {
        // Closed meanwhile, or the server refused: the short poll.
      }
    }
    if (stop.aborted) return;
    yield; // listening
    while (await wakes.next(subscribed === null ? POLL_MS : NOTIFIED_POLL_MS)) yield;
  } finally {
    wakes.close();
    if (subscribed !== null) {
      subscribed.feeds.delete(wakes.poke);
      // Not waited for: on a client being closed it never settles.
      const { client } = subscribed;
      void Promise.resolve()
        .then(() => client.pUnsubscribe(patterns, listener))
        .catch(() => undefined);
    }
    release(state);
  }
}

/** One feed fewer; the last one closes the subscriber (not waited for: a feed ends at once). */
function release(state: WatchState): void {
  state.users -= 1;
  if (state.users > 0 || state.subscriber === null) return;
  const subscriber = state.subscriber;
  state.subscriber = null;
  void subscriber.then(closeSubscriber);
}

/** Whether the server publishes keyspace events of lists: K, and A or l. */
async function notificationsOn(ctx: RedisContext): Promise<boolean> {
  try {
    const flags = toRecord(await ctx.conn.read('', ['CONFIG', 'GET', 'notify-keyspace-events']))['notify-keyspace-events'] ?? '';
    return flags.includes('K') && (flags.includes('A') || flags.includes('l'));
  } catch {
    return false; // CONFIG refused (a managed server): poll
  }
}

async function openSubscriber(ctx: RedisContext): Promise<Subscriber | null> {
  if (ctx.conn.clustered || !(await notificationsOn(ctx))) return null;
  const client = ctx.conn.pubSubClient();
  if (client === null) return null;
  client.on('error', () => {
    // Reconnects are automatic; notifications lost meanwhile are covered by 'ready' and the poll.
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.connect(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('timed out')), SUBSCRIBE_TIMEOUT_MS);
      }),
    ]);
  } catch {
    client.destroy?.();
    return null;
  } finally {
    clearTimeout(timer);
  }
  // The store's own connection keeps the process alive while it is open; this one never does.
  client.unref?.();
  const subscriber: Subscriber = { client, feeds: new Set() };
  client.on('ready', () => {
    for (const poke of subscriber.feeds) poke();
  });
  return subscriber;
}

async function closeSubscriber(subscriber: Subscriber | null): Promise<void> {
  if (subscriber === null) return;
  const { client } = subscriber;
  try {
    await (client.close?.() ?? client.quit?.());
  } catch {
    client.destroy?.();
  }
}

/** A feed's pending wake-up: pokes coalesce; a poll interval passing counts as one. */
class Wakes {
  readonly #stop: AbortSignal;
  #changed = false;
  #wake: (() => void) | null = null;
  readonly #onAbort = () => this.#wake?.();

  constructor(stop: AbortSignal) {
    this.#stop = stop;
    stop.addEventListener('abort', this.#onAbort);
  }

  readonly poke = (): void => {
    this.#changed = true;
    this.#wake?.();
  };

  /** Resolves true at the next wake-up (a poke, or `pollMs` passing), false once stopped. */
  async next(pollMs: number): Promise<boolean> {
    if (!this.#changed && !this.#stop.aborted) await this.#sleep(pollMs);
    this.#changed = false;
    return !this.#stop.aborted;
  }

  /** `promise`, or undefined as soon as the feed is stopped. */
  unlessStopped<T>(promise: Promise<T>): Promise<T | undefined> {
    if (this.#stop.aborted) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      const stopped = () => resolve(undefined);
      this.#stop.addEventListener('abort', stopped, { once: true });
      promise.then(resolve, reject).finally(() => this.#stop.removeEventListener('abort', stopped));
    });
  }

  close(): void {
    this.#stop.removeEventListener('abort', this.#onAbort);
    this.#wake?.();
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wake = done;
    });
  }
}
