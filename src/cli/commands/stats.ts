// `stepstore stats`: its declaration, and sessions, steps, messages and bytes,
// in all and per agent. Bytes are the JSON size of the steps as read back (not
// the space a filesystem allocates for them).

import type { Command } from 'commander';
import { action, sub } from '../command.js';
import { formatBytes, plural, table } from '../format.js';
import type { Cli } from '../open.js';
import { print, printJson } from '../output.js';
import { startProgress } from '../progress.js';
import { stepPages } from './show.js';

interface Totals {
  sessions: number;
  steps: number;
  messages: number;
  bytes: number;
  unreadable_steps: number;
}

const zero = (): Totals => ({ sessions: 0, steps: 0, messages: 0, bytes: 0, unreadable_steps: 0 });

export async function stats(cli: Cli): Promise<number> {
  const sessions = await cli.store.listSessions();
  const all = zero();
  const perAgent = new Map<string, Totals>();
  const bar = startProgress('reading', sessions.length);
  try {
    for (const [i, { handle, meta }] of sessions.entries()) {
      const mine = perAgent.get(meta.agent) ?? zero();
      perAgent.set(meta.agent, mine);
      for (const t of [all, mine]) {
        t.sessions += 1;
        t.messages += meta.message_count;
        t.bytes += Buffer.byteLength(JSON.stringify(meta));
      }
      for await (const page of stepPages(cli, handle)) {
        for (const s of page) {
          const bytes = s.kind === 'unreadable' ? 0 : Buffer.byteLength(JSON.stringify(s.line));
          for (const t of [all, mine]) {
            if (s.kind === 'unreadable') t.unreadable_steps += 1;
            else t.steps += 1;
            t.bytes += bytes;
          }
        }
      }
      bar.update(i + 1, handle);
    }
  } finally {
    bar.stop();
  }
  const agents = [...perAgent.entries()].sort((a, b) => b[1].bytes - a[1].bytes || (a[0] < b[0] ? -1 : 1));
  if (cli.json) {
    printJson({ where: cli.where, ...all, agents: agents.map(([agent, t]) => ({ agent, ...t })) });
    return 0;
  }
  const { style } = cli;
  print(`${cli.where}: ${plural(all.sessions, 'session')}, ${plural(all.steps, 'step')}, ${plural(all.messages, 'message')}, ${formatBytes(all.bytes)} of JSON`);
  if (all.unreadable_steps > 0) print(style.red(`${plural(all.unreadable_steps, 'unreadable step')}: run "stepstore fsck${cli.again}"`));
  if (agents.length > 0) {
    print();
    const row = (name: string, t: Totals) => [name, String(t.sessions), String(t.steps), String(t.messages), formatBytes(t.bytes)];
    print(
      table(
        style,
        [{ header: 'AGENT', max: 40 }, { header: 'SESSIONS', align: 'right' }, { header: 'STEPS', align: 'right' }, { header: 'MESSAGES', align: 'right' }, { header: 'SIZE', align: 'right' }],
        agents.map(([agent, t]) => row(agent, t)),
      ),
    );
  }
  return 0;
}

export function register(program: Command): void {
  sub(program, 'stats', 'sessions, steps, messages and size, in all and per agent', ['stepstore stats', 'stepstore stats --json'])
    .action(action(false, (cli) => stats(cli)));
}
