// Step-line classification: what a stored step reads back as. crabtalk
// deserialises a step as an untagged enum, first match wins (FORMAT.md), so
// the order of the checks below is part of the format.

import type { StepKind, StepLine } from '../types.js';

export type Classified = { kind: StepKind; line: StepLine } | { kind: null; reason: string };

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

const optionalString = (value: unknown): boolean => value === undefined || typeof value === 'string';

export function classifyValue(value: unknown): Classified {
  if (!isPlainObject(value)) return { kind: null, reason: 'not a JSON object' };
  const line = value as StepLine;
  if (typeof value.archive_name === 'string' && typeof value.archived_at === 'string') {
    return { kind: 'compact', line };
  }
  if (typeof value.compact === 'string' && optionalString(value.title) && optionalString(value.archived_at)) {
    return { kind: 'legacy-compact', line };
  }
  if (typeof value.event === 'string') return { kind: 'event', line };
  if (isPlainObject(value.message) && optionalString(value.agent)) return { kind: 'entry', line };
  return { kind: null, reason: 'matches no step shape' };
}

/** What kind of step `value` would be stored and read back as; null when it matches no StepLine shape. */
export function stepKindOf(value: unknown): StepKind | null {
  return classifyValue(value).kind;
}

export function classifyStep(text: string): Classified {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: null, reason: 'not valid JSON' };
  }
  return classifyValue(value);
}

export function isBoundary(kind: StepKind): boolean {
  return kind === 'compact' || kind === 'legacy-compact';
}
