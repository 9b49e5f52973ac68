// updateMeta: a caller's replacement meta, checked against the stored one and
// written durably through the session's queue.

import { sessionNotFound } from '../errors.js';
import { assertOpen, type StoreContext } from '../sessions/context.js';
import { parseHandle } from '../format/slug.js';
import type { ConversationMeta } from '../types.js';
import { checkMetaUpdate } from '../format/meta.js';

export async function updateMeta(ctx: StoreContext, handle: string, meta: ConversationMeta): Promise<void> {
  assertOpen(ctx);
  const slug = parseHandle(handle);
  await ctx.queue.run(slug, async () => {
    const current = await ctx.backend.readMeta(slug);
    if (current === null) throw sessionNotFound(slug);
    await ctx.backend.writeMeta(slug, checkMetaUpdate(current, meta));
  });
}
