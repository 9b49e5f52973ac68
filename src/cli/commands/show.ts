// `stepstore show`: its declaration and a session's replayed history (what a
// resume hands the model), or with --all every raw step numbered, events and
// compaction boundaries marked. Also the step reading and rendering that
// tail, stats and export share. Archives are found in the store, then in
// crabtalk's memory file when one is given (--crabtalk-memory).

import type { Command } from 'commander';
import { senderSlug, type CompactMarker, type ConversationMeta, type EventLine, type HistoryEntry, type LegacyCompactMarker, type SessionSnapshot, type StepKind, type StepLine, type StepRecord } from '../../index.js';
import { action, sub } from '../command.js';
import { CliError } from '../errors.js';
import { ago, boundaryLine, eventSummary, exactTime, indent, messageBlock, plural, safeText, type Style } from '../format.js';
import { crabtalkMemoryOption, openCli, type Cli } from '../open.js';
import { print, printJson } from '../output.js';

export interface ShowOptions {
  all?: boolean;
  archive?: boolean;
}

/** A step as shown: readable, or skipped by the store with the reason. */
export type ShownStep = { step: number; kind: StepKind; line: StepLine; text: string } | { step: number; kind: 'unreadable'; reason: string };

const PAGE = 500;

/**
 * The steps after `after` the store skipped while reading `handle` (it logs
 * them), taken out of the warnings so they are shown in place instead. A step
 * logged twice (by a load, then by a read) is taken once.
 */
export function takeSkipped(cli: Cli, handle: string, after: number): ShownStep[] {
  const skipped = new Map<number, ShownStep>();
  cli.warnings = cli.warnings.filter((w) => {
    const d = w.detail;
    if (d === undefined || d.session !== handle || typeof d.step !== 'number') return true;
    if (d.step > after) skipped.set(d.step, { step: d.step, kind: 'unreadable', reason: String(d.reason ?? w.message) });
    return false;
  });
  return [...skipped.values()];
}

/** Steps after `after`, oldest first, page by page, unreadable ones in their place. */
export async function* stepPages(cli: Cli, handle: string, after = 0): AsyncGenerator<ShownStep[]> {
  for (;;) {
    const records: StepRecord[] = await cli.store.readSteps(handle, { after, limit: PAGE });
    const page: ShownStep[] = [...records.map((r) => ({ step: r.step, kind: r.kind, line: r.line, text: r.text })), ...takeSkipped(cli, handle, after)];
    page.sort((a, b) => a.step - b.step);
    if (page.length > 0) yield page;
    if (records.length < PAGE) return;
    after = records[records.length - 1]!.step;
  }
}

/**
 * The session or a not-found error naming it. A session a framework adapter
 * wrote (its meta names the framework) holds the framework's own messages:
 * unless --messages was given, it is read with a store that takes any
 * message shape, which then serves the rest of the command.
 */
export async function loadOrFail(cli: Cli, handle: string, withArchive = false): Promise<SessionSnapshot> {
  cli.subject = handle;
  const snapshot = await cli.store.loadSession(handle, { withArchive });
  if (snapshot === null) throw new CliError(handle, `no such session in ${cli.where}`, `run "stepstore list${cli.again}" to see the session handles`);
  if (typeof snapshot.meta.framework === 'string' && cli.options.messages === undefined && cli.store.messages !== 'any') {
    const reader = await openCli({ ...cli.options, messages: 'any' }, { create: false });
    await cli.store.close();
    Object.assign(cli, { store: reader.store, warnings: reader.warnings });
    return loadOrFail(cli, handle, withArchive);
  }
  return snapshot;
}

export function sessionHeader(style: Style, handle: string, meta: ConversationMeta): string {
  const lines = [`${style.bold(style.cyan(handle))}  ${style.dim('agent')} ${safeText(meta.agent)}  ${style.dim('sender')} ${safeText(meta.created_by)}`];
  if (typeof meta.framework === 'string') lines[0] += `  ${style.dim('written by')} ${safeText(meta.framework)}`;
  if (meta.title !== '') lines.push(`${style.dim('title')} ${safeText(meta.title)}`);
  lines.push(
    style.dim(`${plural(meta.message_count, 'message')} · created ${exactTime(meta.created_at)} · updated ${ago(meta.updated_at)} (${exactTime(meta.updated_at)})`),
  );
  if (typeof meta.summary === 'string' && meta.summary !== '') lines.push(`${style.dim('summary')} ${safeText(meta.summary)}`);
  return lines.join('\n');
}

/**
 * True when `archive`, which the store does not hold, may well be kept by
 * crabtalk: no memory file was given (on a folder; Redis has none), and it is
 * named the way crabtalk names the archives of `handle`, `{senderSlug(handle)}-{n}`.
 */
export function archiveMayBeCrabtalks(cli: Cli, handle: string, archive: string): boolean {
  if (cli.kind !== 'fs' || cli.crabtalkMemory !== null) return false;
  const base = `${senderSlug(handle)}-`;
  return archive.startsWith(base) && /^[1-9][0-9]*$/.test(archive.slice(base.length));
}

/** Why an archive is missing and what to do, for `handle`'s marker naming `archive`. */
function missingArchiveHint(cli: Cli, handle: string, archive: string): string {
  return archiveMayBeCrabtalks(cli, handle, archive)
    ? `crabtalk may keep it in its memory file: pass --crabtalk-memory ~/.crabtalk/memory.db (or set STEPSTORE_CRABTALK_MEMORY)`
    : `the archive is missing; run "stepstore fsck${cli.again}"`;
}

/** One step as text: `#n` then a message block, an event line or a boundary. */
export function stepText(style: Style, shown: ShownStep, archives?: Map<string, string | null>, missingHint?: (archive: string) => string): string {
  const number = style.dim(`#${shown.step}`);
  switch (shown.kind) {
    case 'unreadable':
      return `${number} ${style.red(`unreadable step, skipped: ${shown.reason}`)}`;
    case 'entry':
      return messageBlock(style, shown.line as HistoryEntry, `${number} `);
    case 'event':
      return `${number} ${style.blue('event')} ${eventSummary(shown.line as EventLine)}`;
    case 'compact': {
      const marker = shown.line as CompactMarker;
      const head = `${number} ${boundaryLine(style, marker)}`;
      if (archives === undefined) return head;
      const content = archives.get(marker.archive_name);
      if (content !== null && content !== undefined) return `${head}\n${indent(safeText(content))}`;
      const hint = missingHint === undefined ? '' : ` (${missingHint(marker.archive_name)})`;
      return `${head}\n${indent(style.red(`[archive ${marker.archive_name} is missing]${hint}`))}`;
    }
    case 'legacy-compact': {
      const marker = shown.line as LegacyCompactMarker;
      return `${number} ${boundaryLine(style, marker)}\n${indent(style.dim(safeText(marker.compact)))}`;
    }
  }
}

async function archivesOf(cli: Cli, steps: ShownStep[]): Promise<Map<string, string | null>> {
  const archives = new Map<string, string | null>();
  for (const s of steps) {
    if (s.kind !== 'compact') continue;
    const name = (s.line as CompactMarker).archive_name;
    if (!archives.has(name)) archives.set(name, await cli.store.getArchive(name));
  }
  return archives;
}

async function showAll(cli: Cli, handle: string, opts: ShowOptions): Promise<number> {
  const { meta } = await loadOrFail(cli, handle);
  const steps: ShownStep[] = [];
  for await (const page of stepPages(cli, handle)) steps.push(...page);
  const archives = opts.archive === true ? await archivesOf(cli, steps) : undefined;
  if (cli.json) {
    const out: Record<string, unknown> = {
      handle,
      meta,
      steps: steps.map((s) => (s.kind === 'unreadable' ? { step: s.step, kind: s.kind, reason: s.reason } : { step: s.step, kind: s.kind, line: s.line })),
    };
    if (archives !== undefined) out.archives = Object.fromEntries(archives);
    printJson(out);
    return 0;
  }
  const { style } = cli;
  print(sessionHeader(style, handle, meta));
  print(style.dim(`${plural(steps.length, 'step')}; the history a resume replays starts after the last compaction mark (══)`));
  for (const s of steps) {
    print();
    print(stepText(style, s, archives, (archive) => missingArchiveHint(cli, handle, archive)));
  }
  if (steps.length === 0) print(style.dim('\n(no steps yet)'));
  return 0;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The event a LangGraph checkpointer stores per checkpoint (stepstore/langgraph). */
const LANGGRAPH_CHECKPOINT = 'langgraph_checkpoint';

/**
 * The messages of the latest root checkpoint of a LangGraph thread: the
 * checkpoint holds a channel's value when it changed there, else names the
 * step of the checkpoint that does (`value_steps`). Null when there is none,
 * or the value is not stored as JSON.
 */
async function langgraphMessages(cli: Cli, handle: string): Promise<{ step: number; messages: unknown[] } | null> {
  let before: number | undefined;
  for (;;) {
    const page = await cli.store.readSteps(handle, before === undefined ? { last: PAGE } : { before, limit: PAGE });
    for (const record of [...page].reverse()) {
      const line = record.line as Record<string, unknown>;
      if (record.kind !== 'event' || line.event !== LANGGRAPH_CHECKPOINT || line.ns !== '') continue;
      if (isRecord(line.channel_values) && Array.isArray(line.channel_values.messages)) return { step: record.step, messages: line.channel_values.messages };
      const holder = isRecord(line.value_steps) ? line.value_steps.messages : undefined;
      if (typeof holder !== 'number') return null;
      const [held] = await cli.store.readSteps(handle, { after: holder - 1, limit: 1 });
      const values = (held?.line as Record<string, unknown> | undefined)?.channel_values;
      return isRecord(values) && Array.isArray(values.messages) ? { step: holder, messages: values.messages } : null;
    }
    if (page.length < PAGE) return null;
    before = page[0]!.step;
  }
}

async function showLanggraph(cli: Cli, handle: string, snapshot: SessionSnapshot): Promise<number> {
  const found = await langgraphMessages(cli, handle);
  if (cli.json) {
    printJson({ handle, meta: snapshot.meta, checkpoint_step: found?.step ?? null, messages: found?.messages ?? [] });
    return 0;
  }
  const { style } = cli;
  print(sessionHeader(style, handle, snapshot.meta));
  if (found === null) {
    print(style.dim('\n(no checkpoint with readable messages; --all shows every step)'));
    return 0;
  }
  print(style.dim(`the messages of the latest checkpoint (step ${found.step}); --all shows every step`));
  for (const message of found.messages) {
    print();
    print(messageBlock(style, { message: isRecord(message) ? message : { content: message } }));
  }
  return 0;
}

export async function show(cli: Cli, handle: string, opts: ShowOptions): Promise<number> {
  if (opts.all === true) return showAll(cli, handle, opts);
  const snapshot = await loadOrFail(cli, handle, opts.archive === true);
  if (snapshot.meta.framework === 'langgraph' && snapshot.history.length === 0) return showLanggraph(cli, handle, snapshot);
  if (cli.json) {
    const out: Record<string, unknown> = { handle, meta: snapshot.meta, archive: snapshot.archive };
    if (opts.archive === true) out.archive_content = snapshot.archiveContent ?? null;
    out.history = snapshot.history;
    out.diagnostics = snapshot.diagnostics;
    printJson(out);
    return 0;
  }
  const { style } = cli;
  print(sessionHeader(style, handle, snapshot.meta));
  if (snapshot.archive !== null) {
    print();
    if (opts.archive === true) {
      print(style.yellow(style.bold(`══ archive ${snapshot.archive}: the summary a resume puts before the history ══`)));
      print(snapshot.archiveContent === null || snapshot.archiveContent === undefined
        ? indent(style.red(`[archived context unavailable: ${snapshot.archive}] (${missingArchiveHint(cli, handle, snapshot.archive)})`))
        : indent(safeText(snapshot.archiveContent)));
      print(style.yellow(style.bold('══ history since the compaction ══')));
    } else {
      print(style.yellow(`══ compacted earlier: older history is summarised in archive ${snapshot.archive} (--archive prints it, --all shows every step) ══`));
    }
  }
  for (const entry of snapshot.history) {
    print();
    print(messageBlock(style, entry));
  }
  if (snapshot.history.length === 0) print(style.dim(`\n(no messages${snapshot.archive === null ? ' yet' : ' since the compaction'})`));
  return 0;
}

export function register(program: Command): void {
  sub(program, 'show', "print a session's history as a resume replays it", [
    'stepstore show crab_tg-12345_1',
    'stepstore show crab_tg-12345_1 --archive     # the compaction summary first',
    'stepstore show crab_tg-12345_1 --all         # every step, events and compactions marked',
    'stepstore show crab_tg-12345_1 --archive --crabtalk-memory ~/.crabtalk/memory.db',
    'stepstore show crab_tg-12345_1 --json',
  ])
    .argument('<handle>', 'session handle (see stepstore list)')
    .option('--all', 'every raw step with its number, events and compaction boundaries included')
    .option('--archive', 'print the archived summary (with --all: under each compaction mark)')
    .addOption(crabtalkMemoryOption())
    .action(action(false, (cli, [handle], opts) => show(cli, handle as string, opts)));
}
