// updateMeta: a caller's replacement meta, checked (and copied) before
// anything is read, then compared with the stored one and written durably
// through the session's queue.

import { sessionNotFound } from '../errors.js';
import { checkStepSize } from '../format/encode.js';
import { checkMeta, checkMetaUpdate, encodeMeta, maxMetaBytes } from '../format/meta.js';
import { parseHandle } from '../format/slug.js';
import { assertOpen, type StoreContext } from '../sessions/context.js';
import type { ConversationMeta } from '../types.js';

export async function updateMeta(ctx: StoreContext, handle: string, meta: ConversationMeta): Promise<void> {
  assertOpen(ctx);
  const slug = parseHandle(handle);
  const next = checkMeta(meta);
  checkStepSize(encodeMeta(next), 'meta', maxMetaBytes(ctx.maxStepBytes));
  await ctx.queue.run(slug, async () => {
    const current = await ctx.backend.readMeta(slug);
    if (current === null) throw sessionNotFound(slug);
    await ctx.backend.writeMeta(slug, checkMetaUpdate(current, next));
  });
}
