// What a backend's test file gives the shared conformance suite: a factory of
// fresh, isolated storage (a temp dir, a Redis key prefix) per test.

import type { MessageMode, Store } from 'stepstore';
import type { PlainTask, Worker } from '../helpers/children.js';

export interface StoreOverrides {
  maxStepBytes?: number;
  messages?: MessageMode;
  logger?: { warn(message: string, detail?: Record<string, unknown>): void };
}

/** How a child process opens the same storage; read by test/helpers/worker.mjs. */
export type WorkerStoreSpec =
  | { kind: 'fs'; dir: string; durability: string }
  | { kind: 'redis'; url: string; prefix: string; /** Seed node URLs: open through a node-redis Cluster client instead of `url`. */ cluster?: string[] };

export interface Fixture {
  /** Opens a store on this fixture's storage; call again to simulate a restart. */
  open(overrides?: StoreOverrides): Promise<Store>;
  workerSpec(): WorkerStoreSpec;
  /** Closes every store it opened and removes the storage. */
  dispose(): Promise<void>;
}

export interface Harness {
  fixture(): Promise<Fixture>;
  /**
   * Where the storage is crabtalk's own directories (fs): starts a child process that opens no
   * store and writes to the fixture's root as crabtalk does. Undefined elsewhere, where the tests
   * of such writes are skipped.
   */
  plainWrites?(fixture: Fixture, task: PlainTask): Worker;
}
