// What every rule operation receives: the backend plus the store's options.

import type { Backend } from '../backend.js';
import { StepStoreError } from '../errors.js';
import type { Logger } from '../types.js';
import type { KeyedQueue } from './queue.js';

export interface StoreContext {
  backend: Backend;
  queue: KeyedQueue;
  maxStepBytes: number;
  logger: Logger;
  closed: boolean;
}

export function assertOpen(ctx: StoreContext): void {
  if (ctx.closed) throw new StepStoreError('STORE_CLOSED', 'the store is closed');
}
