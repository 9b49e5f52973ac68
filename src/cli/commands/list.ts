// `stepstore list`: its declaration (options, help) and the sessions, newest
// update first, as a table or JSON. Also helpers other commands share.

import type { Command } from 'commander';
import type { SessionSummary } from '../../index.js';
import { action, sub } from '../command.js';
import { usage } from '../errors.js';
import { ago, table } from '../format.js';
import type { Cli } from '../open.js';
import { print, printJson } from '../output.js';

export interface ListOptions {
  agent?: string;
  sender?: string;
  limit?: string;
}

/** A positive integer option, or a usage error naming it. */
export function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[1-9][0-9]{0,8}$/.test(value)) throw usage(`${flag} ${value}`, `${flag} needs a whole number of at least 1`, `e.g. ${flag} 20`);
  return Number(value);
}

/** A session as `--json` shows it everywhere: the meta fields plus the whole meta. */
export function sessionJson({ handle, meta }: SessionSummary) {
  return {
    handle,
    agent: meta.agent,
    sender: meta.created_by,
    title: meta.title,
    messages: meta.message_count,
    created_at: meta.created_at,
    updated_at: meta.updated_at,
    meta,
  };
}

/** The sessions table shared by list, prune and rm. */
export function sessionsTable(cli: Cli, sessions: SessionSummary[]): string {
  const rows = sessions.map(({ handle, meta }) => [handle, meta.agent, meta.created_by, meta.title, String(meta.message_count), ago(meta.updated_at)]);
  const { style } = cli;
  return table(
    style,
    [{ header: 'HANDLE' }, { header: 'AGENT', max: 24 }, { header: 'SENDER', max: 24 }, { header: 'TITLE', max: 40 }, { header: 'MESSAGES', align: 'right' }, { header: 'UPDATED' }],
    rows,
    (_r, c, cell) => (c === 0 ? style.cyan(cell) : c === 5 ? style.dim(cell) : cell),
  );
}

export async function list(cli: Cli, opts: ListOptions): Promise<number> {
  const limit = positiveInt(opts.limit, '--limit');
  const sessions = await cli.store.listSessions({ agent: opts.agent, createdBy: opts.sender, limit });
  if (cli.json) {
    printJson({ sessions: sessions.map(sessionJson) });
    return 0;
  }
  if (sessions.length === 0) {
    const filter = [opts.agent !== undefined ? `agent "${opts.agent}"` : '', opts.sender !== undefined ? `sender "${opts.sender}"` : ''].filter(Boolean).join(' and ');
    print(`No sessions${filter === '' ? '' : ` for ${filter}`} in ${cli.where}.`);
    return 0;
  }
  print(sessionsTable(cli, sessions));
  return 0;
}

export function register(program: Command): void {
  sub(program, 'list', 'list sessions, most recently updated first', ['stepstore list', 'stepstore list --agent crab --sender tg:12345', 'stepstore list --limit 5 --json'])
    .option('--agent <agent>', 'only sessions of this agent (exact name)')
    .option('--sender <sender>', 'only sessions started by this sender (exact identity)')
    .option('--limit <n>', 'at most this many sessions')
    .action(action(false, (cli, _args, opts) => list(cli, opts)));
}
