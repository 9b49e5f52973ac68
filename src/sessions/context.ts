// What every rule operation receives: the backend plus the store's options;
// and the checks of options every operation shares.

import type { Backend } from '../backend.js';
import { StepStoreError, invalidOption } from '../errors.js';
import { isPlainObject } from '../format/json.js';
import type { Logger, MessageMode } from '../types.js';
import type { KeyedQueue } from './queue.js';

export interface StoreContext {
  backend: Backend;
  queue: KeyedQueue;
  maxStepBytes: number;
  logger: Logger;
  messages: MessageMode;
  closed: boolean;
}

export function assertOpen(ctx: StoreContext): void {
  if (ctx.closed) throw new StepStoreError('STORE_CLOSED', 'the store is closed');
}

/** A call's options: none when undefined; anything but a plain object is INVALID_OPTION. */
export function optionsOf<T extends object>(opts: T | undefined, call: string): Partial<T> {
  if (opts === undefined) return {};
  if (!isPlainObject(opts)) throw invalidOption(`the options of ${call} must be an object`);
  return opts;
}

/** `value` as an integer >= `min`; undefined when absent; INVALID_OPTION otherwise. */
export function checkCursor(name: string, value: unknown, min: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw invalidOption(`${name} must be an integer >= ${min}`);
  }
  return value;
}

/** The `expectedStep` of a fenced write's options: undefined when absent. */
export function expectedStepOf(options: { expectedStep?: number } | undefined, call: string): number | undefined {
  return checkCursor('expectedStep', optionsOf(options, call).expectedStep, 0);
}
