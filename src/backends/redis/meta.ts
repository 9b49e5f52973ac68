// Session metas in Redis: one hash per session, read and replaced whole.
// Bumps from appendMessages happen inside the append script, so there is
// nothing pending here; the list index is moved with every meta write.

import type { Slug } from '../../format/slug.js';
import type { ConversationMeta } from '../../types.js';
import { indexAfter, indexKeys, metaFields, metaFromHash, updatedMs, type RedisContext } from './context.js';
import { sessionKeys } from './keys.js';
import { WRITE_META } from './scripts.js';

/** A session's created_at as stored (a seq is never reused, so it tells an imported session of the same handle apart). */
export async function identity(ctx: RedisContext, slug: Slug): Promise<string | null> {
  const keys = sessionKeys(ctx.prefix, slug);
  const createdAt = await ctx.conn.read(keys.meta, ['HGET', keys.meta, 'created_at']);
  return createdAt === null ? null : String(createdAt);
}

export async function readMeta(ctx: RedisContext, slug: Slug): Promise<ConversationMeta | null> {
  const keys = sessionKeys(ctx.prefix, slug);
  return metaFromHash(await ctx.conn.read(keys.meta, ['HGETALL', keys.meta]));
}

export async function writeMeta(ctx: RedisContext, slug: Slug, meta: ConversationMeta): Promise<void> {
  const keys = sessionKeys(ctx.prefix, slug);
  const ms = updatedMs(meta);
  await ctx.conn.script(WRITE_META, [keys.meta, keys.state, ...indexKeys(ctx)], [ms, slug, ...metaFields(meta)]);
  ctx.stats.metaWrites += 1;
  await indexAfter(ctx, 'ZADD', 'XX', String(ms), slug);
}
