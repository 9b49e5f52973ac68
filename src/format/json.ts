// JSON checks shared by every stored shape (steps, metas, archives): what
// counts as a plain object, and what JSON can hold without loss.

import { invalidEntry } from '../errors.js';

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
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
        if (!Number.isFinite(v)) throw invalidEntry(`${at()} is ${v}, which JSON cannot hold`);
        return;
      case 'undefined':
        if (inObject) return;
        throw invalidEntry(`${at()} is undefined, which JSON cannot hold`);
      case 'object': {
        if (v === null) return;
        if (ancestors.has(v)) throw invalidEntry(`${at()} refers back to itself (a cycle)`);
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
          throw invalidEntry(`${at()} is a ${v.constructor?.name ?? 'non-plain object'}, not a plain object`);
        }
        ancestors.delete(v);
        return;
      }
      default:
        throw invalidEntry(`${at()} is a ${typeof v}, which JSON cannot hold`);
    }
  };
  try {
    visit(value, false);
  } catch (err) {
    if (err instanceof RangeError) throw invalidEntry(`${path} is nested too deeply`);
    throw err;
  }
}
