// Archives in Redis: the record lives beside its owner session (same hash
// tag), so one script stores it and appends the marker naming it; a per-base
// directory (`P{arc:<base>}`) claims `n` exclusively and maps each name to
// its owner, so getArchive finds a record by name alone. A new `n` is also
// above every name the session's markers use (crabtalk's among them). Forks
// hold their source's archives (holders sets, see keys.ts): a record outlives
// its owner while a fork holds it.

import { splitArchiveName, type ArchiveRecord } from '../../format/archive.js';
import { markerFloor } from '../../format/crabtalk-memory.js';
import { StepStoreError, sessionNotFound } from '../../errors.js';
import { toSlug, type Slug } from '../../format/slug.js';
import { encodeMarker } from '../../format/encode.js';
import type { Reply } from './client.js';
import { notAtStep, requestId, toRecord, type RedisContext } from './context.js';
import { archiveDirectoryKey, archiveKey, archiveRequestKey, holdersKey, pairKeysOf, sessionKeys } from './keys.js';
import { CLAIM_ARCHIVE, CLAIM_ARCHIVE_NAME, COMPACT, IMPORT_ARCHIVE } from './scripts.js';
import { highestStep, stepsBefore } from './steps.js';

/** KEYS: archive directory. ARGV: floor. Raises the directory's counter to `floor` (never lowers it), so the next claim is above it. */
const RAISE_ARCHIVE_COUNTER = `
if tonumber(redis.call('HGET', KEYS[1], 'next') or '0') < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'next', ARGV[1])
end
return 1
`;

export async function compact(ctx: RedisContext, slug: Slug, base: string, record: ArchiveRecord, expectedStep?: number): Promise<string> {
  const keys = sessionKeys(ctx.prefix, slug);
  const highest = await highestStep(ctx, slug);
  if (highest === null) throw sessionNotFound(slug);
  // Checked again by the script; checked here so that a fence known to fail claims no name.
  if (expectedStep !== undefined && highest !== expectedStep) throw notAtStep(slug, expectedStep);
  const directory = archiveDirectoryKey(ctx.prefix, base);
  // Redis cannot tell an archive compact() minted from one imported for the session: either counts
  // (an imported one comes, with the markers before it, from a store that numbered it the same way).
  const everyStep = stepsBefore(ctx, slug, Number.POSITIVE_INFINITY);
  const floor = await markerFloor(everyStep, base, async (name) => (await getArchive(ctx, name))?.owner === slug);
  if (floor > 0) await ctx.conn.script(RAISE_ARCHIVE_COUNTER, [directory], [floor]);
  const n = (await ctx.conn.script(
    CLAIM_ARCHIVE,
    [directory, archiveRequestKey(ctx.prefix, base, requestId())],
    [slug, ctx.conn.rememberForMs],
  )) as number;
  const name = `${base}-${n}`;
  try {
    await ctx.conn.script(
      COMPACT,
      [
        keys.meta,
        keys.steps,
        keys.state,
        pairKeysOf(ctx.prefix, slug).requests + requestId(),
        keys.archives,
        archiveKey(ctx.prefix, slug, name),
      ],
      [ctx.conn.rememberForMs, encodeMarker(name, record.archived_at).json, name, ...archiveFields(record), expectedStep ?? ''],
    );
  } catch (err) {
    // Deleted or written meanwhile: give the claimed name back rather than leave it pointing nowhere.
    if (err instanceof StepStoreError && (err.code === 'SESSION_NOT_FOUND' || err.code === 'CONFLICT')) {
      await ctx.conn.write(directory, ['HDEL', directory, String(n)]);
    }
    throw err;
  }
  ctx.stats.stepsWritten += 1;
  return name;
}

export async function getArchive(ctx: RedisContext, name: string): Promise<ArchiveRecord | null> {
  const split = splitArchiveName(name);
  if (split === null) return null;
  const directory = archiveDirectoryKey(ctx.prefix, split.base);
  const owner = toSlug(String((await ctx.conn.read(directory, ['HGET', directory, String(split.n)])) ?? ''));
  if (owner === null) return null;
  const key = archiveKey(ctx.prefix, owner, name);
  const ownerMeta = sessionKeys(ctx.prefix, owner).meta;
  // An archive lives as long as a session holds it: its owner (as on the filesystem), or a fork of it.
  const [record, ownerExists] = await Promise.all([ctx.conn.read(key, ['HGETALL', key]), ctx.conn.read(ownerMeta, ['EXISTS', ownerMeta])]);
  if (ownerExists === 1) return recordOf(record);
  const holders = holdersKey(key);
  return (await ctx.conn.read(holders, ['EXISTS', holders])) === 1 ? recordOf(record) : null;
}

/** Takes the directory entries of archives just removed (each from its own base's directory, another slot). */
export async function forgetNames(ctx: RedisContext, names: string[]): Promise<void> {
  const byBase = new Map<string, string[]>();
  for (const name of names) {
    const split = splitArchiveName(name);
    if (split !== null) byBase.set(split.base, [...(byBase.get(split.base) ?? []), String(split.n)]);
  }
  for (const [base, numbers] of byBase) {
    const directory = archiveDirectoryKey(ctx.prefix, base);
    await ctx.conn.write(directory, ['HDEL', directory, ...numbers]);
  }
}

/** owner, archived_at, content: the two texts JSON-encoded so any string survives UTF-8. */
function archiveFields(record: ArchiveRecord): string[] {
  return [record.owner, JSON.stringify(record.archived_at), JSON.stringify(record.content)];
}

function recordOf(reply: Reply): ArchiveRecord | null {
  const hash = toRecord(reply);
  if (hash.owner === undefined || hash.archived_at === undefined || hash.content === undefined) return null;
  try {
    const archivedAt: unknown = JSON.parse(hash.archived_at);
    const content: unknown = JSON.parse(hash.content);
    if (typeof archivedAt !== 'string' || typeof content !== 'string') return null;
    return { owner: hash.owner, archived_at: archivedAt, content };
  } catch {
    return null;
  }
}

export async function importArchive(ctx: RedisContext, name: string, record: ArchiveRecord): Promise<ArchiveRecord | null> {
  const split = splitArchiveName(name);
  const owner = toSlug(record.owner);
  if (split === null || owner === null) throw new StepStoreError('INVALID_NAME', `cannot store archive ${name} for ${record.owner}`);
  const directory = archiveDirectoryKey(ctx.prefix, split.base);
  const recorded = String(await ctx.conn.script(CLAIM_ARCHIVE_NAME, [directory], [split.n, owner]));
  if (recorded === owner) {
    const stored = await ctx.conn.script(
      IMPORT_ARCHIVE,
      [archiveKey(ctx.prefix, owner, name), sessionKeys(ctx.prefix, owner).archives],
      [name, ...archiveFields({ ...record, owner })],
    );
    if (stored === 1) return null;
  }
  return (await getArchive(ctx, name)) ?? { owner: recorded, archived_at: '', content: '' };
}
