// `stepstore fork` and `stepstore rewind`: store.fork and store.rewind from
// the shell. rewind retracts steps, so it shows what would go and asks (y/N
// on a terminal) unless --yes; without a terminal and without --yes it
// refuses (exit 2) and retracts nothing.

import type { Command } from 'commander';
import { action, sub } from '../command.js';
import { usage } from '../errors.js';
import { plural } from '../format.js';
import type { Cli } from '../open.js';
import { note, print, printJson } from '../output.js';
import { confirm } from '../prompt.js';

/** A step number given on the command line; a usage error (exit 2) otherwise. */
function stepNumber(flag: string, text: string): number {
  const n = /^(0|[1-9][0-9]*)$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw usage(`${flag} ${text}`, 'not a step number', 'give a whole number, 0 or more (see "stepstore show <handle> --steps")');
  return n;
}

export async function fork(cli: Cli, handle: string, opts: { at?: string }): Promise<number> {
  cli.subject = handle;
  const atStep = opts.at === undefined ? undefined : stepNumber('--at', opts.at);
  const forked = await cli.store.fork(handle, atStep === undefined ? {} : { atStep });
  const meta = (await cli.store.loadSession(forked))?.meta;
  const held = typeof meta?.forked_at_step === 'number' ? meta.forked_at_step : null;
  if (cli.json) printJson({ handle: forked, forked_from: handle, forked_at_step: held });
  else print(`forked ${handle}${held === null ? '' : ` up to step ${held}`} as ${cli.style.bold(forked)}`);
  return 0;
}

export async function rewind(cli: Cli, handle: string, opts: { to?: string; yes?: boolean }): Promise<number> {
  cli.subject = handle;
  if (opts.to === undefined) throw usage('rewind', 'missing --to', 'say which step to keep up to, e.g. --to 12 (0 empties the session)');
  const toStep = stepNumber('--to', opts.to);
  const retracting = (await cli.store.readSteps(handle, { after: toStep })).length;
  if (retracting === 0) {
    if (cli.json) printJson({ handle, to: toStep, retracted: 0, cancelled: false });
    else print(`${handle} has no step after ${toStep}: nothing to rewind.`);
    return 0;
  }
  if (opts.yes !== true) {
    const what = `${plural(retracting, 'step')} of ${handle}`;
    if (!(await confirm(`Retract ${what} (every step after ${toStep})?`, what))) {
      note('Nothing retracted.');
      if (cli.json) printJson({ handle, to: toStep, retracted: 0, cancelled: true });
      return 1;
    }
  }
  const retracted = await cli.store.rewind(handle, toStep);
  if (cli.json) printJson({ handle, to: toStep, retracted, cancelled: false });
  else print(`rewound ${handle} to step ${toStep}: ${plural(retracted, 'step')} retracted`);
  return 0;
}

export function register(program: Command): void {
  sub(program, 'fork', 'copy a session into a new one of the same agent and sender (steps shared, not copied)', [
    'stepstore fork crab_tg-12345_1',
    'stepstore fork crab_tg-12345_1 --at 40',
  ])
    .argument('<handle>', 'session handle')
    .option('--at <step>', 'hold steps 1..step only (default: all)')
    .action(action(false, (cli, [handle], opts) => fork(cli, handle as string, opts)));

  sub(program, 'rewind', 'retract every step after a step number; asks first unless --yes', [
    'stepstore rewind crab_tg-12345_1 --to 40',
    'stepstore rewind crab_tg-12345_1 --to 40 --yes',
  ])
    .argument('<handle>', 'session handle')
    .requiredOption('--to <step>', 'the last step to keep (0: retract all)')
    .option('-y, --yes', 'retract without asking (needed when stdin is not a terminal)')
    .action(action(false, (cli, [handle], opts) => rewind(cli, handle as string, opts)));
}
