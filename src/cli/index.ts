#!/usr/bin/env node
// The `stepstore` command: a thin shell over the public API (openStore, and
// openRedisStore only when --redis is given). This file declares the commands,
// their options and help; commands/ holds what each does, format.ts how it reads.
// Exit codes: 0 ok, 1 problems found or an operation failed, 2 bad usage or refused.

import fs from 'node:fs';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { fsck } from './commands/fsck.js';
import { latest } from './commands/latest.js';
import { list } from './commands/list.js';
import { migrate } from './commands/migrate.js';
import { prune, rm } from './commands/remove.js';
import { show } from './commands/show.js';
import { stats } from './commands/stats.js';
import { tail } from './commands/tail.js';
import { exportSession, importFile, readImportFile, type ImportInput } from './commands/transfer.js';
import { EXIT_USAGE, describeError } from './errors.js';
import { DEFAULT_PREFIX, defaultDir, maskUrl, openCli, type Cli, type GlobalOptions } from './open.js';

const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/** Opens the store, runs one command, reports any failure as one line, closes the store; resolves with the exit code. */
async function execute(command: Command, create: boolean, body: (cli: Cli) => Promise<number>, prepare: () => void): Promise<number> {
  const globals = command.optsWithGlobals<GlobalOptions>();
  let cli: Cli | null = null;
  let code: number;
  try {
    prepare();
    cli = await openCli(globals, { create });
    code = await body(cli);
  } catch (err) {
    const subject = cli?.subject ?? (globals.redis !== undefined ? maskUrl(globals.redis) : path.resolve(globals.dir ?? defaultDir()));
    const { line, exitCode } = describeError(err, subject, cli?.again ?? '');
    process.stderr.write(`${line}\n`);
    code = exitCode;
  }
  if (cli !== null) {
    const seen = new Set<string>();
    for (const { message } of cli.warnings) {
      if (seen.has(message)) continue;
      seen.add(message);
      process.stderr.write(`stepstore: warning: ${message}\n`);
    }
    await cli.store.close().catch(() => undefined);
  }
  return code;
}

let exitCode = 0;

/**
 * The action of a command: its arguments, then its options, then the Command
 * itself (commander's order). `prepare` runs before the store is opened (import
 * checks its file there, so bad input never creates a sessions directory).
 */
function action(
  create: boolean,
  body: (cli: Cli, args: unknown[], opts: Record<string, unknown>) => Promise<number>,
  prepare: (args: unknown[], opts: Record<string, unknown>) => void = () => undefined,
) {
  return async (...received: unknown[]) => {
    const command = received.at(-1) as Command;
    const opts = received.at(-2) as Record<string, unknown>;
    const args = received.slice(0, -2);
    exitCode = await execute(command, create, (cli) => body(cli, args, opts), () => prepare(args, opts));
  };
}

const examples = (lines: string[]) => `\nExamples:\n${lines.map((l) => `  ${l}`).join('\n')}\n`;

function usageLine(name: string) {
  return (text: string, write: (s: string) => void) => {
    const message = text.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ').trim();
    write(`stepstore: ${message}; run "stepstore ${name === 'stepstore' ? '' : `${name} `}--help" for usage\n`);
  };
}

function buildProgram(): Command {
  const program = new Command('stepstore');
  program
    .description('Look inside stored agent sessions (stepstore and crabtalk): read them, check them, move them, and delete them on purpose.')
    .version(pkg.version, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help (every command has its own: stepstore <command> --help)')
    .addOption(new Option('--dir <path>', 'sessions directory (default: $STEPSTORE_DIR, else ./sessions)').conflicts('redis'))
    .addOption(new Option('--redis <url>', 'use the Redis store at this URL instead of a directory (e.g. redis://127.0.0.1:6379)'))
    .addOption(new Option('--prefix <prefix>', 'Redis key prefix').default(DEFAULT_PREFIX))
    .option('--json', 'machine-readable output: one JSON document (JSON Lines for tail and export)')
    .option('--no-color', 'no colours (NO_COLOR=1 does the same; colours are only used on a terminal)')
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({ outputError: usageLine('stepstore') })
    .addHelpText(
      'after',
      examples([
        'npm run demo && npx stepstore list --dir .stepstore-demo',
        'stepstore list --agent crab --limit 20',
        'stepstore show crab_tg-12345_1 --all',
        'stepstore latest crab tg:12345',
        'stepstore tail -f crab_tg-12345_1',
        'stepstore fsck --repair',
        'stepstore prune --older-than 90d --dry-run',
        'stepstore --redis redis://127.0.0.1:6379 stats --json',
      ]) + '\nExit codes: 0 ok, 1 problems found or a failed operation, 2 bad usage or refused.\n',
    );

  const sub = (name: string, description: string, lines: string[]) =>
    program
      .command(name)
      .description(description)
      .configureOutput({ outputError: usageLine(name.split(' ')[0]!) })
      .addHelpText('after', examples(lines));

  sub('list', 'list sessions, most recently updated first', ['stepstore list', 'stepstore list --agent crab --sender tg:12345', 'stepstore list --limit 5 --json'])
    .option('--agent <agent>', 'only sessions of this agent (exact name)')
    .option('--sender <sender>', 'only sessions started by this sender (exact identity)')
    .option('--limit <n>', 'at most this many sessions')
    .action(action(false, (cli, _args, opts) => list(cli, opts)));

  sub('show', "print a session's history as a resume replays it", [
    'stepstore show crab_tg-12345_1',
    'stepstore show crab_tg-12345_1 --archive     # the compaction summary first',
    'stepstore show crab_tg-12345_1 --all         # every step, events and compactions marked',
    'stepstore show crab_tg-12345_1 --json',
  ])
    .argument('<handle>', 'session handle (see stepstore list)')
    .option('--all', 'every raw step with its number, events and compaction boundaries included')
    .option('--archive', 'print the archived summary (with --all: under each compaction mark)')
    .action(action(false, (cli, [handle], opts) => show(cli, handle as string, opts)));

  sub('latest', 'the session a resume would pick for an agent and sender, and why', ['stepstore latest crab tg:12345', 'stepstore latest crab tg:12345 --json'])
    .argument('<agent>', 'agent name, exactly as the runtime passes it')
    .argument('<sender>', 'sender identity, exactly as the runtime passes it')
    .action(action(false, (cli, [agent, sender]) => latest(cli, agent as string, sender as string)));

  sub('tail', 'print the last steps of a session; -f keeps printing new ones until Ctrl-C', [
    'stepstore tail crab_tg-12345_1',
    'stepstore tail -n 50 crab_tg-12345_1',
    'stepstore tail -f crab_tg-12345_1',
    'stepstore tail -f crab_tg-12345_1 --json | jq .line.message.content',
  ])
    .argument('<handle>', 'session handle')
    .option('-n, --lines <n>', 'how many of the last steps to print', '10')
    .option('-f, --follow', 'keep printing steps as they are appended, until Ctrl-C')
    .option('--interval <ms>', 'with -f: how often to poll, in milliseconds (default 1000 on disk, where changes are also watched; 500 on Redis)')
    .action(action(false, (cli, [handle], opts) => tail(cli, handle as string, opts)));

  sub('rm', 'delete sessions (their steps and archives); asks first unless --yes', ['stepstore rm crab_tg-12345_1', 'stepstore rm crab_tg-12345_1 crab_tg-12345_2 --yes'])
    .argument('<handle...>', 'session handles')
    .option('-y, --yes', 'delete without asking (needed when stdin is not a terminal)')
    .action(action(false, (cli, [handles], opts) => rm(cli, handles as string[], opts)));

  sub('prune', 'delete sessions not updated for a while; shows them and asks first', [
    'stepstore prune --older-than 30d --dry-run',
    'stepstore prune --older-than 12h --agent crab',
    'stepstore prune --older-than 1d12h --yes',
  ])
    .requiredOption('--older-than <age>', 'age since the last update: a number and a unit, s m h d w (30d, 12h, 1d12h)')
    .option('--agent <agent>', 'only sessions of this agent')
    .option('--dry-run', 'only print what would be deleted')
    .option('-y, --yes', 'delete without asking (needed when stdin is not a terminal)')
    .action(action(false, (cli, _args, opts) => prune(cli, opts)));

  sub('fsck', 'check every session: unreadable steps, leftovers, missing metas, counters, markers, modes', [
    'stepstore fsck',
    'stepstore fsck --repair',
    'stepstore fsck --json | jq .problems',
  ])
    .option('--repair', 'fix what can be fixed safely (leftovers, counters, orphan archives, modes), report the rest')
    .addHelpText('after', '\nExit code 1 while problems remain.\n')
    .action(action(false, (cli, _args, opts) => fsck(cli, opts)));

  sub('export', 'write a session as one JSON Lines file (meta, archives, every step)', [
    'stepstore export crab_tg-12345_1 --out crab.jsonl',
    'stepstore export crab_tg-12345_1 | stepstore import - --dir /backup/sessions',
  ])
    .argument('<handle>', 'session handle')
    .option('-o, --out <file>', 'write to this file instead of stdout')
    .option('--force', 'replace --out when it exists')
    .action(action(false, (cli, [handle], opts) => exportSession(cli, handle as string, opts)));

  let parsed: ImportInput | null = null;
  sub('import', 'import a session from "stepstore export" or from a crabtalk .jsonl session file', [
    'stepstore import crab.jsonl',
    'stepstore import crab.jsonl --agent crab --sender tg:99    # as a new session of another pair',
    'stepstore import old-crabtalk-session.jsonl',
  ])
    .argument('<file>', 'the file, or - for stdin')
    .option('--agent <agent>', 'import as a new session of this agent')
    .option('--sender <sender>', 'import as a new session of this sender')
    .action(
      action(
        true,
        (cli, _args, opts) => importFile(cli, parsed!, opts),
        ([file]) => void (parsed = readImportFile(file as string)),
      ),
    );

  sub('migrate', 'copy every session to another directory or Redis; run again to copy only what is new', [
    'stepstore migrate --to /srv/sessions-copy',
    'stepstore migrate --to redis://127.0.0.1:6379 --to-prefix crab:',
    'stepstore --redis redis://127.0.0.1:6379 migrate --to ./sessions',
  ])
    .requiredOption('--to <target>', 'target directory (created when missing) or redis:// URL')
    .option('--to-prefix <prefix>', 'Redis key prefix of the target', DEFAULT_PREFIX)
    .action(action(false, (cli, _args, opts) => migrate(cli, opts)));

  sub('stats', 'sessions, steps, messages and size, in all and per agent', ['stepstore stats', 'stepstore stats --json'])
    .action(action(false, (cli) => stats(cli)));

  return program;
}

async function main(): Promise<number> {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    // The reader went away (`stepstore show x | head`): stop quietly.
    if (err.code === 'EPIPE') process.exit(exitCode);
    throw err;
  });
  const program = buildProgram();
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? 0 : EXIT_USAGE;
    }
    throw err;
  }
  return exitCode;
}

// Exit explicitly: a Redis client that is still reconnecting must not keep a finished command alive.
process.exit(await main());
