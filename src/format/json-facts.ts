// What crabtalk's JSON parser (serde_json) sees in a text that JSON.parse
// accepts but that JSON.parse's result no longer shows: nesting too deep, a
// lone UTF-16 surrogate, a key given twice in one object, the exact spelling
// of a number. One pass over text that is already known to be valid JSON.

/** serde_json fails at the 128th nested array or object (its depth budget of 128 reaches 0). */
export const MAX_JSON_DEPTH = 127;

/** Where a value sits: keys and array indexes from the top, as a map key (pathKey). */
export type JsonPath = readonly (string | number)[];

export interface JsonFacts {
  /** Why serde_json cannot parse the text at all; null when it can. */
  refused: string | null;
  /** Keys given more than once, per object (by pathKey of the object); null when none. */
  duplicates: Map<string, Set<string>> | null;
  /** The text of each number that is not a plain integer below 10^15 (by pathKey); null when none. */
  numbers: Map<string, string> | null;
}

/** The facts of a value that JSON.stringify made: no duplicates, numbers judged by value. */
export const NO_FACTS: JsonFacts = { refused: null, duplicates: null, numbers: null };

/** An unambiguous map key for a path: a key "0" and an index 0 differ, "a.b" is not a/b. */
export function pathKey(path: JsonPath): string {
  return path.map((segment) => (typeof segment === 'number' ? String(segment) : JSON.stringify(segment))).join('/');
}

const LONE_SURROGATE = /\p{Cs}/u;

/** True when `text` holds an unpaired UTF-16 surrogate (which UTF-8, and so serde_json, cannot carry). */
export function hasLoneSurrogate(text: string): boolean {
  return LONE_SURROGATE.test(text);
}

const PLAIN_SMALL_INTEGER = /^(?:0|[1-9]\d{0,14})$/;

/** True when a number's text is what serde_json reads as an unsigned integer (no sign, fraction or exponent). */
export function isUnsignedLiteral(raw: string): boolean {
  return /^(?:0|[1-9]\d*)$/.test(raw);
}

interface Frame {
  isObject: boolean;
  /** The current key (objects) or index (arrays). */
  at: string | number;
  keys: string[] | Set<string> | null;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function hexAt(text: string, i: number): number {
  return Number.parseInt(text.slice(i, i + 4), 16);
}

/** Scans `text`, which JSON.parse has accepted, for what serde_json would refuse or read differently. */
export function scanJson(text: string): JsonFacts {
  if (hasLoneSurrogate(text)) return { ...NO_FACTS, refused: 'holds a lone UTF-16 surrogate' };
  let duplicates: Map<string, Set<string>> | null = null;
  let numbers: Map<string, string> | null = null;
  const frames: Frame[] = [];
  const pathOf = (count: number): JsonPath => frames.slice(0, count).map((frame) => frame.at);
  let expectingKey = false;
  let nextBackslash = text.indexOf('\\');
  const length = text.length;
  let i = 0;
  while (i < length) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const start = i + 1;
      let end = start;
      let escaped = false;
      for (;;) {
        const quote = text.indexOf('"', end);
        if (nextBackslash !== -1 && nextBackslash < start) nextBackslash = text.indexOf('\\', start);
        if (nextBackslash === -1 || nextBackslash > quote) {
          end = quote;
          break;
        }
        escaped = true;
        const b = nextBackslash;
        if (text.charCodeAt(b + 1) === 0x75 /* u */) {
          const unit = hexAt(text, b + 2);
          if (unit >= 0xdc00 && unit <= 0xdfff) return { ...NO_FACTS, refused: 'holds a lone UTF-16 surrogate escape' };
          if (unit >= 0xd800 && unit <= 0xdbff) {
            const low = text.charCodeAt(b + 6) === BACKSLASH && text.charCodeAt(b + 7) === 0x75 ? hexAt(text, b + 8) : -1;
            if (!(low >= 0xdc00 && low <= 0xdfff)) return { ...NO_FACTS, refused: 'holds a lone UTF-16 surrogate escape' };
            end = b + 12;
          } else {
            end = b + 6;
          }
        } else {
          end = b + 2;
        }
        nextBackslash = text.indexOf('\\', end);
      }
      const top = frames[frames.length - 1];
      if (expectingKey && top !== undefined) {
        const key = escaped ? (JSON.parse(text.slice(start - 1, end + 1)) as string) : text.slice(start, end);
        if (top.keys === null) top.keys = [key];
        else if (Array.isArray(top.keys) ? top.keys.includes(key) : top.keys.has(key)) {
          duplicates ??= new Map();
          const where = pathKey(pathOf(frames.length - 1));
          const seen = duplicates.get(where) ?? new Set<string>();
          duplicates.set(where, seen.add(key));
        } else if (Array.isArray(top.keys)) {
          top.keys.push(key);
          if (top.keys.length > 16) top.keys = new Set(top.keys);
        } else {
          top.keys.add(key);
        }
        top.at = key;
        expectingKey = false;
      }
      i = end + 1;
      continue;
    }
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (frames.length === MAX_JSON_DEPTH) {
        return { ...NO_FACTS, refused: `is nested more than ${MAX_JSON_DEPTH} levels deep` };
      }
      const isObject = c === 0x7b;
      frames.push({ isObject, at: isObject ? '' : 0, keys: null });
      expectingKey = isObject;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      frames.pop();
    } else if (c === 0x2c /* , */) {
      const top = frames[frames.length - 1]!;
      if (top.isObject) expectingKey = true;
      else (top.at as number)++;
    } else if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      let end = i + 1;
      while (end < length) {
        const d = text.charCodeAt(end);
        if ((d >= 0x30 && d <= 0x39) || d === 0x2e || d === 0x65 || d === 0x45 || d === 0x2b || d === 0x2d) end++;
        else break;
      }
      const raw = text.slice(i, end);
      if (!PLAIN_SMALL_INTEGER.test(raw)) {
        if (!Number.isFinite(Number(raw))) return { ...NO_FACTS, refused: `holds the number ${raw}, beyond what a double can hold` };
        numbers ??= new Map();
        numbers.set(pathKey(pathOf(frames.length)), raw);
      }
      i = end;
      continue;
    }
    i++;
  }
  return { refused: null, duplicates, numbers };
}

/** True when the text holds a `\\uD800`-`\\uDFFF` escape (a surrogate, paired or not). */
function hasSurrogateEscape(text: string): boolean {
  for (let i = text.indexOf('\\u'); i !== -1; i = text.indexOf('\\u', i + 2)) {
    const d = text.charCodeAt(i + 2) | 0x20;
    const next = text.charCodeAt(i + 3) | 0x20;
    if (d === 0x64 /* d */ && ((next >= 0x38 && next <= 0x39) || (next >= 0x61 && next <= 0x66))) return true;
  }
  return false;
}

const isSpace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/**
 * At least the number of keys the text spells, when no quote in it is escaped
 * (so every `"` delimits a string): colons after a quote. A string value
 * starting with ":" counts too, so this only ever overcounts.
 */
function keysSpelled(text: string): number {
  let count = 0;
  for (let i = text.indexOf(':'); i !== -1; i = text.indexOf(':', i + 1)) {
    let j = i - 1;
    while (j > 0 && isSpace(text.charCodeAt(j))) j--;
    if (text.charCodeAt(j) === QUOTE) count++;
  }
  return count;
}

/** Keys in the parsed value; -1 once it is nested deeper than MAX_JSON_DEPTH or holds a number JSON.parse made infinite. */
function keysHeld(value: unknown, depth: number): number {
  if (typeof value === 'number') return Number.isFinite(value) ? 0 : -1;
  if (typeof value !== 'object' || value === null) return 0;
  if (depth > MAX_JSON_DEPTH) return -1;
  let count = 0;
  const items = Array.isArray(value) ? value : Object.values(value);
  if (!Array.isArray(value)) count += items.length;
  for (const item of items) {
    const inner = keysHeld(item, depth + 1);
    if (inner < 0) return -1;
    count += inner;
  }
  return count;
}

/**
 * scanJson's answer for `text` (parsed as `value`), without the scan when the
 * text allows it: no escaped quote or surrogate escape in it, and as many keys
 * spelled as the parsed value holds (keysSpelled never undercounts and a key
 * given twice is held once, so equal counts mean none is given twice). Number
 * spellings are only found by the scan: ask for them with `needNumbers`.
 */
export function factsOf(text: string, value: unknown, needNumbers: boolean): JsonFacts {
  if (needNumbers || text.includes('\\"') || hasSurrogateEscape(text) || hasLoneSurrogate(text)) return scanJson(text);
  const held = keysHeld(value, 1);
  if (held < 0) return scanJson(text);
  return held === keysSpelled(text) ? NO_FACTS : scanJson(text);
}
