// Presentation for the command line: colours (only on a TTY, never with
// NO_COLOR or --no-color), tables, times (the CLI's one date-fns import),
// sizes, durations, and how messages, events and compact markers read.
// Nothing here touches a store.

import { formatDistanceToNow } from 'date-fns/formatDistanceToNow';
import { stepKindOf, type CompactMarker, type EventLine, type HistoryEntry, type LegacyCompactMarker, type StepKind, type StepLine } from '../index.js';

// ---------------------------------------------------------------- colours

export interface Style {
  enabled: boolean;
  bold(s: string): string;
  dim(s: string): string;
  red(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
  blue(s: string): string;
  magenta(s: string): string;
  cyan(s: string): string;
}

/**
 * Colour is on when `stream` is a TTY, `--no-color` was not given and
 * NO_COLOR is unset or empty (no-color.org); FORCE_COLOR (non-empty, not "0")
 * turns it on anywhere, for pagers such as `less -R`.
 */
export function colourWanted(stream: NodeJS.WriteStream, flag: boolean, env: NodeJS.ProcessEnv = process.env): boolean {
  if (!flag) return false;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '' && env.FORCE_COLOR !== '0') return true;
  return stream.isTTY === true && env.TERM !== 'dumb';
}

export function makeStyle(enabled: boolean): Style {
  const wrap = (open: number, close: number) => (s: string) => (enabled && s !== '' ? `\x1b[${open}m${s}\x1b[${close}m` : s);
  return {
    enabled,
    bold: wrap(1, 22),
    dim: wrap(2, 22),
    red: wrap(31, 39),
    green: wrap(32, 39),
    yellow: wrap(33, 39),
    blue: wrap(34, 39),
    magenta: wrap(35, 39),
    cyan: wrap(36, 39),
  };
}

/** Visible width: ANSI sequences count zero, every code point one. */
export function visibleWidth(s: string): number {
  return [...s.replace(/\x1b\[[0-9;]*m/g, '')].length;
}

// ---------------------------------------------------------------- text

/** One line of at most `max` code points, control characters shown as spaces, "…" when cut. */
export function oneLine(text: string, max: number): string {
  const flat = text.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  const chars = [...flat];
  return chars.length <= max ? flat : `${chars.slice(0, Math.max(1, max - 1)).join('')}…`;
}

/** Strips terminal control sequences from text that came out of a store, keeping newlines and tabs. */
export function safeText(text: string): string {
  return text.replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, '').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '');
}

/**
 * A name from a store as one quoted line, every control character escaped
 * (`"line\nbreak"`, `"\u001b"`): agents and senders may hold any of them.
 */
export function quoted(name: string): string {
  return JSON.stringify(name).replace(/[\x7f-\x9f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function indent(text: string, by = '  '): string {
  return text
    .split('\n')
    .map((line) => (line === '' ? line : by + line))
    .join('\n');
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

// ---------------------------------------------------------------- tables

export interface Column {
  header: string;
  align?: 'left' | 'right';
  /** Cells wider than this are cut with "…" (before colouring). */
  max?: number;
}

/** A plain-text table: a header row, then rows; cells are padded to the widest. */
export function table(style: Style, columns: Column[], rows: string[][], paint: (row: number, col: number, cell: string) => string = (_r, _c, s) => s): string {
  const cells = rows.map((row) => row.map((cell, i) => oneLine(cell, columns[i]?.max ?? 200)));
  const widths = columns.map((col, i) => Math.max(visibleWidth(col.header), ...cells.map((row) => visibleWidth(row[i] ?? ''))));
  const pad = (text: string, i: number, painted: string) => {
    const gap = ' '.repeat(Math.max(0, widths[i]! - visibleWidth(text)));
    return columns[i]!.align === 'right' ? gap + painted : painted + gap;
  };
  const line = (texts: string[], painted: string[]) => texts.map((t, i) => pad(t, i, painted[i]!)).join('  ').trimEnd();
  const headers = columns.map((c) => c.header);
  const out = [line(headers, headers.map((h) => style.bold(h)))];
  cells.forEach((row, r) => out.push(line(row, row.map((cell, c) => paint(r, c, cell)))));
  return out.join('\n');
}

// ---------------------------------------------------------------- times, sizes, durations

const FRACTION = /^(.*T\d{2}:\d{2}:\d{2})[.,](\d+)(.*)$/;

/** A stored RFC 3339 timestamp as a Date (milliseconds kept), or null when empty or unparsable. */
export function parseTime(timestamp: string): Date | null {
  if (typeof timestamp !== 'string' || timestamp === '') return null;
  const m = FRACTION.exec(timestamp);
  const date = new Date(m === null ? timestamp : `${m[1]}.${m[2]!.slice(0, 3).padEnd(3, '0')}${m[3]}`);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** "3 minutes ago"; "never" for an empty time; the raw text when unparsable. */
export function ago(timestamp: string, now: Date = new Date()): string {
  if (timestamp === '') return 'never';
  const date = parseTime(timestamp);
  if (date === null) return timestamp;
  return date.getTime() > now.getTime() + 1000 ? `${formatDistanceToNow(date)} from now` : formatDistanceToNow(date, { addSuffix: true });
}

/** Exact time in UTC, to the second: `2026-03-25 10:00:00 UTC`. */
export function exactTime(timestamp: string): string {
  const date = parseTime(timestamp);
  return date === null ? timestamp || 'never' : `${date.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** `30d`, `12h`, `1d12h`, `90m`, `2w`, `45s` in milliseconds; null for anything else. */
export function parseDuration(text: string): number | null {
  if (!/^(\d+[smhdw])+$/.test(text)) return null;
  let ms = 0;
  for (const [, amount, unit] of text.matchAll(/(\d+)([smhdw])/g)) ms += Number(amount) * UNIT_MS[unit!]!;
  return Number.isSafeInteger(ms) ? ms : null;
}

// ---------------------------------------------------------------- steps

/**
 * The kind a line reads back as: the library's rule (crabtalk's first-match
 * order). Markers read the same in every message mode; the store itself
 * refuses what its mode does not take, so files are checked loosely here.
 */
export function kindOf(line: StepLine): StepKind {
  return stepKindOf(line, { messages: 'any' })!;
}

export function isStepLine(value: unknown): value is StepLine {
  return stepKindOf(value, { messages: 'any' }) !== null;
}

const asRecord = (v: unknown): Record<string, unknown> | null =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;

function compactJson(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** `name(args)` for one tool call in any of the usual shapes (OpenAI, crabtalk, Anthropic tool_use, LangChain, OpenAI Agents). */
function toolCall(call: unknown): string {
  const c = asRecord(call) ?? {};
  const fn = asRecord(c.function) ?? {};
  const name = [fn.name, c.name, c.toolName].find((n) => typeof n === 'string') ?? '?';
  const args = fn.arguments ?? c.arguments ?? c.input ?? c.args ?? '';
  const id = [c.id, c.callId, c.call_id, c.toolCallId].find((v) => typeof v === 'string');
  return `${String(name)}(${oneLine(compactJson(args), 120)})${id === undefined ? '' : ` [${String(id)}]`}`;
}

const resultLine = (id: unknown, output: unknown) => `[result of ${typeof id === 'string' ? id : '?'}] ${oneLine(compactJson(output ?? ''), 500)}`;

/** A message as the CLI shows it, whatever framework wrote it. */
interface Readable {
  role: string;
  /** Text and tool calls in the order the message has them. */
  parts: { call: boolean; text: string }[];
  /** The tool call a tool result answers. */
  answers?: string;
}

const addText = (into: Readable, text: string) => into.parts.push({ call: false, text });
const addCall = (into: Readable, call: unknown) => into.parts.push({ call: true, text: toolCall(call) });

/** Text, tool calls and results of a content array (chat, crabtalk, Anthropic, OpenAI Responses parts). */
function readContent(content: unknown, into: Readable): void {
  if (typeof content === 'string') addText(into, content);
  else if (Array.isArray(content)) {
    for (const part of content) {
      const p = asRecord(part);
      if (typeof part === 'string') addText(into, part);
      else if (p === null) addText(into, compactJson(part));
      else if (typeof p.text === 'string') addText(into, p.text);
      else if (typeof p.refusal === 'string') addText(into, `[refusal] ${p.refusal}`);
      else if (p.type === 'tool_use' || p.type === 'tool_call') addCall(into, p);
      else if (p.type === 'tool_result') addText(into, resultLine(p.tool_use_id, p.content));
      else addText(into, `[${typeof p.type === 'string' ? p.type : 'part'}]`);
    }
  } else if (content !== undefined && content !== null) addText(into, compactJson(content));
}

const LANGCHAIN_ROLES: Record<string, string> = { human: 'user', ai: 'assistant', tool: 'tool', system: 'system', function: 'tool', generic: 'message' };

/** A LangChain message's fields: `{ type, data }` (its stored form) or `{ lc, type: 'constructor', id, kwargs }` (serialised, as LangGraph keeps state). */
function langchainFields(message: Record<string, unknown>): { role: string; fields: Record<string, unknown> } | null {
  const data = asRecord(message.data);
  if (typeof message.type === 'string' && data !== null && 'content' in data) {
    return { role: LANGCHAIN_ROLES[message.type] ?? message.type, fields: data };
  }
  const kwargs = asRecord(message.kwargs);
  if (message.lc === 1 && message.type === 'constructor' && Array.isArray(message.id) && kwargs !== null) {
    const cls = String(message.id.at(-1) ?? '');
    const role = /^(Human)/.test(cls) ? 'user' : /^AI/.test(cls) ? 'assistant' : /^Tool/.test(cls) ? 'tool' : /^System/.test(cls) ? 'system' : cls;
    return { role, fields: kwargs };
  }
  return null;
}

/** An AI SDK UIMessage part: text, reasoning, a tool call with its input and output, a file, data. */
function readUiPart(part: unknown, into: Readable): void {
  const p = asRecord(part) ?? {};
  const type = typeof p.type === 'string' ? p.type : 'part';
  if (type === 'text' && typeof p.text === 'string') addText(into, p.text);
  else if (type === 'reasoning' && typeof p.text === 'string') addText(into, `[reasoning] ${p.text}`);
  else if (type.startsWith('tool-') || type === 'dynamic-tool') {
    addCall(into, { toolName: type === 'dynamic-tool' ? p.toolName : type.slice(5), input: p.input, toolCallId: p.toolCallId });
    if (p.output !== undefined) addText(into, resultLine(p.toolCallId, p.output));
    else if (typeof p.errorText === 'string') addText(into, `[error of ${String(p.toolCallId ?? '?')}] ${p.errorText}`);
  } else if (type === 'step-start') return;
  else if (type === 'file') addText(into, `[file ${String(p.mediaType ?? '')}${typeof p.filename === 'string' ? ` ${p.filename}` : ''}]`);
  else if (type === 'source-url') addText(into, `[source ${String(p.url ?? '')}]`);
  else addText(into, `[${type}] ${oneLine(compactJson(p.data ?? ''), 200)}`);
}

/**
 * What a stored message says, whichever shape it has: crabtalk's and the
 * chat APIs' `{ role, content }`, OpenAI Agents items (function calls and
 * their results), LangChain messages (stored or serialised), AI SDK
 * UIMessages (`parts`).
 */
export function readMessage(message: Record<string, unknown>): Readable {
  const role = typeof message.role === 'string' ? message.role : 'message';
  const out: Readable = { role, parts: [] };
  const langchain = langchainFields(message);
  if (langchain !== null) {
    const { fields } = langchain;
    out.role = langchain.role;
    readContent(fields.content, out);
    if (Array.isArray(fields.tool_calls)) for (const call of fields.tool_calls) addCall(out, call);
    if (typeof fields.tool_call_id === 'string') out.answers = fields.tool_call_id;
    return out;
  }
  if (Array.isArray(message.parts) && typeof message.role === 'string') {
    for (const part of message.parts) readUiPart(part, out);
    return out;
  }
  switch (message.type) {
    case 'function_call':
    case 'hosted_tool_call':
    case 'computer_call':
    case 'shell_call':
    case 'apply_patch_call':
      out.role = 'assistant';
      addCall(out, { name: message.name ?? message.type, arguments: message.arguments ?? message.action ?? message.operation, callId: message.callId });
      return out;
    case 'function_call_result':
    case 'computer_call_result':
    case 'shell_call_output':
    case 'apply_patch_call_output': {
      out.role = 'tool';
      if (typeof message.callId === 'string') out.answers = message.callId;
      const output = asRecord(message.output);
      if (output !== null && typeof output.text === 'string') addText(out, output.text);
      else readContent(message.output, out);
      return out;
    }
    case 'reasoning':
      out.role = 'reasoning';
      readContent(message.content, out);
      return out;
    default:
      if (typeof message.type === 'string' && message.type !== 'message' && message.content === undefined) {
        addText(out, `[${message.type}]`);
        return out;
      }
  }
  readContent(message.content, out);
  if (Array.isArray(message.tool_calls)) for (const call of message.tool_calls) addCall(out, call);
  if (asRecord(message.function_call) !== null) addCall(out, message.function_call);
  if (typeof message.tool_call_id === 'string') out.answers = message.tool_call_id;
  return out;
}

const ROLE_COLOUR: Record<string, keyof Style> = { user: 'green', assistant: 'cyan', tool: 'magenta', system: 'yellow' };

/** The heading of a message: role, the guest agent when there is one, the tool call it answers. */
function messageHeading(style: Style, entry: HistoryEntry, read: Readable): string {
  const role = safeText(read.role);
  const paint = ROLE_COLOUR[role];
  let heading = style.bold(paint === undefined ? role : (style[paint] as (s: string) => string)(role));
  if (read.answers !== undefined) heading += style.dim(` (result of ${safeText(read.answers)})`);
  if (typeof entry.agent === 'string' && entry.agent !== '') heading += style.dim(` · agent ${safeText(entry.agent)}`);
  return heading;
}

/** A message as a readable block: heading, then its text and tool calls indented. */
export function messageBlock(style: Style, entry: HistoryEntry, prefix = ''): string {
  const read = readMessage(asRecord(entry.message) ?? {});
  const lines = [`${prefix}${messageHeading(style, entry, read)}`];
  for (const { call, text } of read.parts) {
    if (call) lines.push(indent(style.yellow(`→ ${safeText(text)}`)));
    else if (text.trim() !== '') lines.push(indent(safeText(text)));
  }
  if (lines.length === 1) lines.push(indent(style.dim('(empty)')));
  return lines.join('\n');
}

/** One line for a trace event. */
export function eventSummary(event: EventLine): string {
  const { event: name, ts: _ts, ...rest } = event;
  let detail: string;
  if (name === 'tool_start' && Array.isArray(rest.calls)) detail = rest.calls.map(toolCall).join(', ');
  else if (name === 'tool_result') detail = `${String(rest.call_id ?? '?')}${typeof rest.duration_ms === 'number' ? `, ${rest.duration_ms} ms` : ''}`;
  else if (name === 'done') {
    const bits = [rest.model !== undefined ? `model ${String(rest.model)}` : '', rest.iterations !== undefined ? plural(Number(rest.iterations), 'iteration') : '', rest.stop_reason !== undefined ? `stop: ${String(rest.stop_reason)}` : ''];
    detail = bits.filter((b) => b !== '').join(', ');
  } else if (name === 'user_steered' && typeof rest.content === 'string') detail = rest.content;
  else if (name === 'langgraph_checkpoint') {
    const changed = asRecord(rest.channel_values);
    detail = `${String(rest.id ?? '?')}${rest.ns ? ` (namespace ${String(rest.ns)})` : ''}${changed === null ? '' : `, changed: ${Object.keys(changed).join(', ') || 'nothing'}`}`;
  } else if (name === 'langgraph_writes' && Array.isArray(rest.writes)) {
    detail = `task ${String(rest.task_id ?? '?')} of ${String(rest.checkpoint_id ?? '?')}: ${rest.writes.map((w) => String(asRecord(w)?.channel ?? '?')).join(', ')}`;
  }
  else detail = Object.keys(rest).length === 0 ? '' : compactJson(rest);
  return safeText(oneLine(detail === '' ? name : `${name}: ${detail}`, 200));
}

/** The line that marks a compaction boundary. */
export function boundaryLine(style: Style, line: CompactMarker | LegacyCompactMarker): string {
  if ('archive_name' in line && typeof line.archive_name === 'string') {
    return style.yellow(style.bold(`══ compacted: everything above is summarised in archive ${safeText(line.archive_name)} (${exactTime(line.archived_at)}) ══`));
  }
  const legacy = line as LegacyCompactMarker;
  const title = legacy.title !== undefined && legacy.title !== '' ? ` "${safeText(legacy.title)}"` : '';
  const at = legacy.archived_at !== undefined ? ` (${exactTime(legacy.archived_at)})` : '';
  return style.yellow(style.bold(`══ compacted (legacy marker${title}${at}): everything above is summarised as ══`));
}
