// The wiring every command shares: sub() declares a command with its help and
// examples, action() runs its body against an opened store and records the
// exit code, usageLine() reports commander's usage errors as one line.
// Each commands/<name>.ts exports a `register` built from these.

import path from 'node:path';
import { Command } from 'commander';
import { describeError } from './errors.js';
import { defaultDir, maskUrl, openCli, type Cli, type GlobalOptions } from './open.js';

/** What a command module exports: adds its command (or commands) to the program, in help order. */
export type Register = (program: Command) => void;

let exitCode = 0;

/** The exit code of the command that ran (0 until one has run). */
export function commandExitCode(): number {
  return exitCode;
}

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

/**
 * The action of a command: its arguments, then its options, then the Command
 * itself (commander's order). `create` lets the store be created when missing.
 * `prepare` runs before the store is opened (import checks its file there, so
 * bad input never creates a sessions directory).
 */
export function action(
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

/** The "Examples:" block at the end of a help text. */
export const examples = (lines: string[]) => `\nExamples:\n${lines.map((l) => `  ${l}`).join('\n')}\n`;

/** Reports a usage error as one line on stderr, pointing at the help of `name` (the program or a command). */
export function usageLine(name: string) {
  return (text: string, write: (s: string) => void) => {
    const message = text.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ').trim();
    write(`stepstore: ${message}; run "stepstore ${name === 'stepstore' ? '' : `${name} `}--help" for usage\n`);
  };
}

/** Declares the command `name` on `program` with its description and examples; add arguments, options and action to what it returns. */
export const sub = (program: Command, name: string, description: string, lines: string[]) =>
  program
    .command(name)
    .description(description)
    .configureOutput({ outputError: usageLine(name.split(' ')[0]!) })
    .addHelpText('after', examples(lines));
