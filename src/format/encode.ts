// Encoding items as steps: every item is checked and encoded before the first
// one is written, so one bad item means nothing of the call is stored. An
// item is accepted as a kind exactly when the classifier (step-line.ts) reads
// it back as that kind.

import { StepStoreError, invalidEntry } from '../errors.js';
import type { MessageMode, StepKind } from '../types.js';
import { NO_FACTS } from './json-facts.js';
import { isPlainObject, plainCopy } from './json.js';
import { classifyStep, classifyValue, describeKind } from './step-line.js';

/** One step ready for a backend: its kind and the exact JSON text to store. */
export interface EncodedStep {
  kind: StepKind;
  json: string;
}

export const DEFAULT_MAX_STEP_BYTES = 4 * 1024 * 1024;

/** Throws STEP_TOO_LARGE when `text` is over `maxStepBytes` bytes of UTF-8. */
export function checkStepSize(text: string, at: string, maxStepBytes: number): void {
  if (text.length * 3 <= maxStepBytes) return; // a UTF-16 unit never takes more than 3 bytes of UTF-8
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > maxStepBytes) {
    throw new StepStoreError('STEP_TOO_LARGE', `${at} is ${bytes} bytes, over maxStepBytes (${maxStepBytes})`);
  }
}

/** crabtalk would replay an event carrying a message as history the moment the event stopped matching its schema. */
function refuseMessageOnEvent(kind: StepKind, line: object, at: string): void {
  if (kind === 'event' && Object.hasOwn(line, 'message')) throw invalidEntry(`${at} is an event and must not carry "message"`);
}

/** Checks that `item` is plain JSON reading back as `expected` (any kind, stored exactly, when null). */
function encodeItem(original: unknown, expected: StepKind | null, at: string, maxStepBytes: number, mode: MessageMode): EncodedStep {
  const item = plainCopy(original, at);
  if (!isPlainObject(item)) throw invalidEntry(`${at} must be a plain object`);
  const read = classifyValue(item, NO_FACTS, mode);
  if (read.kind === null) {
    const hint = mode === 'crabtalk' && Object.hasOwn(item, 'message') ? " (a store opened with messages: 'any' takes other message shapes)" : '';
    throw invalidEntry(`${at}: ${read.reason}${hint}`);
  }
  if (expected !== null && read.kind !== expected) {
    throw invalidEntry(`${at} would read back as ${describeKind(read.kind)}, not as ${describeKind(expected)}`);
  }
  refuseMessageOnEvent(read.kind, item, at);
  const json = JSON.stringify(expected === 'entry' ? withoutEmptyAgent(item) : item);
  checkStepSize(json, at, maxStepBytes);
  return { kind: read.kind, json };
}

/** crabtalk omits an empty `agent` (the conversation's own agent), so appendMessages does too. */
function withoutEmptyAgent(item: Record<string, unknown>): Record<string, unknown> {
  if (item.agent !== '') return item;
  const { agent: _empty, ...rest } = item;
  return rest;
}

/** Validates and encodes a whole batch of history entries or events; throws before anything is written. */
export function encodeBatch(items: unknown, kind: 'entry' | 'event', maxStepBytes: number, mode: MessageMode): EncodedStep[] {
  const what = kind === 'entry' ? 'entries' : 'events';
  if (!Array.isArray(items)) throw invalidEntry(`${what} must be an array`);
  return items.map((item, i) => encodeItem(item, kind, `${what}[${i}]`, maxStepBytes, mode));
}

/** Validates and encodes raw steps of any kind, exactly as given (imports). */
export function encodeLines(lines: unknown, maxStepBytes: number, mode: MessageMode): EncodedStep[] {
  if (!Array.isArray(lines)) throw invalidEntry('lines must be an array');
  return lines.map((line, i) => encodeItem(line, null, `lines[${i}]`, maxStepBytes, mode));
}

/** Validates stored step texts (exact copies: big integers, `-0.0`, key order and escapes kept); any kind. */
export function encodeTexts(texts: unknown, maxStepBytes: number, mode: MessageMode): EncodedStep[] {
  if (!Array.isArray(texts)) throw invalidEntry('texts must be an array');
  return texts.map((text: unknown, i) => {
    const at = `texts[${i}]`;
    if (typeof text !== 'string') throw invalidEntry(`${at} must be a string`);
    checkStepSize(text, at, maxStepBytes);
    const read = classifyStep(text, mode);
    if (read.kind === null) throw invalidEntry(`${at}: ${read.reason}`);
    refuseMessageOnEvent(read.kind, read.line, at);
    return { kind: read.kind, json: text };
  });
}

/** Encodes a compact marker naming `archiveName`. */
export function encodeMarker(archiveName: string, archivedAt: string): EncodedStep {
  return { kind: 'compact', json: JSON.stringify({ archive_name: archiveName, archived_at: archivedAt }) };
}
