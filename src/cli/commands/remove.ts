// `stepstore rm` and `stepstore prune`, both declared here: deleting sessions,
// only on purpose. Both show what they would delete and ask (y/N on a terminal)
// unless --yes; with no terminal and no --yes they refuse (exit 2) and delete
// nothing. prune is store.prune: a dry run to show, then a delete of only what was shown.

import type { Command } from 'commander';
import { isStepStoreError, type ConversationMeta, type SessionSummary } from '../../index.js';
import { action, sub } from '../command.js';
import { CliError, usage } from '../errors.js';
import { exactTime, parseDuration, plural } from '../format.js';
import type { Cli } from '../open.js';
import { note, print, printJson } from '../output.js';
import { assertCanAsk, confirm } from '../prompt.js';
import { sessionJson, sessionsTable } from './list.js';

export interface RmOptions {
  yes?: boolean;
}

/** The meta of `handle`, or undefined when its meta is unreadable (the session can still be deleted). */
async function metaOf(cli: Cli, handle: string): Promise<ConversationMeta | null | undefined> {
  try {
    return (await cli.store.loadSession(handle))?.meta ?? null;
  } catch (err) {
    if (isStepStoreError(err, 'CORRUPT_META')) return undefined;
    throw err;
  }
}

async function deleteAll(cli: Cli, handles: string[]): Promise<{ deleted: string[]; gone: string[] }> {
  const deleted: string[] = [];
  const gone: string[] = [];
  for (const handle of handles) {
    cli.subject = handle;
    if (await cli.store.deleteSession(handle)) deleted.push(handle);
    else gone.push(handle);
    if (!cli.json) print(deleted.at(-1) === handle ? `deleted ${handle}` : `${handle} was already gone`);
  }
  return { deleted, gone };
}

export async function rm(cli: Cli, handles: string[], opts: RmOptions): Promise<number> {
  const unique = [...new Set(handles)];
  const found: SessionSummary[] = [];
  const unreadable: string[] = [];
  // Every handle is checked before anything is deleted: one bad handle deletes nothing.
  for (const handle of unique) {
    cli.subject = handle;
    const meta = await metaOf(cli, handle);
    if (meta === null) throw new CliError(handle, `no such session in ${cli.where}; nothing was deleted`, `run "stepstore list${cli.again}" to see the session handles`);
    if (meta === undefined) unreadable.push(handle);
    else found.push({ handle, meta });
  }
  if (opts.yes !== true) {
    assertCanAsk(unique.length === 1 ? unique[0]! : plural(unique.length, 'session'));
    if (!cli.json) {
      if (found.length > 0) note(sessionsTable(cli, found));
      for (const handle of unreadable) note(`${handle} (meta unreadable)`);
    }
    const what = unique.length === 1 ? unique[0]! : plural(unique.length, 'session');
    if (!(await confirm(`Delete ${what} and ${unique.length === 1 ? 'its' : 'their'} steps and archives?`, what))) {
      note('Nothing deleted.');
      if (cli.json) printJson({ deleted: [], gone: [], cancelled: true });
      return 1;
    }
  }
  const result = await deleteAll(cli, unique);
  if (cli.json) printJson({ ...result, cancelled: false });
  return 0;
}

export interface PruneOptions {
  olderThan?: string;
  agent?: string;
  dryRun?: boolean;
  yes?: boolean;
}

export async function prune(cli: Cli, opts: PruneOptions): Promise<number> {
  const given = opts.olderThan;
  if (given === undefined) throw usage('prune', 'missing --older-than', 'say how old a session must be to go, e.g. --older-than 30d (units s, m, h, d, w)');
  const age = parseDuration(given);
  if (age === null) throw usage(`--older-than ${given}`, 'not a duration', 'use a number and a unit (s, m, h, d, w), e.g. 30d, 12h or 1d12h');
  // One cut for the preview and the delete: the delete considers only the sessions shown.
  const cutoff = new Date(Date.now() - age);
  const preview = await cli.store.prune({ olderThan: cutoff, agent: opts.agent, dryRun: true });
  const old = preview.deleted;
  const scope = opts.agent === undefined ? '' : ` of agent "${opts.agent}"`;
  const base = { older_than: given, cutoff: preview.cutoff, agent: opts.agent ?? null, dry_run: opts.dryRun === true };

  if (old.length === 0) {
    if (cli.json) printJson({ ...base, sessions: [], deleted: [], skipped: [] });
    else print(`No sessions${scope} last updated before ${exactTime(preview.cutoff)} (older than ${given}).`);
    return 0;
  }
  if (opts.dryRun === true) {
    if (cli.json) printJson({ ...base, sessions: old.map(sessionJson), deleted: [], skipped: [] });
    else {
      print(`Would delete ${plural(old.length, 'session')}${scope} last updated before ${exactTime(preview.cutoff)} (older than ${given}):`);
      print(sessionsTable(cli, old));
      print(cli.style.dim('Dry run: nothing was deleted. Run again without --dry-run to delete them.'));
    }
    return 0;
  }
  if (opts.yes !== true) {
    assertCanAsk(plural(old.length, 'session'));
    if (!cli.json) {
      note(`${plural(old.length, 'session')}${scope} last updated before ${exactTime(preview.cutoff)}:`);
      note(sessionsTable(cli, old));
    }
    const what = plural(old.length, 'session');
    if (!(await confirm(`Delete these ${what}?`, what))) {
      note('Nothing deleted.');
      if (cli.json) printJson({ ...base, sessions: old.map(sessionJson), deleted: [], skipped: [], cancelled: true });
      return 1;
    }
  }
  // The library re-checks each one right before deleting it: written to since it was shown, it stays.
  const result = await cli.store.prune({ olderThan: cutoff, agent: opts.agent, handles: old.map((s) => s.handle) });
  const deleted = new Set(result.deleted.map((s) => s.handle));
  const spared = new Set(result.spared);
  const skipped: string[] = [];
  const gone: string[] = [];
  for (const { handle } of old) {
    if (deleted.has(handle)) {
      if (!cli.json) print(`deleted ${handle}`);
    } else if (spared.has(handle)) {
      skipped.push(handle);
      if (!cli.json) print(`kept ${handle}: it was updated meanwhile`);
    } else {
      gone.push(handle);
      if (!cli.json) print(`${handle} was already gone`);
    }
  }
  if (cli.json) printJson({ ...base, sessions: old.map(sessionJson), deleted: [...deleted], gone, skipped });
  else print(`Deleted ${plural(deleted.size, 'session')}.`);
  return 0;
}

export function register(program: Command): void {
  sub(program, 'rm', 'delete sessions (their steps and archives); asks first unless --yes', ['stepstore rm crab_tg-12345_1', 'stepstore rm crab_tg-12345_1 crab_tg-12345_2 --yes'])
    .argument('<handle...>', 'session handles')
    .option('-y, --yes', 'delete without asking (needed when stdin is not a terminal)')
    .action(action(false, (cli, [handles], opts) => rm(cli, handles as string[], opts)));

  sub(program, 'prune', 'delete sessions not updated for a while; shows them and asks first', [
    'stepstore prune --older-than 30d --dry-run',
    'stepstore prune --older-than 12h --agent crab',
    'stepstore prune --older-than 1d12h --yes',
  ])
    .requiredOption('--older-than <age>', 'age since the last update: a number and a unit, s m h d w (30d, 12h, 1d12h)')
    .option('--agent <agent>', 'only sessions of this agent')
    .option('--dry-run', 'only print what would be deleted')
    .option('-y, --yes', 'delete without asking (needed when stdin is not a terminal)')
    .action(action(false, (cli, _args, opts) => prune(cli, opts)));
}
