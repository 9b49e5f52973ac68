// The files `export` writes and `import` reads, parsed and checked whole
// before anything is written.
//
// stepstore export, version 1 (JSON Lines, UTF-8):
//   {"stepstore_export":1,"handle":"crab_tg-12345_1","exported_at":"…","meta":{…}}   first line
//   {"archive":"crab-tg-12345-1-1","archived_at":"…","content":"…"}                  before the marker naming it
//   {"step":1,"line":{…}}                                                            every step, in order, `line` the stored text byte for byte
//   {"step":2,"text":"{…}"}                                                          (a stored text spanning lines, as a JSON string)
// crabtalk's older single-file sessions (JSON Lines): a meta object first, then
// history entries ({"agent"?,"message":{…}}) and {"compact":"…"} lines.

import type { ConversationMeta, StepLine } from '../index.js';
import { isStepLine } from './format.js';

export const EXPORT_VERSION = 1;

export interface ExportHeader {
  stepstore_export: number;
  handle: string;
  exported_at: string;
  meta: ConversationMeta;
}

export interface ArchiveLine {
  archive: string;
  archived_at?: string;
  content: string;
}

/** A step read from a file: its value, and its text exactly as the file spells it. */
export interface FileStep {
  step: number;
  line: StepLine;
  text: string;
}

export type ParsedFile =
  | { format: 'stepstore-export'; handle: string; meta: ConversationMeta; archives: ArchiveLine[]; steps: FileStep[] }
  | { format: 'crabtalk-jsonl'; meta: Record<string, unknown>; steps: FileStep[] };

/** A problem with the file, at a line number (1-based). */
export class FileProblem extends Error {
  constructor(
    readonly lineNumber: number,
    message: string,
  ) {
    super(message);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseLine(text: string, n: number): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new FileProblem(n, 'not valid JSON');
  }
  if (!isObject(value)) throw new FileProblem(n, 'not a JSON object');
  return value;
}

function checkMetaShape(meta: unknown, n: number, what: string): asserts meta is Record<string, unknown> {
  if (!isObject(meta)) throw new FileProblem(n, `${what} is not an object`);
  for (const field of ['agent', 'created_by'] as const) {
    // Any string: an empty agent or sender is a name too (its slug is empty, as in `crab__1`).
    if (typeof meta[field] !== 'string') throw new FileProblem(n, `${what} has no "${field}"`);
  }
}

/** Parses a whole export or crabtalk file; throws FileProblem at the first thing wrong with it. */
export function parseFile(text: string): ParsedFile {
  const lines = text.split('\n').map((l, i) => ({ n: i + 1, text: l.replace(/\r$/, '') })).filter((l) => l.text.trim() !== '');
  const first = lines[0];
  if (first === undefined) throw new FileProblem(1, 'the file is empty');
  const head = parseLine(first.text, first.n);
  const rest = lines.slice(1);
  if ('stepstore_export' in head) return parseExport(head, first.n, rest);
  if (typeof head.agent === 'string' && typeof head.created_by === 'string' && !('message' in head)) return parseCrabtalk(head, first.n, rest);
  throw new FileProblem(first.n, 'neither a stepstore export header nor a crabtalk session meta');
}

function parseExport(head: Record<string, unknown>, n: number, rest: { n: number; text: string }[]): ParsedFile {
  const version = head.stepstore_export;
  if (typeof version !== 'number' || !Number.isInteger(version)) throw new FileProblem(n, '"stepstore_export" is not a format version');
  if (version > EXPORT_VERSION) throw new FileProblem(n, `export format ${version} is newer than this stepstore reads (${EXPORT_VERSION}): upgrade stepstore`);
  if (version < 1) throw new FileProblem(n, `unknown export format ${version}`);
  if (typeof head.handle !== 'string') throw new FileProblem(n, 'the header has no "handle"');
  checkMetaShape(head.meta, n, 'the header\'s "meta"');
  const archives: ArchiveLine[] = [];
  const steps: FileStep[] = [];
  const seen = new Map<string, string>();
  for (const { n: at, text } of rest) {
    const value = parseLine(text, at);
    if ('step' in value) {
      const { step } = value;
      if (typeof step !== 'number' || !Number.isSafeInteger(step) || step < 1) throw new FileProblem(at, '"step" is not a step number');
      const previous = steps.at(-1)?.step ?? 0;
      if (step <= previous) throw new FileProblem(at, `step ${step} comes after step ${previous}: steps must be in increasing order`);
      const stored = storedText(value, text, at);
      const line = JSON.parse(stored) as unknown;
      if (!isStepLine(line)) throw new FileProblem(at, `step ${step} is not a message, event or compact marker`);
      steps.push({ step, line, text: stored });
    } else if ('archive' in value) {
      const { archive, content, archived_at } = value;
      if (typeof archive !== 'string' || archive === '') throw new FileProblem(at, '"archive" is not an archive name');
      if (typeof content !== 'string') throw new FileProblem(at, `archive ${archive} has no string "content"`);
      if (archived_at !== undefined && typeof archived_at !== 'string') throw new FileProblem(at, `archive ${archive} has a non-string "archived_at"`);
      const before = seen.get(archive);
      if (before !== undefined && before !== content) throw new FileProblem(at, `archive ${archive} appears twice with different content`);
      if (before === undefined) {
        seen.set(archive, content);
        archives.push(archived_at === undefined ? { archive, content } : { archive, content, archived_at });
      }
    } else {
      throw new FileProblem(at, 'neither a step nor an archive line');
    }
  }
  return { format: 'stepstore-export', handle: head.handle, meta: head.meta as ConversationMeta, archives, steps };
}

/**
 * The step's stored text: `text` as given, or the `line` value exactly as the
 * export spells it (export writes `{"step":N,"line":<stored text>}`); a line
 * some other tool re-encoded is taken as it now reads.
 */
function storedText(value: Record<string, unknown>, text: string, at: number): string {
  if ('text' in value) {
    if (typeof value.text !== 'string') throw new FileProblem(at, '"text" is not a string');
    try {
      JSON.parse(value.text);
    } catch {
      throw new FileProblem(at, '"text" is not valid JSON');
    }
    return value.text;
  }
  if (!('line' in value)) throw new FileProblem(at, 'a step line needs "line" or "text"');
  const exact = /^\{"step":\d+,"line":([\s\S]*)\}$/.exec(text);
  if (exact !== null) {
    try {
      JSON.parse(exact[1]!);
      return exact[1]!;
    } catch {
      // not our spelling after all: fall through
    }
  }
  return JSON.stringify(value.line);
}

function parseCrabtalk(head: Record<string, unknown>, n: number, rest: { n: number; text: string }[]): ParsedFile {
  checkMetaShape(head, n, 'the meta line');
  const steps = rest.map(({ n: at, text }, i) => {
    const line = parseLine(text, at);
    if (!isStepLine(line)) throw new FileProblem(at, 'not a message, event or compact line');
    return { step: i + 1, line, text };
  });
  return { format: 'crabtalk-jsonl', meta: head, steps };
}
