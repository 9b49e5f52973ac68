// crabtalk v0.0.22's step shapes, as its serde types read them: which parsed
// JSON values are a compact marker, a legacy marker, one of its four events,
// a history entry with a content-block message. Each check returns null when
// crabtalk reads the value as that shape, else why not (naming the field).
//
// serde rules followed here: extra fields are ignored; a known field given
// twice fails its struct; a String field (even with a default) refuses null,
// an Option field takes null as absent; u64/u32 fields take only an unsigned
// integer literal in range (so `42.0`, `-0`, `4.2e1` fail); a free JSON value
// (`input`, `source`) takes anything.

import { isPlainObject } from './json.js';
import { isUnsignedLiteral, pathKey, type JsonFacts, type JsonPath } from './json-facts.js';

/** null: crabtalk reads it; otherwise why not. */
export type ShapeProblem = string | null;

type Json = Record<string, unknown>;

/** How a path is shown in messages: `message.content[1].text`. */
export function showPath(path: JsonPath): string {
  return path.map((segment, i) => (typeof segment === 'number' ? `[${segment}]` : i === 0 ? segment : `.${segment}`)).join('');
}

const U64_LIMIT = 2 ** 64;
const U32_MAX = 4294967295;
const U64_MAX = 18446744073709551615n;

/** A struct at `path` whose known `fields` are each given at most once. */
function duplicated(facts: JsonFacts, path: JsonPath, fields: readonly string[]): ShapeProblem {
  const seen = facts.duplicates?.get(pathKey(path));
  if (seen === undefined) return null;
  const twice = fields.find((field) => seen.has(field));
  return twice === undefined ? null : `"${showPath([...path, twice])}" is given twice`;
}

function struct(value: unknown, facts: JsonFacts, path: JsonPath, fields: readonly string[]): ShapeProblem {
  if (!isPlainObject(value)) return `"${showPath(path) || 'the step'}" is not an object`;
  return duplicated(facts, path, fields);
}

function string(obj: Json, key: string, path: JsonPath): ShapeProblem {
  if (typeof obj[key] === 'string') return null;
  return `"${showPath([...path, key])}" ${Object.hasOwn(obj, key) ? 'is not a string' : 'is missing'}`;
}

/** A String field with a serde default: absent is fine, null is not. */
function defaultedString(obj: Json, key: string, path: JsonPath): ShapeProblem {
  return Object.hasOwn(obj, key) ? string(obj, key, path) : null;
}

/** An Option<String> field: absent and null are fine. */
function optionalString(obj: Json, key: string, path: JsonPath): ShapeProblem {
  return obj[key] === undefined || obj[key] === null ? null : string(obj, key, path);
}

function unsigned(obj: Json, key: string, path: JsonPath, facts: JsonFacts, bits: 32 | 64): ShapeProblem {
  const at = [...path, key];
  const value = obj[key];
  if (value === undefined) return `"${showPath(at)}" is missing`;
  const what = `"${showPath(at)}" must be an unsigned ${bits}-bit integer`;
  if (typeof value !== 'number') return what;
  const raw = facts.numbers?.get(pathKey(at));
  if (raw !== undefined) {
    if (!isUnsignedLiteral(raw) || BigInt(raw) > (bits === 32 ? BigInt(U32_MAX) : U64_MAX)) return what;
    return null;
  }
  // Written by JSON.stringify or a plain literal below 10^15: the value tells it all.
  if (!Number.isInteger(value) || value < 0 || value >= (bits === 32 ? U32_MAX + 1 : U64_LIMIT)) return what;
  return null;
}

function optionalUnsigned(obj: Json, key: string, path: JsonPath, facts: JsonFacts, bits: 32 | 64): ShapeProblem {
  return obj[key] === undefined || obj[key] === null ? null : unsigned(obj, key, path, facts, bits);
}

export function compactMarkerProblem(value: Json, facts: JsonFacts): ShapeProblem {
  return duplicated(facts, [], ['archive_name', 'archived_at']) ??
    string(value, 'archive_name', []) ??
    string(value, 'archived_at', []);
}

export function legacyMarkerProblem(value: Json, facts: JsonFacts): ShapeProblem {
  return duplicated(facts, [], ['compact', 'title', 'archived_at']) ??
    string(value, 'compact', []) ??
    defaultedString(value, 'title', []) ??
    defaultedString(value, 'archived_at', []);
}

/** The four events crabtalk 0.0.22 knows, each with its fields. */
export const CRABTALK_EVENTS = ['tool_start', 'tool_result', 'done', 'user_steered'] as const;

function usageProblem(value: unknown, facts: JsonFacts): ShapeProblem {
  const path = ['usage'];
  const counters = ['prompt_tokens', 'completion_tokens', 'total_tokens'];
  const optional = ['prompt_cache_hit_tokens', 'prompt_cache_miss_tokens'];
  const problem = struct(value, facts, path, [...counters, ...optional, 'completion_tokens_details']);
  if (problem !== null) return problem;
  const usage = value as Json;
  for (const key of counters) {
    const bad = unsigned(usage, key, path, facts, 32);
    if (bad !== null) return bad;
  }
  for (const key of optional) {
    const bad = optionalUnsigned(usage, key, path, facts, 32);
    if (bad !== null) return bad;
  }
  const details = usage.completion_tokens_details;
  if (details === undefined || details === null) return null;
  const at = [...path, 'completion_tokens_details'];
  return struct(details, facts, at, ['reasoning_tokens']) ?? optionalUnsigned(details as Json, 'reasoning_tokens', at, facts, 32);
}

function toolCallsProblem(value: unknown, facts: JsonFacts): ShapeProblem {
  if (!Array.isArray(value)) return '"calls" is not an array';
  for (let i = 0; i < value.length; i++) {
    const path = ['calls', i];
    const call = value[i] as Json;
    const problem = struct(call, facts, path, ['id', 'name', 'arguments']) ??
      string(call, 'id', path) ??
      string(call, 'name', path) ??
      defaultedString(call, 'arguments', path);
    if (problem !== null) return problem;
  }
  return null;
}

/** null when crabtalk reads `value` as one of its four events. */
export function crabtalkEventProblem(value: Json, facts: JsonFacts): ShapeProblem {
  const tagTwice = duplicated(facts, [], ['event']);
  if (tagTwice !== null) return tagTwice;
  const tag = value.event;
  if (typeof tag !== 'string') return '"event" is not a string';
  const root: JsonPath = [];
  switch (tag) {
    case 'tool_start':
      return duplicated(facts, root, ['calls', 'ts']) ??
        (Object.hasOwn(value, 'calls') ? toolCallsProblem(value.calls, facts) : '"calls" is missing') ??
        string(value, 'ts', root);
    case 'tool_result':
      return duplicated(facts, root, ['call_id', 'duration_ms', 'ts']) ??
        string(value, 'call_id', root) ??
        unsigned(value, 'duration_ms', root, facts, 64) ??
        string(value, 'ts', root);
    case 'done':
      return duplicated(facts, root, ['model', 'iterations', 'stop_reason', 'usage', 'ts']) ??
        string(value, 'model', root) ??
        unsigned(value, 'iterations', root, facts, 64) ??
        string(value, 'stop_reason', root) ??
        (Object.hasOwn(value, 'usage') ? usageProblem(value.usage, facts) : '"usage" is missing') ??
        string(value, 'ts', root);
    case 'user_steered':
      return duplicated(facts, root, ['content', 'ts']) ??
        string(value, 'content', root) ??
        string(value, 'ts', root);
    default:
      return `"event" is ${JSON.stringify(tag)}, not one of crabtalk's events (${CRABTALK_EVENTS.join(', ')})`;
  }
}

const BLOCK_FIELDS: Record<string, readonly string[]> = {
  text: ['text'],
  tool_use: ['id', 'name', 'input'],
  tool_result: ['tool_use_id', 'name', 'content'],
  thinking: ['thinking', 'signature'],
  image: ['source'],
};

function blocksProblem(value: unknown, facts: JsonFacts, path: JsonPath): ShapeProblem {
  if (!Array.isArray(value)) return `"${showPath(path)}" must be an array of content blocks`;
  for (let i = 0; i < value.length; i++) {
    const problem = blockProblem(value[i], facts, [...path, i]);
    if (problem !== null) return problem;
  }
  return null;
}

function blockProblem(value: unknown, facts: JsonFacts, path: JsonPath): ShapeProblem {
  const shape = struct(value, facts, path, ['type']);
  if (shape !== null) return shape;
  const block = value as Json;
  const type = block.type;
  const fields = typeof type === 'string' && Object.hasOwn(BLOCK_FIELDS, type) ? BLOCK_FIELDS[type]! : null;
  if (fields === null) {
    return `"${showPath([...path, 'type'])}" must be one of ${Object.keys(BLOCK_FIELDS).join(', ')}`;
  }
  const twice = duplicated(facts, path, fields);
  if (twice !== null) return twice;
  const present = (key: string): ShapeProblem => (Object.hasOwn(block, key) ? null : `"${showPath([...path, key])}" is missing`);
  switch (type) {
    case 'text':
      return string(block, 'text', path);
    case 'tool_use':
      return string(block, 'id', path) ??
        string(block, 'name', path) ??
        present('input');
    case 'tool_result':
      return string(block, 'tool_use_id', path) ??
        optionalString(block, 'name', path) ??
        (typeof block.content === 'string' ? null : Object.hasOwn(block, 'content') ? blocksProblem(block.content, facts, [...path, 'content']) : present('content'));
    case 'thinking':
      return string(block, 'thinking', path) ??
        optionalString(block, 'signature', path);
    default:
      return present('source');
  }
}

/** null when `message` is crabtalk 0.0.22's content-block message: `{ role, content: [blocks] }`. */
export function crabtalkMessageProblem(message: unknown, facts: JsonFacts): ShapeProblem {
  const path = ['message'];
  return struct(message, facts, path, ['role', 'content']) ??
    string(message as Json, 'role', path) ??
    (Object.hasOwn(message as Json, 'content') ? blocksProblem((message as Json).content, facts, [...path, 'content']) : '"message.content" is missing');
}

/** null when `value` is a history entry: `{ agent?, message }`, with a message `messageProblem` accepts. */
export function entryProblem(value: Json, facts: JsonFacts, messageProblem: (message: unknown, facts: JsonFacts) => ShapeProblem): ShapeProblem {
  return duplicated(facts, [], ['agent', 'message']) ??
    defaultedString(value, 'agent', []) ??
    (Object.hasOwn(value, 'message') ? messageProblem(value.message, facts) : '"message" is missing');
}
