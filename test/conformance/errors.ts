// Behaviour 11 of the core issue: every bad input is refused with a stable
// code (asserted, never the message; only SESSION_NOT_FOUND must name its
// handle), and a batch is validated whole before its first step is written.

import { describe, expect, it } from 'vitest';
import { ERROR_CODES, StepStoreError, isStepStoreError, stepKindOf, type Store } from 'stepstore';
import type { Harness } from './harness.js';
import { doneEvent, expectCode, steered, toolResult, toolStart, toolUseMessage, useFixture, userMessage, userMessages } from './fixture.js';

/** Strings that are not `{slug}_{slug}_{seq}`; several would reach outside the root if joined as a path. */
export const BAD_HANDLES: readonly unknown[] = [
  '',
  '/',
  '\\',
  '.',
  '..',
  '../crab_u_1',
  'crab_u_1/..',
  'crab_u_1/../../etc',
  '/etc/passwd',
  '/tmp/crab_u_1',
  'C:\\crab_u_1',
  'crab\\u_1',
  'crab/u_1',
  'crab_u_1\u0000',
  '\u0000',
  '.stepstore',
  'crab_u',
  'crab_u_',
  'crab___1',
  'crab_u_0',
  'crab_u_01',
  'crab_u_-1',
  'crab_u_1x',
  'crab_u_1.5',
  'crab_u_1_2',
  'Crab_u_1',
  'crab_U_1',
  'crab_u_1 ',
  ' crab_u_1',
  'crab-_u_1',
  'crab_u_１',
  `${'a'.repeat(252)}_u_1`,
  `${'é'.repeat(126)}_u_1`,
  42,
  null,
  undefined,
  {},
];

class Message {
  role = 'user';
  content = [{ type: 'text', text: 'a class instance' }];
}

function cyclic(): Record<string, unknown> {
  const message: Record<string, unknown> = { role: 'user' };
  message.self = message;
  return { message };
}

function sparse(): unknown[] {
  const list = [1, 2, 3];
  delete list[1];
  return list;
}

/** A message crabtalk reads, so each bad entry below is refused for its own flaw only. */
const ok = { role: 'user', content: [{ type: 'text', text: 'ok' }] };

/** Entries appendMessages must refuse with INVALID_ENTRY. */
export const BAD_ENTRIES: [string, unknown][] = [
  ['null', null],
  ['a string', 'hello'],
  ['a number', 42],
  ['an array', [ok]],
  ['an entry without message', { role: 'user', content: 'x' }],
  ['a string message', { message: 'hi' }],
  ['a null message', { message: null }],
  ['an array message', { message: [ok] }],
  ['a class-instance message', { message: new Message() }],
  ['a Map message', { message: new Map([['role', 'user']]) }],
  ['a numeric agent', { agent: 5, message: ok }],
  ['a null agent', { agent: null, message: ok }],
  ['a BigInt', { message: { ...ok, n: 10n } }],
  ['a cycle', cyclic()],
  ['a function', { message: { ...ok, f: () => 1 } }],
  ['a top-level function', { message: ok, callback() {} }],
  ['a toJSON method', { message: { ...ok, toJSON: () => 'x' } }],
  ['a Date', { message: { ...ok, at: new Date(0) } }],
  ['a Map', { message: { ...ok, m: new Map() } }],
  ['a Set', { message: { ...ok, s: new Set([1]) } }],
  ['a class instance', { message: { ...ok, c: new Message() } }],
  ['a RegExp', { message: { ...ok, r: /x/ } }],
  ['an Error', { message: { ...ok, e: new Error('x') } }],
  ['a Uint8Array', { message: { ...ok, b: new Uint8Array([1]) } }],
  ['a boxed string', { message: { ...ok, s: new String('x') } }],
  ['an object with a prototype', { message: { ...ok, o: Object.create({ inherited: 1 }) } }],
  ['a symbol', { message: { ...ok, s: Symbol('x') } }],
  ['NaN', { message: { ...ok, n: Number.NaN } }],
  ['Infinity', { message: { ...ok, n: Number.POSITIVE_INFINITY } }],
  ['-Infinity', { message: { ...ok, n: Number.NEGATIVE_INFINITY } }],
  ['undefined in an array', { message: { ...ok, list: [1, undefined] } }],
  ['a hole in an array', { message: { ...ok, list: sparse() } }],
  ['a string compact (would read back as a legacy marker)', { message: ok, compact: 'x' }],
  ['an empty string compact', { message: ok, compact: '' }],
  ['string archive_name and archived_at (would read back as a marker)', { message: ok, archive_name: 'a', archived_at: 'b' }],
  ['a crabtalk event (would read back as an event)', { message: ok, ...doneEvent() }],
  ['a lone surrogate in a text', { message: { role: 'user', content: [{ type: 'text', text: 'a \ud800 b' }] } }],
  ['a lone low surrogate in an extra field', { message: { ...ok, note: '\udfff' } }],
  ['a lone surrogate in a key', { message: { ...ok, ['\ud800']: 1 } }],
  ['a lone surrogate in a tool_use input', { message: { role: 'assistant', content: [{ type: 'tool_use', id: 'c', name: 'n', input: { s: '\udc00' } }] } }],
  // What crabtalk 0.0.22 cannot read as a message (the default mode takes only what it reads).
  ['an OpenAI-style string content', { message: { role: 'user', content: 'Hi!' } }],
  ['a message without content', { message: { role: 'user' } }],
  ['a message without role', { message: { content: [] } }],
  ['a block of an unknown type', { message: { role: 'user', content: [{ type: 'video', url: 'x' }] } }],
  ['a text block without text', { message: { role: 'user', content: [{ type: 'text' }] } }],
  ['a tool_use without input', { message: { role: 'assistant', content: [{ type: 'tool_use', id: 'c', name: 'n' }] } }],
  ['a tool_result with numeric content', { message: { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'c', content: 5 }] } }],
  ['an image without source', { message: { role: 'user', content: [{ type: 'image' }] } }],
];

/** Events appendEvents must refuse with INVALID_ENTRY (each a crabtalk event but for its one flaw). */
export const BAD_EVENTS: [string, unknown][] = [
  ['null', null],
  ['a string', 'done'],
  ['an array', [steered('x')]],
  ['an event without event', { content: 'x', ts: 'x' }],
  ['a numeric event', { ...steered('x'), event: 5 }],
  ['a null event', { ...steered('x'), event: null }],
  ['a class instance', new (class Ev { event = 'user_steered'; content = 'x'; ts = 'x'; })()],
  ['a BigInt', { ...steered('x'), n: 1n }],
  ['a cycle', (() => { const e: Record<string, unknown> = steered('x'); e.self = [e]; return e; })()],
  ['a function', { ...steered('x'), f() {} }],
  ['a Date', { ...steered('x'), ts: new Date() }],
  ['NaN', { ...steered('x'), n: Number.NaN }],
  ['a lone surrogate', steered('\ud800')],
  ['a string compact (would read back as a legacy marker)', { ...steered('x'), compact: 'summary' }],
  ['string archive_name and archived_at (would read back as a marker)', { ...steered('x'), archive_name: 'a', archived_at: 'b' }],
  ['a message (an event never carries one)', { ...doneEvent(), message: ok }],
  // What is not one of crabtalk 0.0.22's four events (the default mode takes only those).
  ['a tag crabtalk does not know', { event: 'note', ts: 'x' }],
  ['an empty tag', { event: '' }],
  ['a tool_start without calls', { event: 'tool_start', ts: 'x' }],
  ['a tool_start call without name', { ...toolStart('c'), calls: [{ id: 'c' }] }],
  ['a tool_result with a fractional duration_ms', { ...toolResult('c'), duration_ms: 12.5 }],
  ['a tool_result with a negative duration_ms', { ...toolResult('c'), duration_ms: -1 }],
  ['a done without usage', (({ usage: _usage, ...rest }) => rest)(doneEvent())],
  ['a done with total_tokens over u32', { ...doneEvent(), usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 ** 32 } }],
  ['a user_steered without ts', { event: 'user_steered', content: 'x' }],
];

type Call = (store: Store, handle: string) => Promise<unknown>;

const HANDLE_CALLS: [string, Call][] = [
  ['loadSession', (s, h) => s.loadSession(h)],
  ['readSteps', (s, h) => s.readSteps(h)],
  ['appendMessages', (s, h) => s.appendMessages(h, [userMessage('m')])],
  ['appendEvents', (s, h) => s.appendEvents(h, [doneEvent()])],
  ['appendCompact', (s, h) => s.appendCompact(h, 'crab-u-1-1')],
  ['compact', (s, h) => s.compact(h, 'summary')],
  ['updateMeta', (s, h) => s.updateMeta(h, { agent: 'crab', created_by: 'u', created_at: '', title: '', updated_at: '', message_count: 0 })],
  ['deleteSession', (s, h) => s.deleteSession(h)],
];

export function errorTests(harness: Harness): void {
  describe('errors', () => {
    const t = useFixture(harness);

    it('every code is a distinct, documented string and errors are StepStoreErrors', () => {
      expect(new Set(ERROR_CODES).size).toBe(ERROR_CODES.length);
      for (const code of [
        'INVALID_NAME',
        'INVALID_HANDLE',
        'INVALID_ENTRY',
        'INVALID_OPTION',
        'STEP_TOO_LARGE',
        'SESSION_NOT_FOUND',
        'CORRUPT_META',
        'UNSAFE_ROOT',
        'STORE_CLOSED',
        'IO_ERROR',
      ]) {
        expect(ERROR_CODES).toContain(code);
      }
      const err = new StepStoreError('IO_ERROR', 'x', { cause: 'why' });
      expect(err).toBeInstanceOf(Error);
      expect(isStepStoreError(err)).toBe(true);
      expect(isStepStoreError(err, 'IO_ERROR')).toBe(true);
      expect(isStepStoreError(err, 'INVALID_NAME')).toBe(false);
      expect(isStepStoreError(new Error('x'))).toBe(false);
    });

    it.each(BAD_HANDLES.map((h) => [h]))('refuses the handle %j with INVALID_HANDLE everywhere', async (handle) => {
      const store = await t.open();
      await store.createSession('crab', 'u');
      for (const [, call] of HANDLE_CALLS) await expectCode(call(store, handle as string), 'INVALID_HANDLE');
      expect((await store.listSessions()).map((s) => s.handle)).toEqual(['crab_u_1']);
      expect(await store.readSteps('crab_u_1')).toEqual([]);
    });

    it.each(BAD_ENTRIES)('appendMessages refuses %s with INVALID_ENTRY', async (_, entry) => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await expectCode(store.appendMessages(handle, [entry as never]), 'INVALID_ENTRY');
      expect(await store.readSteps(handle)).toEqual([]);
    });

    it.each(BAD_EVENTS)('appendEvents refuses %s with INVALID_ENTRY', async (_, event) => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await expectCode(store.appendEvents(handle, [event as never]), 'INVALID_ENTRY');
      expect(await store.readSteps(handle)).toEqual([]);
    });

    it.each([[null], [undefined], ['items'], [{ 0: userMessage('x'), length: 1 }]])(
      'refuses %j instead of an array with INVALID_ENTRY',
      async (items) => {
        const store = await t.open();
        const handle = await store.createSession('crab', 'u');
        await expectCode(store.appendMessages(handle, items as never), 'INVALID_ENTRY');
        await expectCode(store.appendEvents(handle, items as never), 'INVALID_ENTRY');
        expect(await store.readSteps(handle)).toEqual([]);
      },
    );

    it('SESSION_NOT_FOUND names the handle, from every call that can raise it', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, [userMessage('m')]);
      expect(await store.deleteSession(handle)).toBe(true);
      const calls: (() => Promise<unknown>)[] = [
        () => store.readSteps(handle),
        () => store.appendMessages(handle, [userMessage('m')]),
        () => store.appendEvents(handle, [doneEvent()]),
        () => store.appendCompact(handle, 'crab-u-1-1'),
        () => store.compact(handle, 'summary'),
        () => store.updateMeta(handle, { agent: 'crab', created_by: 'u', created_at: '', title: '', updated_at: '', message_count: 0 }),
      ];
      for (const call of calls) {
        const err = await call().then(
          () => null,
          (e: unknown) => e,
        );
        expect(isStepStoreError(err, 'SESSION_NOT_FOUND')).toBe(true);
        expect((err as Error).message).toContain(handle);
      }
    });

    it('an item is accepted as an entry exactly when it reads back as one: a "compact" beside a non-string title is no marker', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      // A legacy marker needs a string (or absent) title: with title 5 it falls through to an entry, as crabtalk reads it.
      const entry = { ...userMessage('x'), compact: 'x', title: 5 };
      expect(stepKindOf(entry)).toBe('entry');
      expect(await store.appendMessages(handle, [entry as never])).toEqual([1]);
      const [step] = await store.readSteps(handle);
      expect(step).toEqual({ step: 1, kind: 'entry', line: entry, text: JSON.stringify(entry) });
      expect((await store.loadSession(handle))!.history).toEqual([entry]);
      // And appendEvents refuses it: it reads back as an entry, not an event.
      await expectCode(store.appendEvents(handle, [{ ...userMessage('y'), compact: 'x', title: 5 } as never]), 'INVALID_ENTRY');
    });

    it("nesting is accepted up to 127 levels (crabtalk's parser fails at the 128th) and refused beyond with INVALID_ENTRY, even thousands deep", async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      const nested = (levels: number) => {
        let value: unknown = 'leaf';
        for (let i = 0; i < levels; i++) value = [value];
        return value;
      };
      // The entry, its message, the content array and the tool_use block are four levels; the input adds the rest.
      const entry = (levels: number) => toolUseMessage(nested(levels - 4));
      // The event is one level; its extra field adds the rest.
      const event = (levels: number) => ({ ...steered('deep'), data: nested(levels - 1) });
      expect(await store.appendMessages(handle, [entry(127)])).toEqual([1]);
      expect(await store.appendEvents(handle, [event(127)])).toEqual([2]);
      for (const levels of [128, 129, 5_000, 7_000, 50_000]) {
        await expectCode(store.appendMessages(handle, [entry(levels) as never]), 'INVALID_ENTRY');
        await expectCode(store.appendEvents(handle, [event(levels)]), 'INVALID_ENTRY');
      }
      const steps = await (await t.open()).readSteps(handle);
      expect(steps.map((s) => s.line)).toEqual([entry(127), event(127)]);
    });

    it('an item is read once: a getter that changes its answer cannot smuggle in another kind than the one validated', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      let reads = 0;
      const shifty = {
        ...userMessage('x'),
        get compact() {
          reads += 1;
          return reads === 1 ? undefined : 'now a marker';
        },
      };
      const [step] = await store.appendMessages(handle, [shifty as never]);
      expect(reads).toBe(1);
      const [stored] = await store.readSteps(handle);
      expect(stored).toEqual({ step, kind: 'entry', line: userMessage('x'), text: JSON.stringify(userMessage('x')) });
      expect((await store.loadSession(handle))!.history).toHaveLength(1);
    });

    it('a getter or a proxy that throws is INVALID_ENTRY, and nothing is written', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      const throwing = {
        message: {
          role: 'user',
          get content(): string {
            throw new Error('boom');
          },
        },
      };
      const trap = new Proxy(
        userMessage('x'),
        {
          ownKeys() {
            throw new TypeError('trap');
          },
        },
      );
      const protoTrap = new Proxy({}, { getPrototypeOf() { throw new Error('proto trap'); } });
      for (const bad of [throwing, trap, { message: protoTrap }]) {
        await expectCode(store.appendMessages(handle, [bad as never]), 'INVALID_ENTRY');
      }
      await expectCode(store.appendEvents(handle, [{ ...steered('x'), get data(): string { throw new Error('boom'); } }]), 'INVALID_ENTRY');
      await expectCode(store.importSteps(handle, [throwing as never]), 'INVALID_ENTRY');
      const meta = (await store.loadSession(handle))!.meta;
      await expectCode(store.updateMeta(handle, { ...meta, get title(): string { throw new Error('boom'); } }), 'INVALID_ENTRY');
      expect(await store.readSteps(handle)).toEqual([]);
    });

    it.each([['loadSession'], ['readSteps'], ['listSessions'], ['repair']])('%s refuses options that are not an object with INVALID_OPTION', async (call) => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      for (const options of [null, 'all', 5, true]) {
        const run: Record<string, () => Promise<unknown>> = {
          loadSession: () => store.loadSession(handle, options as never),
          readSteps: () => store.readSteps(handle, options as never),
          listSessions: () => store.listSessions(options as never),
          repair: () => store.repair(options as never),
        };
        await expectCode(run[call]!(), 'INVALID_OPTION');
      }
    });

    it('resumeHistory refuses what is not a snapshot with INVALID_ENTRY', async () => {
      const store = await t.open();
      for (const bad of [null, undefined, 'snapshot', {}, { history: 'x', archive: null }, { history: [], archive: 5 }]) {
        await expectCode(() => store.resumeHistory(bad as never), 'INVALID_ENTRY');
      }
    });

    it('validates the whole batch first: one bad item at the end means nothing of the call is written', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, [userMessage('kept')]);
      const written = store.stats().stepsWritten;
      // The sparse-array case has its own test above; here only the all-or-nothing rule is under test.
      for (const [, bad] of BAD_ENTRIES.filter(([what]) => what !== 'a hole in an array')) {
        await expectCode(store.appendMessages(handle, [...userMessages('lost', 5), bad as never]), 'INVALID_ENTRY');
      }
      for (const [, bad] of BAD_EVENTS) {
        await expectCode(store.appendEvents(handle, [steered('lost'), steered('lost'), bad as never]), 'INVALID_ENTRY');
      }
      expect(store.stats().stepsWritten).toBe(written);
      expect((await store.readSteps(handle)).map((s) => s.line)).toEqual([userMessage('kept')]);
      expect((await store.loadSession(handle))!.meta.message_count).toBe(1);
      expect(await store.appendMessages(handle, [userMessage('next')])).toEqual([2]);
    });

    it('accepts a step of exactly maxStepBytes of JSON and refuses one byte more with STEP_TOO_LARGE', async () => {
      const store = await t.open({ maxStepBytes: 200 });
      const handle = await store.createSession('crab', 'u');
      const sized = (bytes: number, filler = 'x') => {
        const base = JSON.stringify(userMessage('')).length;
        // Two-byte fillers, with one 'x' when the bytes left are odd.
        const fill = filler === 'x' ? 'x'.repeat(bytes - base) : `${filler.repeat((bytes - base) >> 1)}${'x'.repeat((bytes - base) & 1)}`;
        const entry = userMessage(fill);
        expect(Buffer.byteLength(JSON.stringify(entry))).toBe(bytes);
        return entry;
      };
      expect(await store.appendMessages(handle, [sized(200)])).toEqual([1]);
      await expectCode(store.appendMessages(handle, [sized(201)]), 'STEP_TOO_LARGE');
      // Bytes, not characters: 2-byte é, under 200 characters but over 200 bytes.
      await expectCode(store.appendMessages(handle, [sized(202, 'é')]), 'STEP_TOO_LARGE');
      expect(await store.appendMessages(handle, [sized(200, 'é')])).toEqual([2]);
      const event = steered('x'.repeat(200));
      await expectCode(store.appendEvents(handle, [event]), 'STEP_TOO_LARGE');
      const written = store.stats().stepsWritten;
      await expectCode(store.appendMessages(handle, [userMessage('small'), sized(201)]), 'STEP_TOO_LARGE');
      expect(store.stats().stepsWritten).toBe(written);
      expect((await store.readSteps(handle)).map((s) => s.step)).toEqual([1, 2]);
    });

    it('the default maxStepBytes is 4 MiB', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      const overhead = JSON.stringify(userMessage('')).length;
      const exact = userMessage('x'.repeat(4 * 1024 * 1024 - overhead));
      const over = userMessage('x'.repeat(4 * 1024 * 1024 - overhead + 1));
      await expectCode(store.appendMessages(handle, [over]), 'STEP_TOO_LARGE');
      expect(await store.appendMessages(handle, [exact])).toEqual([1]);
      const [step] = await store.readSteps(handle);
      expect(step!.line).toEqual(exact);
    });

    it.each([[0], [-1], [1.5], [Number.NaN], [Number.POSITIVE_INFINITY], ['100'], [null]])(
      'refuses maxStepBytes %j with INVALID_OPTION',
      async (maxStepBytes) => {
        await expectCode(t.open({ maxStepBytes: maxStepBytes as number }), 'INVALID_OPTION');
      },
    );

    it.each([[null], [{}], [{ warn: 'loud' }], ['console']])('refuses the logger %j with INVALID_OPTION', async (logger) => {
      await expectCode(t.open({ logger: logger as never }), 'INVALID_OPTION');
    });

    it('a closed store refuses every operation with STORE_CLOSED', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, [userMessage('m')]);
      const name = await store.compact(handle, 'summary');
      await store.close();
      await store.close();
      const calls: (() => Promise<unknown>)[] = [
        () => store.createSession('crab', 'u'),
        () => store.findLatestSession('crab', 'u'),
        () => store.loadSession(handle),
        () => store.readSteps(handle),
        () => store.listSessions(),
        () => store.appendMessages(handle, [userMessage('m')]),
        () => store.appendEvents(handle, [doneEvent()]),
        () => store.appendCompact(handle, name),
        () => store.compact(handle, 'summary'),
        () => store.getArchive(name),
        () => store.updateMeta(handle, { agent: 'crab', created_by: 'u', created_at: '', title: '', updated_at: '', message_count: 0 }),
        () => store.deleteSession(handle),
      ];
      for (const call of calls) await expectCode(call, 'STORE_CLOSED');
      const other = await t.open();
      expect((await other.readSteps(handle)).length).toBe(2);
      expect(await other.getArchive(name)).toBe('summary');
    });
  });
}
