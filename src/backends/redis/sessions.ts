// Sessions in Redis: creation by one script per pair (seq claim and meta
// together), lookups through the pair's seq index, listing through the global
// index, deletion of a session with its hold on archives in one script (an
// archive goes with its last holder), which records the deleted seq with its
// created_at so that an import brings the handle back only as the same conversation.

import type { ListedSession, StoredSession } from '../../backend.js';
import { listedOf } from '../../format/listing.js';
import { seqOf, slugOf, toSlug, type SessionPrefix, type Slug } from '../../format/slug.js';
import { handleDeleted } from '../../errors.js';
import { sameInstant } from '../../format/time.js';
import type { ConversationMeta } from '../../types.js';
import { forgetNames } from './archives.js';
import type { Reply } from './client.js';
import { indexAfter, indexKeys, metaFields, metaFromHash, requestId, updatedMs, type RedisContext } from './context.js';
import { archiveKey, holdersKey, indexKey, pairKeys, pairKeysOf, sessionKeys } from './keys.js';
import { CREATE, DELETE, IMPORT_SESSION, REREAD, RESEQ } from './scripts.js';

/** Metas fetched at once while listing. */
const LIST_PAGE = 256;

/**
 * The script claims the seq it is told (its keys are declared): the counter's
 * next as read here, or as the script reports when another create came first
 * or the seq was taken. Each round that fails, another create got a seq, or
 * the counter moved past a taken one.
 */
export async function createSession(ctx: RedisContext, prefix: SessionPrefix, meta: ConversationMeta): Promise<Slug> {
  const pair = pairKeys(ctx.prefix, prefix);
  const request = pair.requests + requestId();
  const fields = metaFields(meta);
  let counter = Number((await ctx.conn.read(pair.seq, ['GET', pair.seq])) ?? 0);
  let seq: number;
  for (;;) {
    const keys = sessionKeys(ctx.prefix, slugOf(prefix, counter + 1));
    const reply = await ctx.conn.script(
      CREATE,
      [pair.seq, pair.sessions, request, pair.deleted, keys.meta, keys.state, ...indexKeys(ctx)],
      [String(counter + 1), ctx.conn.rememberForMs, updatedMs(meta), prefix, ...fields],
    );
    if (typeof reply === 'string' && reply.startsWith(RESEQ)) {
      counter = Number(reply.slice(RESEQ.length + 1));
      continue;
    }
    seq = Number(reply);
    break;
  }
  const slug = slugOf(prefix, seq);
  ctx.stats.metaWrites += 1;
  await indexAfter(ctx, 'ZADD', String(updatedMs(meta)), slug);
  return slug;
}

/** Metas of `slugs`, fetched together; sessions whose meta is gone or corrupt are skipped. */
async function metasOf(ctx: RedisContext, slugs: Slug[]): Promise<StoredSession[]> {
  const replies = await Promise.all(
    slugs.map((slug) => {
      const { meta } = sessionKeys(ctx.prefix, slug);
      return ctx.conn.read(meta, ['HGETALL', meta]);
    }),
  );
  const found: StoredSession[] = [];
  replies.forEach((reply, i) => {
    const slug = slugs[i]!;
    try {
      const meta = metaFromHash(reply);
      if (meta !== null) found.push({ slug, meta });
    } catch (err) {
      ctx.logger.warn(`skipping session ${slug}: ${(err as Error).message}`, { session: slug });
    }
  });
  return found;
}

export async function* sessionsBySeq(ctx: RedisContext, prefix: SessionPrefix): AsyncGenerator<StoredSession> {
  const pair = pairKeys(ctx.prefix, prefix);
  const seqs = (await ctx.conn.read(pair.sessions, ['ZREVRANGE', pair.sessions, '0', '-1'])) as Reply[];
  for (let i = 0; i < seqs.length; i += 8) {
    yield* await metasOf(ctx, seqs.slice(i, i + 8).map((seq) => slugOf(prefix, Number(seq))));
  }
}

/** A full `{agent}_{sender}_` prefix (either slug may be empty) is served by that pair's index, anything else by the global one. */
export async function* listSessions(ctx: RedisContext, namePrefix: string): AsyncGenerator<ListedSession[]> {
  let slugs: Slug[];
  if (/^[^_]*_[^_]*_$/.test(namePrefix)) {
    const pair = pairKeys(ctx.prefix, namePrefix as SessionPrefix);
    const seqs = (await ctx.conn.read(pair.sessions, ['ZREVRANGE', pair.sessions, '0', '-1'])) as Reply[];
    slugs = seqs.map((seq) => slugOf(namePrefix as SessionPrefix, Number(seq)));
  } else {
    const members = (await ctx.conn.read(indexKey(ctx.prefix), ['ZREVRANGE', indexKey(ctx.prefix), '0', '-1'])) as Reply[];
    slugs = [];
    for (const member of members) {
      const slug = toSlug(String(member));
      if (slug !== null && slug.startsWith(namePrefix)) slugs.push(slug);
    }
  }
  for (let i = 0; i < slugs.length; i += LIST_PAGE) yield (await metasOf(ctx, slugs.slice(i, i + LIST_PAGE))).map(listedOf);
}

/** The archives removed are those nobody holds any more: their names can be of any base (a fork's are its source's). */
/** The script is told the archives the session holds (its keys are declared), read again while they change. */
export async function deleteSession(ctx: RedisContext, slug: Slug): Promise<boolean> {
  const keys = sessionKeys(ctx.prefix, slug);
  const pair = pairKeysOf(ctx.prefix, slug);
  const request = pair.requests + requestId();
  let removed: Reply[] | null;
  for (;;) {
    const held = ((await ctx.conn.read(keys.archives, ['SMEMBERS', keys.archives])) as Reply[]).map(String);
    const reply = await ctx.conn.script(
      DELETE,
      [
        keys.meta,
        keys.steps,
        keys.state,
        keys.legacyIds,
        keys.archives,
        pair.sessions,
        request,
        pair.deleted,
        ...held.flatMap((name) => {
          const archive = archiveKey(ctx.prefix, slug, name);
          return [archive, holdersKey(archive)];
        }),
        ...indexKeys(ctx),
      ],
      [ctx.conn.rememberForMs, seqOf(slug), slug, ...held],
    );
    if (reply === REREAD) continue;
    removed = reply as Reply[] | null;
    break;
  }
  if (removed === null) return false;
  await forgetNames(ctx, removed.map(String));
  await indexAfter(ctx, 'ZREM', slug);
  return true;
}

/** The created_at a deleted-session record holds (JSON-encoded, as in meta), or null when unknown. */
function recordedCreatedAt(recorded: string): string | null {
  try {
    const value: unknown = JSON.parse(recorded);
    return typeof value === 'string' ? value : null;
  } catch {
    return null;
  }
}

/** Rounds of "deleted as the same instant, spelled otherwise" tolerated while others delete and import the same handle. */
const IMPORT_ROUNDS = 8;

/**
 * Creates exactly `slug`; an existing session is returned untouched. CONFLICT
 * when `slug` was deleted as another conversation (another created_at, or
 * none recorded): a handle never names a second one. The script compares
 * strings; when the recorded created_at is another spelling of the import's
 * instant (`Z` / `+00:00`, more digits), it runs again accepting exactly that
 * recorded string, so a record changed in between is seen, never overruled.
 */
export async function importSession(ctx: RedisContext, slug: Slug, meta: ConversationMeta): Promise<ConversationMeta | null> {
  const keys = sessionKeys(ctx.prefix, slug);
  const pair = pairKeysOf(ctx.prefix, slug);
  const fields = metaFields(meta);
  let accepted = JSON.stringify(meta.created_at);
  for (let round = 0; round < IMPORT_ROUNDS; round++) {
    const reply = await ctx.conn.script(
      IMPORT_SESSION,
      [pair.seq, pair.sessions, keys.meta, keys.state, pair.deleted, ...indexKeys(ctx)],
      [seqOf(slug), updatedMs(meta), slug, accepted, ...fields],
    );
    if (typeof reply === 'string') {
      const recorded = recordedCreatedAt(reply);
      if (recorded === null || !sameInstant(recorded, meta.created_at)) break;
      accepted = reply;
      continue;
    }
    if (reply !== null) return metaFromHash(reply);
    ctx.stats.metaWrites += 1;
    await indexAfter(ctx, 'ZADD', String(updatedMs(meta)), slug);
    return null;
  }
  throw handleDeleted(slug);
}
