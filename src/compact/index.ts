// Compaction: the summary is stored as an archive entry first, durably, and
// only then the marker that names it is appended, so a marker never points at
// an archive that is not stored. Also crabtalk's resume rule.

import { StepStoreError } from '../errors.js';
import { now } from '../meta/time.js';
import { assertOpen, type StoreContext } from '../sessions/context.js';
import { notFound } from '../sessions/index.js';
import { checkArchiveName, parseHandle } from '../sessions/slug.js';
import { encodeMarker } from '../sessions/validate.js';
import type { HistoryEntry, SessionSnapshot } from '../types.js';
import { archiveBase } from './archive.js';

export async function compact(ctx: StoreContext, handle: string, summary: string): Promise<string> {
  assertOpen(ctx);
  const slug = parseHandle(handle);
  if (typeof summary !== 'string') throw new StepStoreError('INVALID_ENTRY', 'summary must be a string');
  const bytes = Buffer.byteLength(summary, 'utf8');
  if (bytes > ctx.maxStepBytes) {
    throw new StepStoreError('STEP_TOO_LARGE', `summary is ${bytes} bytes, over maxStepBytes (${ctx.maxStepBytes})`);
  }
  return ctx.queue.run(slug, async () => {
    if ((await ctx.backend.readMeta(slug)) === null) throw notFound(slug);
    const archivedAt = now();
    const name = await ctx.backend.putArchive(archiveBase(slug), { owner: slug, archived_at: archivedAt, content: summary });
    await ctx.backend.appendSteps(slug, [encodeMarker(name, archivedAt)], null);
    return name;
  });
}

/** Appends a marker for an archive kept elsewhere (the store does not check that it exists). */
export async function appendCompact(ctx: StoreContext, handle: string, archiveName: string): Promise<number> {
  assertOpen(ctx);
  const slug = parseHandle(handle);
  checkArchiveName(archiveName);
  const [step] = await ctx.queue.run(slug, () => ctx.backend.appendSteps(slug, [encodeMarker(archiveName, now())], null));
  return step!;
}

export async function getArchive(ctx: StoreContext, name: string): Promise<string | null> {
  assertOpen(ctx);
  checkArchiveName(name);
  return (await ctx.backend.getArchive(name))?.content ?? null;
}

/**
 * crabtalk's resume: the archive content (or a visible placeholder when the
 * archive is missing) as one user message, then the history.
 */
export function resumeHistory(snapshot: SessionSnapshot): HistoryEntry[] {
  if (snapshot.archive === null) return [...snapshot.history];
  if (snapshot.archiveContent === undefined) {
    throw new StepStoreError(
      'INVALID_ENTRY',
      `snapshot names archive ${snapshot.archive} but its content was not loaded: load with { withArchive: true }`,
    );
  }
  const content = snapshot.archiveContent ?? `[archived context unavailable: ${snapshot.archive}]`;
  return [{ message: { role: 'user', content } }, ...snapshot.history];
}
