// Wake-ups for a watcher of one session on disk (Backend.changes): a watch of
// the session directory `<root>/<slug>` (inotify through the FsLayer, never
// persistent), and a poll of the directory's inode and mtime for what the
// watch cannot see: every WATCHED_POLL_MS while the watch reports changes,
// every UNWATCHED_POLL_MS once it was refused, stopped, or missed a change (a
// network filesystem written from another machine). Timers run only while a
// wake-up is awaited, so a watch nobody waits on keeps no process alive.

import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Slug } from '../../format/slug.js';
import type { FsContext } from './context.js';
import { errnoOf } from './durable.js';
import { META_FILE, META_LOCK_FILE, leftoverOf, sessionDir } from './paths.js';
import { RACY_MS } from './root-index.js';

/** The poll behind a working watch: it only notices a watch that went silent. */
const WATCHED_POLL_MS = 1000;
/** The poll that stands in for a watch. */
const UNWATCHED_POLL_MS = 100;

/** One per backend, aborted when it closes: every feed of that backend ends, and later ones end at once. */
const closing = new WeakMap<FsContext, AbortController>();

function closingOf(ctx: FsContext): AbortController {
  let controller = closing.get(ctx);
  if (controller === undefined) {
    controller = new AbortController();
    closing.set(ctx, controller);
  }
  return controller;
}

/** Ends every watch of the backend (it is closing). */
export function closeWatches(ctx: FsContext): void {
  closingOf(ctx).abort();
}

/** Changes to these names never concern a watcher of steps: the meta, its lock, temp files. */
function concernsSteps(name: string | null): boolean {
  return name === null || (name !== META_FILE && name !== META_LOCK_FILE && leftoverOf(name) === null);
}

export async function* changes(ctx: FsContext, slug: Slug, signal: AbortSignal): AsyncGenerator<void> {
  const stop = AbortSignal.any([signal, closingOf(ctx).signal]);
  if (stop.aborted) return;
  const feed = new DirectoryFeed(ctx, slug, stop);
  try {
    yield; // listening
    while (await feed.next()) yield;
  } finally {
    feed.close();
  }
}

class DirectoryFeed {
  readonly #ctx: FsContext;
  readonly #dir: string;
  readonly #stop: AbortSignal;
  /** The directory's inode when the feed began (null: missing). */
  readonly #inode: number | null;
  #watcher: { close(): void } | null = null;
  /** Events the watch delivered, all told, and how many had been when the mark was taken. */
  #events = 0;
  #eventsAtMark = 0;
  /** The directory's inode and mtime at the last wake-up ('gone' when missing). */
  #mark = '';
  /** The mark's mtime was too recent to rule out a later change within the same clock tick. */
  #racy = false;
  #changed = false;
  #wake: (() => void) | null = null;
  readonly #onAbort = () => this.#wake?.();

  constructor(ctx: FsContext, slug: Slug, stop: AbortSignal) {
    this.#ctx = ctx;
    this.#dir = sessionDir(ctx.root, slug);
    this.#stop = stop;
    this.#inode = this.#read().inode;
    try {
      this.#watcher = ctx.fs.watch(
        this.#dir,
        (name) => {
          this.#events += 1;
          // An event of the directory itself (it is named as the slug): its removal matters, its times (meta.ts touches it) do not.
          if (name === slug ? this.#read().inode !== this.#inode : concernsSteps(name)) this.#poke();
        },
        () => {
          this.#unwatch();
          this.#poke();
        },
      );
    } catch {
      this.#watcher = null; // no watching here: the poll alone
    }
    stop.addEventListener('abort', this.#onAbort);
    this.#takeMark();
  }

  /** Resolves true at the next wake-up, false once stopped. */
  async next(): Promise<boolean> {
    while (!this.#stop.aborted) {
      if (this.#changed) {
        this.#changed = false;
        // Taken before the watcher reads: a change after it moves the mark, or leaves it racy.
        this.#takeMark();
        return true;
      }
      await this.#sleep(this.#watcher === null ? UNWATCHED_POLL_MS : WATCHED_POLL_MS);
      if (!this.#changed && !this.#stop.aborted && (await this.#moved())) this.#changed = true;
    }
    return false;
  }

  close(): void {
    this.#stop.removeEventListener('abort', this.#onAbort);
    this.#unwatch();
    this.#wake?.();
  }

  #poke(): void {
    this.#changed = true;
    this.#wake?.();
  }

  #unwatch(): void {
    this.#watcher?.close();
    this.#watcher = null;
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

  #read(): { mark: string; racy: boolean; inode: number | null } {
    try {
      const stat = this.#ctx.fs.lstatSync(this.#dir);
      return { mark: `${stat.ino}:${stat.mtimeMs}`, racy: Date.now() - stat.mtimeMs < RACY_MS, inode: stat.ino };
    } catch (err) {
      const code = errnoOf(err);
      return { mark: code === 'ENOENT' || code === 'ENOTDIR' ? 'gone' : `failed:${code}`, racy: false, inode: null };
    }
  }

  #takeMark(): void {
    const { mark, racy } = this.#read();
    this.#mark = mark;
    this.#racy = racy;
    this.#eventsAtMark = this.#events;
  }

  /** Whether the poll should wake the watcher: the directory changed and the watch did not say so. */
  async #moved(): Promise<boolean> {
    const { mark, racy } = this.#read();
    if (this.#watcher === null) return mark !== this.#mark || this.#racy;
    if (mark !== this.#mark && this.#events === this.#eventsAtMark) {
      // The kernel queues an event before the change returns: let the loop deliver it before judging.
      await nextTurn();
      await nextTurn();
      if (this.#events === this.#eventsAtMark && this.#watcher !== null) {
        this.#unwatch(); // it misses changes here: the short poll from now on
        return true;
      }
    }
    // The watch reported whatever moved the mark (steps already woke the watcher; other names need not).
    this.#mark = mark;
    this.#racy = racy;
    this.#eventsAtMark = this.#events;
    return false;
  }
}
