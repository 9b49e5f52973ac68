// `stepstore tail`: its declaration and the last steps of a session; with -f
// it keeps printing steps as they land until Ctrl-C. On the filesystem it
// watches the session directory (the layout in the README's Format section)
// and also polls, in case a watch event is missed or watching is not possible;
// on Redis it polls.

import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { isStepStoreError } from '../../index.js';
import { action, sub } from '../command.js';
import { CliError } from '../errors.js';
import type { Cli } from '../open.js';
import { print, printJsonLine } from '../output.js';
import { positiveInt } from './list.js';
import { loadOrFail, sessionHeader, stepPages, stepText, type ShownStep } from './show.js';

export interface TailOptions {
  lines?: string;
  follow?: boolean;
  /** Milliseconds between polls (tests use a short one). */
  interval?: string;
}

function emit(cli: Cli, handle: string, s: ShownStep): void {
  if (cli.json) {
    printJsonLine(s.kind === 'unreadable' ? { handle, step: s.step, kind: s.kind, reason: s.reason } : { handle, step: s.step, kind: s.kind, line: s.line });
  } else {
    print(stepText(cli.style, s));
  }
}

export async function tail(cli: Cli, handle: string, opts: TailOptions): Promise<number> {
  const count = positiveInt(opts.lines, '--lines') ?? 10;
  const { meta } = await loadOrFail(cli, handle);
  const last: ShownStep[] = [];
  for await (const page of stepPages(cli, handle)) {
    last.push(...page);
    if (last.length > count) last.splice(0, last.length - count);
  }
  if (!cli.json) print(sessionHeader(cli.style, handle, meta));
  for (const s of last) emit(cli, handle, s);
  if (opts.follow !== true) return 0;
  const interval = positiveInt(opts.interval, '--interval') ?? (cli.kind === 'redis' ? 500 : 1000);
  return follow(cli, handle, last.at(-1)?.step ?? 0, interval);
}

/** Prints steps after `after` as they land; resolves 0 on Ctrl-C or SIGTERM, rejects when reading fails (the session was deleted). */
async function follow(cli: Cli, handle: string, after: number, interval: number): Promise<number> {
  if (!cli.json) print(cli.style.dim(`-- following ${handle}; Ctrl-C to stop --`));
  let watcher: fs.FSWatcher | null = null;
  let timer: NodeJS.Timeout | null = null;
  let busy = false;
  let again = false;
  return new Promise<number>((resolve, reject) => {
    const stop = () => {
      watcher?.close();
      if (timer !== null) clearInterval(timer);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    };
    const onSignal = () => {
      stop();
      resolve(0);
    };
    const read = async (): Promise<void> => {
      if (busy) {
        again = true;
        return;
      }
      busy = true;
      try {
        do {
          again = false;
          for await (const page of stepPages(cli, handle, after)) {
            for (const s of page) emit(cli, handle, s);
            after = page.at(-1)!.step;
          }
        } while (again);
      } finally {
        busy = false;
      }
    };
    const poke = () => {
      read().catch((err: unknown) => {
        stop();
        reject(
          isStepStoreError(err, 'SESSION_NOT_FOUND')
            ? new CliError(handle, 'the session was deleted while following it', `run "stepstore list${cli.again}" to see the sessions left`)
            : err,
        );
      });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    if (cli.kind === 'fs') {
      try {
        watcher = fs.watch(path.join(cli.where, handle), { persistent: true }, poke);
        watcher.on('error', () => {
          watcher?.close();
          watcher = null; // the directory went away or watching broke: polling carries on
        });
      } catch {
        watcher = null; // no watching here (inotify limits, odd filesystems): polling alone
      }
    }
    timer = setInterval(poke, interval);
    poke();
  });
}

export function register(program: Command): void {
  sub(program, 'tail', 'print the last steps of a session; -f keeps printing new ones until Ctrl-C', [
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
}
