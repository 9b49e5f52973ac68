// store.watch(): the steps any process appends to one session, in order, as
// they land. The backend only wakes the watcher (Backend.changes); after each
// wake-up this reads every step past the cursor, classifies it as readSteps
// does, and decides how the watch ends: the conversation deleted or replaced,
// steps it passed retracted (a rewind), the signal, or the store closed.

import type { RawStep } from '../backend.js';
import { invalidOption, sessionNotFound } from '../errors.js';
import { parseHandle, type Slug } from '../format/slug.js';
import { classifyStep } from '../format/step-line.js';
import type { StepRecord } from '../types.js';
import { assertOpen, checkCursor, optionsOf, type StoreContext } from './context.js';
import { skipStep } from './replay.js';

/**
 * How a watch ended:
 * - 'deleted': the session was deleted, or its handle came to name another conversation;
 * - 'rewound': a step up to the cursor was retracted or replaced (a rewind), so what the
 *   watch passed is no longer the session's history: read it again, then watch anew;
 * - 'aborted': the signal aborted, or the consumer stopped iterating;
 * - 'closed': the store was closed.
 */
export type WatchEnd = 'deleted' | 'rewound' | 'aborted' | 'closed';

export interface WatchOptions {
  /** Yield the steps numbered above this one; default: the session's highest step at the call. */
  after?: number;
  /** Ends the watch ('aborted') as soon as it fires, a wait for steps included. */
  signal?: AbortSignal;
}

/**
 * Steps appended after the cursor, oldest first: strictly increasing numbers,
 * none passed over but those unreadable (skipped with a warning, as readSteps
 * does) or never stored (a failed append's numbers). Iterate it once.
 */
export interface StepWatch extends AsyncIterable<StepRecord> {
  /** Why iteration ended; null while it runs, and when it threw (a read failed). */
  readonly ended: WatchEnd | null;
  /** The highest step passed so far, yielded or skipped; `after` to begin with. */
  readonly cursor: number;
}

/** What a step read back as, to tell it from whatever is stored under its number later. */
function fingerprint(raw: RawStep): string {
  return 'problem' in raw ? `\u0000${raw.problem}` : raw.text;
}

interface Start {
  identity: string;
  cursor: number;
  /** The fingerprint of step `cursor`; null when there is none to check (no step yet, or a hole). */
  atCursor: string | null;
  /** `after` is above the session's highest step: what the caller holds was retracted already. */
  beyond: boolean;
}

/** How often the starting point is read again when the handle keeps being given to new conversations meanwhile. */
const START_TRIES = 3;

export async function watch(ctx: StoreContext, handle: string, options?: WatchOptions): Promise<StepWatch> {
  assertOpen(ctx);
  const slug = parseHandle(handle);
  const opts = optionsOf(options, 'watch');
  const after = checkCursor('after', opts.after, 0);
  const { signal } = opts;
  if (signal !== undefined && !isSignal(signal)) throw invalidOption('signal must be an AbortSignal');
  for (let attempt = 1; ; attempt++) {
    const start = await startOf(ctx, slug, after);
    if (start === null) throw sessionNotFound(slug);
    if (start !== 'replaced') return new Watch(ctx, slug, signal, start);
    if (attempt === START_TRIES) throw sessionNotFound(slug);
  }
}

function isSignal(value: unknown): value is AbortSignal {
  const candidate = value as Partial<AbortSignal> | null;
  return typeof candidate === 'object' && candidate !== null && typeof candidate.aborted === 'boolean' && typeof candidate.addEventListener === 'function';
}

/** The cursor and what lies at it, all of one conversation; null when there is no session, 'replaced' when it changed meanwhile. */
async function startOf(ctx: StoreContext, slug: Slug, after: number | undefined): Promise<Start | 'replaced' | null> {
  const identity = await ctx.backend.identity(slug);
  if (identity === null) return null;
  const highest = await ctx.backend.highestStep(slug);
  if (highest === null) return null;
  const cursor = after ?? highest;
  let atCursor: string | null = null;
  if (cursor > 0 && cursor <= highest) {
    for await (const slice of ctx.backend.stepsAfter(slug, cursor - 1, 1)) {
      const first = slice[0];
      if (first !== undefined && first.step === cursor) atCursor = fingerprint(first);
      break;
    }
  }
  const now = await ctx.backend.identity(slug);
  if (now === null) return null;
  if (now !== identity) return 'replaced';
  return { identity, cursor, atCursor, beyond: cursor > highest };
}

/** A pass over the steps after the cursor stopped at a number missing between them (see #pass). */
const GAP = Symbol('gap');

class Watch implements StepWatch {
  readonly #ctx: StoreContext;
  readonly #slug: Slug;
  readonly #signal: AbortSignal | undefined;
  readonly #identity: string;
  #cursor: number;
  #atCursor: string | null;
  readonly #beyond: boolean;
  #ended: WatchEnd | null = null;
  #iterator: AsyncGenerator<StepRecord> | null = null;

  constructor(ctx: StoreContext, slug: Slug, signal: AbortSignal | undefined, start: Start) {
    this.#ctx = ctx;
    this.#slug = slug;
    this.#signal = signal;
    this.#identity = start.identity;
    this.#cursor = start.cursor;
    this.#atCursor = start.atCursor;
    this.#beyond = start.beyond;
  }

  get ended(): WatchEnd | null {
    return this.#ended;
  }

  get cursor(): number {
    return this.#cursor;
  }

  [Symbol.asyncIterator](): AsyncGenerator<StepRecord> {
    this.#iterator ??= this.#run();
    return this.#iterator;
  }

  /** Why to stop now, if anything outside the session says so. */
  #stopped(): WatchEnd | null {
    if (this.#signal?.aborted === true) return 'aborted';
    return this.#ctx.closed ? 'closed' : null;
  }

  async *#run(): AsyncGenerator<StepRecord> {
    const ctx = this.#ctx;
    const listening = new AbortController();
    const abort = () => listening.abort();
    this.#signal?.addEventListener('abort', abort, { once: true });
    let failed = false;
    try {
      const early = this.#stopped() ?? (this.#beyond ? 'rewound' : null);
      if (early !== null) {
        this.#ended = early;
        return;
      }
      // The first wake-up comes once the backend listens: whatever landed before it is read then.
      for await (const _ of ctx.backend.changes(this.#slug, listening.signal)) {
        const end = yield* this.#readNew();
        if (end !== null) {
          this.#ended = end;
          return;
        }
      }
      this.#ended = this.#stopped() ?? 'closed';
    } catch (err) {
      // A read cut short by the store closing (its connection gone) is the close, not a failure.
      if (!ctx.closed) {
        failed = true;
        throw err;
      }
      this.#ended = 'closed';
    } finally {
      this.#signal?.removeEventListener('abort', abort);
      listening.abort();
      if (this.#ended === null && !failed) this.#ended = this.#stopped() ?? 'aborted';
    }
  }

  /**
   * Every step after the cursor. A number missing between two steps is read
   * again at once: a listing taken while another process appends may leave
   * out a step that a later one holds (fs: readdir is not a snapshot), and a
   * step is only stored once every lower number was, so a number still
   * missing from a listing begun after its successor was seen is a hole for
   * good (the numbers of an append that failed and was taken back).
   */
  async *#readNew(): AsyncGenerator<StepRecord, WatchEnd | null> {
    let knownGap: number | null = null;
    for (;;) {
      const result = yield* this.#pass(knownGap);
      if (result !== GAP) return result;
      knownGap = this.#cursor + 1;
    }
  }

  /** One read after the cursor; GAP when it stopped before a missing number not known to be a hole. */
  async *#pass(knownGap: number | null): AsyncGenerator<StepRecord, WatchEnd | typeof GAP | null> {
    const { backend } = this.#ctx;
    const slug = this.#slug;
    let stopped = this.#stopped();
    if (stopped !== null) return stopped;
    if ((await backend.identity(slug)) !== this.#identity) return 'deleted';
    // Step `cursor` is read again when its text is known: a rewind past it shows there, whatever came after.
    let checking = this.#atCursor !== null;
    for await (const slice of backend.stepsAfter(slug, checking ? this.#cursor - 1 : this.#cursor)) {
      stopped = this.#stopped();
      if (stopped !== null) return stopped;
      // Checked after the slice was read: a slice of a conversation that took the handle meanwhile is dropped.
      if ((await backend.identity(slug)) !== this.#identity) return 'deleted';
      for (const raw of slice) {
        if (checking) {
          checking = false;
          if (raw.step !== this.#cursor || fingerprint(raw) !== this.#atCursor) return 'rewound';
          continue;
        }
        if (raw.step <= this.#cursor) continue;
        if (raw.step > this.#cursor + 1 && knownGap !== this.#cursor + 1) return GAP;
        this.#cursor = raw.step;
        this.#atCursor = fingerprint(raw);
        const record = this.#recordOf(raw);
        if (record === null) continue;
        yield record;
        stopped = this.#stopped();
        if (stopped !== null) return stopped;
      }
    }
    if (!checking) return null;
    // No step at the cursor any more: deleted, or retracted by a rewind.
    return (await backend.identity(slug)) === this.#identity ? 'rewound' : 'deleted';
  }

  /** The step as readSteps gives it; null (with a warning) when it is unreadable. */
  #recordOf(raw: RawStep): StepRecord | null {
    const { logger, messages } = this.#ctx;
    if ('problem' in raw) {
      skipStep(null, logger, this.#slug, raw.step, raw.problem);
      return null;
    }
    const classified = classifyStep(raw.text, messages);
    if (classified.kind === null) {
      skipStep(null, logger, this.#slug, raw.step, classified.reason);
      return null;
    }
    return { step: raw.step, kind: classified.kind, line: classified.line, text: raw.text };
  }
}
