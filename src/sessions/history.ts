// History operations behind the public store: fork (a new session holding a
// prefix of another's steps) and rewind (retract the steps after a number).
// Both validate, read what the backend needs decided by the rules (the live
// count of a prefix, the archives retracted markers name), then hand exact
// arguments down. Writes go through the per-session queue.

import { StepStoreError, invalidOption, sessionNotFound } from '../errors.js';
import { liveCount } from '../format/bump.js';
import { classifyStep, isBoundary } from '../format/step-line.js';
import type { CountChange } from '../backend.js';
import { now } from '../format/time.js';
import { parseHandle, type Slug } from '../format/slug.js';
import type { ConversationMeta } from '../types.js';
import { assertOpen, checkCursor, expectedStepOf, optionsOf, type StoreContext } from './context.js';

/** What a rewind to `after` retracts: the archives its markers name, its messages, and whether a boundary is among them. */
async function retracted(ctx: StoreContext, slug: Slug, after: number): Promise<{ archives: string[]; messages: number; boundary: boolean }> {
  const found = { archives: [] as string[], messages: 0, boundary: false };
  for await (const slice of ctx.backend.stepsAfter(slug, after)) {
    for (const raw of slice) {
      if ('problem' in raw) continue;
      const classified = classifyStep(raw.text, ctx.messages);
      if (classified.kind === 'entry') found.messages += 1;
      else if (classified.kind !== null && isBoundary(classified.kind)) found.boundary = true;
      if (classified.kind === 'compact') found.archives.push((classified.line as { archive_name: string }).archive_name);
    }
  }
  return found;
}

/**
 * A new session of the same agent and sender holding steps 1..atStep of
 * `handle` (default: all). Its meta keeps the source's title and unknown
 * fields, is new in created_at/updated_at, counts what it holds, and names
 * its source in `forked_from` / `forked_at_step` (fields crabtalk keeps as
 * unknown). SESSION_NOT_FOUND without a source; INVALID_OPTION for an
 * atStep above its highest step.
 */
export async function fork(ctx: StoreContext, handle: string, options?: { atStep?: number }): Promise<string> {
  assertOpen(ctx);
  const slug = parseHandle(handle);
  const opts = optionsOf(options, 'fork');
  const asked = checkCursor('atStep', opts.atStep, 0);
  return ctx.queue.run(slug, async () => {
    const source = await ctx.backend.readMeta(slug);
    const highest = await ctx.backend.highestStep(slug);
    if (source === null || highest === null) throw sessionNotFound(slug);
    const atStep = asked ?? highest;
    if (atStep > highest) throw invalidOption(`atStep ${atStep} is above the highest step of ${slug}, ${highest}`);
    const stamp = now();
    const meta: ConversationMeta = {
      ...source,
      created_at: stamp,
      updated_at: stamp,
      // All of it: the source's own count. Part of it: counted, back to the last boundary at or below atStep.
      message_count: atStep === highest ? source.message_count : await liveCount(ctx.backend.stepsBefore(slug, atStep + 1), ctx.messages),
      forked_from: slug,
      forked_at_step: atStep,
    };
    const forked = await ctx.backend.fork(slug, atStep, meta);
    if (forked === null) throw sessionNotFound(slug);
    return forked;
  });
}

/**
 * Retracts every step after `toStep`; the next append lands at toStep + 1.
 * Resolves with how many steps went (0 when none is above toStep).
 */
export async function rewind(ctx: StoreContext, handle: string, toStep: number, options?: { expectedStep?: number }): Promise<number> {
  assertOpen(ctx);
  const slug = parseHandle(handle);
  const to = checkCursor('toStep', toStep, 0);
  if (to === undefined) throw invalidOption('toStep is required');
  const expected = expectedStepOf(options, 'rewind');
  return ctx.queue.run(slug, async () => {
    const highest = await ctx.backend.highestStep(slug);
    if (highest === null) throw sessionNotFound(slug);
    if (expected !== undefined && highest !== expected) throw new StepStoreError('CONFLICT', `the highest step of ${slug} is not ${expected}: nothing was retracted`);
    if (to >= highest) return 0;
    const going = await retracted(ctx, slug, to);
    // Without a boundary among them, the count goes down by the messages that go: nothing older is read.
    const change: CountChange = going.boundary
      ? { count: await liveCount(ctx.backend.stepsBefore(slug, to + 1), ctx.messages) }
      : { less: going.messages, expectedHighest: highest };
    const removed = await ctx.backend.rewind(slug, to, change, now(), going.archives, expected);
    if (removed === null) throw sessionNotFound(slug);
    return removed;
  });
}
