// repair() on the filesystem: one pass over the root that removes leftovers of
// interrupted writes, half-made sessions and orphan archives, recomputes
// message_count from the steps (crabtalk's rule), takes away write bits that
// let other users in, notes modes merely looser than 0600 / 0700 (crabtalk's
// umask; set right only with fixModes), and reports what it cannot fix
// (dangling markers, unreadable steps and metas). It runs beside live
// writers: anything young enough to belong to one is left alone.

import path from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { decodeArchive } from '../../format/archive.js';
import { ioError, isStepStoreError } from '../../errors.js';
import { toSlug, type Slug } from '../../format/slug.js';
import { checkSteps, emptyReport } from '../../format/repair.js';
import type { RepairReport } from '../../types.js';
import { getArchive, hasLiveReferrer, ownerHolds } from './archives.js';
import { DIR_MODE, FILE_MODE, errnoOf, kindOf, readRegularFileSync, unlinkQuietly } from './durable.js';
import { readLimit, type FsContext } from './context.js';
import { completeRewind } from './history.js';
import { isStaleLock } from './lock.js';
import { readDiskMeta, setMessageCount } from './meta.js';
import { readAccounts, unsafeWriteBits, type Accounts } from './root.js';
import {
  FORK_FILE,
  META_LOCK_FILE,
  REWIND_FILE,
  archivePath,
  archivesDir,
  countedDir,
  entryPath,
  leftoverOf,
  metaPath,
  parseStepName,
  ownerReleasedPath,
  sessionDir,
  shareDir,
  sharesDir,
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
  /** Set every looser mode to 0600 / 0700, not only take unsafe write bits away. */
  fixModes: boolean;
  now: number;
  /** The system's users and groups, read when a group-writable entry first needs them. */
  accounts: Accounts | null;
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

const octal = (mode: number) => mode.toString(8);

/** How many step names a listing holds and the highest: steps are only ever added, so any append changes it. */
function stepsSignature(names: string[]): string {
  let count = 0;
  let highest = 0;
  for (const name of names) {
    const parsed = parseStepName(name);
    if (parsed === null) continue;
    count += 1;
    highest = Math.max(highest, parsed.step);
  }
  return `${count}:${highest}`;
}

/**
 * Notes a mode looser than `want` (0600 / 0700): write bits that let other
 * users in are taken away; the rest is set to `want` only with fixModes.
 */
function checkMode(pass: Pass, path: string, shown: string, want: number): void {
  let stat: ReturnType<FsContext['fs']['lstatSync']>;
  try {
    stat = pass.ctx.fs.lstatSync(path);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return; // gone meanwhile (a step taken back by a failed append)
    throw err;
  }
  // chmod follows symlinks: only what is really a file or directory here is changed.
  if (!stat.isFile() && !stat.isDirectory()) return;
  const mode = stat.mode & 0o777;
  if ((mode & ~want) === 0) return;
  const unsafe = (mode & 0o022) === 0 ? null : unsafeWriteBits((pass.accounts ??= readAccounts()), stat);
  const target = pass.fixModes ? want : unsafe === null ? null : mode & ~unsafe.bits;
  pass.report.looseModes.push({
    path: shown,
    mode: octal(mode),
    risk: unsafe?.why ?? null,
    action: target === null ? 'kept' : 'changed',
    to: target === null ? null : octal(target),
  });
  if (target !== null && !pass.dryRun) pass.ctx.fs.chmodSync(path, target);
}

/** One session directory; true when it is a session (it has a meta, readable or not). */
async function repairSession(pass: Pass, slug: Slug): Promise<boolean> {
  const { ctx, report } = pass;
  const dir = sessionDir(ctx.root, slug);
  // How long since anyone last changed this directory (before this pass changes it).
  const idle = ageOf(pass, dir);
  // A rewind left half done by a process that died is finished first (or waited for, when under way).
  if (!pass.dryRun && (await ctx.fs.readdir(dir)).includes(REWIND_FILE)) await completeRewind(ctx, slug);
  const names = await ctx.fs.readdir(dir);
  removeLeftovers(pass, dir, names, slug);
  checkMode(pass, dir, slug, DIR_MODE);

  let meta: ReturnType<typeof readDiskMeta> | undefined;
  try {
    meta = readDiskMeta(ctx, slug, true);
  } catch (err) {
    if (!isStepStoreError(err, 'CORRUPT_META')) throw err;
    report.corruptMetas.push({ handle: slug, reason: err.message });
  }
  if (meta === null) {
    const steps = names.filter((name) => parseStepName(name) !== null).length;
    if (names.includes(FORK_FILE) && idle > GRACE_MS) {
      // A fork that crashed before its meta: its steps are links to its source's.
      report.incompleteSessions.push({ name: slug, action: 'removed', reason: 'a fork never finished' });
      if (!pass.dryRun) await ctx.fs.removeTree(dir);
    } else if (steps > 0) {
      report.incompleteSessions.push({ name: slug, action: 'kept', reason: `${steps} step${steps === 1 ? '' : 's'} but no meta: its agent and sender are unknown` });
    } else if (idle > GRACE_MS) {
      // A create that crashed between claiming the directory and writing meta.
      report.incompleteSessions.push({ name: slug, action: 'removed', reason: 'empty and without meta' });
      if (!pass.dryRun) await ctx.fs.removeTree(dir);
    }
    return false;
  }
  report.sessions += 1;
  if (kindOf(ctx.fs, metaPath(ctx.root, slug)) === 'file') checkMode(pass, metaPath(ctx.root, slug), `${slug}/meta`, FILE_MODE);

  // Every step file, readable or not (a step that is a symlink is left alone by checkMode).
  for (const name of names) if (parseStepName(name) !== null) checkMode(pass, entryPath(dir, name), `${slug}/${name}`, FILE_MODE);
  const messages = await checkSteps(slug, stepsAfter(ctx, slug, 0), async (name) => (await getArchive(ctx, name)) !== null, report, ctx.messages);

  if (meta !== undefined && meta.message_count !== messages) {
    // A step added since the listing above (a compaction leaves a count it cannot tell from an older one) voids the count.
    const unchanged = () => stepsSignature(ctx.fs.readdirSync(dir)) === stepsSignature(names);
    if (idle <= QUIET_MS) {
      report.countersSkipped.push(slug);
    } else if (pass.dryRun || (await setMessageCount(ctx, slug, meta.message_count, messages, unchanged))) {
      report.countersFixed.push({ handle: slug, from: meta.message_count, to: messages });
    } else {
      report.countersSkipped.push(slug);
    }
  }
  return true;
}

/** `.stepstore/shares/`: references of sessions that are gone (a delete that stopped halfway), and of archives that are gone. */
async function repairShares(pass: Pass, sessions: Set<string>): Promise<void> {
  const { ctx, report } = pass;
  if (kindOf(ctx.fs, sharesDir(ctx.root)) !== 'dir') return;
  for (const name of await ctx.fs.readdir(sharesDir(ctx.root))) {
    const dir = shareDir(ctx.root, name);
    if (kindOf(ctx.fs, dir) !== 'dir') continue;
    const archiveGone = kindOf(ctx.fs, archivePath(ctx.root, name)) === 'missing';
    for (const referrer of await ctx.fs.readdir(dir)) {
      if (referrer === path.basename(ownerReleasedPath(ctx.root, name)) && !archiveGone) continue;
      const slug = toSlug(referrer);
      // A directory without meta yet may be a fork being made: its reference stays until the directory goes.
      if (!archiveGone && slug !== null && (sessions.has(slug) || kindOf(ctx.fs, sessionDir(ctx.root, slug)) !== 'missing')) continue;
      report.leftoversRemoved.push(`.stepstore/shares/${name}/${referrer}`);
      if (!pass.dryRun) unlinkQuietly(ctx.fs, entryPath(dir, referrer));
    }
    if (!pass.dryRun && (await ctx.fs.readdir(dir)).length === 0) await ctx.fs.removeTree(dir);
  }
}

/** `.stepstore/`: trash left by interrupted deletes, archive temps, orphan and corrupt archives. */
async function repairStoreDir(pass: Pass, sessions: Set<string>): Promise<void> {
  const { ctx, report } = pass;
  if (kindOf(ctx.fs, storeDir(ctx.root)) !== 'dir') return;
  checkMode(pass, storeDir(ctx.root), '.stepstore', DIR_MODE);
  if (kindOf(ctx.fs, trashDir(ctx.root)) === 'dir') {
    for (const name of await ctx.fs.readdir(trashDir(ctx.root))) {
      report.leftoversRemoved.push(`.stepstore/trash/${name}`);
      if (!pass.dryRun) await ctx.fs.removeTree(entryPath(trashDir(ctx.root), name));
    }
  }
  await repairShares(pass, sessions);
  if (kindOf(ctx.fs, countedDir(ctx.root)) === 'dir') {
    for (const name of await ctx.fs.readdir(countedDir(ctx.root))) {
      const slug = toSlug(name);
      if (slug !== null && kindOf(ctx.fs, sessionDir(ctx.root, slug)) !== 'missing') continue;
      report.leftoversRemoved.push(`.stepstore/counted/${name}`);
      if (!pass.dryRun) unlinkQuietly(ctx.fs, entryPath(countedDir(ctx.root), name));
    }
  }
  const dir = archivesDir(ctx.root);
  if (kindOf(ctx.fs, dir) !== 'dir') return;
  checkMode(pass, dir, '.stepstore/archives', DIR_MODE);
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
    checkMode(pass, path, `.stepstore/archives/${name}`, FILE_MODE);
    const owner = toSlug(record.owner);
    const ownerExists = owner !== null && (sessions.has(owner) || kindOf(ctx.fs, metaPath(ctx.root, owner)) === 'file');
    if (!(ownerExists && ownerHolds(ctx, record, name)) && !hasLiveReferrer(ctx, name)) {
      report.orphanArchivesRemoved.push(name);
      if (!pass.dryRun) ctx.fs.unlinkSync(path);
    }
  }
}

export async function repair(ctx: FsContext, opts: { dryRun: boolean; fixModes: boolean }): Promise<RepairReport> {
  try {
    return await repairPass(ctx, opts.dryRun, opts.fixModes);
  } catch (err) {
    throw ioError(err, 'repairing the sessions root');
  }
}

async function repairPass(ctx: FsContext, dryRun: boolean, fixModes: boolean): Promise<RepairReport> {
  if (!dryRun) await ctx.bumps.flush(true);
  const pass: Pass = { ctx, report: emptyReport(dryRun), dryRun, fixModes, now: Date.now(), accounts: null };
  checkMode(pass, ctx.root, '.', DIR_MODE);
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
