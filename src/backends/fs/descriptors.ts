// The store-wide descriptor budget, so that a store under load queues for
// file descriptors instead of failing with EMFILE. Appends, step, meta and
// archive reads, and meta writes take units (one per descriptor they may hold
// at once) before they open anything and give them back when done; an
// operation never waits for units while it holds some. When EMFILE or ENFILE
// still happens (the rest of the process holds descriptors too), the budget
// shrinks to what the store holds then, and the operation, having given back
// everything it took, waits until another operation of this store releases
// what it held, then runs again; with nothing of this store to wait for, it
// fails at once, unless one released some while it ran (the descriptor it
// lacked may be free by the time it fails): then it runs again at once.
// Every wait after a shortage is bounded: waiters fail with IO_ERROR once no
// operation of the store has finished for STALL_MS.

import { StepStoreError } from '../../errors.js';

/** Descriptors a store's operations may hold at once. */
export const MAX_DESCRIPTORS = 256;
/** How long waiters wait with no operation of the store finishing before they fail with IO_ERROR. */
export const STALL_MS = 10_000;

interface Waiter {
  units: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

function shortageCode(code: unknown): boolean {
  return code === 'EMFILE' || code === 'ENFILE';
}

/** EMFILE or ENFILE: the descriptor table of the process (or the system) is full. Raw, or as the cause of an IO_ERROR. */
export function isShortage(err: unknown): boolean {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | null;
  return shortageCode(e?.code) || (err instanceof StepStoreError && shortageCode(e?.cause?.code));
}

export class DescriptorGate {
  /** Units that may be held at once: MAX_DESCRIPTORS, or less after a shortage. */
  #limit = MAX_DESCRIPTORS;
  #held = 0;
  /** Operations finished since the limit last grew (it grows by one per `limit` of them). */
  #credit = 0;
  /** Operations finished, ever: the progress the stall watchdog looks for. */
  #finished = 0;
  /** Operations that gave back their units through `give`, ever. */
  #given = 0;
  /** Waiting their turn for units, in order. */
  readonly #queue: Waiter[] = [];
  /**
   * Met a shortage: waiting for an operation that held descriptors to give
   * them back, then ahead of the queue. Never woken by another shortage, so
   * that operations failing for want of descriptors cannot wake each other
   * in a loop that keeps the event loop from the I/O that would free some.
   */
  readonly #parked: Waiter[] = [];
  #watchdog: NodeJS.Timeout | null = null;

  /**
   * Takes `units` now when the budget has room and nobody is queued; false
   * otherwise (then `wait`). With nothing held, any number fits, so an
   * operation larger than the budget still runs, alone.
   */
  take(units: number): boolean {
    if (this.#queue.length > 0 || (this.#held > 0 && this.#held + units > this.#limit)) return false;
    this.#held += units;
    return true;
  }

  /** Waits its turn for `units`; rejects with IO_ERROR when no operation of the store finishes for STALL_MS. */
  wait(units: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ units, resolve, reject });
      this.#admit();
      this.#watch();
    });
  }

  /** A mark for `shortage`, taken as an attempt begins. */
  get given(): number {
    return this.#given;
  }

  /** Gives back `units` of an operation that ran, whether it succeeded (`finished`) or failed otherwise than for want of descriptors. */
  give(units: number, finished: boolean): void {
    this.#held -= units;
    this.#given += 1;
    if (finished) {
      this.#finished += 1;
      if (this.#limit < MAX_DESCRIPTORS && ++this.#credit >= this.#limit) {
        this.#limit += 1;
        this.#credit = 0;
      }
    }
    if (this.#parked.length > 0) this.#queue.unshift(...this.#parked.splice(0));
    if (this.#queue.length > 0) this.#admit();
    // An idle store forgets a shortage: the rest of the process may have released its descriptors since.
    else if (this.#held === 0) this.#limit = MAX_DESCRIPTORS;
  }

  /**
   * Gives back `units` of an operation that met EMFILE or ENFILE, shrinking
   * the budget to what the store holds now. Returns the wait until another
   * operation gives back what it holds, after which the caller holds `units`
   * again; or null when this store holds nothing (the caller fails, and one
   * parked operation gets its turn to try once more) and no operation gave
   * back its units since `since` (`given` as the attempt began).
   */
  shortage(units: number, since = this.#given): Promise<void> | null {
    this.#held -= units;
    this.#admit();
    if (this.#held === 0) {
      if (this.#given !== since) return this.wait(units);
      const next = this.#parked.shift();
      if (next !== undefined) {
        this.#queue.unshift(next);
        this.#admit();
      }
      return null;
    }
    this.shrink();
    return new Promise((resolve, reject) => {
      this.#parked.push({ units, resolve, reject });
      this.#watch();
    });
  }

  /** Lowers the budget to what the store holds now (when it holds any): more did not fit in the descriptor table. */
  shrink(): void {
    if (this.#held === 0) return;
    this.#limit = Math.min(this.#limit, this.#held);
    this.#credit = 0;
  }

  #admit(): void {
    while (this.#queue.length > 0) {
      const next = this.#queue[0]!;
      if (this.#held > 0 && this.#held + next.units > this.#limit) break;
      this.#queue.shift();
      this.#held += next.units;
      next.resolve();
    }
    if (this.#queue.length === 0 && this.#parked.length === 0 && this.#watchdog !== null) {
      clearTimeout(this.#watchdog);
      this.#watchdog = null;
    }
  }

  /** Only after a shortage: a full budget alone means long operations are running, not that descriptors ran out. */
  #watch(): void {
    const short = this.#limit < MAX_DESCRIPTORS || this.#parked.length > 0;
    if (this.#watchdog === null && short && (this.#queue.length > 0 || this.#parked.length > 0)) this.#arm(this.#finished);
  }

  #arm(seen: number): void {
    this.#watchdog = setTimeout(() => {
      this.#watchdog = null;
      if (this.#finished !== seen) return this.#watch();
      const err = new StepStoreError('IO_ERROR', `no file descriptor came free: no operation of this store finished in ${STALL_MS / 1000} s`);
      for (const waiter of [...this.#parked.splice(0), ...this.#queue.splice(0)]) waiter.reject(err);
    }, STALL_MS);
  }
}

/**
 * Runs `read`, a synchronous call that closes every descriptor it opens (at
 * most `units` at once), holding `units`: at once when the budget has room
 * (its value, with no await on the way), else a promise of it, read after
 * waiting its turn, and again after each shortage while the store holds
 * descriptors that will be released.
 */
export function readNow<T>(gate: DescriptorGate, units: number, read: () => T): T | Promise<T> {
  if (!gate.take(units)) return readLater(gate, units, read, gate.wait(units));
  let value: T;
  try {
    value = read();
  } catch (err) {
    return readLater(gate, units, read, afterFailure(gate, units, err));
  }
  gate.give(units, true);
  return value;
}

async function readLater<T>(gate: DescriptorGate, units: number, read: () => T, turn: Promise<void>): Promise<T> {
  for (;;) {
    await turn;
    try {
      const value = read();
      gate.give(units, true);
      return value;
    } catch (err) {
      turn = afterFailure(gate, units, err);
    }
  }
}

/** Gives back the units of a failed try begun at `since`: the wait before the next try after a shortage worth waiting out; else throws `err`. */
function afterFailure(gate: DescriptorGate, units: number, err: unknown, since?: number): Promise<void> {
  if (!isShortage(err)) {
    gate.give(units, false);
    throw err;
  }
  const turn = gate.shortage(units, since);
  if (turn === null) throw err;
  return turn;
}

/**
 * Runs `run` holding `units`, waiting its turn for them. After a shortage
 * it runs again when `again` (only what is safe to repeat, like a read),
 * else it rejects; either way the budget learns from it.
 */
export async function holding<T>(gate: DescriptorGate, units: number, again: boolean, run: () => Promise<T>): Promise<T> {
  if (!gate.take(units)) await gate.wait(units);
  for (;;) {
    const since = gate.given;
    try {
      const value = await run();
      gate.give(units, true);
      return value;
    } catch (err) {
      if (!again) {
        gate.give(units, false);
        if (isShortage(err)) gate.shrink();
        throw err;
      }
      await afterFailure(gate, units, err, since);
    }
  }
}
