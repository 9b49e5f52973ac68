// A fresh fixture per test, disposed after it, and the small helpers every
// area file shares: error-code assertions, waiting for another store to
// catch up, message factories.

import { afterEach, beforeEach, expect } from 'vitest';
import { StepStoreError, stepKindOf, type ErrorCode, type StepKind, type Store } from 'stepstore';
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

/** A user message holding `text`, as crabtalk builds one (one text block). */
export function userMessage(text: string) {
  return { message: { role: 'user', content: [{ type: 'text', text }] } };
}

/** The text of a message built by userMessage (or any message of text blocks). */
export function textOf(entry: { message: Record<string, unknown> }): string {
  const content = entry.message.content;
  if (!Array.isArray(content)) throw new Error(`not a content-block message: ${JSON.stringify(entry)}`);
  return content.map((block: { text?: unknown }) => String(block.text)).join('');
}

/** An assistant message calling one tool: any JSON value fits in a tool_use `input`. */
export function toolUseMessage(input: unknown, id = 'call-1', name = 'bash') {
  return { message: { role: 'assistant', content: [{ type: 'tool_use', id, name, input }] } };
}

/** The timestamp the event factories below carry. */
export const EVENT_TS = '2026-03-25T10:00:00.123456789+00:00';

/** crabtalk's tool_start event for one call `id`. */
export function toolStart(id: string, name = 'bash') {
  return { event: 'tool_start', calls: [{ id, name, arguments: '{}' }], ts: EVENT_TS };
}

/** crabtalk's tool_result event for call `callId`, which took `durationMs`. */
export function toolResult(callId: string, durationMs = 1) {
  return { event: 'tool_result', call_id: callId, duration_ms: durationMs, ts: EVENT_TS };
}

/** crabtalk's done event, ending a turn on `model` after `iterations`. */
export function doneEvent(model = 'm', iterations = 1) {
  return {
    event: 'done',
    model,
    iterations,
    stop_reason: 'stop',
    usage: { prompt_tokens: 10, completion_tokens: 20, total_tokens: 30 },
    ts: EVENT_TS,
  };
}

/** crabtalk's user_steered event: the user said `text` mid-turn. */
export function steered(text: string) {
  return { event: 'user_steered', content: text, ts: EVENT_TS };
}

/**
 * crabtalk's message_count for a session's steps as readSteps returns them (in
 * step order): its live conversation, i.e. the entries after the last boundary,
 * plus 1 for the summary when that boundary is a compact marker (a legacy
 * marker names none).
 */
export function liveCount(steps: readonly { line: unknown; kind?: StepKind }[]): number {
  let count = 0;
  for (const step of steps) {
    // readSteps gives the kind; without it, the line says (every step read back is of one kind in either mode).
    const kind = step.kind ?? stepKindOf(step.line, { messages: 'any' });
    if (kind === 'entry') count += 1;
    else if (kind === 'compact') count = 1;
    else if (kind === 'legacy-compact') count = 0;
  }
  return count;
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
