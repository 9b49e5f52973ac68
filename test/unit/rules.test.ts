// Pure rules beside the names: step-line classification (crabtalk's
// first-match order), replay bounded by the last boundary, batch encoding,
// meta codec and bumps, time comparison, archive naming, and the keyed queue.

import { describe, expect, it } from 'vitest';
import type { RawStep } from '../../src/backend.js';
import { archiveBase, archiveNumber, decodeArchive, encodeArchive } from '../../src/format/archive.js';
import { resumeHistory } from '../../src/compact/index.js';
import { applyBump, mergeBumps } from '../../src/format/bump.js';
import { checkMetaUpdate, decodeMeta, encodeMeta, newMeta } from '../../src/format/meta.js';
import { later, sameInstant, timeOf } from '../../src/format/time.js';
import { KeyedQueue } from '../../src/sessions/queue.js';
import { replay } from '../../src/sessions/replay.js';
import type { Slug } from '../../src/format/slug.js';
import { classifyStep } from '../../src/format/step-line.js';
import { encodeBatch } from '../../src/format/encode.js';
import { parseStepName, stepName, tempPath } from '../../src/backends/fs/paths.js';
import { recordingLogger, textOf } from '../conformance/fixture.js';
import { codeOfSync as codeOf } from '../helpers/codes.js';

const text = (t: string) => ({ role: 'user', content: [{ type: 'text', text: t }] });
const steered = { event: 'user_steered', content: 'shorter', ts: 't' };

describe('classifyStep', () => {
  it.each([
    ['a compact marker', { archive_name: 'a', archived_at: 't' }, 'compact'],
    ['a marker that also has every other tag', { archive_name: 'a', archived_at: 't', compact: 'c', event: 'e', message: {} }, 'compact'],
    ['a legacy marker', { compact: 'summary' }, 'legacy-compact'],
    ['a legacy marker with title and time', { compact: 's', title: 't', archived_at: 'x' }, 'legacy-compact'],
    ['a legacy marker beating an event tag', { compact: 's', event: 'e' }, 'legacy-compact'],
    ['archive_name without a string archived_at, beside an event', { archive_name: 'a', archived_at: 5, ...steered }, 'event'],
    ['compact with a non-string title, beside an event', { compact: 's', title: 5, ...steered }, 'event'],
    ['an event', steered, 'event'],
    ['a crabtalk event beating a message', { ...steered, message: text('hi') }, 'event'],
    ['an unknown event carrying a message: history to crabtalk', { event: 'note', message: text('hi') }, 'entry'],
    ['an entry', { message: text('hi') }, 'entry'],
    ['an entry with a guest agent', { agent: 'guest', message: text('hi') }, 'entry'],
  ])('reads %s as %s', (_, value, kind) => {
    expect(classifyStep(JSON.stringify(value), 'crabtalk').kind).toBe(kind);
    expect(classifyStep(JSON.stringify(value), 'any').kind).toBe(kind);
  });

  it.each([
    ['an OpenAI-style message', { message: { role: 'user', content: 'Hi!' } }, null, 'entry'],
    ['an object message of no shape', { message: { role: 'user' } }, null, 'entry'],
    ['a made-up event', { event: 'note', text: 'x' }, null, 'event'],
    ['a done event without usage', { event: 'done', model: 'm', iterations: 1, stop_reason: 's', ts: 't' }, null, 'event'],
  ])('reads %s as %s in crabtalk mode and %s in any mode', (_, value, crabtalk, any) => {
    expect(classifyStep(JSON.stringify(value), 'crabtalk').kind).toBe(crabtalk);
    expect(classifyStep(JSON.stringify(value), 'any').kind).toBe(any);
  });

  it.each([
    ['not JSON', 'not json {'],
    ['an empty file', ''],
    ['an array', '[{"message":{}}]'],
    ['a number', '42'],
    ['null', 'null'],
    ['a string', '"step"'],
    ['an object of no shape', '{"foo":1}'],
    ['a string message', '{"message":"hi"}'],
    ['a numeric agent', '{"agent":5,"message":{}}'],
    ['a numeric event', '{"event":5}'],
    ['two objects', '{"event":"a"}{"event":"b"}'],
    ['a lone surrogate escape', '{"message":{"role":"user","content":[{"type":"text","text":"\\ud83d"}]}}'],
    ['a message given twice', '{"message":{"role":"user","content":[]},"message":{"role":"user","content":[]}}'],
  ])('reads %s as no step, with a reason', (_, stepText) => {
    for (const mode of ['crabtalk', 'any'] as const) {
      const classified = classifyStep(stepText, mode);
      expect(classified.kind).toBeNull();
      expect(typeof (classified as { reason: string }).reason).toBe('string');
    }
  });

  it('reads a u64 field by its spelling: 42 is one, 42.0 and 4.2e1 are not', () => {
    const result = (ms: string) => classifyStep(`{"event":"tool_result","call_id":"c","duration_ms":${ms},"ts":"t"}`, 'crabtalk').kind;
    expect(result('42')).toBe('event');
    expect(result('18446744073709551615')).toBe('event');
    expect(result('18446744073709551616')).toBeNull();
    expect(result('42.0')).toBeNull();
    expect(result('4.2e1')).toBeNull();
    expect(result('-0')).toBeNull();
  });

  it('takes 127 nested containers and refuses the 128th, as crabtalk parses', () => {
    const nested = (depth: number) => `{"message":{"role":"user","content":[{"type":"tool_use","id":"i","name":"n","input":${'['.repeat(depth - 4)}${']'.repeat(depth - 4)}}]}}`;
    expect(classifyStep(nested(127), 'crabtalk').kind).toBe('entry');
    expect(classifyStep(nested(128), 'crabtalk').kind).toBeNull();
  });
});

describe('replay', () => {
  const entry = (content: string) => JSON.stringify({ message: text(content) });
  const texts = (history: { message: Record<string, unknown> }[]) => history.map((e) => textOf(e));

  /** Steps newest first in slices of `size`, counting how many steps were pulled. */
  function source(steps: RawStep[], size: number) {
    const pulled = { count: 0 };
    async function* generate() {
      const newest = [...steps].reverse();
      for (let i = 0; i < newest.length; i += size) {
        const slice = newest.slice(i, i + size);
        pulled.count += slice.length;
        yield slice;
      }
    }
    return { pulled, steps: generate() };
  }

  it('stops pulling slices at the last boundary', async () => {
    const steps: RawStep[] = [];
    for (let n = 1; n <= 1000; n++) steps.push({ step: n, text: entry(`m${n}`) });
    steps[949] = { step: 950, text: JSON.stringify({ archive_name: 'x-1', archived_at: 't' }) };
    const { pulled, steps: stream } = source(steps, 16);
    const result = await replay('s', stream, recordingLogger(), 'crabtalk');
    expect(result.archive).toBe('x-1');
    expect(texts(result.history)).toEqual(Array.from({ length: 50 }, (_, i) => `m${951 + i}`));
    expect(pulled.count).toBeLessThanOrEqual(64);
  });

  it('a legacy boundary names no archive; later garbage and problems become ascending diagnostics', async () => {
    const logger = recordingLogger();
    const steps: RawStep[] = [
      { step: 1, text: JSON.stringify({ archive_name: 'old-1', archived_at: 't' }) },
      { step: 2, text: entry('a') },
      { step: 3, text: JSON.stringify({ compact: 'inline' }) },
      { step: 4, text: 'garbage' },
      { step: 5, text: entry('b') },
      { step: 6, problem: 'step is a symlink' },
      { step: 7, text: JSON.stringify(steered) },
      { step: 8, text: entry('c') },
    ];
    const result = await replay('s', source(steps, 3).steps, logger, 'crabtalk');
    expect(result.archive).toBeNull();
    expect(texts(result.history)).toEqual(['b', 'c']);
    expect(result.diagnostics.map((d) => d.step)).toEqual([4, 6]);
    expect(result.diagnostics[1]!.reason).toBe('step is a symlink');
    expect(logger.warnings).toHaveLength(2);
  });

  it('with no boundary, every entry is history', async () => {
    const steps: RawStep[] = [1, 2, 3].map((n) => ({ step: n, text: entry(`m${n}`) }));
    const result = await replay('s', source(steps, 2).steps, recordingLogger(), 'crabtalk');
    expect(texts(result.history)).toEqual(['m1', 'm2', 'm3']);
    expect(result.archive).toBeNull();
  });
});

describe('encodeBatch', () => {
  it('encodes each item as compact JSON, dropping an empty agent', () => {
    expect(encodeBatch([{ agent: '', message: text('a') }, { agent: 'g', message: text('b') }], 'entry', 1000, 'crabtalk')).toEqual([
      { kind: 'entry', json: '{"message":{"role":"user","content":[{"type":"text","text":"a"}]}}' },
      { kind: 'entry', json: '{"agent":"g","message":{"role":"user","content":[{"type":"text","text":"b"}]}}' },
    ]);
    expect(encodeBatch([{ event: 'e', n: 1 }], 'event', 1000, 'any')).toEqual([{ kind: 'event', json: '{"event":"e","n":1}' }]);
  });

  it('refuses absurdly deep nesting with INVALID_ENTRY rather than crashing', () => {
    let deep: unknown = 'leaf';
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(codeOf(() => encodeBatch([{ message: { deep } }], 'entry', Number.MAX_SAFE_INTEGER, 'any'))).toBe('INVALID_ENTRY');
  });

  it('reports STEP_TOO_LARGE by bytes of JSON, and INVALID_ENTRY before size for a bad item', () => {
    expect(codeOf(() => encodeBatch([{ message: { c: 'é'.repeat(10) } }], 'entry', 35, 'any'))).toBe('STEP_TOO_LARGE');
    expect(codeOf(() => encodeBatch([{ message: { c: 'e'.repeat(10) } }], 'entry', 35, 'any'))).toBeNull();
    expect(codeOf(() => encodeBatch([{ message: { c: 'x'.repeat(100), n: 1n } }], 'entry', 25, 'any'))).toBe('INVALID_ENTRY');
  });

  it('refuses in every mode an event carrying a message, and a lone surrogate anywhere', () => {
    for (const mode of ['crabtalk', 'any'] as const) {
      expect(codeOf(() => encodeBatch([{ ...steered, message: text('x') }], 'event', 1000, mode))).toBe('INVALID_ENTRY');
      expect(codeOf(() => encodeBatch([{ message: text('lone \ud83d') }], 'entry', 1000, mode))).toBe('INVALID_ENTRY');
      expect(codeOf(() => encodeBatch([{ message: { ...text('x'), ['k\udc00']: 1 } }], 'entry', 1000, mode))).toBe('INVALID_ENTRY');
    }
  });
});

describe('one classification rule', () => {
  // Every combination of the fields the four shapes look at, each absent, of the right type or of a wrong one.
  const FIELDS: [string, unknown[]][] = [
    ['archive_name', [undefined, 'a', 5]],
    ['archived_at', [undefined, 't', 5]],
    ['compact', [undefined, 's', '', null]],
    ['title', [undefined, 't', 5]],
    ['event', [undefined, 'user_steered', 'note', 5]],
    ['content', [undefined, 'c']],
    ['ts', [undefined, 't']],
    ['message', [undefined, text('hi'), { role: 'user', content: 'hi' }, 'hi', []]],
    ['agent', [undefined, 'guest', '', 5]],
  ];
  const items: Record<string, unknown>[] = FIELDS.reduce<Record<string, unknown>[]>(
    (acc, [field, values]) => acc.flatMap((item) => values.map((v) => (v === undefined ? item : { ...item, [field]: v }))),
    [{}],
  );

  it.each(['crabtalk', 'any'] as const)(`encodeBatch (%s) accepts each of ${items.length} items as an entry or event exactly when it reads back as one`, (mode) => {
    let accepted = 0;
    for (const item of items) {
      const readAs = classifyStep(JSON.stringify(item), mode).kind;
      for (const kind of ['entry', 'event'] as const) {
        const code = codeOf(() => encodeBatch([item], kind, 1 << 20, mode));
        const acceptable = readAs === kind && !(kind === 'event' && 'message' in item);
        expect(code, `${kind}: ${JSON.stringify(item)} reads back as ${readAs}`).toBe(acceptable ? null : 'INVALID_ENTRY');
        if (code === null) accepted += 1;
      }
    }
    expect(accepted).toBeGreaterThan(100);
  });
});

describe('meta codec', () => {
  it('fills crabtalk defaults and keeps unknown fields', () => {
    const meta = decodeMeta('{"agent":"a","created_by":"b","created_at":"t","topic":"x","uptime_secs":3}');
    expect(meta).toEqual({ agent: 'a', created_by: 'b', created_at: 't', title: '', updated_at: '', message_count: 0, topic: 'x', uptime_secs: 3 });
    expect(JSON.parse(encodeMeta(meta))).toEqual(meta);
  });

  it('treats a null summary as absent', () => {
    expect('summary' in decodeMeta('{"agent":"a","created_by":"b","created_at":"t","summary":null}')).toBe(false);
  });

  it.each([
    ['not JSON', 'x'],
    ['an array', '[]'],
    ['no agent', '{"created_by":"b","created_at":"t"}'],
    ['a numeric created_by', '{"agent":"a","created_by":1,"created_at":"t"}'],
    ['no created_at', '{"agent":"a","created_by":"b"}'],
    ['a numeric title', '{"agent":"a","created_by":"b","created_at":"t","title":1}'],
    ['a fractional message_count', '{"agent":"a","created_by":"b","created_at":"t","message_count":1.5}'],
    ['a negative message_count', '{"agent":"a","created_by":"b","created_at":"t","message_count":-1}'],
    ['a numeric summary', '{"agent":"a","created_by":"b","created_at":"t","summary":1}'],
  ])('refuses a meta with %s as CORRUPT_META', (_, text) => {
    expect(codeOf(() => decodeMeta(text))).toBe('CORRUPT_META');
  });

  it('a new meta has created_at equal to updated_at and no summary', () => {
    const meta = newMeta('crab', 'u');
    expect(meta.created_at).toBe(meta.updated_at);
    expect(Object.keys(meta)).toEqual(['agent', 'created_by', 'created_at', 'title', 'updated_at', 'message_count']);
  });

  it('checkMetaUpdate accepts unknown fields and a same-instant created_at spelling', () => {
    const current = decodeMeta('{"agent":"a","created_by":"b","created_at":"2026-03-25T10:00:00.123+00:00"}');
    const next = { ...current, created_at: '2026-03-25T10:00:00.123Z', extra: { x: [1] } };
    expect(checkMetaUpdate(current, next)).toEqual(next);
  });
});

describe('bumps', () => {
  const base = decodeMeta(
    '{"agent":"a","created_by":"b","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-03-25T10:00:00.5+00:00","message_count":4,"topic":"kept"}',
  );

  it('merging adds counts and keeps the later time', () => {
    expect(mergeBumps({ messages: 2, at: '2026-03-25T10:00:01Z' }, { messages: 3, at: '2026-03-25T10:00:00Z' })).toEqual({
      messages: 5,
      at: '2026-03-25T10:00:01Z',
    });
  });

  it('applying keeps unknown fields and never moves updated_at back', () => {
    expect(applyBump(base, { messages: 2, at: '2026-03-25T10:00:00.100Z' })).toEqual({ ...base, message_count: 6 });
    expect(applyBump(base, { messages: 1, at: '2026-03-25T10:00:01Z' })).toEqual({
      ...base,
      message_count: 5,
      updated_at: '2026-03-25T10:00:01Z',
    });
  });
});

describe('time', () => {
  it('reads +00:00 nanosecond and Z millisecond stamps as the same instants', () => {
    expect(timeOf('2026-03-25T10:00:00.123456789+00:00')).toBe(Date.parse('2026-03-25T10:00:00.123Z'));
    expect(sameInstant('2026-03-25T10:00:00.123000000+00:00', '2026-03-25T10:00:00.123Z')).toBe(true);
    expect(Number.isNaN(timeOf(''))).toBe(true);
    expect(Number.isNaN(timeOf('yesterday'))).toBe(true);
  });

  it('later() compares as times, not strings, and an unparsable stamp loses', () => {
    expect(later('2026-03-25T10:00:00Z', '2026-03-25T10:00:00.100+00:00')).toBe('2026-03-25T10:00:00.100+00:00');
    expect(later('', '2026-01-01T00:00:00Z')).toBe('2026-01-01T00:00:00Z');
    expect(later('2026-01-01T00:00:00Z', 'garbage')).toBe('2026-01-01T00:00:00Z');
  });

  it('keeps sub-millisecond order: 09:59:59.999999999 is before 10:00:00', () => {
    const justBefore = '2026-03-25T09:59:59.999999999+00:00';
    const onTheHour = '2026-03-25T10:00:00Z';
    expect(later(justBefore, onTheHour)).toBe(onTheHour);
    expect(sameInstant(justBefore, onTheHour)).toBe(false);
    expect(timeOf(justBefore)).toBeLessThan(timeOf(onTheHour));
  });
});

describe('archives', () => {
  it('the base is senderSlug of the handle, and only canonical numbers count', () => {
    expect(archiveBase('crab_tg-12345_1' as Slug)).toBe('crab-tg-12345-1');
    expect(archiveBase('crab-tg_1_1' as Slug)).toBe(archiveBase('crab_tg-1_1' as Slug));
    expect(archiveNumber('crab-tg-12345-1-2', 'crab-tg-12345-1')).toBe(2);
    for (const name of ['crab-tg-12345-1-02', 'crab-tg-12345-1-', 'crab-tg-12345-11', 'crab-tg-12345-1-1-1', 'crab-tg-12345-1-x']) {
      expect([name, archiveNumber(name, 'crab-tg-12345-1')]).toEqual([name, null]);
    }
  });

  it('records round-trip and anything else decodes to null', () => {
    const record = { owner: 'crab_u_1', archived_at: 't', content: 'c' };
    expect(decodeArchive(encodeArchive(record))).toEqual(record);
    for (const text of ['x', '[]', '{"owner":"o","archived_at":"t"}', '{"owner":1,"archived_at":"t","content":"c"}']) {
      expect(decodeArchive(text)).toBeNull();
    }
  });

  it('resumeHistory copies the history and never mutates the snapshot', () => {
    const snapshot = {
      meta: newMeta('a', 'b'),
      history: [{ message: text('x') }],
      steps: [2],
      archive: 'a-b-1-1',
      archiveContent: 'sum',
      diagnostics: [],
    };
    const resumed = resumeHistory(snapshot);
    // Exactly crabtalk's resume: the summary as one user message of one text block.
    expect(resumed).toEqual([{ message: { role: 'user', content: [{ type: 'text', text: 'sum' }] } }, { message: text('x') }]);
    expect(resumeHistory({ ...snapshot, archiveContent: null })[0]).toEqual({ message: text('[archived context unavailable: a-b-1-1]') });
    expect(snapshot.history).toHaveLength(1);
    expect(codeOf(() => resumeHistory({ ...snapshot, archiveContent: undefined }))).toBe('INVALID_ENTRY');
  });
});

describe('step file names', () => {
  it('pads to 6 digits and grows past a million', () => {
    expect(stepName(1)).toBe('step-000001');
    expect(stepName(42)).toBe('step-000042');
    expect(stepName(999_999)).toBe('step-999999');
    expect(stepName(1_000_000)).toBe('step-1000000');
  });

  it('recognises canonical, non-canonical and non-step names', () => {
    expect(parseStepName('step-000042')).toEqual({ step: 42, canonical: true });
    expect(parseStepName('step-1000000')).toEqual({ step: 1_000_000, canonical: true });
    expect(parseStepName('step-42')).toEqual({ step: 42, canonical: false });
    expect(parseStepName('step-0000042')).toEqual({ step: 42, canonical: false });
    expect(parseStepName('step-01000000')).toEqual({ step: 1_000_000, canonical: false });
    for (const name of ['step-000007.tmp.1234.99', 'step-', 'step-x', 'step-000042~', 'meta', '.DS_Store', 'Step-000001']) {
      expect([name, parseStepName(name)]).toEqual([name, null]);
    }
  });

  it('temp names are hidden and never start with step-', () => {
    for (let i = 0; i < 3; i++) {
      const name = tempPath('/x').slice(3);
      expect(name.startsWith('.')).toBe(true);
      expect(parseStepName(name)).toBeNull();
    }
  });
});

describe('KeyedQueue', () => {
  function deferred() {
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    return { promise, resolve };
  }

  it('runs tasks of one key one after another in call order, even after a failure', async () => {
    const queue = new KeyedQueue();
    const order: string[] = [];
    const gate = deferred();
    const first = queue.run('s', async () => {
      order.push('first starts');
      await gate.promise;
      order.push('first ends');
    });
    const second = queue.run('s', async () => {
      order.push('second');
      throw new Error('boom');
    });
    const third = queue.run('s', async () => void order.push('third'));
    await Promise.resolve();
    expect(order).toEqual(['first starts']);
    gate.resolve();
    await first;
    await expect(second).rejects.toThrow('boom');
    await third;
    expect(order).toEqual(['first starts', 'first ends', 'second', 'third']);
  });

  it('lets another key run while one key is blocked, and drain waits for both', async () => {
    const queue = new KeyedQueue();
    const gate = deferred();
    let blockedDone = false;
    const blocked = queue.run('a', async () => {
      await gate.promise;
      blockedDone = true;
    });
    await queue.run('b', async () => undefined);
    expect(blockedDone).toBe(false);
    let drained = false;
    const draining = queue.drain().then(() => (drained = true));
    await Promise.resolve();
    expect(drained).toBe(false);
    gate.resolve();
    await blocked;
    await draining;
    expect(drained).toBe(true);
  });
});
