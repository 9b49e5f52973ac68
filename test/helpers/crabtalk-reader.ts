// An independent model of what crabtalk v0.0.22 reads from a sessions folder,
// used as a test oracle. It has its own small JSON parser that mimics
// serde_json's limits, and decodes the parsed tree the way crabtalk's serde
// types do: the step is an untagged enum tried in order (compact marker,
// legacy marker, event, history entry), events and content blocks are tagged
// by a key, extra fields are ignored, a known field given twice fails its
// struct, a String field with a default still refuses null, Option fields take
// null as absent, and integer fields take only plain unsigned integer literals.
// Clarity over speed: nothing here shares code with src/.

import fs from 'node:fs';
import path from 'node:path';
import { isUtf8 } from 'node:buffer';

export type StepKind = 'compact' | 'legacy-compact' | 'event' | 'entry';

/** A JS value as crabtalk would write it back (serde's output), for comparisons. */
export type JsValue = null | boolean | number | string | JsValue[] | { [key: string]: JsValue };

/** A parsed JSON document. Objects keep every member in order, duplicates included. */
export type Json =
  | { kind: 'null' }
  | { kind: 'bool'; value: boolean }
  | { kind: 'number'; raw: string }
  | { kind: 'string'; value: string }
  | { kind: 'array'; items: Json[] }
  | { kind: 'object'; members: [string, Json][] };

/** The text is not JSON as serde_json accepts it. */
class SyntaxFailure extends Error {}

/** The JSON is fine but does not have the shape being tried. */
class ShapeMismatch extends Error {}

const U64_MAX = 18446744073709551615n;
const U32_MAX = 4294967295n;

// ---------------------------------------------------------------------------
// JSON parsing

/** serde_json allows 127 nested containers: the 128th `[` or `{` fails. */
const DEPTH_BUDGET = 128;

const SIMPLE_ESCAPES = new Map([
  ['"', '"'],
  ['\\', '\\'],
  ['/', '/'],
  ['b', '\b'],
  ['f', '\f'],
  ['n', '\n'],
  ['r', '\r'],
  ['t', '\t'],
]);

class JsonReader {
  private pos = 0;
  private remainingDepth = DEPTH_BUDGET;

  constructor(private readonly text: string) {}

  /** One strict value, then only whitespace to the end. */
  document(): Json {
    const value = this.value();
    this.expectEnd();
    return value;
  }

  expectEnd(): void {
    this.skipWhitespace();
    if (this.pos !== this.text.length) this.fail('trailing characters');
  }

  skipWhitespace(): void {
    while (this.pos < this.text.length && ' \t\n\r'.includes(this.text[this.pos]!)) this.pos++;
  }

  peek(): string | undefined {
    return this.text[this.pos];
  }

  expect(char: string): void {
    this.skipWhitespace();
    if (this.text[this.pos] !== char) this.fail(`expected '${char}'`);
    this.pos++;
  }

  fail(message: string): never {
    throw new SyntaxFailure(`${message} at offset ${this.pos}`);
  }

  /** A value parsed fully: strings checked for lone surrogates, numbers range-checked, depth counted. */
  value(): Json {
    this.skipWhitespace();
    const c = this.peek();
    if (c === undefined) this.fail('EOF while parsing a value');
    if (c === 'n') return this.literal('null', { kind: 'null' });
    if (c === 't') return this.literal('true', { kind: 'bool', value: true });
    if (c === 'f') return this.literal('false', { kind: 'bool', value: false });
    if (c === '"') return { kind: 'string', value: this.string(true) };
    if (c === '-' || (c >= '0' && c <= '9')) {
      const raw = this.numberText();
      // serde_json turns every number that is not a u64/i64 into an f64 and refuses infinity.
      if (!Number.isFinite(Number(raw))) this.fail('number out of range');
      return { kind: 'number', raw };
    }
    if (c === '[') return this.nested(() => this.arrayBody());
    if (c === '{') return this.nested(() => this.objectBody());
    this.fail('expected value');
  }

  private nested(parseBody: () => Json): Json {
    this.remainingDepth -= 1;
    if (this.remainingDepth === 0) this.fail('recursion limit exceeded');
    const result = parseBody();
    this.remainingDepth += 1;
    return result;
  }

  private arrayBody(): Json {
    this.pos++; // '['
    const items: Json[] = [];
    this.skipWhitespace();
    if (this.peek() === ']') {
      this.pos++;
      return { kind: 'array', items };
    }
    for (;;) {
      items.push(this.value());
      this.skipWhitespace();
      const c = this.peek();
      if (c === ',') {
        this.pos++;
        continue;
      }
      if (c === ']') {
        this.pos++;
        return { kind: 'array', items };
      }
      this.fail("expected ',' or ']'");
    }
  }

  private objectBody(): Json {
    this.pos++; // '{'
    const members: [string, Json][] = [];
    this.skipWhitespace();
    if (this.peek() === '}') {
      this.pos++;
      return { kind: 'object', members };
    }
    for (;;) {
      const key = this.key(true);
      this.expect(':');
      members.push([key, this.value()]);
      this.skipWhitespace();
      const c = this.peek();
      if (c === ',') {
        this.pos++;
        continue;
      }
      if (c === '}') {
        this.pos++;
        return { kind: 'object', members };
      }
      this.fail("expected ',' or '}'");
    }
  }

  /** An object key: must be a string. */
  key(checkSurrogates: boolean): string {
    this.skipWhitespace();
    if (this.peek() !== '"') this.fail('key must be a string');
    return this.string(checkSurrogates);
  }

  private literal(word: string, result: Json): Json {
    this.skipWord(word);
    return result;
  }

  private skipWord(word: string): void {
    if (this.text.slice(this.pos, this.pos + word.length) !== word) this.fail(`expected ${word}`);
    this.pos += word.length;
  }

  /**
   * A string starting at the opening quote. Raw control characters and unknown
   * escapes fail. With checkSurrogates, a `\u` escape in D800-DFFF must be a
   * high surrogate immediately followed by a `\u` low surrogate.
   */
  string(checkSurrogates: boolean): string {
    this.pos++; // opening quote
    let out = '';
    for (;;) {
      const c = this.text[this.pos];
      if (c === undefined) this.fail('EOF while parsing a string');
      this.pos++;
      if (c === '"') return out;
      if (c < ' ') this.fail('control character in string');
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = this.text[this.pos];
      this.pos++;
      const decoded = e === undefined ? undefined : SIMPLE_ESCAPES.get(e);
      if (decoded !== undefined) {
        out += decoded;
        continue;
      }
      if (e !== 'u') this.fail('invalid escape');
      const unit = this.hex4();
      if (!checkSurrogates || unit < 0xd800 || unit > 0xdfff) {
        out += String.fromCharCode(unit);
        continue;
      }
      if (unit >= 0xdc00) this.fail('lone low surrogate');
      if (this.text.slice(this.pos, this.pos + 2) !== '\\u') this.fail('high surrogate not followed by an escape');
      this.pos += 2;
      const low = this.hex4();
      if (low < 0xdc00 || low > 0xdfff) this.fail('high surrogate not followed by a low surrogate');
      out += String.fromCharCode(unit, low);
    }
  }

  private hex4(): number {
    const digits = this.text.slice(this.pos, this.pos + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(digits)) this.fail('invalid \\u escape');
    this.pos += 4;
    return parseInt(digits, 16);
  }

  /** JSON number grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?; returns the raw text. */
  numberText(): string {
    const start = this.pos;
    const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';
    if (this.peek() === '-') this.pos++;
    if (this.peek() === '0') {
      this.pos++;
      if (isDigit(this.peek())) this.fail('leading zero');
    } else if (isDigit(this.peek())) {
      while (isDigit(this.peek())) this.pos++;
    } else {
      this.fail('invalid number');
    }
    if (this.peek() === '.') {
      this.pos++;
      if (!isDigit(this.peek())) this.fail('invalid number');
      while (isDigit(this.peek())) this.pos++;
    }
    if (this.peek() === 'e' || this.peek() === 'E') {
      this.pos++;
      if (this.peek() === '+' || this.peek() === '-') this.pos++;
      if (!isDigit(this.peek())) this.fail('invalid number');
      while (isDigit(this.peek())) this.pos++;
    }
    return this.text.slice(start, this.pos);
  }

  /**
   * Skip a value nobody asked for, the way serde_json skips a struct's unknown
   * field: syntax only, no depth limit, no surrogate pairing, no number range.
   * (Recursive here: deep enough for any test input.)
   */
  skipIgnored(): void {
    this.skipWhitespace();
    const c = this.peek();
    if (c === undefined) this.fail('EOF while parsing a value');
    if (c === 'n') return this.skipWord('null');
    if (c === 't') return this.skipWord('true');
    if (c === 'f') return this.skipWord('false');
    if (c === '"') return void this.string(false);
    if (c === '-' || (c >= '0' && c <= '9')) return void this.numberText();
    if (c !== '[' && c !== '{') this.fail('expected value');
    const close = c === '[' ? ']' : '}';
    this.pos++;
    this.skipWhitespace();
    if (this.peek() === close) {
      this.pos++;
      return;
    }
    for (;;) {
      if (c === '{') {
        this.key(false);
        this.expect(':');
      }
      this.skipIgnored();
      this.skipWhitespace();
      const next = this.peek();
      this.pos++;
      if (next === ',') continue;
      if (next === close) return;
      this.pos--;
      this.fail(`expected ',' or '${close}'`);
    }
  }
}

/** A JS string holding an unpaired surrogate has no UTF-8 form: crabtalk could never read it. */
function hasLoneSurrogate(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
      return true;
    }
    if (unit >= 0xdc00 && unit <= 0xdfff) return true;
  }
  return false;
}

/** A free JSON value (serde_json::Value) as JS: a repeated key keeps its last value. */
function toJs(value: Json): JsValue {
  switch (value.kind) {
    case 'null':
      return null;
    case 'bool':
      return value.value;
    case 'number':
      return Number(value.raw);
    case 'string':
      return value.value;
    case 'array':
      return value.items.map(toJs);
    case 'object': {
      const out: { [key: string]: JsValue } = {};
      for (const [key, member] of value.members) {
        Object.defineProperty(out, key, { value: toJs(member), enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
  }
}

// ---------------------------------------------------------------------------
// Struct decoding (serde's derive rules)

type Fields = Map<string, Json>;

/** The known fields of an object; unknown ones are ignored, a known one given twice fails. */
function knownFields(value: Json, names: readonly string[], what: string): Fields {
  if (value.kind !== 'object') throw new ShapeMismatch(`${what}: expected an object`);
  const found: Fields = new Map();
  for (const [key, member] of value.members) {
    if (!names.includes(key)) continue;
    if (found.has(key)) throw new ShapeMismatch(`${what}: duplicate field \`${key}\``);
    found.set(key, member);
  }
  return found;
}

function requiredField(fields: Fields, name: string, what: string): Json {
  const value = fields.get(name);
  if (value === undefined) throw new ShapeMismatch(`${what}: missing field \`${name}\``);
  return value;
}

function asString(value: Json, name: string, what: string): string {
  if (value.kind !== 'string') throw new ShapeMismatch(`${what}: \`${name}\` is not a string`);
  return value.value;
}

/** `String`: required, never null. */
function requiredString(fields: Fields, name: string, what: string): string {
  return asString(requiredField(fields, name, what), name, what);
}

/** `#[serde(default)] String`: absent gives "", null still fails. */
function defaultedString(fields: Fields, name: string, what: string): string {
  const value = fields.get(name);
  return value === undefined ? '' : asString(value, name, what);
}

/** `Option<String>`: absent or null is None. */
function optionalString(fields: Fields, name: string, what: string): string | undefined {
  const value = fields.get(name);
  if (value === undefined || value.kind === 'null') return undefined;
  return asString(value, name, what);
}

/** An unsigned integer field: a plain literal (no sign, fraction or exponent) up to max. */
function asUnsigned(value: Json, max: bigint, name: string, what: string): number {
  if (value.kind !== 'number' || !/^(0|[1-9][0-9]*)$/.test(value.raw)) {
    throw new ShapeMismatch(`${what}: \`${name}\` is not an unsigned integer`);
  }
  if (BigInt(value.raw) > max) throw new ShapeMismatch(`${what}: \`${name}\` is out of range`);
  return Number(value.raw);
}

function requiredUnsigned(fields: Fields, name: string, max: bigint, what: string): number {
  return asUnsigned(requiredField(fields, name, what), max, name, what);
}

function optionalUnsigned(fields: Fields, name: string, max: bigint, what: string): number | undefined {
  const value = fields.get(name);
  if (value === undefined || value.kind === 'null') return undefined;
  return asUnsigned(value, max, name, what);
}

/**
 * An internally tagged enum: the tag key must appear exactly once with a string
 * value; the other members form the variant's struct.
 */
function splitTag(value: Json, tagKey: string, what: string): { tag: string; rest: Json } {
  if (value.kind !== 'object') throw new ShapeMismatch(`${what}: expected an object`);
  const tags = value.members.filter(([key]) => key === tagKey);
  if (tags.length === 0) throw new ShapeMismatch(`${what}: missing field \`${tagKey}\``);
  if (tags.length > 1) throw new ShapeMismatch(`${what}: duplicate field \`${tagKey}\``);
  const tag = tags[0]![1];
  if (tag.kind !== 'string') throw new ShapeMismatch(`${what}: \`${tagKey}\` is not a string`);
  return { tag: tag.value, rest: { kind: 'object', members: value.members.filter(([key]) => key !== tagKey) } };
}

// ---------------------------------------------------------------------------
// crabtalk's step shapes; each returns the line as crabtalk writes it back

function decodeCompact(value: Json): JsValue {
  const what = 'compact marker';
  const fields = knownFields(value, ['archive_name', 'archived_at'], what);
  return {
    archive_name: requiredString(fields, 'archive_name', what),
    archived_at: requiredString(fields, 'archived_at', what),
  };
}

function decodeLegacyCompact(value: Json): JsValue {
  const what = 'legacy compact marker';
  const fields = knownFields(value, ['compact', 'title', 'archived_at'], what);
  return {
    compact: requiredString(fields, 'compact', what),
    title: defaultedString(fields, 'title', what),
    archived_at: defaultedString(fields, 'archived_at', what),
  };
}

function decodeToolCall(value: Json): JsValue {
  const what = 'tool_start call';
  const fields = knownFields(value, ['id', 'name', 'arguments'], what);
  const call: { [key: string]: JsValue } = {
    id: requiredString(fields, 'id', what),
    name: requiredString(fields, 'name', what),
  };
  const args = defaultedString(fields, 'arguments', what);
  if (args !== '') call.arguments = args;
  return call;
}

function decodeUsage(value: Json): JsValue {
  const what = 'usage';
  const fields = knownFields(
    value,
    ['prompt_tokens', 'completion_tokens', 'total_tokens', 'completion_tokens_details', 'prompt_cache_hit_tokens', 'prompt_cache_miss_tokens'],
    what,
  );
  const usage: { [key: string]: JsValue } = {
    prompt_tokens: requiredUnsigned(fields, 'prompt_tokens', U32_MAX, what),
    completion_tokens: requiredUnsigned(fields, 'completion_tokens', U32_MAX, what),
    total_tokens: requiredUnsigned(fields, 'total_tokens', U32_MAX, what),
  };
  const details = fields.get('completion_tokens_details');
  if (details !== undefined && details.kind !== 'null') {
    const detailFields = knownFields(details, ['reasoning_tokens'], 'completion_tokens_details');
    const reasoning = optionalUnsigned(detailFields, 'reasoning_tokens', U32_MAX, 'completion_tokens_details');
    usage.completion_tokens_details = reasoning === undefined ? {} : { reasoning_tokens: reasoning };
  }
  for (const name of ['prompt_cache_hit_tokens', 'prompt_cache_miss_tokens']) {
    const count = optionalUnsigned(fields, name, U32_MAX, what);
    if (count !== undefined) usage[name] = count;
  }
  return usage;
}

function decodeEvent(value: Json): JsValue {
  const { tag, rest } = splitTag(value, 'event', 'event');
  const what = `${tag} event`;
  switch (tag) {
    case 'tool_start': {
      const fields = knownFields(rest, ['calls', 'ts'], what);
      const calls = requiredField(fields, 'calls', what);
      if (calls.kind !== 'array') throw new ShapeMismatch(`${what}: \`calls\` is not an array`);
      return { event: tag, calls: calls.items.map(decodeToolCall), ts: requiredString(fields, 'ts', what) };
    }
    case 'tool_result': {
      const fields = knownFields(rest, ['call_id', 'duration_ms', 'ts'], what);
      return {
        event: tag,
        call_id: requiredString(fields, 'call_id', what),
        duration_ms: requiredUnsigned(fields, 'duration_ms', U64_MAX, what),
        ts: requiredString(fields, 'ts', what),
      };
    }
    case 'done': {
      const fields = knownFields(rest, ['model', 'iterations', 'stop_reason', 'usage', 'ts'], what);
      return {
        event: tag,
        model: requiredString(fields, 'model', what),
        iterations: requiredUnsigned(fields, 'iterations', U64_MAX, what),
        stop_reason: requiredString(fields, 'stop_reason', what),
        usage: decodeUsage(requiredField(fields, 'usage', what)),
        ts: requiredString(fields, 'ts', what),
      };
    }
    case 'user_steered': {
      const fields = knownFields(rest, ['content', 'ts'], what);
      return { event: tag, content: requiredString(fields, 'content', what), ts: requiredString(fields, 'ts', what) };
    }
    default:
      throw new ShapeMismatch(`event: unknown variant \`${tag}\``);
  }
}

function decodeBlock(value: Json): JsValue {
  const { tag, rest } = splitTag(value, 'type', 'content block');
  const what = `${tag} block`;
  switch (tag) {
    case 'text': {
      const fields = knownFields(rest, ['text'], what);
      return { type: tag, text: requiredString(fields, 'text', what) };
    }
    case 'tool_use': {
      const fields = knownFields(rest, ['id', 'name', 'input'], what);
      return {
        type: tag,
        id: requiredString(fields, 'id', what),
        name: requiredString(fields, 'name', what),
        input: toJs(requiredField(fields, 'input', what)),
      };
    }
    case 'tool_result': {
      const fields = knownFields(rest, ['tool_use_id', 'name', 'content'], what);
      const block: { [key: string]: JsValue } = { type: tag, tool_use_id: requiredString(fields, 'tool_use_id', what) };
      const name = optionalString(fields, 'name', what);
      if (name !== undefined) block.name = name;
      // Untagged: a string first, then an array of blocks.
      const content = requiredField(fields, 'content', what);
      if (content.kind === 'string') block.content = content.value;
      else if (content.kind === 'array') block.content = content.items.map(decodeBlock);
      else throw new ShapeMismatch(`${what}: \`content\` is neither a string nor an array of blocks`);
      return block;
    }
    case 'thinking': {
      const fields = knownFields(rest, ['thinking', 'signature'], what);
      const block: { [key: string]: JsValue } = { type: tag, thinking: requiredString(fields, 'thinking', what) };
      const signature = optionalString(fields, 'signature', what);
      if (signature !== undefined) block.signature = signature;
      return block;
    }
    case 'image': {
      const fields = knownFields(rest, ['source'], what);
      return { type: tag, source: toJs(requiredField(fields, 'source', what)) };
    }
    default:
      throw new ShapeMismatch(`content block: unknown variant \`${tag}\``);
  }
}

function decodeMessage(value: Json): JsValue {
  const what = 'message';
  const fields = knownFields(value, ['role', 'content'], what);
  const role = requiredString(fields, 'role', what);
  const content = requiredField(fields, 'content', what);
  if (content.kind !== 'array') throw new ShapeMismatch(`${what}: \`content\` is not a sequence`);
  return { role, content: content.items.map(decodeBlock) };
}

function decodeEntry(value: Json): JsValue {
  const what = 'history entry';
  const fields = knownFields(value, ['agent', 'message'], what);
  const agent = defaultedString(fields, 'agent', what);
  const message = decodeMessage(requiredField(fields, 'message', what));
  return agent === '' ? { message } : { agent, message };
}

const STEP_SHAPES: readonly [StepKind, (value: Json) => JsValue][] = [
  ['compact', decodeCompact],
  ['legacy-compact', decodeLegacyCompact],
  ['event', decodeEvent],
  ['entry', decodeEntry],
];

export interface StepRead {
  kind: StepKind | null;
  /** Why it is not a step, or which shapes failed; set when kind is null. */
  reason?: string;
  /** The step as crabtalk writes it back (defaults filled, extras dropped). */
  line?: JsValue;
}

/** What crabtalk reads a step file's text as, with the line it would write back. */
export function readStep(text: string): StepRead {
  if (hasLoneSurrogate(text)) return { kind: null, reason: 'not valid UTF-8' };
  let document: Json;
  try {
    document = new JsonReader(text).document();
  } catch (error) {
    if (error instanceof SyntaxFailure) return { kind: null, reason: `not JSON: ${error.message}` };
    throw error;
  }
  // serde would also try the struct shapes on a top-level array (fields by
  // position); stepstore deliberately treats anything but an object as no step.
  if (document.kind !== 'object') return { kind: null, reason: 'top-level value is not an object' };
  const failures: string[] = [];
  for (const [kind, decode] of STEP_SHAPES) {
    try {
      return { kind, line: decode(document) };
    } catch (error) {
      if (!(error instanceof ShapeMismatch)) throw error;
      failures.push(error.message);
    }
  }
  return { kind: null, reason: `matches no step shape (${failures.join('; ')})` };
}

export function readStepText(text: string): { kind: StepKind | null; reason?: string } {
  const { kind, reason } = readStep(text);
  return reason === undefined ? { kind } : { kind, reason };
}

// ---------------------------------------------------------------------------
// meta (ConversationMeta), parsed straight from the text without buffering

export interface CrabMeta {
  agent: string;
  created_by: string;
  created_at: string;
  title: string;
  updated_at: string;
  message_count: number;
  summary?: string;
}

export type MetaRead = { ok: true; meta: CrabMeta } | { ok: false; reason: string };

const META_FIELDS = ['agent', 'created_by', 'created_at', 'title', 'updated_at', 'message_count', 'summary'] as const;

/**
 * Whether crabtalk parses a meta. Unlike a step, a meta is not buffered first:
 * its known fields are parsed strictly, but the value of an unknown field is
 * only skipped (no depth limit, no surrogate check, no number range), exactly
 * as serde_json skips it.
 */
export function readMetaText(text: string): MetaRead {
  if (hasLoneSurrogate(text)) return { ok: false, reason: 'not valid UTF-8' };
  const what = 'meta';
  try {
    const reader = new JsonReader(text);
    reader.skipWhitespace();
    // serde would also accept an array of the fields in order: not modelled.
    if (reader.peek() !== '{') return { ok: false, reason: 'not a JSON object' };
    const fields: Fields = new Map();
    reader.expect('{');
    reader.skipWhitespace();
    if (reader.peek() === '}') {
      reader.expect('}');
    } else {
      for (;;) {
        const key = reader.key(true);
        reader.expect(':');
        if ((META_FIELDS as readonly string[]).includes(key)) {
          if (fields.has(key)) return { ok: false, reason: `duplicate field \`${key}\`` };
          fields.set(key, reader.value());
        } else {
          reader.skipIgnored();
        }
        reader.skipWhitespace();
        if (reader.peek() === ',') {
          reader.expect(',');
          continue;
        }
        reader.expect('}');
        break;
      }
    }
    reader.expectEnd();
    const meta: CrabMeta = {
      agent: requiredString(fields, 'agent', what),
      created_by: requiredString(fields, 'created_by', what),
      created_at: requiredString(fields, 'created_at', what),
      title: defaultedString(fields, 'title', what),
      updated_at: defaultedString(fields, 'updated_at', what),
      message_count: fields.has('message_count') ? requiredUnsigned(fields, 'message_count', U64_MAX, what) : 0,
    };
    const summary = optionalString(fields, 'summary', what);
    if (summary !== undefined) meta.summary = summary;
    return { ok: true, meta };
  } catch (error) {
    if (error instanceof SyntaxFailure || error instanceof ShapeMismatch) return { ok: false, reason: error.message };
    throw error;
  }
}

// ---------------------------------------------------------------------------
// A session directory, as crabtalk's load, list and step recovery see it

export interface StepFileRead extends StepRead {
  file: string;
}

export interface Loaded {
  /** Every entry named `step-*` (temp files included), in byte order of the name. */
  steps: StepFileRead[];
  /** History entries after the last boundary (compact or legacy marker). */
  history: JsValue[];
  /** The last boundary's archive name when it is a compact marker. */
  archive: string | null;
  /** history, with the missing-archive placeholder in front when archive is set. */
  resumed: JsValue[];
}

export interface SessionRead {
  meta: MetaRead;
  /** crabtalk lists a session directory exactly when its meta reads and parses. */
  listed: boolean;
  /** 'none': no meta file, load finds no session; error: load fails as a whole. */
  load: 'none' | { error: string } | Loaded;
  /** The step number crabtalk appends next: 1 + the highest `step-<u64>` name. */
  nextStep: bigint;
}

export function archivePlaceholder(archiveName: string): JsValue {
  return { message: { role: 'user', content: [{ type: 'text', text: `[archived context unavailable: ${archiveName}]` }] } };
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function readMetaFile(dir: string): { missing: true } | { missing: false; read: MetaRead } {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(path.join(dir, 'meta'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { missing: true };
    return { missing: false, read: { ok: false, reason: `read: ${errorText(error)}` } };
  }
  // serde_json would let invalid UTF-8 pass inside an unknown field's value: not modelled.
  if (!isUtf8(bytes)) return { missing: false, read: { ok: false, reason: 'not valid UTF-8' } };
  return { missing: false, read: readMetaText(bytes.toString('utf8')) };
}

/** Rust's `u64::from_str`: an optional `+`, then one or more ASCII digits, at most u64::MAX. */
function parseRustU64(text: string): bigint | null {
  if (!/^\+?[0-9]+$/.test(text)) return null;
  const value = BigInt(text.replace(/^\+/, ''));
  return value <= U64_MAX ? value : null;
}

export function readSessionDir(dir: string): SessionRead {
  const names = fs.readdirSync(dir, { encoding: 'buffer' });

  let highest = 0n;
  for (const name of names) {
    const text = name.toString('utf8');
    if (!text.startsWith('step-')) continue;
    const number = parseRustU64(text.slice('step-'.length));
    if (number !== null && number > highest) highest = number;
  }
  const nextStep = highest + 1n;

  const metaFile = readMetaFile(dir);
  if (metaFile.missing) return { meta: { ok: false, reason: 'no meta file' }, listed: false, load: 'none', nextStep };
  const meta = metaFile.read;
  if (!meta.ok) return { meta, listed: false, load: { error: `meta: ${meta.reason}` }, nextStep };

  // Names that are not UTF-8 are never steps; the rest sort by their bytes.
  const stepNames = names
    .filter((name) => isUtf8(name) && name.toString('utf8').startsWith('step-'))
    .sort(Buffer.compare)
    .map((name) => name.toString('utf8'));

  const steps: StepFileRead[] = [];
  for (const file of stepNames) {
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(path.join(dir, file));
    } catch (error) {
      return { meta, listed: true, load: { error: `${file}: ${errorText(error)}` }, nextStep };
    }
    const step = isUtf8(bytes) ? readStep(bytes.toString('utf8')) : { kind: null, reason: 'not valid UTF-8' };
    steps.push({ file, ...step });
  }

  let lastBoundary = -1;
  steps.forEach((step, index) => {
    if (step.kind === 'compact' || step.kind === 'legacy-compact') lastBoundary = index;
  });
  const boundary = steps[lastBoundary];
  const archive =
    boundary !== undefined && boundary.kind === 'compact'
      ? ((boundary.line as { archive_name: string }).archive_name)
      : null;
  const history = steps
    .slice(lastBoundary + 1)
    .filter((step) => step.kind === 'entry')
    .map((step) => step.line as JsValue);
  const resumed = archive === null ? history : [archivePlaceholder(archive), ...history];

  return { meta, listed: true, load: { steps, history, archive, resumed }, nextStep };
}
