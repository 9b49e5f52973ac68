#!/usr/bin/env node
// The `stepstore` command: a thin shell over the public API (openStore, and
// openRedisStore only when --redis is given). This file declares the program
// (global options, help) and adds the commands listed in commands/index.ts,
// each declared and done in its commands/<name>.ts with command.ts's wiring.
// Exit codes: 0 ok, 1 problems found or an operation failed, 2 bad usage or refused.

import fs from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { commandExitCode, examples, usageLine } from './command.js';
import { COMMANDS } from './commands/index.js';
import { EXIT_USAGE } from './errors.js';
import { DEFAULT_PREFIX } from './open.js';

const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

function buildProgram(): Command {
  const program = new Command('stepstore');
  program
    .description('Look inside stored agent sessions (stepstore and crabtalk): read them, check them, move them, and delete them on purpose.')
    .version(pkg.version, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help (every command has its own: stepstore <command> --help)')
    .addOption(new Option('--dir <path>', 'sessions directory (default: $STEPSTORE_DIR, else ./sessions)').conflicts('redis'))
    .addOption(new Option('--redis <url>', 'use the Redis store at this URL instead of a directory (e.g. redis://127.0.0.1:6379)'))
    .addOption(new Option('--prefix <prefix>', 'Redis key prefix').default(DEFAULT_PREFIX))
    .addOption(new Option('--messages <mode>', "which messages the store holds: crabtalk (crabtalk 0.0.22's shapes; the default) or any (the default for reading a session a framework adapter wrote)").choices(['crabtalk', 'any']))
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

  for (const register of COMMANDS) register(program);

  return program;
}

async function main(): Promise<number> {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    // The reader went away (`stepstore show x | head`): stop quietly.
    if (err.code === 'EPIPE') process.exit(commandExitCode());
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
  return commandExitCode();
}

// Exit explicitly: a Redis client that is still reconnecting must not keep a finished command alive.
process.exit(await main());
