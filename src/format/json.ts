// JSON checks shared by every stored shape (steps, metas, archives): what
// counts as a plain object, and a checked copy of what JSON can hold without loss.

import { StepStoreError, invalidEntry } from '../errors.js';
import { MAX_JSON_DEPTH, hasLoneSurrogate } from './json-facts.js';

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Deepest nesting of arrays and objects accepted: as deep as crabtalk's JSON parser reads. */
export const MAX_DEPTH = MAX_JSON_DEPTH;

/**
 * A deep copy of `value`, reading each property exactly once, when it is
 * plain JSON: null, booleans, finite numbers, strings, arrays and plain
 * objects, without cycles, nested at most MAX_DEPTH levels, every string and
 * key well-formed UTF-16 (a lone surrogate cannot be written as UTF-8, so
 * crabtalk could not read it back). Properties whose
 * value is `undefined` are left out (JSON drops them). Anything else, and
 * anything a getter or proxy throws while it is read, is INVALID_ENTRY, so a
 * caller validates and stores the copy, never an object that could change
 * its answers in between.
 */
export function plainCopy(value: unknown, path: string): unknown {
  const ancestors = new Set<object>();
  // The path to the value being visited, joined only when it is refused.
  const keys: (string | number)[] = [];
  const at = () => path + keys.map((key) => (typeof key === 'number' ? `[${key}]` : `.${key}`)).join('');
  const visit = (v: unknown, depth: number): unknown => {
    switch (typeof v) {
      case 'string':
        if (hasLoneSurrogate(v)) throw invalidEntry(`${at()} holds a lone UTF-16 surrogate, which JSON in UTF-8 cannot carry`);
        return v;
      case 'boolean':
        return v;
      case 'number':
        if (!Number.isFinite(v)) throw invalidEntry(`${at()} is ${v}, which JSON cannot hold`);
        return v;
      case 'undefined':
        throw invalidEntry(`${at()} is undefined, which JSON cannot hold`);
      case 'object': {
        if (v === null) return v;
        if (depth > MAX_DEPTH) throw invalidEntry(`${path} is nested more than ${MAX_DEPTH} levels deep`);
        if (ancestors.has(v)) throw invalidEntry(`${at()} refers back to itself (a cycle)`);
        ancestors.add(v);
        let copy: unknown[] | Record<string, unknown>;
        if (Array.isArray(v)) {
          copy = [];
          // An index loop, not forEach: a hole must be seen (and refused) as undefined.
          for (let i = 0, length = v.length; i < length; i++) {
            keys.push(i);
            copy.push(visit(v[i], depth + 1));
            keys.pop();
          }
        } else if (isPlainObject(v)) {
          copy = {};
          for (const key of Object.keys(v)) {
            const item = v[key];
            if (item === undefined) continue;
            keys.push(key);
            if (hasLoneSurrogate(key)) throw invalidEntry(`the key ${at()} holds a lone UTF-16 surrogate, which JSON in UTF-8 cannot carry`);
            // defineProperty: a key named "__proto__" stays a key, never a prototype.
            Object.defineProperty(copy, key, { value: visit(item, depth + 1), enumerable: true, writable: true, configurable: true });
            keys.pop();
          }
        } else {
          throw invalidEntry(`${at()} is a ${nameOf(v)}, not a plain object`);
        }
        ancestors.delete(v);
        return copy;
      }
      default:
        throw invalidEntry(`${at()} is a ${typeof v}, which JSON cannot hold`);
    }
  };
  try {
    return visit(value, 1);
  } catch (err) {
    if (err instanceof StepStoreError) throw err;
    throw new StepStoreError('INVALID_ENTRY', `${at()} could not be read: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
}

function nameOf(v: object): string {
  const name: unknown = v.constructor?.name;
  return typeof name === 'string' && name !== '' ? name : 'non-plain object';
}
