// Step-line classification: what a stored step reads back as. crabtalk
// deserialises a step as an untagged enum, first match wins (the README's
// Compatibility section), so the order of the checks below is part of the
// format. Appends accept an item as kind K exactly when this reads it back as K.
//
// Two message modes. 'crabtalk': a step is read exactly as crabtalk 0.0.22
// reads it (its four events, its content-block messages). 'any': the same
// markers and events, plus history entries with any object `message` and
// trace events with any tag; a step carrying `message` is never an event
// unless crabtalk reads it as one, so the two never disagree on what is
// history.

import type { MessageMode, StepKind, StepLine } from '../types.js';
import { compactMarkerProblem, crabtalkEventProblem, crabtalkMessageProblem, entryProblem, legacyMarkerProblem } from './crabtalk-shapes.js';
import { NO_FACTS, factsOf, type JsonFacts } from './json-facts.js';
import { isPlainObject, plainCopy } from './json.js';

export type Classified = { kind: StepKind; line: StepLine } | { kind: null; reason: string };

export const MESSAGE_MODES: readonly MessageMode[] = ['crabtalk', 'any'];

const anyMessage = (message: unknown): string | null => (isPlainObject(message) ? null : '"message" is not an object');

/** How `value`, parsed from a step whose text has `facts`, reads back in `mode`. */
export function classifyValue(value: unknown, facts: JsonFacts, mode: MessageMode): Classified {
  if (!isPlainObject(value)) return { kind: null, reason: 'not a JSON object' };
  const line = value as StepLine;
  // The typeof tests only skip shapes that cannot match; the *Problem checks decide.
  if (typeof value.archive_name === 'string' && compactMarkerProblem(value, facts) === null) return { kind: 'compact', line };
  if (typeof value.compact === 'string' && legacyMarkerProblem(value, facts) === null) return { kind: 'legacy-compact', line };
  const eventProblem = typeof value.event === 'string' ? crabtalkEventProblem(value, facts) : '"event" is not a string';
  if (eventProblem === null) return { kind: 'event', line };
  const hasMessage = Object.hasOwn(value, 'message');
  if (mode === 'any' && !hasMessage && typeof value.event === 'string') return { kind: 'event', line };
  const messageProblem = entryProblem(value, facts, mode === 'crabtalk' ? crabtalkMessageProblem : anyMessage);
  if (messageProblem === null) return { kind: 'entry', line };
  if (hasMessage) return { kind: null, reason: `not a history entry: ${messageProblem}` };
  if (Object.hasOwn(value, 'event')) return { kind: null, reason: `not an event: ${eventProblem}` };
  return { kind: null, reason: 'matches no step shape (compact marker, legacy marker, event or history entry)' };
}

/** What kind of step `line` would be stored and read back as; null when it matches no step shape. */
export function stepKindOf(line: unknown, options: { messages?: MessageMode } = {}): StepKind | null {
  let copy: unknown;
  try {
    copy = plainCopy(line, 'line');
  } catch {
    return null;
  }
  return classifyValue(copy, NO_FACTS, options.messages ?? 'crabtalk').kind;
}

/** How a stored step's text reads back in `mode`. */
export function classifyStep(text: string, mode: MessageMode): Classified {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: null, reason: 'not valid JSON' };
  }
  // Only two events have number fields whose spelling matters (`42.0` is not a u64 to crabtalk).
  const event = isPlainObject(value) ? value.event : undefined;
  const facts = factsOf(text, value, event === 'tool_result' || event === 'done');
  if (facts.refused !== null) return { kind: null, reason: `crabtalk cannot parse it: it ${facts.refused}` };
  return classifyValue(value, facts, mode);
}

export function isBoundary(kind: StepKind): boolean {
  return kind === 'compact' || kind === 'legacy-compact';
}

/** How a kind is named in messages: "a compact marker", "an event", ... */
export function describeKind(kind: StepKind): string {
  return { compact: 'a compact marker', 'legacy-compact': 'a legacy compact marker', event: 'an event', entry: 'a history entry' }[kind];
}
