// `stepstore migrate --to <dir|redis-url>`: its declaration, and the library's
// migrate() from the store the global options name to another, with a progress
// bar. Running it again copies only what the target lacks.

import path from 'node:path';
import type { Command } from 'commander';
import { migrate as migrateStores, type Store } from '../../index.js';
import { action, sub } from '../command.js';
import { usage } from '../errors.js';
import { plural } from '../format.js';
import { DEFAULT_PREFIX, isRedisUrl, maskUrl, openTarget, type Cli } from '../open.js';
import { print, printJson } from '../output.js';
import { startProgress, type Progress } from '../progress.js';

export interface MigrateOptions {
  to?: string;
  toPrefix?: string;
}

function sameTarget(cli: Cli, to: string, toPrefix: string): boolean {
  if (isRedisUrl(to)) return cli.kind === 'redis' && maskUrl(to) === maskUrl(cli.options.redis!) && toPrefix === cli.options.prefix;
  return cli.kind === 'fs' && path.resolve(to) === cli.where;
}

export async function migrate(cli: Cli, opts: MigrateOptions): Promise<number> {
  const to = opts.to;
  if (to === undefined) throw usage('migrate', 'missing --to', 'name the target: --to <dir> or --to redis://host:port');
  const toPrefix = opts.toPrefix ?? DEFAULT_PREFIX;
  if (sameTarget(cli, to, toPrefix)) throw usage(to, 'the target is the store being migrated', 'name another directory, Redis server or --to-prefix');
  cli.subject = isRedisUrl(to) ? maskUrl(to) : path.resolve(to);
  const logger = { warn: (message: string, detail?: Record<string, unknown>) => void cli.warnings.push(detail === undefined ? { message } : { message, detail }) };
  const target: { store: Store; where: string } = await openTarget(to, toPrefix, logger, cli.options.messages);
  try {
    const progress: { bar: Progress | null } = { bar: null };
    let report;
    try {
      report = await migrateStores(cli.store, target.store, {
        onProgress: ({ done, total, handle }) => {
          progress.bar ??= startProgress('migrating', total);
          progress.bar.update(done, handle);
        },
      });
    } finally {
      progress.bar?.stop();
    }
    if (cli.json) {
      printJson({
        from: cli.where,
        to: target.where,
        sessions: report.sessions,
        sessions_created: report.sessionsCreated,
        steps_copied: report.stepsCopied,
        archives_copied: report.archivesCopied,
      });
      return 0;
    }
    print(`Migrated ${plural(report.sessions, 'session')} from ${cli.where} to ${target.where}:`);
    print(`  ${report.sessionsCreated} new, ${plural(report.stepsCopied, 'step')} and ${plural(report.archivesCopied, 'archive')} copied.`);
    if (report.sessions > 0 && report.stepsCopied === 0 && report.sessionsCreated === 0) print(cli.style.dim('  The target already had everything (migrate copies only what is missing).'));
    return 0;
  } finally {
    await target.store.close();
  }
}

export function register(program: Command): void {
  sub(program, 'migrate', 'copy every session to another directory or Redis; run again to copy only what is new', [
    'stepstore migrate --to /srv/sessions-copy',
    'stepstore migrate --to redis://127.0.0.1:6379 --to-prefix crab:',
    'stepstore --redis redis://127.0.0.1:6379 migrate --to ./sessions',
  ])
    .requiredOption('--to <target>', 'target directory (created when missing) or redis:// URL')
    .option('--to-prefix <prefix>', 'Redis key prefix of the target', DEFAULT_PREFIX)
    .action(action(false, (cli, _args, opts) => migrate(cli, opts)));
}
