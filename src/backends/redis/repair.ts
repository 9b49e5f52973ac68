// repair() on Redis: every write is one atomic script, so there are no torn
// steps or leftovers; what can drift is bookkeeping. This pass (the only user
// of SCAN, never on a hot path) re-indexes sessions missing from the indexes,
// drops index entries of sessions gone, recomputes message_count by
// crabtalk's rule (after updateMeta set it by hand, or importSteps added
// steps without counting them), removes archives no live session holds
// (their owner is gone, and so is every fork holding them), and reports
// dangling markers. The records of deleted sessions (`:deleted`) are kept on
// purpose and the request keys (`:r:<id>`) expire by themselves: it leaves
// both alone (neither matches a meta key, nor a directory key).

import { checkSteps, emptyReport } from '../../format/repair.js';
import { prefixOf, seqOf, slugOf, toSlug, type Slug } from '../../format/slug.js';
import type { RepairReport } from '../../types.js';
import { getArchive } from './archives.js';
import type { Reply } from './client.js';
import { metaFromHash, toRecord, updatedMs, type RedisContext } from './context.js';
import {
  archiveKey,
  baseOfDirectoryKey,
  globPrefix,
  holdersKey,
  indexKey,
  pairKeysOf,
  sessionKeys,
  slugOfMetaKey,
} from './keys.js';
import { SET_COUNT } from './scripts.js';
import { stepsAfter } from './steps.js';

/** Keys matching `pattern` on every master: on a Cluster each holds only its own slots' keys. */
function scanKeys(ctx: RedisContext, pattern: string): Promise<string[]> {
  return ctx.conn.scanMasters(pattern);
}

async function repairSession(ctx: RedisContext, slug: Slug, report: RepairReport): Promise<void> {
  const keys = sessionKeys(ctx.prefix, slug);
  let meta;
  try {
    meta = metaFromHash(await ctx.conn.read(keys.meta, ['HGETALL', keys.meta]));
  } catch (err) {
    report.corruptMetas.push({ handle: slug, reason: (err as Error).message });
    return;
  }
  if (meta === null) return;
  report.sessions += 1;
  const pair = pairKeysOf(ctx.prefix, slug);
  const index = indexKey(ctx.prefix);
  const [inIndex, inPair] = await Promise.all([
    ctx.conn.read(index, ['ZSCORE', index, slug]),
    ctx.conn.read(pair.sessions, ['ZSCORE', pair.sessions, String(seqOf(slug))]),
  ]);
  if (inIndex === null) {
    report.indexEntriesFixed.push(`added ${slug} to the list index`);
    if (!report.dryRun) await ctx.conn.write(index, ['ZADD', index, String(updatedMs(meta)), slug]);
  }
  if (inPair === null) {
    report.indexEntriesFixed.push(`added ${slug} to its pair's index`);
    if (!report.dryRun) await ctx.conn.write(pair.sessions, ['ZADD', pair.sessions, String(seqOf(slug)), String(seqOf(slug))]);
  }
  const length = Number(await ctx.conn.read(keys.steps, ['LLEN', keys.steps]));
  const messages = await checkSteps(slug, stepsAfter(ctx, slug, 0), async (name) => (await getArchive(ctx, name)) !== null, report, ctx.messages);
  if (meta.message_count === messages) return;
  if (report.dryRun) {
    report.countersFixed.push({ handle: slug, from: meta.message_count, to: messages });
  } else if ((await ctx.conn.script(SET_COUNT, [keys.meta, keys.steps], [length, messages])) === 1) {
    report.countersFixed.push({ handle: slug, from: meta.message_count, to: messages });
  } else {
    report.countersSkipped.push(slug); // appended to while we counted
  }
}

/** Index entries whose session is gone. */
async function pruneIndex(ctx: RedisContext, report: RepairReport): Promise<void> {
  const index = indexKey(ctx.prefix);
  for (const member of (await ctx.conn.read(index, ['ZRANGE', index, '0', '-1'])) as Reply[]) {
    const slug = toSlug(String(member));
    const gone = slug === null || (await ctx.conn.read(sessionKeys(ctx.prefix, slug).meta, ['EXISTS', sessionKeys(ctx.prefix, slug).meta])) === 0;
    if (!gone) continue;
    report.indexEntriesFixed.push(`removed ${String(member)} from the list index`);
    if (!report.dryRun) await ctx.conn.write(index, ['ZREM', index, String(member)]);
  }
}

async function exists(ctx: RedisContext, slug: Slug): Promise<boolean> {
  const meta = sessionKeys(ctx.prefix, slug).meta;
  return (await ctx.conn.read(meta, ['EXISTS', meta])) === 1;
}

/** True when the owner of `name` or a session of its pair holding it (a fork) is live. */
async function held(ctx: RedisContext, owner: Slug, name: string): Promise<boolean> {
  if (await exists(ctx, owner)) return true;
  const holders = holdersKey(archiveKey(ctx.prefix, owner, name));
  for (const seq of (await ctx.conn.read(holders, ['SMEMBERS', holders])) as Reply[]) {
    if (await exists(ctx, slugOf(prefixOf(owner), Number(seq)))) return true;
  }
  return false;
}

/** Archives no live session holds, with their holders sets and directory entries. */
async function repairArchives(ctx: RedisContext, report: RepairReport): Promise<void> {
  for (const directory of await scanKeys(ctx, `${globPrefix(ctx.prefix)}{arc:*}`)) {
    const base = baseOfDirectoryKey(ctx.prefix, directory);
    if (base === null) continue;
    const entries = toRecord(await ctx.conn.read(directory, ['HGETALL', directory]));
    for (const [n, owner] of Object.entries(entries)) {
      if (n === 'next') continue;
      const slug = toSlug(owner);
      const name = `${base}-${n}`;
      if (slug !== null && (await held(ctx, slug, name))) continue;
      report.orphanArchivesRemoved.push(name);
      if (report.dryRun) continue;
      if (slug !== null) {
        const key = archiveKey(ctx.prefix, slug, name);
        await ctx.conn.write(key, ['DEL', key, holdersKey(key)]);
      }
      await ctx.conn.write(directory, ['HDEL', directory, n]);
    }
  }
}

export async function repair(ctx: RedisContext, dryRun: boolean): Promise<RepairReport> {
  const report = emptyReport(dryRun);
  for (const key of await scanKeys(ctx, `${globPrefix(ctx.prefix)}{*}:s:*:meta`)) {
    const slug = toSlug(slugOfMetaKey(ctx.prefix, key) ?? '');
    if (slug !== null) await repairSession(ctx, slug, report);
  }
  await pruneIndex(ctx, report);
  await repairArchives(ctx, report);
  return report;
}
