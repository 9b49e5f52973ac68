// Step files: `<root>/<slug>/step-NNNNNN`, each written once. An append writes
// a hidden temp file in full, syncs it (as durability asks), then claims its
// number with link(), which fails if the name is taken, and never replaces a
// step. The directory sync comes last. A failed sync is never followed by a
// link; a failed batch removes the steps it had linked. Appends and reads
// take their descriptors from the store's budget (descriptors.ts): an append
// that meets EMFILE, having taken back all it linked, runs again whole.

import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { StepStoreError, ioError, sessionNotFound } from '../../errors.js';
import type { MetaBump } from '../../format/bump.js';
import type { Slug } from '../../format/slug.js';
import type { EncodedStep } from '../../format/encode.js';
import type { RawStep } from '../../backend.js';
import { cacheState, cachedState, readLimit, type FsContext, type SessionState } from './context.js';
import { holding, isShortage, readNow } from './descriptors.js';
import { closeQuietly, createFileSync, errnoOf, readRegularFileSync, unlinkQuietly } from './durable.js';
import { syncDirFd, syncFileInline, syncFiles } from './durability.js';
import { createdAtOf } from './meta.js';
import { identityOf, openSession, sessionIdentity } from './session-dir.js';
import { MAX_STEP, parseStepName, sessionDir, stepPath, tempPath } from './paths.js';

/** Steps written per round of a batch: temps, then their fsyncs together, then links. */
const BATCH_CHUNK = 64;
/** Link attempts on taken numbers before rescanning the directory for the highest. */
const CLAIM_TRIES_BEFORE_RESCAN = 16;
/** Longest a load or list keeps the event loop before yielding. */
export const SLICE_MS = 4;
const FIRST_SLICE = 16;
const MAX_SLICE = 64;

/**
 * Descriptors an append of `count` steps holds at once: its directory, and a
 * temp file per step of a round, or the listing when it scans the directory.
 */
function appendUnits(count: number): number {
  return 1 + Math.max(1, Math.min(count, BATCH_CHUNK));
}

interface StepListing {
  /** Canonically named step numbers, ascending. */
  numbers: Float64Array;
  /** Names like `step-42`: counted, never loaded. */
  oddNames: { step: number; name: string }[];
  highest: number;
}

function listingOf(names: string[]): StepListing {
  const numbers = new Float64Array(names.length);
  const oddNames: StepListing['oddNames'] = [];
  let count = 0;
  let highest = 0;
  for (const name of names) {
    const parsed = parseStepName(name);
    if (parsed === null) continue;
    if (parsed.step > highest) highest = parsed.step;
    if (parsed.canonical) numbers[count++] = parsed.step;
    else oddNames.push({ step: parsed.step, name });
  }
  oddNames.sort((a, b) => a.step - b.step);
  return { numbers: numbers.subarray(0, count).sort(), oddNames, highest };
}

/** Lists a session's steps; null when its directory is gone. The caller holds a descriptor unit for it. */
async function listSteps(ctx: FsContext, slug: Slug): Promise<StepListing | null> {
  let names: string[];
  let identity: string | null;
  try {
    identity = sessionIdentity(ctx, slug);
    names = await ctx.fs.readdir(sessionDir(ctx.root, slug));
  } catch (err) {
    if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') return null;
    throw ioError(err, `listing steps of ${slug}`);
  }
  const listing = listingOf(names);
  // Steps other writers added: this store's next append goes past them, in this conversation only.
  const state = cachedState(ctx, slug);
  if (state !== undefined && state.identity === identity && state.nextStep <= listing.highest) state.nextStep = listing.highest + 1;
  return listing;
}

/**
 * The session's counter, cached or recovered by a scan (the caller has
 * checked the session and opened its directory, whose identity is
 * `identity`). A cached counter of another conversation once kept under
 * this name means the caller's handle is stale: SESSION_NOT_FOUND, never an
 * append to the conversation that took the name since.
 */
async function stateOf(ctx: FsContext, slug: Slug, identity: string): Promise<SessionState> {
  const cached = cachedState(ctx, slug);
  if (cached !== undefined && cached.identity === identity) return cached;
  if (cached !== undefined) {
    ctx.sessions.delete(slug);
    throw sessionNotFound(slug);
  }
  const listing = await listSteps(ctx, slug);
  if (listing === null) throw sessionNotFound(slug);
  const state: SessionState = { nextStep: listing.highest + 1, createdAt: createdAtOf(ctx, slug), identity };
  cacheState(ctx, slug, state);
  return state;
}

/** Links `temp` to the first free step number from the cached counter on; returns it. */
function claimStep(ctx: FsContext, dir: string, temp: string, state: SessionState): number {
  let step = state.nextStep;
  for (let taken = 1; ; taken++) {
    // A number load would not list (a planted `step-999999999999999` before it) is never handed out.
    if (step > MAX_STEP) throw new StepStoreError('CONFLICT', `no step number is left: step ${MAX_STEP}, the highest, is taken`);
    try {
      ctx.fs.linkSync(temp, stepPath(dir, step));
      state.nextStep = step + 1;
      return step;
    } catch (err) {
      if (errnoOf(err) !== 'EEXIST') throw err;
    }
    // Another process appended: move on, rescanning now and then rather than probing one by one.
    step += 1;
    if (taken % CLAIM_TRIES_BEFORE_RESCAN === 0) step = Math.max(step, listingOf(ctx.fs.readdirSync(dir)).highest + 1);
  }
}

/** Takes back steps of a failed call (they were never acknowledged); those that would not go are added to `left`. */
function unlinkSteps(ctx: FsContext, dir: string, steps: number[], left: number[]): void {
  for (const step of steps) {
    try {
      ctx.fs.unlinkSync(stepPath(dir, step));
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') left.push(step);
    }
  }
}

function failure(ctx: FsContext, slug: Slug, err: unknown): StepStoreError {
  const code = errnoOf(err);
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    ctx.sessions.delete(slug);
    return sessionNotFound(slug);
  }
  return ioError(err, `appending to ${slug}`);
}

/**
 * The one append protocol, for any number of steps: per round of up to
 * BATCH_CHUNK, every temp file is written, then synced, then closed, then
 * linked to its number in order; the directory is synced once at the end.
 * `inline`: every sync is a synchronous call (a lone single step, when
 * nothing else is waiting); otherwise the syncs of a round run together on
 * the thread pool. On failure, the steps linked so far are taken back.
 */
async function writeSteps(
  ctx: FsContext,
  dir: string,
  dirFd: number,
  state: SessionState,
  steps: EncodedStep[],
  inline: boolean,
  left: number[],
): Promise<number[]> {
  const linked: number[] = [];
  try {
    for (let start = 0; start < steps.length; start += BATCH_CHUNK) {
      const temps: { path: string; fd: number | null }[] = [];
      try {
        for (const step of steps.slice(start, start + BATCH_CHUNK)) {
          const path = tempPath(dir);
          temps.push({ path, fd: createFileSync(ctx.fs, path, Buffer.from(step.json, 'utf8')) });
        }
        if (inline) for (const { fd } of temps) syncFileInline(ctx, 'stepData', fd!);
        else await syncFiles(ctx, 'stepData', temps.map(({ fd }) => fd!));
        for (const temp of temps) {
          const fd = temp.fd!;
          temp.fd = null; // closed, or failed to close: never closed again (the number may be reused)
          ctx.fs.closeSync(fd);
        }
        for (const temp of temps) linked.push(claimStep(ctx, dir, temp.path, state));
      } finally {
        for (const temp of temps) {
          if (temp.fd !== null) closeQuietly(ctx.fs, temp.fd);
          unlinkQuietly(ctx.fs, temp.path);
        }
      }
    }
    await syncDirFd(ctx, 'newEntries', dirFd, inline);
    return linked;
  } catch (err) {
    unlinkSteps(ctx, dir, linked, left);
    throw err;
  }
}

/**
 * Appends after checking the session on every call: its directory is opened
 * without following a symlink and `meta` must be a regular file, so a
 * directory or meta swapped for a symlink is never written through. When the
 * call fails, steps it linked but could not take back are added to `left`.
 * An attempt that fails with EMFILE or ENFILE is run again only when it took
 * back every step it linked (nothing of it is left, nothing was acknowledged).
 */
export async function appendSteps(
  ctx: FsContext,
  slug: Slug,
  steps: EncodedStep[],
  bump: MetaBump | null,
  left: number[] = [],
): Promise<number[]> {
  const gate = ctx.descriptors;
  const units = appendUnits(steps.length);
  // Counted from the call on, so that appends started together all see each other.
  ctx.activeAppends += 1;
  let held = false;
  let done = false;
  let numbers: number[];
  let state: SessionState;
  try {
    if (!gate.take(units)) await gate.wait(units);
    held = true;
    for (;;) {
      const leftBefore = left.length;
      let dirFd: number | null = null;
      try {
        dirFd = openSession(ctx, slug);
        state = await stateOf(ctx, slug, identityOf(ctx.fs.fstatSync(dirFd)));
        if (steps.length === 0) {
          done = true;
          return [];
        }
        const dir = sessionDir(ctx.root, slug);
        numbers = await writeSteps(ctx, dir, dirFd, state, steps, steps.length === 1 && ctx.activeAppends === 1, left);
        done = true;
        break;
      } catch (err) {
        if (!isShortage(err) || left.length > leftBefore) throw err;
        if (dirFd !== null) closeQuietly(ctx.fs, dirFd);
        dirFd = null;
        held = false;
        const turn = gate.shortage(units);
        if (turn === null) throw err;
        await turn;
        held = true;
      } finally {
        // Closing a directory read-only cannot lose data: a failure here must not turn a done append into a rejection.
        if (dirFd !== null) closeQuietly(ctx.fs, dirFd);
      }
    }
  } catch (err) {
    throw failure(ctx, slug, err);
  } finally {
    ctx.activeAppends -= 1;
    if (held) gate.give(units, done);
  }
  ctx.stats.stepsWritten += numbers.length;
  if (bump !== null) ctx.bumps.add(slug, { ...bump, createdAt: state.createdAt });
  return numbers;
}

function readStep(ctx: FsContext, dir: string, step: number, name?: string): RawStep {
  if (name !== undefined) return { step, problem: `non-canonical step name ${name}` };
  const text = readRegularFileSync(ctx.fs, stepPath(dir, step), readLimit(ctx, 'step'));
  ctx.stats.stepsRead += 1;
  if (typeof text === 'string') return { step, text };
  return { step, problem: text.problem === 'missing' ? 'step vanished while reading' : `step is ${text.problem}` };
}

/**
 * Reads steps in `order` in slices that start small and grow, so a consumer
 * that stops early (replay at a boundary) reads little; yields the event loop
 * whenever SLICE_MS of reading has passed.
 */
async function* readInSlices(
  ctx: FsContext,
  slug: Slug,
  order: Iterable<{ step: number; name?: string }>,
): AsyncGenerator<RawStep[]> {
  const dir = sessionDir(ctx.root, slug);
  let sliceSize = FIRST_SLICE;
  let slice: RawStep[] = [];
  let since = performance.now();
  for (const { step, name } of order) {
    const read = () => readStep(ctx, dir, step, name);
    try {
      const now = readNow(ctx.descriptors, 1, read);
      slice.push(now instanceof Promise ? await now : now);
    } catch (err) {
      throw ioError(err, `reading step ${step} of ${slug}`);
    }
    if (slice.length >= sliceSize) {
      yield slice;
      slice = [];
      sliceSize = Math.min(sliceSize * 2, MAX_SLICE);
    }
    if (performance.now() - since >= SLICE_MS) {
      if (slice.length > 0) {
        yield slice;
        slice = [];
      }
      await yieldToLoop();
      since = performance.now();
    }
  }
  if (slice.length > 0) yield slice;
}

/** Merges canonical numbers and odd names into one order, ascending or descending. */
function* ordered(listing: StepListing, descending: boolean, after = 0): Generator<{ step: number; name?: string }> {
  const { numbers, oddNames } = listing;
  let i = descending ? numbers.length - 1 : 0;
  let j = descending ? oddNames.length - 1 : 0;
  const step = descending ? -1 : 1;
  const inRange = (n: number) => n > after;
  while (true) {
    const a = i >= 0 && i < numbers.length ? numbers[i]! : null;
    const odd = j >= 0 && j < oddNames.length ? oddNames[j]! : null;
    if (a === null && odd === null) return;
    const takeOdd = odd !== null && (a === null || (descending ? odd.step >= a : odd.step <= a));
    if (takeOdd) {
      j += step;
      if (inRange(odd.step)) yield odd;
    } else {
      i += step;
      if (inRange(a!)) yield { step: a! };
    }
  }
}

/** listSteps for a reader, holding a descriptor unit. */
function listToRead(ctx: FsContext, slug: Slug): Promise<StepListing | null> {
  return holding(ctx.descriptors, 1, true, () => listSteps(ctx, slug));
}

export async function* stepsNewestFirst(ctx: FsContext, slug: Slug): AsyncGenerator<RawStep[]> {
  const listing = await listToRead(ctx, slug);
  if (listing !== null) yield* readInSlices(ctx, slug, ordered(listing, true));
}

export async function* stepsAfter(ctx: FsContext, slug: Slug, after: number): AsyncGenerator<RawStep[]> {
  const listing = await listToRead(ctx, slug);
  if (listing !== null) yield* readInSlices(ctx, slug, ordered(listing, false, after));
}
