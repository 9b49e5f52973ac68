// repair() on the filesystem: one pass over the root that removes leftovers of
// interrupted writes, half-made sessions and orphan archives, recomputes
// message_count from the steps, sets modes right, and reports what it cannot
// fix (dangling markers, unreadable steps and metas). It runs beside live
// writers: anything young enough to belong to one is left alone.

import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { decodeArchive } from '../../format/archive.js';
import { ioError, isStepStoreError } from '../../errors.js';
import { toSlug, type Slug } from '../../format/slug.js';
import { checkSteps, emptyReport } from '../../format/repair.js';
import type { RepairReport } from '../../types.js';
import { getArchive } from './archives.js';
import { DIR_MODE, FILE_MODE, errnoOf, kindOf, readRegularFileSync } from './durable.js';
import { readLimit, type FsContext } from './context.js';
import { isStaleLock } from './lock.js';
import { readDiskMeta, setMessageCount } from './meta.js';
import {
  META_LOCK_FILE,
  archivesDir,
  entryPath,
  leftoverOf,
  metaPath,
  parseStepName,
  sessionDir,
  stepName,
  stepPath,
  storeDir,
  trashDir,
} from './paths.js';
import { stepsAfter } from './steps.js';

/** Leftovers and half-made sessions younger than this may belong to a writer still at work. */
const GRACE_MS = 60_000;
/** A temp file whose writer's pid still runs is kept until it is this old (the pid may have been reused). */
const LIVE_WRITER_MS = 10 * 60_000;
/** A session written to more recently may have bumps in flight in another process. */
const QUIET_MS = 5_000;

function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoOf(err) === 'EPERM';
  }
}

interface Pass {
  ctx: FsContext;
  report: RepairReport;
  dryRun: boolean;
  now: number;
}

function ageOf(pass: Pass, path: string): number {
  return pass.now - pass.ctx.fs.lstatSync(path).mtimeMs;
}

/** Removes the leftovers among `names` (in `dir`, shown as `shown/name`) that no live writer can still need. */
function removeLeftovers(pass: Pass, dir: string, names: string[], shown: string): void {
  for (const name of names) {
    const leftover = leftoverOf(name);
    const path = entryPath(dir, name);
    let stale: boolean;
    try {
      if (name === META_LOCK_FILE) stale = isStaleLock(ageOf(pass, path));
      else if (leftover === null) continue;
      else if (leftover.pid !== null) stale = !processRuns(leftover.pid) || ageOf(pass, path) > LIVE_WRITER_MS;
      else stale = ageOf(pass, path) > GRACE_MS;
    } catch {
      continue; // gone meanwhile
    }
    if (!stale) continue;
    pass.report.leftoversRemoved.push(`${shown}/${name}`);
    if (!pass.dryRun) {
      try {
        pass.ctx.fs.unlinkSync(path);
      } catch (err) {
        if (errnoOf(err) !== 'ENOENT') throw err;
      }
    }
  }
}

function fixMode(pass: Pass, path: string, shown: string, mode: number): void {
  const actual = pass.ctx.fs.lstatSync(path).mode & 0o777;
  if (actual === mode) return;
  pass.report.modesFixed.push(`${shown} (${actual.toString(8)})`);
  if (!pass.dryRun) pass.ctx.fs.chmodSync(path, mode);
}

/** One session directory; true when it is a session (it has a meta, readable or not). */
async function repairSession(pass: Pass, slug: Slug): Promise<boolean> {
  const { ctx, report } = pass;
  const dir = sessionDir(ctx.root, slug);
  // How long since anyone last changed this directory (before this pass changes it).
  const idle = ageOf(pass, dir);
  const names = await ctx.fs.readdir(dir);
  removeLeftovers(pass, dir, names, slug);
  fixMode(pass, dir, slug, DIR_MODE);

  let meta: ReturnType<typeof readDiskMeta> | undefined;
  try {
    meta = readDiskMeta(ctx, slug, true);
  } catch (err) {
    if (!isStepStoreError(err, 'CORRUPT_META')) throw err;
    report.corruptMetas.push({ handle: slug, reason: err.message });
  }
  if (meta === null) {
    const steps = names.filter((name) => parseStepName(name) !== null).length;
    if (steps > 0) {
      report.incompleteSessions.push({ name: slug, action: 'kept', reason: `${steps} step${steps === 1 ? '' : 's'} but no meta: its agent and sender are unknown` });
    } else if (idle > GRACE_MS) {
      // A create that crashed between claiming the directory and writing meta.
      report.incompleteSessions.push({ name: slug, action: 'removed', reason: 'empty and without meta' });
      if (!pass.dryRun) await ctx.fs.removeTree(dir);
    }
    return false;
  }
  report.sessions += 1;
  if (kindOf(ctx.fs, metaPath(ctx.root, slug)) === 'file') fixMode(pass, metaPath(ctx.root, slug), `${slug}/meta`, FILE_MODE);

  const messages = await checkSteps(
    slug,
    stepsAfter(ctx, slug, 0),
    async (name) => (await getArchive(ctx, name)) !== null,
    report,
    (step) => fixMode(pass, stepPath(dir, step), `${slug}/${stepName(step)}`, FILE_MODE),
  );

  if (meta !== undefined && meta.message_count !== messages) {
    if (idle <= QUIET_MS) {
      report.countersSkipped.push(slug);
    } else if (pass.dryRun || (await setMessageCount(ctx, slug, meta.message_count, messages))) {
      report.countersFixed.push({ handle: slug, from: meta.message_count, to: messages });
    } else {
      report.countersSkipped.push(slug);
    }
  }
  return true;
}

/** `.stepstore/`: trash left by interrupted deletes, archive temps, orphan and corrupt archives. */
async function repairStoreDir(pass: Pass, sessions: Set<string>): Promise<void> {
  const { ctx, report } = pass;
  if (kindOf(ctx.fs, storeDir(ctx.root)) !== 'dir') return;
  fixMode(pass, storeDir(ctx.root), '.stepstore', DIR_MODE);
  if (kindOf(ctx.fs, trashDir(ctx.root)) === 'dir') {
    for (const name of await ctx.fs.readdir(trashDir(ctx.root))) {
      report.leftoversRemoved.push(`.stepstore/trash/${name}`);
      if (!pass.dryRun) await ctx.fs.removeTree(entryPath(trashDir(ctx.root), name));
    }
  }
  const dir = archivesDir(ctx.root);
  if (kindOf(ctx.fs, dir) !== 'dir') return;
  fixMode(pass, dir, '.stepstore/archives', DIR_MODE);
  const names = await ctx.fs.readdir(dir);
  removeLeftovers(pass, dir, names, '.stepstore/archives');
  for (const name of names) {
    if (leftoverOf(name) !== null) continue;
    const path = entryPath(dir, name);
    const text = readRegularFileSync(ctx.fs, path, readLimit(ctx, 'archive'));
    const record = typeof text === 'string' ? decodeArchive(text) : null;
    if (record === null) {
      if (!(typeof text !== 'string' && text.problem === 'missing')) report.corruptArchives.push(name);
      continue;
    }
    fixMode(pass, path, `.stepstore/archives/${name}`, FILE_MODE);
    const owner = toSlug(record.owner);
    const ownerExists = owner !== null && (sessions.has(owner) || kindOf(ctx.fs, metaPath(ctx.root, owner)) === 'file');
    if (!ownerExists) {
      report.orphanArchivesRemoved.push(name);
      if (!pass.dryRun) ctx.fs.unlinkSync(path);
    }
  }
}

export async function repair(ctx: FsContext, dryRun: boolean): Promise<RepairReport> {
  try {
    return await repairPass(ctx, dryRun);
  } catch (err) {
    throw ioError(err, 'repairing the sessions root');
  }
}

async function repairPass(ctx: FsContext, dryRun: boolean): Promise<RepairReport> {
  if (!dryRun) await ctx.bumps.flush(true);
  const pass: Pass = { ctx, report: emptyReport(dryRun), dryRun, now: Date.now() };
  const sessions = new Set<string>();
  for (const entry of await ctx.fs.readdirTyped(ctx.root)) {
    if (!entry.isDirectory()) continue;
    const slug = toSlug(entry.name);
    if (slug === null) continue;
    try {
      if (await repairSession(pass, slug)) sessions.add(slug);
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') throw err; // deleted while we looked: nothing to repair
    }
    await yieldToLoop();
  }
  await repairStoreDir(pass, sessions);
  return pass.report;
}
