// `stepstore export` and `stepstore import`, both declared here (file formats
// in ../export-file.ts). Export streams one session; import checks the whole
// file first, then writes with the library's import calls (archives before the
// steps that name them), and deletes what it wrote if a write fails, so a
// failed import leaves nothing.

import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { isStepStoreError, senderSlug, type CompactMarker, type ConversationMeta, type StepLine } from '../../index.js';
import { action, sub } from '../command.js';
import { CliError, usage } from '../errors.js';
import { EXPORT_VERSION, FileProblem, parseFile, type ArchiveLine, type ExportHeader, type ParsedFile } from '../export-file.js';
import { kindOf, plural } from '../format.js';
import type { Cli } from '../open.js';
import { note, print, printJson } from '../output.js';
import { loadOrFail, stepPages } from './show.js';

export interface ExportOptions {
  out?: string;
  force?: boolean;
}

/** Writes `chunks` to `out` through a temp file renamed into place, so a failed export leaves no partial file. */
class OutFile {
  readonly #temp: string;
  readonly #fd: number;

  constructor(readonly out: string, force: boolean) {
    if (!force && fs.existsSync(out)) throw usage(out, 'the file exists', 'choose another --out, or pass --force to replace it');
    this.#temp = path.join(path.dirname(out), `.${path.basename(out)}.tmp-${process.pid}`);
    this.#fd = fs.openSync(this.#temp, 'w', 0o600);
  }

  write(text: string): void {
    fs.writeSync(this.#fd, text);
  }

  commit(): void {
    fs.fsyncSync(this.#fd);
    fs.closeSync(this.#fd);
    fs.renameSync(this.#temp, this.out);
  }

  abandon(): void {
    try {
      fs.closeSync(this.#fd);
    } catch {
      // already closed
    }
    fs.rmSync(this.#temp, { force: true });
  }
}

/**
 * A step's export line carrying its stored text byte for byte: inline as
 * `line` when it is one line (the usual case), else as a JSON string `text`.
 */
function stepLine(step: number, text: string): string {
  return /[\r\n]/.test(text) ? JSON.stringify({ step, text }) : `{"step":${step},"line":${text}}`;
}

export async function exportSession(cli: Cli, handle: string, opts: ExportOptions): Promise<number> {
  const { meta } = await loadOrFail(cli, handle);
  const file = opts.out === undefined ? null : new OutFile(path.resolve(opts.out), opts.force === true);
  const write = (value: unknown) => writeText(JSON.stringify(value));
  const writeText = (line: string) => {
    const text = `${line}\n`;
    if (file === null) process.stdout.write(text);
    else file.write(text);
  };
  let steps = 0;
  const archives = new Set<string>();
  const missing: string[] = [];
  const unreadable: number[] = [];
  try {
    const header: ExportHeader = { stepstore_export: EXPORT_VERSION, handle, exported_at: new Date().toISOString(), meta };
    write(header);
    for await (const page of stepPages(cli, handle)) {
      for (const s of page) {
        if (s.kind === 'unreadable') {
          unreadable.push(s.step);
          continue;
        }
        if (s.kind === 'compact') {
          const marker = s.line as CompactMarker;
          if (!archives.has(marker.archive_name) && !missing.includes(marker.archive_name)) {
            // The archive goes first, so an import can store it before the marker that names it.
            const content = await cli.store.getArchive(marker.archive_name);
            if (content === null) missing.push(marker.archive_name);
            else {
              write({ archive: marker.archive_name, archived_at: marker.archived_at, content });
              archives.add(marker.archive_name);
            }
          }
        }
        writeText(stepLine(s.step, s.text));
        steps += 1;
      }
    }
    file?.commit();
  } catch (err) {
    file?.abandon();
    throw err;
  }
  for (const name of missing) note(`stepstore: warning: ${handle}: archive ${name} is missing; its marker is exported without it`);
  if (unreadable.length > 0) {
    note(`stepstore: warning: ${handle}: ${plural(unreadable.length, 'unreadable step')} (${unreadable.join(', ')}) not exported; an import numbers the steps after them one lower`);
  }
  if (file !== null) {
    const summary = { handle, out: file.out, steps, archives: archives.size, missing_archives: missing, unreadable_steps: unreadable };
    if (cli.json) printJson(summary);
    else print(`Exported ${handle} to ${file.out}: ${plural(steps, 'step')}, ${plural(archives.size, 'archive')}.`);
  }
  return 0;
}

export interface ImportOptions {
  agent?: string;
  sender?: string;
}

function readInput(file: string): string {
  try {
    return fs.readFileSync(file === '-' ? 0 : path.resolve(file), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (err as Error).message;
    throw new CliError(file, `cannot read it: ${why}`, 'pass the path of a file written by "stepstore export" or a crabtalk .jsonl session');
  }
}

/** What a write of the import did, so a failure can be undone. */
interface Written {
  handle: string | null;
}

/** An import file read and checked whole, before any store is opened. */
export interface ImportInput {
  shown: string;
  parsed: ParsedFile;
}

/** Reads and checks the whole file; throws a one-line error (exit 2 for a malformed file) naming the file and line. */
export function readImportFile(file: string): ImportInput {
  const shown = file === '-' ? 'stdin' : file;
  try {
    return { shown, parsed: parseFile(readInput(file)) };
  } catch (err) {
    if (err instanceof FileProblem) {
      throw usage(`${shown}:${err.lineNumber}`, `${err.message}; nothing was imported`, 'import reads files written by "stepstore export" and crabtalk .jsonl sessions');
    }
    throw err;
  }
}

export async function importFile(cli: Cli, input: ImportInput, opts: ImportOptions): Promise<number> {
  const { shown, parsed } = input;
  const gaps = parsed.steps.some((s, i) => s.step !== i + 1);
  const dangling = markerNames(parsed.steps).filter((name) => parsed.format === 'crabtalk-jsonl' || !parsed.archives.some((a) => a.archive === name));
  const written: Written = { handle: null };
  let result: { handle: string; archives: number };
  try {
    result =
      parsed.format === 'stepstore-export' && opts.agent === undefined && opts.sender === undefined
        ? await importAsIs(cli, parsed, written)
        : await importAsNew(cli, parsed, opts, written);
  } catch (err) {
    if (written.handle !== null) {
      // Undo: the session and the archives it owns go; a half import is never left behind.
      await cli.store.deleteSession(written.handle).catch(() => undefined);
    }
    throw err;
  }
  for (const name of dangling) note(`stepstore: warning: ${result.handle}: archive ${name} named by a marker is not in the file`);
  if (gaps) note(`stepstore: warning: ${result.handle}: the file skips step numbers (unreadable steps at export); the steps were numbered from 1 without gaps`);
  const summary = { handle: result.handle, format: parsed.format, from: shown, steps: parsed.steps.length, archives: result.archives, renumbered: gaps };
  if (cli.json) printJson(summary);
  else print(`Imported ${result.handle} from ${shown} (${parsed.format}): ${plural(parsed.steps.length, 'step')}, ${plural(result.archives, 'archive')}.`);
  return 0;
}

function markerNames(steps: { line: StepLine }[]): string[] {
  const names = new Set<string>();
  for (const { line } of steps) if (kindOf(line) === 'compact') names.add((line as CompactMarker).archive_name);
  return [...names];
}

const PAGE = 500;

/** crabtalk's message_count: the entries after the last boundary, plus the summary when it is a compact marker. */
function liveCount(kinds: string[]): number {
  const last = Math.max(kinds.lastIndexOf('compact'), kinds.lastIndexOf('legacy-compact'));
  const entries = kinds.slice(last + 1).filter((kind) => kind === 'entry').length;
  return kinds[last] === 'compact' ? entries + 1 : entries;
}

/** Stores step texts byte for byte, a page at a time. */
async function importSteps(cli: Cli, handle: string, texts: string[]): Promise<void> {
  for (let i = 0; i < texts.length; i += PAGE) await cli.store.importRawSteps(handle, texts.slice(i, i + PAGE));
}

/** Our export under its own handle and meta: the same session, step for step. */
async function importAsIs(cli: Cli, parsed: Extract<ParsedFile, { format: 'stepstore-export' }>, written: Written): Promise<{ handle: string; archives: number }> {
  const { handle, meta, archives } = parsed;
  cli.subject = handle;
  const existsAlready = () =>
    new CliError(handle, `this session exists in ${cli.where} already; nothing was imported`, `remove it first ("stepstore rm ${handle}${cli.again}"), import into another --dir, or pass --agent/--sender to import a copy`);
  const present = await cli.store.loadSession(handle).catch((err: unknown) => {
    if (isStepStoreError(err, 'CORRUPT_META')) return 'unreadable meta';
    throw err;
  });
  if (present !== null) throw existsAlready();
  for (const a of archives) {
    if ((await cli.store.getArchive(a.archive)) !== null) {
      throw new CliError(a.archive, `an archive of that name exists in ${cli.where}; nothing was imported`, 'import into another --dir, or pass --agent/--sender to import as a new session');
    }
  }
  let created: boolean;
  try {
    created = await cli.store.importSession(handle, meta);
  } catch (err) {
    if (isStepStoreError(err, 'CONFLICT')) {
      throw new CliError(handle, `a session with this handle exists in ${cli.where} (another agent or sender); nothing was imported`, 'import into another --dir, or pass --agent/--sender to import as a new session');
    }
    throw err;
  }
  if (!created) throw existsAlready();
  written.handle = handle;
  for (const a of archives) await cli.store.importArchive(a.archive, archiveRecord(handle, a));
  await importSteps(cli, handle, parsed.steps.map((s) => s.text));
  return { handle, archives: archives.length };
}

function archiveRecord(owner: string, a: ArchiveLine): { owner: string; content: string; archived_at?: string } {
  return a.archived_at === undefined ? { owner, content: a.content } : { owner, content: a.content, archived_at: a.archived_at };
}

const IDENTITY = new Set(['agent', 'created_by', 'created_at', 'updated_at', 'message_count']);

/**
 * A new session for (agent, sender): from a crabtalk file, or from an export
 * given --agent/--sender. Its archives are stored under the new session's
 * names and its markers renamed to match; title, summary and unknown meta
 * fields are carried over; created_at and updated_at are the import's.
 */
async function importAsNew(cli: Cli, parsed: ParsedFile, opts: ImportOptions, written: Written): Promise<{ handle: string; archives: number }> {
  const source = parsed.meta as Record<string, unknown>;
  const agent = opts.agent ?? (source.agent as string);
  const sender = opts.sender ?? (source.created_by as string);
  cli.subject = `${agent} / ${sender}`;
  const handle = await cli.store.createSession(agent, sender);
  written.handle = handle;
  cli.subject = handle;
  const renamed = new Map<string, string>();
  const archives = parsed.format === 'stepstore-export' ? parsed.archives : [];
  let n = 0;
  for (const a of archives) {
    let name: string;
    do {
      n += 1;
      name = `${senderSlug(handle)}-${n}`;
    } while ((await cli.store.getArchive(name)) !== null);
    await cli.store.importArchive(name, archiveRecord(handle, a));
    renamed.set(a.archive, name);
  }
  const texts = parsed.steps.map(({ line, text }) => {
    if (kindOf(line) !== 'compact') return text;
    const marker = line as CompactMarker;
    const name = renamed.get(marker.archive_name);
    return name === undefined ? text : JSON.stringify({ ...marker, archive_name: name });
  });
  await importSteps(cli, handle, texts);
  const current = (await cli.store.loadSession(handle))!.meta;
  const carried = Object.fromEntries(Object.entries(source).filter(([key]) => !IDENTITY.has(key)));
  const messages =
    parsed.format === 'stepstore-export' ? parsed.meta.message_count : liveCount(parsed.steps.map(({ line }) => kindOf(line)));
  const meta: ConversationMeta = { ...current, ...carried, title: typeof source.title === 'string' ? source.title : '', message_count: messages };
  await cli.store.updateMeta(handle, meta);
  return { handle, archives: archives.length };
}

export function register(program: Command): void {
  sub(program, 'export', 'write a session as one JSON Lines file (meta, archives, every step)', [
    'stepstore export crab_tg-12345_1 --out crab.jsonl',
    'stepstore export crab_tg-12345_1 | stepstore import - --dir /backup/sessions',
  ])
    .argument('<handle>', 'session handle')
    .option('-o, --out <file>', 'write to this file instead of stdout')
    .option('--force', 'replace --out when it exists')
    .action(action(false, (cli, [handle], opts) => exportSession(cli, handle as string, opts)));

  let parsed: ImportInput | null = null;
  sub(program, 'import', 'import a session from "stepstore export" or from a crabtalk .jsonl session file', [
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
        // Read and checked before the store is opened: bad input never creates a sessions directory.
        ([file]) => void (parsed = readImportFile(file as string)),
      ),
    );
}
