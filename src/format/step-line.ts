// Step-line classification: what a stored step reads back as. crabtalk
// deserialises a step as an untagged enum, first match wins (the README's
// Format section), so the order of the checks below is part of the format.
// Appends accept an item as kind K exactly when this reads it back as K.

import type { StepKind, StepLine } from '../types.js';
import { isPlainObject } from './json.js';

export type Classified = { kind: StepKind; line: StepLine } | { kind: null; reason: string };

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
  if (isPlainObject(value.message)) {
    if (optionalString(value.agent)) return { kind: 'entry', line };
    return { kind: null, reason: 'matches no step shape: "agent" is not a string' };
  }
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

/** How a kind is named in messages: "a compact marker", "an event", ... */
export function describeKind(kind: StepKind): string {
  return { compact: 'a compact marker', 'legacy-compact': 'a legacy compact marker', event: 'an event', entry: 'a history entry' }[kind];
}
