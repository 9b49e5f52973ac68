// Step files: `<root>/<slug>/step-NNNNNN`, each written once. An append writes
// a hidden temp file in full, syncs it (as durability asks), then claims its
// number with link(), which fails if the name is taken, and never replaces a
// step. The directory sync comes last. A failed sync is never followed by a
// link; a failed batch removes the steps it had linked. A fenced append
// links exactly the numbers after the one expected. Once linked, an append
// checks that no rewind is under way and that the step before its first is
// there, else takes its steps back and runs again (history.ts). Appends and
// reads take their descriptors from the store's budget (descriptors.ts): an
// append that meets EMFILE, having taken back all it linked, runs again whole.

import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { StepStoreError, ioError, sessionNotFound } from '../../errors.js';
import type { MetaBump } from '../../format/bump.js';
import type { Slug } from '../../format/slug.js';
import type { EncodedStep } from '../../format/encode.js';
import type { RawStep } from '../../backend.js';
import { cacheState, cachedState, readLimit, type FsContext, type SessionState } from './context.js';
import { holding, isShortage, readNow } from './descriptors.js';
import { closeQuietly, createFileSync, errnoOf, kindOf, readRegularFileSync, unlinkQuietly } from './durable.js';
import { syncDirFd, syncFileInline, syncFiles } from './durability.js';
import { createdAtOf } from './meta.js';
import { completeRewind, intentHolds, readIntent } from './history.js';
import { fenceGone, takeFence } from './lock.js';
import { identityOf, openSession, sessionIdentity } from './session-dir.js';
import { MAX_STEP, REWIND_FILE, fencePath, metaPath, parseStepName, rewindPath, sessionDir, stepName, stepPath, tempPath } from './paths.js';

/** Steps written per round of a batch: temps, then their fsyncs together, then links. */
const BATCH_CHUNK = 64;
/** Times an append whose steps did not continue the session (a rewind) runs again before giving up. */
const MAX_UNPLACED = 50;
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

export interface StepListing {
  /** Canonically named step numbers, ascending. */
  numbers: Float64Array;
  /** Names like `step-42`: counted, never loaded. */
  oddNames: { step: number; name: string }[];
  highest: number;
  /** A rewind's intent lay in the directory (history.ts). */
  rewinding: boolean;
}

export function listingOf(names: string[]): StepListing {
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
  return { numbers: numbers.subarray(0, count).sort(), oddNames, highest, rewinding: names.includes(REWIND_FILE) };
}

/** The file names of the listed steps whose number passes `keep`: canonical ones ascending, then odd ones ascending. */
export function stepNames(listing: StepListing, keep: (step: number) => boolean): string[] {
  return [...Array.from(listing.numbers.filter(keep), stepName), ...listing.oddNames.filter(({ step }) => keep(step)).map(({ name }) => name)];
}

/** The listing without the steps above `to`: what a reader sees while a rewind to `to` is under way. */
function withoutAbove(listing: StepListing, to: number): StepListing {
  const kept = listing.numbers.filter((step) => step <= to);
  const oddNames = listing.oddNames.filter(({ step }) => step <= to);
  const highest = Math.max(kept.at(-1) ?? 0, oddNames.at(-1)?.step ?? 0);
  return { numbers: kept, oddNames, highest, rewinding: true };
}

/**
 * Lists a session's steps, without those a rewind under way retracts; null
 * when its directory is gone. The caller holds a descriptor unit for it.
 */
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
  let listing = listingOf(names);
  if (listing.rewinding) {
    const intent = readIntent(ctx, slug);
    if (intent !== null && intentHolds(intent, listing.highest)) listing = withoutAbove(listing, intent.to);
  }
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
  let listing = await listSteps(ctx, slug);
  // A rewind left half done (its process died) is finished before anything lands after it.
  if (listing?.rewinding === true) {
    await completeRewind(ctx, slug);
    listing = await listSteps(ctx, slug);
  }
  if (listing === null) throw sessionNotFound(slug);
  const state: SessionState = { nextStep: listing.highest + 1, createdAt: createdAtOf(ctx, slug), identity, placedAtMs: 0 };
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

/** Links `temp` to exactly `step` (a fenced append); CONFLICT when it is taken. */
function claimExact(ctx: FsContext, dir: string, temp: string, step: number): number {
  try {
    ctx.fs.linkSync(temp, stepPath(dir, step));
    return step;
  } catch (err) {
    if (errnoOf(err) === 'EEXIST') throw fenceConflict(step - 1);
    throw err;
  }
}

export function fenceConflict(expected: number): StepStoreError {
  return new StepStoreError('CONFLICT', `the session's highest step is not ${expected}: nothing was written`);
}

/** Why an append's linked steps were taken back and the append runs again: the numbers it got were not the session's next. */
class Unplaced extends Error {
  constructor(readonly why: 'rewinding' | 'fenced' | 'hole') {
    super(why === 'rewinding' ? 'a rewind is under way' : why === 'fenced' ? 'a fenced append is linking' : 'a step before the first one linked is missing');
  }
}

/**
 * Checks, once every step of a call is linked, that they continue the
 * session: no rewind's intent lies in the directory (one made later retracts
 * these steps itself, being after them), and the step before the first is
 * there (a counter cached before another process rewound would leave a hole).
 */
function checkPlaced(ctx: FsContext, slug: Slug, dir: string, first: number, fence: number | undefined): void {
  if (kindOf(ctx.fs, rewindPath(ctx.root, slug)) !== 'missing') throw new Unplaced('rewinding');
  // A fenced append that fails takes back what it linked: no step may land above it meanwhile.
  if (fence === undefined && kindOf(ctx.fs, fencePath(ctx.root, slug)) !== 'missing') throw new Unplaced('fenced');
  if (first > 1 && kindOf(ctx.fs, stepPath(dir, first - 1)) === 'missing' && !listed(listingOf(ctx.fs.readdirSync(dir)), first - 1)) {
    if (fence !== undefined) throw fenceConflict(fence);
    throw new Unplaced('hole');
  }
}

/** `step` is in the listing, under its canonical name or another (`step-42`). */
function listed(listing: StepListing, step: number): boolean {
  return listing.numbers.includes(step) || listing.oddNames.some((odd) => odd.step === step);
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
  slug: Slug,
  dirFd: number,
  state: SessionState,
  steps: EncodedStep[],
  inline: boolean,
  left: number[],
  fence: number | undefined,
): Promise<number[]> {
  const dir = sessionDir(ctx.root, slug);
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
        for (const temp of temps) {
          linked.push(fence === undefined ? claimStep(ctx, dir, temp.path, state) : claimExact(ctx, dir, temp.path, fence + linked.length + 1));
        }
      } finally {
        for (const temp of temps) {
          if (temp.fd !== null) closeQuietly(ctx.fs, temp.fd);
          unlinkQuietly(ctx.fs, temp.path);
        }
      }
    }
    // Before the check: a rewind whose intent the check does not see counts this append as before it (meta.ts countedBump).
    state.placedAtMs = Date.now();
    checkPlaced(ctx, slug, dir, linked[0]!, fence);
    if (fence !== undefined) state.nextStep = linked.at(-1)! + 1;
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
  fence?: number,
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
  let unplaced = 0;
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
        // A fenced append links under the session's fence, so that taking its steps back never leaves a hole under another's.
        if (fence !== undefined) await takeFence(ctx, slug);
        try {
          numbers = await writeSteps(ctx, slug, dirFd, state, steps, steps.length === 1 && ctx.activeAppends === 1, left, fence);
        } finally {
          if (fence !== undefined) unlinkQuietly(ctx.fs, fencePath(ctx.root, slug));
        }
        done = true;
        break;
      } catch (err) {
        if (err instanceof Unplaced && left.length === leftBefore) {
          // Every step taken back, durably at every level (one coming back after a power cut would stand beside its retry's copy).
          await syncDirFd(ctx, 'history', dirFd!, false);
          // Then count afresh (after the rewind, when one is under way) and go again.
          ctx.sessions.delete(slug);
          if (err.why === 'rewinding') await completeRewind(ctx, slug);
          if (err.why === 'fenced') await fenceGone(ctx, slug);
          if (++unplaced > MAX_UNPLACED) throw new StepStoreError('CONFLICT', `${slug} kept being rewound while appending: nothing was written`);
          continue;
        }
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
  if (bump !== null) {
    const atMs = state.placedAtMs;
    const parts = bump.messages > 0 ? [{ atMs, steps: numbers }] : [];
    ctx.bumps.add(slug, { ...bump, createdAt: state.createdAt, parts, compacted: bump.compacted === true ? { atMs, step: numbers.at(-1)! } : null });
  }
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
  expected = FIRST_SLICE,
): AsyncGenerator<RawStep[]> {
  const dir = sessionDir(ctx.root, slug);
  let sliceSize = Math.max(1, Math.min(expected, MAX_SLICE));
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
export function listToRead(ctx: FsContext, slug: Slug): Promise<StepListing | null> {
  return holding(ctx.descriptors, 1, true, () => listSteps(ctx, slug));
}

export async function* stepsNewestFirst(ctx: FsContext, slug: Slug, expected?: number): AsyncGenerator<RawStep[]> {
  const listing = await listToRead(ctx, slug);
  if (listing !== null) yield* readInSlices(ctx, slug, ordered(listing, true), expected);
}

export async function* stepsAfter(ctx: FsContext, slug: Slug, after: number, expected?: number): AsyncGenerator<RawStep[]> {
  const listing = await listToRead(ctx, slug);
  if (listing !== null) yield* readInSlices(ctx, slug, ordered(listing, false, after), expected);
}

export async function* stepsBefore(ctx: FsContext, slug: Slug, before: number, expected?: number): AsyncGenerator<RawStep[]> {
  const listing = await listToRead(ctx, slug);
  if (listing === null) return;
  function* below(): Generator<{ step: number; name?: string }> {
    for (const item of ordered(listing!, true)) if (item.step < before) yield item;
  }
  yield* readInSlices(ctx, slug, below(), expected);
}

/** The highest step a reader sees (0: none); null when there is no session. */
export async function highestStep(ctx: FsContext, slug: Slug): Promise<number | null> {
  try {
    if (kindOf(ctx.fs, metaPath(ctx.root, slug)) !== 'file') return null;
  } catch (err) {
    throw ioError(err, `checking session ${slug}`);
  }
  return (await listToRead(ctx, slug))?.highest ?? null;
}
