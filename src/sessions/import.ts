// Imports, for migration and import tools: a session under exactly its
// handle and meta, raw steps of any kind in order, archives under exactly
// their names. Each is idempotent: importing what is already there is a no-op,
// importing something different under a taken name is CONFLICT.

import { StepStoreError, invalidEntry } from '../errors.js';
import { splitArchiveName, type ArchiveRecord } from '../format/archive.js';
import { checkStepSize, encodeLines, encodeTexts } from '../format/encode.js';
import { isPlainObject } from '../format/json.js';
import { checkMeta, encodeMeta, maxMetaBytes, sameIdentity } from '../format/meta.js';
import { checkArchiveName, parseHandle } from '../format/slug.js';
import type { ConversationMeta, StepLine } from '../types.js';
import { assertOpen, type StoreContext } from './context.js';

/** Creates the session `handle` with exactly `meta`; false when that very session exists already. */
export async function importSession(ctx: StoreContext, handle: string, meta: ConversationMeta): Promise<boolean> {
  assertOpen(ctx);
  const slug = parseHandle(handle);
  const checked = checkMeta(meta);
  checkStepSize(encodeMeta(checked), 'meta', maxMetaBytes(ctx.maxStepBytes));
  const existing = await ctx.queue.run(slug, () => ctx.backend.importSession(slug, checked));
  if (existing === null) return true;
  if (!sameIdentity(existing, checked)) {
    throw new StepStoreError('CONFLICT', `${handle} exists and belongs to ${existing.agent} / ${existing.created_by}`);
  }
  return false;
}

/** Appends steps exactly as given, kinds included (markers, legacy markers, events, entries); no meta bump. */
export async function importSteps(ctx: StoreContext, handle: string, lines: StepLine[]): Promise<number[]> {
  assertOpen(ctx);
  const slug = parseHandle(handle);
  const steps = encodeLines(lines, ctx.maxStepBytes, ctx.messages);
  return ctx.queue.run(slug, () => ctx.backend.appendSteps(slug, steps, null));
}

/** Appends stored step texts byte for byte (as readSteps returns them in `text`); no meta bump. */
export async function importRawSteps(ctx: StoreContext, handle: string, texts: string[]): Promise<number[]> {
  assertOpen(ctx);
  const slug = parseHandle(handle);
  const steps = encodeTexts(texts, ctx.maxStepBytes, ctx.messages);
  return ctx.queue.run(slug, () => ctx.backend.appendSteps(slug, steps, null));
}

/** Stores an archive under exactly `name` (`{base}-{n}`); false when the same archive is there already. */
export async function importArchive(
  ctx: StoreContext,
  name: string,
  archive: { owner: string; content: string; archived_at?: string },
): Promise<boolean> {
  assertOpen(ctx);
  checkArchiveName(name);
  if (splitArchiveName(name) === null) {
    throw new StepStoreError('INVALID_NAME', `archive names end in -<n>: ${JSON.stringify(name)}`);
  }
  if (!isPlainObject(archive) || typeof archive.content !== 'string') throw invalidEntry('archive content must be a string');
  const owner = parseHandle(archive.owner);
  if (archive.archived_at !== undefined && typeof archive.archived_at !== 'string') throw invalidEntry('archived_at must be a string');
  checkStepSize(archive.content, 'archive content', ctx.maxStepBytes);
  const record: ArchiveRecord = { owner, archived_at: archive.archived_at ?? '', content: archive.content };
  const existing = await ctx.backend.importArchive(name, record);
  if (existing === null) return true;
  if (existing.owner !== record.owner || existing.content !== record.content) {
    throw new StepStoreError('CONFLICT', `archive ${name} exists with other content or owner`);
  }
  return false;
}
