// Opening a store from the global options: the filesystem store at --dir
// (default $STEPSTORE_DIR, else ./sessions), or the Redis store at --redis,
// whose module is imported only then, so filesystem users never load
// node-redis. Also the per-run context every command receives, and
// crabtalk's memory file (--crabtalk-memory, else $STEPSTORE_CRABTALK_MEMORY),
// where crabtalk keeps the archives its markers name.

import fs from 'node:fs';
import path from 'node:path';
import { Option } from 'commander';
import { openStore, type Logger, type MessageMode, type Store } from '../index.js';
import { CliError, usage } from './errors.js';
import { colourWanted, makeStyle, type Style } from './format.js';

export interface GlobalOptions {
  dir?: string;
  redis?: string;
  prefix: string;
  json: boolean;
  color: boolean;
  /** From the --crabtalk-memory option of the commands that read archives. */
  crabtalkMemory?: string;
  /** --messages: the store's message mode (default crabtalk). */
  messages?: MessageMode;
}

export interface Warning {
  message: string;
  detail?: Record<string, unknown>;
}

/** What a command works with. */
export interface Cli {
  store: Store;
  kind: 'fs' | 'redis';
  /** For messages: the absolute sessions root, or the Redis URL (password hidden) and prefix. */
  where: string;
  /** The store options to repeat in a suggested command, e.g. ` --dir /tmp/s` (empty for the defaults). */
  again: string;
  json: boolean;
  /** Colours for stdout. */
  style: Style;
  /** Warnings the library logged (skipped steps, unreadable metas); printed at the end unless a command took them. */
  warnings: Warning[];
  /** The handle or path a failure concerns, for the error line. */
  subject: string;
  options: GlobalOptions;
  /** crabtalk's memory file the store reads archives from (absolute); null when none was given (always on Redis). */
  crabtalkMemory: string | null;
}

export const DEFAULT_PREFIX = 'stepstore:';
export const CRABTALK_MEMORY_ENV = 'STEPSTORE_CRABTALK_MEMORY';

/** The option of the commands that read archives (show, fsck): crabtalk's memory file. */
export function crabtalkMemoryOption(): Option {
  return new Option(
    '--crabtalk-memory <file>',
    `crabtalk's memory file, where crabtalk keeps its compaction archives, e.g. ~/.crabtalk/memory.db (only read; default: $${CRABTALK_MEMORY_ENV})`,
  );
}

const CONNECT_TIMEOUT_MS = 5000;

export function defaultDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.STEPSTORE_DIR !== undefined && env.STEPSTORE_DIR !== '' ? env.STEPSTORE_DIR : './sessions';
}

/** A Redis URL with its password replaced by `***`, for messages. */
export function maskUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}

function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function isRedisUrl(text: string): boolean {
  return /^rediss?:\/\//i.test(text);
}

function collector(warnings: Warning[]): Logger {
  return { warn: (message, detail) => void warnings.push(detail === undefined ? { message } : { message, detail }) };
}

/** Rejects a --redis value that is not a redis:// URL before anything connects. */
function checkRedisUrl(url: string, flag: string): void {
  if (!isRedisUrl(url)) throw usage(url, `${flag} needs a redis:// or rediss:// URL`, 'e.g. --redis redis://127.0.0.1:6379');
}

/**
 * Opens the store the global options name. Unless `create`, a missing
 * sessions directory is an error rather than created: reading commands never
 * write anything.
 */
export async function openCli(options: GlobalOptions, opts: { create: boolean }): Promise<Cli> {
  const warnings: Warning[] = [];
  const style = makeStyle(colourWanted(process.stdout, options.color));
  const base = { json: options.json === true, style, warnings, options };
  if (options.redis !== undefined) {
    checkRedisUrl(options.redis, '--redis');
    const where = `${maskUrl(options.redis)} (prefix ${options.prefix})`;
    const again = ` --redis ${quote(maskUrl(options.redis))}${options.prefix === DEFAULT_PREFIX ? '' : ` --prefix ${quote(options.prefix)}`}`;
    if (options.crabtalkMemory !== undefined) {
      throw usage(
        options.crabtalkMemory,
        "--crabtalk-memory goes with a sessions folder: crabtalk's archives are not in Redis",
        `to copy them into Redis, run "stepstore --dir <folder> migrate --to <url>" with ${CRABTALK_MEMORY_ENV} set`,
      );
    }
    const store = await openRedis(options.redis, options.prefix, collector(warnings), options.messages);
    return { ...base, store, kind: 'redis', where, again, subject: maskUrl(options.redis), crabtalkMemory: null };
  }
  const given = options.dir ?? defaultDir();
  const dir = path.resolve(given);
  const again = options.dir === undefined && process.env.STEPSTORE_DIR === undefined ? '' : ` --dir ${quote(given)}`;
  if (!opts.create) checkDir(dir, options.dir === undefined);
  const crabtalkMemory = memoryFile(options, warnings);
  const store = await openStore({ dir, logger: collector(warnings), messages: options.messages ?? 'crabtalk', ...(crabtalkMemory === null ? {} : { crabtalkMemory }) });
  return { ...base, store, kind: 'fs', where: dir, again, subject: dir, crabtalkMemory };
}

/** The memory file named by --crabtalk-memory, else $STEPSTORE_CRABTALK_MEMORY, as an absolute path; a missing one is warned about. */
function memoryFile(options: GlobalOptions, warnings: Warning[]): string | null {
  const given = options.crabtalkMemory ?? process.env[CRABTALK_MEMORY_ENV];
  if (given === undefined || given === '') return null;
  const file = path.resolve(given);
  if (!fs.existsSync(file)) warnings.push({ message: `crabtalk's memory file ${file} does not exist: no crabtalk archives were read` });
  return file;
}

function checkDir(dir: string, defaulted: boolean): void {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dir);
  } catch {
    const hint = defaulted
      ? `pass --dir <path> or set STEPSTORE_DIR to your sessions folder (the default is ./sessions)`
      : 'check the path given to --dir';
    throw new CliError(dir, 'no such sessions directory', hint);
  }
  if (!stat.isDirectory()) throw new CliError(dir, 'not a directory', 'pass --dir <path> of a sessions folder');
}

/** The Redis store; connection failures become one line naming the server. */
export async function openRedis(url: string, prefix: string, logger: Logger, messages: MessageMode = 'crabtalk'): Promise<Store> {
  let openRedisStore: typeof import('../redis.js').openRedisStore;
  try {
    ({ openRedisStore } = await import('../redis.js'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw err;
    // node-redis is an optional peer dependency of stepstore.
    throw new CliError(maskUrl(url), 'the Redis backend needs the "redis" package, which is not installed', 'install it beside stepstore: npm install redis');
  }
  let timer: NodeJS.Timeout | undefined;
  // node-redis retries a refused connection forever: give up after a while (the caller exits the process).
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${CONNECT_TIMEOUT_MS / 1000} s`)), CONNECT_TIMEOUT_MS);
  });
  try {
    return await Promise.race([openRedisStore({ url, prefix, logger, messages, retryForMs: 2000 }), timeout]);
  } catch (err) {
    if (err instanceof Error && 'code' in err && err.code === 'INVALID_OPTION') {
      throw usage(maskUrl(url), err.message, 'check --prefix: it must not contain { or }');
    }
    const reason = err instanceof Error ? err.message.replace(url, maskUrl(url)) : String(err);
    throw new CliError(maskUrl(url), `cannot connect to Redis (${reason})`, 'check that the server is running and that the URL is right');
  } finally {
    clearTimeout(timer);
  }
}

/** Opens a migration target: a directory (created when missing) or a Redis URL. */
export async function openTarget(to: string, prefix: string, logger: Logger, messages: MessageMode = 'crabtalk'): Promise<{ store: Store; where: string }> {
  if (isRedisUrl(to)) {
    checkRedisUrl(to, '--to');
    return { store: await openRedis(to, prefix, logger, messages), where: `${maskUrl(to)} (prefix ${prefix})` };
  }
  const dir = path.resolve(to);
  return { store: await openStore({ dir, logger, messages }), where: dir };
}
