// What every rule operation receives: the backend plus the store's options.

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
