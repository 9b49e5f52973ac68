// Archives in Redis: the record lives beside its owner session (same hash
// tag), so one script stores it and appends the marker naming it; a per-base
// directory (`P{arc:<base>}`) claims `n` exclusively and maps each name to
// its owner, so getArchive finds a record by name alone. A new `n` is also
// above every name the session's markers use (crabtalk's among them).

import type { RawStep } from '../../backend.js';
import { splitArchiveName, type ArchiveRecord } from '../../format/archive.js';
import { markerFloor } from '../../format/crabtalk-memory.js';
import { StepStoreError, sessionNotFound } from '../../errors.js';
import { toSlug, type Slug } from '../../format/slug.js';
import { encodeMarker } from '../../format/encode.js';
import type { Reply } from './client.js';
import { requestId, toRecord, type RedisContext } from './context.js';
import { archiveDirectoryKey, archiveKey, archiveRequestKey, pairKeysOf, sessionKeys } from './keys.js';
import { CLAIM_ARCHIVE, CLAIM_ARCHIVE_NAME, COMPACT, IMPORT_ARCHIVE } from './scripts.js';

/** KEYS: archive directory. ARGV: floor. Raises the directory's counter to `floor` (never lowers it), so the next claim is above it. */
const RAISE_ARCHIVE_COUNTER = `
if tonumber(redis.call('HGET', KEYS[1], 'next') or '0') < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'next', ARGV[1])
end
return 1
`;

/** Steps read per round trip while scanning for markers: small first, since the scan usually stops early. */
const FIRST_SCAN_CHUNK = 16;
const MAX_SCAN_CHUNK = 512;

/** Every step, newest first, boundaries included (stepsNewestFirst stops at the boundary pointer), read as pulled. */
async function* everyStepNewestFirst(ctx: RedisContext, slug: Slug): AsyncGenerator<RawStep[]> {
  const key = sessionKeys(ctx.prefix, slug).steps;
  let chunk = FIRST_SCAN_CHUNK;
  for (let to = Number(await ctx.conn.read(key, ['LLEN', key])); to >= 1; to -= chunk, chunk = Math.min(chunk * 2, MAX_SCAN_CHUNK)) {
    const from = Math.max(1, to - chunk + 1);
    const texts = (await ctx.conn.read(key, ['LRANGE', key, String(from - 1), String(to - 1)])) as Reply[];
    ctx.stats.stepsRead += texts.length;
    yield texts.map((text, i) => ({ step: from + i, text: String(text) })).reverse();
  }
}

export async function compact(ctx: RedisContext, slug: Slug, base: string, record: ArchiveRecord): Promise<string> {
  const keys = sessionKeys(ctx.prefix, slug);
  if ((await ctx.conn.read(keys.meta, ['EXISTS', keys.meta])) === 0) throw sessionNotFound(slug);
  const directory = archiveDirectoryKey(ctx.prefix, base);
  // Redis cannot tell an archive compact() minted from one imported for the session: either counts
  // (an imported one comes, with the markers before it, from a store that numbered it the same way).
  const floor = await markerFloor(everyStepNewestFirst(ctx, slug), base, async (name) => (await getArchive(ctx, name))?.owner === slug);
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
      [ctx.conn.rememberForMs, encodeMarker(name, record.archived_at).json, name, ...archiveFields(record)],
    );
  } catch (err) {
    // Deleted meanwhile: give the claimed name back rather than leave it pointing nowhere.
    if (err instanceof StepStoreError && err.code === 'SESSION_NOT_FOUND') await ctx.conn.write(directory, ['HDEL', directory, String(n)]);
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
  // An archive lives as long as its owner session (as on the filesystem).
  const [record, ownerExists] = await Promise.all([ctx.conn.read(key, ['HGETALL', key]), ctx.conn.read(ownerMeta, ['EXISTS', ownerMeta])]);
  return ownerExists === 1 ? recordOf(record) : null;
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
