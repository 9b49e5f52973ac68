// A fresh fixture per test, disposed after it, and the small helpers every
// area file shares: error-code assertions, waiting for another store to
// catch up, message factories.

import { afterEach, beforeEach, expect } from 'vitest';
import { StepStoreError, type ErrorCode, type Store } from 'stepstore';
import type { Fixture, Harness, StoreOverrides } from './harness.js';

export interface FixtureHandle {
  readonly fixture: Fixture;
  open(overrides?: StoreOverrides): Promise<Store>;
}

export function useFixture(harness: Harness): FixtureHandle {
  let current: Fixture | null = null;
  beforeEach(async () => {
    current = await harness.fixture();
  });
  afterEach(async () => {
    await current?.dispose();
    current = null;
  });
  return {
    get fixture() {
      if (current === null) throw new Error('no fixture outside a test');
      return current;
    },
    open(overrides) {
      return this.fixture.open(overrides);
    },
  };
}

/** A user message with `content`, as a runtime would append it. */
export function userMessage(content: string) {
  return { message: { role: 'user', content } };
}

/** `count` user messages `${tag}:0`, `${tag}:1`, ... */
export function userMessages(tag: string, count: number) {
  return Array.from({ length: count }, (_, i) => userMessage(`${tag}:${i}`));
}

/** Captures warnings so a test can assert on them. */
export function recordingLogger() {
  const warnings: string[] = [];
  return { warnings, warn: (message: string) => void warnings.push(message) };
}

/**
 * Runs `action` (a promise, or a function that may throw synchronously or
 * return a promise) and asserts it fails with a StepStoreError of `code`.
 */
export async function expectCode(action: Promise<unknown> | (() => unknown), code: ErrorCode): Promise<StepStoreError> {
  let outcome: unknown;
  try {
    outcome = await (typeof action === 'function' ? action() : action);
  } catch (err) {
    expect(err).toBeInstanceOf(StepStoreError);
    expect((err as StepStoreError).code).toBe(code);
    return err as StepStoreError;
  }
  throw new Error(`expected a StepStoreError ${code}, but the call succeeded with ${JSON.stringify(outcome)?.slice(0, 200)}`);
}

/**
 * Polls `probe` until it returns true. Used only where the contract allows
 * another store instance to see a write "after a short delay"; nothing here
 * measures how long anything takes.
 */
export async function eventually(probe: () => Promise<boolean>, what: string, limitMs = 10_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Milliseconds since the epoch of an RFC 3339 timestamp; fails the test when it does not parse. */
export function timeOf(timestamp: string): number {
  const t = Date.parse(timestamp);
  expect(Number.isNaN(t), `${JSON.stringify(timestamp)} is a timestamp`).toBe(false);
  return t;
}
