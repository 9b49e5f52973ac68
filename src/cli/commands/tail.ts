// `stepstore tail`: its declaration and the last steps of a session; with -f
// it keeps printing steps as they land until Ctrl-C, through store.watch()
// (which wakes on the store's own notices of changes, or polls where it has
// none). A rewind ends a watch: tail says so and follows from the new end.

import type { Command } from 'commander';
import { isStepStoreError, type StepRecord } from '../../index.js';
import { action, sub } from '../command.js';
import { CliError } from '../errors.js';
import type { Cli } from '../open.js';
import { note, print, printJsonLine } from '../output.js';
import { positiveInt } from './list.js';
import { loadOrFail, sessionHeader, stepPages, stepText, takeSkipped, type ShownStep } from './show.js';

export interface TailOptions {
  lines?: string;
  follow?: boolean;
  /** Accepted for older scripts; the store decides how it watches. */
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
  positiveInt(opts.interval, '--interval');
  return follow(cli, handle, last.at(-1)?.step ?? 0);
}

function deleted(cli: Cli, handle: string): CliError {
  return new CliError(handle, 'the session was deleted while following it', `run "stepstore list${cli.again}" to see the sessions left`);
}

/** Prints steps after `after` as they land; resolves 0 on Ctrl-C or SIGTERM, rejects when the session is deleted or reading fails. */
async function follow(cli: Cli, handle: string, after: number): Promise<number> {
  if (!cli.json) print(cli.style.dim(`-- following ${handle}; Ctrl-C to stop --`));
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let shown = after;
  // Steps the store skipped as unreadable are logged, not yielded: each is shown in its place before the next step.
  const show = (record: StepRecord | null) => {
    const skipped = takeSkipped(cli, handle, shown).sort((a, b) => a.step - b.step);
    for (const s of record === null ? skipped : [...skipped, record]) {
      emit(cli, handle, s);
      shown = s.step;
    }
  };
  try {
    for (let from: number | undefined = after; ; from = undefined) {
      const watch = await cli.store.watch(handle, { ...(from === undefined ? {} : { after: from }), signal: stop.signal });
      for await (const record of watch) show(record);
      show(null);
      if (watch.ended === 'deleted') throw deleted(cli, handle);
      if (watch.ended !== 'rewound') return 0;
      note(`stepstore: ${handle}: steps shown up to #${watch.cursor} were retracted (a rewind); following from the session's end`);
    }
  } catch (err) {
    throw isStepStoreError(err, 'SESSION_NOT_FOUND') ? deleted(cli, handle) : err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
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
    .option('--interval <ms>', 'with -f: ignored (kept for older scripts); the store watches for changes, polling only where it cannot')
    .action(action(false, (cli, [handle], opts) => tail(cli, handle as string, opts)));
}
