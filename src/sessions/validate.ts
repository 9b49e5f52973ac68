// Batch validation for appends: every item is checked and encoded before the
// first one is written, so one bad item means nothing of the call is stored.
// An item must read back as the kind it was written as (step-line.ts).

import { StepStoreError } from '../errors.js';
import { isPlainObject } from './step-line.js';
import type { StepKind } from '../types.js';

/** One step ready for a backend: its kind and the exact JSON text to store. */
export interface EncodedStep {
  kind: StepKind;
  json: string;
}

export const DEFAULT_MAX_STEP_BYTES = 4 * 1024 * 1024;

function invalid(message: string): StepStoreError {
  return new StepStoreError('INVALID_ENTRY', message);
}

/**
 * Throws INVALID_ENTRY unless `value` is plain JSON: null, booleans, finite
 * numbers, strings, arrays and plain objects, without cycles. Properties whose
 * value is `undefined` are allowed (JSON drops them).
 */
export function assertPlainJson(value: unknown, path: string): void {
  const ancestors = new Set<object>();
  // The path to the value being visited, joined only when it is refused.
  const keys: (string | number)[] = [];
  const at = () => path + keys.map((key) => (typeof key === 'number' ? `[${key}]` : `.${key}`)).join('');
  const visit = (v: unknown, inObject: boolean): void => {
    switch (typeof v) {
      case 'string':
      case 'boolean':
        return;
      case 'number':
        if (!Number.isFinite(v)) throw invalid(`${at()} is ${v}, which JSON cannot hold`);
        return;
      case 'undefined':
        if (inObject) return;
        throw invalid(`${at()} is undefined, which JSON cannot hold`);
      case 'object': {
        if (v === null) return;
        if (ancestors.has(v)) throw invalid(`${at()} refers back to itself (a cycle)`);
        ancestors.add(v);
        if (Array.isArray(v)) {
          // An index loop, not forEach: a hole must be seen (and refused) as undefined.
          for (let i = 0; i < v.length; i++) {
            keys.push(i);
            visit(v[i], false);
            keys.pop();
          }
        } else if (isPlainObject(v)) {
          for (const key of Object.keys(v)) {
            keys.push(key);
            visit(v[key], true);
            keys.pop();
          }
        } else {
          throw invalid(`${at()} is a ${v.constructor?.name ?? 'non-plain object'}, not a plain object`);
        }
        ancestors.delete(v);
        return;
      }
      default:
        throw invalid(`${at()} is a ${typeof v}, which JSON cannot hold`);
    }
  };
  try {
    visit(value, false);
  } catch (err) {
    if (err instanceof RangeError) throw invalid(`${path} is nested too deeply`);
    throw err;
  }
}

function refuseBoundaryFields(item: Record<string, unknown>, at: string): void {
  if (typeof item.compact === 'string') {
    throw invalid(`${at} has a string "compact" field: it would read back as a compact marker`);
  }
  if (typeof item.archive_name === 'string' && typeof item.archived_at === 'string') {
    throw invalid(`${at} has string "archive_name" and "archived_at": it would read back as a compact marker`);
  }
}

function checkEntry(item: unknown, at: string): Record<string, unknown> {
  if (!isPlainObject(item)) throw invalid(`${at} must be a plain object`);
  if (!isPlainObject(item.message)) throw invalid(`${at}.message must be a plain object`);
  if (item.agent !== undefined && typeof item.agent !== 'string') throw invalid(`${at}.agent must be a string`);
  refuseBoundaryFields(item, at);
  if (typeof item.event === 'string') {
    throw invalid(`${at} has a string "event" field: it would read back as an event`);
  }
  if (item.agent === '') {
    // crabtalk omits an empty agent (the conversation's own agent).
    const { agent: _empty, ...rest } = item;
    return rest;
  }
  return item;
}

function checkEvent(item: unknown, at: string): Record<string, unknown> {
  if (!isPlainObject(item)) throw invalid(`${at} must be a plain object`);
  if (typeof item.event !== 'string') throw invalid(`${at}.event must be a string`);
  refuseBoundaryFields(item, at);
  return item;
}

/** Throws STEP_TOO_LARGE when `text` is over `maxStepBytes` bytes of UTF-8. */
export function checkStepSize(text: string, at: string, maxStepBytes: number): void {
  if (text.length * 3 <= maxStepBytes) return; // a UTF-16 unit never takes more than 3 bytes of UTF-8
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > maxStepBytes) {
    throw new StepStoreError('STEP_TOO_LARGE', `${at} is ${bytes} bytes, over maxStepBytes (${maxStepBytes})`);
  }
}

function encodeOne(item: Record<string, unknown>, at: string, maxStepBytes: number): string {
  assertPlainJson(item, at);
  const json = JSON.stringify(item);
  checkStepSize(json, at, maxStepBytes);
  return json;
}

/** Validates and encodes a whole batch of history entries or events; throws before anything is written. */
export function encodeBatch(items: unknown, kind: 'entry' | 'event', maxStepBytes: number): EncodedStep[] {
  const what = kind === 'entry' ? 'entries' : 'events';
  if (!Array.isArray(items)) throw invalid(`${what} must be an array`);
  return items.map((item, i) => {
    const at = `${what}[${i}]`;
    const checked = kind === 'entry' ? checkEntry(item, at) : checkEvent(item, at);
    return { kind, json: encodeOne(checked, at, maxStepBytes) };
  });
}

/** Encodes a compact marker naming `archiveName`. */
export function encodeMarker(archiveName: string, archivedAt: string): EncodedStep {
  return { kind: 'compact', json: JSON.stringify({ archive_name: archiveName, archived_at: archivedAt }) };
}
