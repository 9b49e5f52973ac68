// Compaction: the summary becomes an archive entry and a marker naming it is
// appended; backends guarantee a marker never points at an archive that is not
// stored. Also crabtalk's resume rule.

import { StepStoreError } from '../errors.js';
import { COMPACTION_BUMP } from '../format/bump.js';
import { isPlainObject } from '../format/json.js';
import { hasLoneSurrogate } from '../format/json-facts.js';
import { now } from '../format/time.js';
import { assertOpen, expectedStepOf, type StoreContext } from '../sessions/context.js';
import { checkArchiveName, parseHandle } from '../format/slug.js';
import { checkStepSize, encodeMarker } from '../format/encode.js';
import type { HistoryEntry, SessionSnapshot } from '../types.js';
import { archiveBase } from '../format/archive.js';

export async function compact(ctx: StoreContext, handle: string, summary: string, options?: { expectedStep?: number }): Promise<string> {
  assertOpen(ctx);
  const slug = parseHandle(handle);
  const expectedStep = expectedStepOf(options, 'compact');
  if (typeof summary !== 'string') throw new StepStoreError('INVALID_ENTRY', 'summary must be a string');
  // resumeHistory hands the summary back as a message; a lone surrogate there could not be stored as one.
  if (hasLoneSurrogate(summary)) throw new StepStoreError('INVALID_ENTRY', 'summary holds a lone UTF-16 surrogate, which JSON in UTF-8 cannot carry');
  checkStepSize(summary, 'summary', ctx.maxStepBytes);
  const record = { owner: slug, archived_at: now(), content: summary };
  return ctx.queue.run(slug, () => ctx.backend.compact(slug, archiveBase(slug), record, expectedStep));
}

/**
 * Appends a marker for an archive kept elsewhere (the store does not check
 * that it exists); like compact(), it restarts message_count at 1.
 */
export async function appendCompact(ctx: StoreContext, handle: string, archiveName: string): Promise<number> {
  assertOpen(ctx);
  const slug = parseHandle(handle);
  checkArchiveName(archiveName);
  const [step] = await ctx.queue.run(slug, () => ctx.backend.appendSteps(slug, [encodeMarker(archiveName, now())], COMPACTION_BUMP));
  return step!;
}

export async function getArchive(ctx: StoreContext, name: string): Promise<string | null> {
  assertOpen(ctx);
  checkArchiveName(name);
  return (await ctx.backend.getArchive(name))?.content ?? null;
}

/**
 * crabtalk's resume: the archive content (or a visible placeholder when the
 * archive is missing) as one user message of one text block, exactly as
 * crabtalk builds it, then the history. A legacy marker puts nothing in front.
 */
export function resumeHistory(snapshot: SessionSnapshot): HistoryEntry[] {
  if (!isPlainObject(snapshot) || !Array.isArray(snapshot.history) || (snapshot.archive !== null && typeof snapshot.archive !== 'string')) {
    throw new StepStoreError('INVALID_ENTRY', 'resumeHistory needs a snapshot from loadSession');
  }
  if (snapshot.truncated === true) {
    throw new StepStoreError('INVALID_ENTRY', 'snapshot was loaded with { last } and stops before its boundary: load the whole live history to resume');
  }
  if (snapshot.archive === null) return [...snapshot.history];
  if (snapshot.archiveContent === undefined) {
    throw new StepStoreError(
      'INVALID_ENTRY',
      `snapshot names archive ${snapshot.archive} but its content was not loaded: load with { withArchive: true }`,
    );
  }
  const content = snapshot.archiveContent ?? `[archived context unavailable: ${snapshot.archive}]`;
  return [{ message: { role: 'user', content: [{ type: 'text', text: content }] } }, ...snapshot.history];
}
