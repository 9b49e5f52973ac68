// `stepstore fsck`: its declaration, and store.repair({ dryRun: true }) as a
// readable report, with --repair store.repair() (--fix-modes: fixModes).
// Exit 1 while problems remain. What repair fixes by itself and what needs a
// person is the library's RepairReport. Modes merely looser than 0600 / 0700
// (crabtalk's umask) are notes: shown, never a problem, changed only with --fix-modes.
// Compact markers whose archive crabtalk keeps in its memory file are notes
// too while no memory file is given (--crabtalk-memory); with one, an archive
// in neither place is a problem. A directory holding steps but no meta (what
// crabtalk leaves when it appends to a session deleted under it) is a note:
// nothing reads it, nothing can be repaired, and it is kept as it is.

import type { Command } from 'commander';
import type { LooseMode, RepairReport } from '../../index.js';
import { action, sub } from '../command.js';
import { plural } from '../format.js';
import { crabtalkMemoryOption, type Cli } from '../open.js';
import { print, printJson } from '../output.js';
import { startActivity } from '../progress.js';
import { archiveMayBeCrabtalks } from './show.js';

export interface FsckOptions {
  repair?: boolean;
  fixModes?: boolean;
}

/** Notes listed in text output; --json lists them all. */
const NOTES_SHOWN = 10;

interface Problem {
  kind: string;
  subject: string;
  detail: string;
  /** store.repair() fixes it. */
  fixable: boolean;
}

interface Group {
  kind: string;
  title: string;
  /** What to do about the ones repair leaves. */
  advice?: string;
}

const GROUPS: Group[] = [
  { kind: 'leftover', title: 'leftovers of interrupted writes (temp files, stale locks, trash)' },
  { kind: 'incomplete-session', title: 'empty session directories without a meta' },
  { kind: 'count-drift', title: 'message_count differing from the steps' },
  { kind: 'dangling-marker', title: 'compact markers naming a missing archive', advice: 'a resume puts "[archived context unavailable]" in place of the summary; restore the archive from a backup if you have one' },
  { kind: 'unreadable-step', title: 'unreadable steps (load and resume skip them)', advice: 'see them in place with "stepstore show <handle> --all"; restore the step files from a backup if you have one' },
  { kind: 'corrupt-meta', title: 'unreadable metas (those sessions are not listed or resumed)', advice: 'restore the meta from a backup, or delete the session with "stepstore rm <handle>"' },
  { kind: 'orphan-archive', title: 'archives whose session is gone' },
  { kind: 'corrupt-archive', title: 'unreadable archive entries', advice: 'restore them from a backup, or remove them by hand' },
  { kind: 'unsafe-mode', title: 'files and directories other users can write to (repair takes the write bits away)' },
  { kind: 'index-entry', title: 'index entries out of step with the sessions (Redis)' },
];

function problemsOf(report: RepairReport): Problem[] {
  const p: Problem[] = [];
  const add = (kind: string, subject: string, detail: string, fixable: boolean) => p.push({ kind, subject, detail, fixable });
  for (const name of report.leftoversRemoved) add('leftover', name, 'left by a write that did not finish', true);
  for (const s of report.incompleteSessions) if (s.action === 'removed') add('incomplete-session', s.name, s.reason, true);
  for (const c of report.countersFixed) add('count-drift', c.handle, `meta says ${c.from}, the steps hold ${c.to}`, true);
  for (const m of report.danglingMarkers) add('dangling-marker', `${m.handle} #${m.step}`, `archive ${m.archive} is missing`, false);
  for (const u of report.unreadableSteps) add('unreadable-step', `${u.handle} #${u.step}`, u.reason, false);
  for (const c of report.corruptMetas) add('corrupt-meta', c.handle, c.reason, false);
  for (const name of report.orphanArchivesRemoved) add('orphan-archive', name, 'its owner session no longer exists', true);
  for (const name of report.corruptArchives) add('corrupt-archive', name, 'not an archive record', false);
  for (const m of report.looseModes) if (m.risk !== null) add('unsafe-mode', m.path, `mode ${m.mode}: ${m.risk}`, true);
  for (const e of report.indexEntriesFixed) add('index-entry', e, '', true);
  return p;
}

function printGroups(cli: Cli, problems: Problem[], mark: string, withAdvice: boolean): void {
  const { style } = cli;
  for (const group of GROUPS) {
    const mine = problems.filter((p) => p.kind === group.kind);
    if (mine.length === 0) continue;
    print(`${mark} ${group.title}: ${style.bold(String(mine.length))}`);
    for (const p of mine) print(`    ${p.subject}${p.detail === '' ? '' : style.dim(`  ${p.detail}`)}`);
    if (withAdvice && group.advice !== undefined && mine.some((p) => !p.fixable)) print(style.dim(`    → ${group.advice}`));
  }
}

/** Modes looser than 0600 / 0700 and nothing worse: what crabtalk's umask makes. */
function notesOf(report: RepairReport): LooseMode[] {
  return report.looseModes.filter((m) => m.risk === null);
}

function printNotes(cli: Cli, notes: LooseMode[], changed: boolean): void {
  const { style } = cli;
  print();
  if (changed) {
    print(style.green(`Set ${plural(notes.length, 'mode')} looser than 0600 / 0700 to them (--fix-modes):`));
  } else {
    print(`Note: ${plural(notes.length, 'file or directory', 'files and directories')} with modes looser than stepstore's own 0600 / 0700 (as crabtalk's umask makes them; not a problem):`);
  }
  for (const m of notes.slice(0, NOTES_SHOWN)) print(`    ${m.path}${style.dim(`  ${m.mode}${m.to === null ? '' : ` → ${m.to}`}`)}`);
  if (notes.length > NOTES_SHOWN) print(style.dim(`    … and ${notes.length - NOTES_SHOWN} more (--json lists them all)`));
  if (!changed) print(style.dim(`    → to make them 0600 / 0700 (crabtalk still reads them): "stepstore fsck --repair --fix-modes${cli.again}"`));
}

export async function fsck(cli: Cli, opts: FsckOptions): Promise<number> {
  const repairing = opts.repair === true;
  const fixModes = opts.fixModes === true;
  const activity = startActivity(`${repairing ? 'repairing' : 'checking'} ${cli.where}`);
  let report: RepairReport;
  try {
    report = await cli.store.repair({ dryRun: !repairing, fixModes });
  } finally {
    activity.stop();
  }
  // Without crabtalk's memory file, what it may hold is not known to be missing.
  const elsewhere = report.danglingMarkers.filter((m) => archiveMayBeCrabtalks(cli, m.handle, m.archive));
  const problems = problemsOf({ ...report, danglingMarkers: report.danglingMarkers.filter((m) => !elsewhere.includes(m)) });
  // After a repair, what it could fix is fixed; the rest needs a person.
  const remaining = repairing ? problems.filter((p) => !p.fixable) : problems;
  const fixed = repairing ? problems.filter((p) => p.fixable) : [];
  const ok = remaining.length === 0;
  const notes = notesOf(report);
  const metaless = report.incompleteSessions.filter((s) => s.action === 'kept');
  const modesSet = repairing && fixModes;

  if (cli.json) {
    const noted = notes.map((m) => ({ kind: 'loose-mode', subject: m.path, detail: `mode ${m.mode}`, changed: modesSet && m.action === 'changed' }));
    for (const m of elsewhere) noted.push({ ...markerNote(m), changed: false });
    for (const s of metaless) noted.push({ kind: 'metaless-session', subject: s.name, detail: s.reason, changed: false });
    printJson({ where: cli.where, ok, repaired: repairing, sessions: report.sessions, problems: remaining, fixed, notes: noted, report });
    return ok ? 0 : 1;
  }
  const { style } = cli;
  print(`Checked ${plural(report.sessions, 'session')} in ${cli.where}.`);
  if (report.countersSkipped.length > 0) {
    print(style.dim(`(${plural(report.countersSkipped.length, 'session')} written to in the last seconds: counters left for a later run: ${report.countersSkipped.join(', ')})`));
  }
  if (fixed.length > 0) {
    print();
    print(style.green(`Fixed ${plural(fixed.length, 'problem')}:`));
    printGroups(cli, fixed, style.green('✓'), false);
  }
  if (notes.length > 0) printNotes(cli, notes, modesSet);
  if (elsewhere.length > 0) printElsewhere(cli, elsewhere);
  if (metaless.length > 0) printMetaless(cli, metaless);
  if (ok) {
    print(style.green(fixed.length > 0 ? 'No problems remain.' : 'No problems found.'));
    return 0;
  }
  print();
  const one = remaining.length === 1;
  print(style.red(`${plural(remaining.length, 'problem')} ${repairing ? `${one ? 'remains' : 'remain'} (repair cannot fix ${one ? 'it' : 'them'})` : 'found'}:`));
  printGroups(cli, remaining, style.red('✗'), true);
  if (!repairing) {
    const fixable = remaining.filter((p) => p.fixable).length;
    print();
    print(fixable > 0 ? `${fixable} of them can be fixed with "stepstore fsck --repair${cli.again}".` : 'None of them can be fixed automatically; see the advice above.');
  }
  return 1;
}

type Marker = RepairReport['danglingMarkers'][number];

function markerNote(m: Marker): { kind: string; subject: string; detail: string } {
  return { kind: 'archive-elsewhere', subject: `${m.handle} #${m.step}`, detail: `archive ${m.archive} kept elsewhere (crabtalk memory)` };
}

function printElsewhere(cli: Cli, markers: Marker[]): void {
  const { style } = cli;
  print();
  print(`Note: ${plural(markers.length, 'compact marker')} ${markers.length === 1 ? 'names an archive' : 'name archives'} kept elsewhere (crabtalk memory; not a problem):`);
  for (const m of markers.slice(0, NOTES_SHOWN)) print(`    ${m.handle} #${m.step}${style.dim(`  archive ${m.archive}`)}`);
  if (markers.length > NOTES_SHOWN) print(style.dim(`    … and ${markers.length - NOTES_SHOWN} more (--json lists them all)`));
  print(style.dim(`    → to check that crabtalk holds them: "stepstore fsck --crabtalk-memory ~/.crabtalk/memory.db${cli.again}"`));
}

function printMetaless(cli: Cli, sessions: RepairReport['incompleteSessions']): void {
  const { style } = cli;
  print();
  print(`Note: ${plural(sessions.length, 'directory', 'directories')} ${sessions.length === 1 ? 'holds' : 'hold'} steps but no meta (what crabtalk leaves when it appends to a session deleted under it; not listed or loaded, kept as ${sessions.length === 1 ? 'it is' : 'they are'}):`);
  for (const s of sessions.slice(0, NOTES_SHOWN)) print(`    ${s.name}${style.dim(`  ${s.reason}`)}`);
  if (sessions.length > NOTES_SHOWN) print(style.dim(`    … and ${sessions.length - NOTES_SHOWN} more (--json lists them all)`));
  print(style.dim('    → to bring one back, restore its meta file; otherwise move the directory away'));
}

export function register(program: Command): void {
  sub(program, 'fsck', 'check every session: unreadable steps, leftovers, missing metas, counters, markers, modes', [
    'stepstore fsck',
    'stepstore fsck --repair',
    'stepstore fsck --repair --fix-modes',
    'stepstore fsck --json | jq .problems',
    'stepstore fsck --crabtalk-memory ~/.crabtalk/memory.db   # also check the archives crabtalk keeps',
  ])
    .option('--repair', 'fix what can be fixed safely (leftovers, counters, orphan archives, write bits other users could use), report the rest')
    .option('--fix-modes', 'with --repair, also set modes looser than 0600 / 0700 (0644 / 0755 from crabtalk\'s umask) to them')
    .addOption(crabtalkMemoryOption())
    .addHelpText('after', '\nExit code 1 while problems remain. Modes merely looser than 0600 / 0700 are notes, not problems.\n')
    .action(action(false, (cli, _args, opts) => fsck(cli, opts)));
}
