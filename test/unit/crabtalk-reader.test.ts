// The crabtalk oracle (test/helpers/crabtalk-reader.ts) against the
// hand-written cases and against what crabtalk v0.0.22 itself read from the
// fixture sessions folder.

import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  archivePlaceholder,
  readMetaText,
  readSessionDir,
  readStep,
  readStepText,
  type JsValue,
  type Loaded,
} from '../helpers/crabtalk-reader.js';
import { makeTempDir } from '../helpers/fs-harness.js';
import { META_CASES, STEP_CASES } from './crabtalk-cases.js';

const FIXTURE_ROOT = path.resolve(import.meta.dirname, '../fixtures/crabtalk-0.0.22-root');
const EXPECTED_FILE = path.resolve(import.meta.dirname, '../fixtures/crabtalk-0.0.22-root.expected.json');

/**
 * JSON with sorted keys. The expected file went through a JS serialiser, so its
 * numbers are doubles (-0.0 shows as 0, 12345678901234567890 as
 * 12345678901234567000): comparing serialised doubles matches that.
 */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

const entry = (text: string, role = 'user'): JsValue => ({ message: { role, content: [{ type: 'text', text }] } });

describe('crabtalk oracle: step cases', () => {
  it('has enough distinct cases', () => {
    expect(STEP_CASES.length).toBeGreaterThanOrEqual(70);
    expect(new Set(STEP_CASES.map((c) => c.name)).size).toBe(STEP_CASES.length);
    for (const kind of ['compact', 'legacy-compact', 'event', 'entry', null]) {
      expect(STEP_CASES.some((c) => c.kind === kind), String(kind)).toBe(true);
    }
  });

  it.each(STEP_CASES)('$name', ({ text, kind, why }) => {
    const read = readStepText(text);
    expect(read.kind, `${why}; reader said: ${read.reason ?? 'no reason'}`).toBe(kind);
    if (kind === null) expect(read.reason).toEqual(expect.any(String));
    else expect(read.reason).toBeUndefined();
  });

  it('rejects a string with an unpaired surrogate as not UTF-8', () => {
    expect(readStepText(`{"message":{"role":"user","content":[{"type":"text","text":"\ud800"}]}}`)).toEqual({
      kind: null,
      reason: 'not valid UTF-8',
    });
  });
});

describe('crabtalk oracle: the line crabtalk writes back', () => {
  it('fills the legacy defaults', () => {
    expect(readStep('{"compact":"s","extra":1}').line).toEqual({ compact: 's', title: '', archived_at: '' });
  });

  it('drops empty arguments, missing names and signatures, and an empty agent', () => {
    expect(readStep('{"event":"tool_start","calls":[{"id":"a","name":"n","arguments":""}],"ts":"t"}').line).toEqual({
      event: 'tool_start',
      calls: [{ id: 'a', name: 'n' }],
      ts: 't',
    });
    const text =
      '{"agent":"","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","name":null,"content":"x","x":1},' +
      '{"type":"thinking","thinking":"h","signature":null}]}}';
    expect(readStep(text).line).toEqual({
      message: {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 't', content: 'x' },
          { type: 'thinking', thinking: 'h' },
        ],
      },
    });
  });

  it('keeps the last of duplicate keys in a free value', () => {
    const text = '{"message":{"role":"a","content":[{"type":"tool_use","id":"t","name":"n","input":{"k":1,"k":2,"__proto__":3}}]}}';
    const line = readStep(text).line as { message: { content: { input: Record<string, unknown> }[] } };
    expect(line.message.content[0]!.input.k).toBe(2);
    expect(Object.getOwnPropertyDescriptor(line.message.content[0]!.input, '__proto__')?.value).toBe(3);
  });
});

describe('crabtalk oracle: meta cases', () => {
  it('has enough distinct cases', () => {
    expect(META_CASES.length).toBeGreaterThanOrEqual(25);
    expect(new Set(META_CASES.map((c) => c.name)).size).toBe(META_CASES.length);
  });

  it.each(META_CASES)('$name', ({ text, ok, why }) => {
    const read = readMetaText(text);
    expect(read.ok, `${why}; reader said: ${read.ok ? 'ok' : read.reason}`).toBe(ok);
  });

  it('fills defaults and treats a null summary as absent', () => {
    expect(readMetaText('{"agent":"a","created_by":"b","created_at":"c","summary":null,"topic":"x"}')).toEqual({
      ok: true,
      meta: { agent: 'a', created_by: 'b', created_at: 'c', title: '', updated_at: '', message_count: 0 },
    });
    expect(readMetaText('{"agent":"a","created_by":"b","created_at":"c","message_count":7,"summary":"s"}')).toEqual({
      ok: true,
      meta: { agent: 'a', created_by: 'b', created_at: 'c', title: '', updated_at: '', message_count: 7, summary: 's' },
    });
  });
});

interface ExpectedStep {
  file: string;
  variant: string | null;
  error: string | null;
  line: unknown;
}

interface ExpectedSession {
  dir: string;
  listed: boolean;
  meta: unknown;
  meta_error: string | null;
  next_step: number;
  load: string | { steps: ExpectedStep[]; history: unknown[]; archive: string | null; resumed: unknown[] };
}

describe('crabtalk oracle: the fixture folder crabtalk wrote', () => {
  const expected = JSON.parse(fs.readFileSync(EXPECTED_FILE, 'utf8')) as { sessions: ExpectedSession[] };

  it('covers every session directory of the fixture', () => {
    const dirs = fs.readdirSync(FIXTURE_ROOT).sort();
    expect(expected.sessions.map((s) => s.dir).sort()).toEqual(dirs);
  });

  it.each(expected.sessions.map((session) => [session.dir, session] as const))('%s', (dir, session) => {
    const read = readSessionDir(path.join(FIXTURE_ROOT, dir));
    expect(read.listed).toBe(session.listed);
    expect(read.nextStep).toBe(BigInt(session.next_step));
    if (session.meta === null) {
      expect(read.meta.ok).toBe(false);
      expect(session.meta_error).not.toBeNull();
    } else {
      expect(read.meta.ok ? canonical(read.meta.meta) : read.meta.reason).toBe(canonical(session.meta));
    }

    if (typeof session.load === 'string') {
      expect(session.load).toBe('none (no meta)');
      expect(read.load).toBe('none');
      return;
    }
    expect(typeof read.load === 'object' && 'steps' in read.load).toBe(true);
    const load = read.load as Loaded;
    const wanted = session.load;
    expect(load.steps.map((s) => s.file)).toEqual(wanted.steps.map((s) => s.file));
    load.steps.forEach((step, i) => {
      const want = wanted.steps[i]!;
      expect(step.kind, step.file).toBe(want.variant);
      expect(step.kind === null, step.file).toBe(want.error !== null);
      expect(canonical(step.line ?? null), step.file).toBe(canonical(want.line));
    });
    expect(canonical(load.history)).toBe(canonical(wanted.history));
    expect(load.archive).toBe(wanted.archive);
    expect(canonical(load.resumed)).toBe(canonical(wanted.resumed));
  });
});

describe('crabtalk oracle: session directories', () => {
  async function sessionDir(files: Record<string, string | Buffer>): Promise<string> {
    const dir = await makeTempDir('crabtalk-oracle');
    for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), content);
    return dir;
  }
  const META = '{"agent":"crab","created_by":"u","created_at":"2026-03-25T10:00:00Z"}';

  it('sorts step names as bytes, reads temp files, and skips what does not parse', async () => {
    const dir = await sessionDir({
      meta: META,
      'step-200000': JSON.stringify(entry('two hundred thousand')),
      'step-1000000': JSON.stringify(entry('a million')),
      'step-200000.tmp.1.2': JSON.stringify(entry('temp')),
      'step-000001': Buffer.from([0x7b, 0xff, 0x7d]),
      'step-000002': '{"message":{"role":"user","content":"old style"}}',
      'notes.txt': JSON.stringify(entry('not a step')),
    });
    const read = readSessionDir(dir);
    const load = read.load as Loaded;
    expect(load.steps.map((s) => [s.file, s.kind])).toEqual([
      ['step-000001', null],
      ['step-000002', null],
      ['step-1000000', 'entry'],
      ['step-200000', 'entry'],
      ['step-200000.tmp.1.2', 'entry'],
    ]);
    expect(load.steps[0]!.reason).toBe('not valid UTF-8');
    expect(load.history).toEqual([entry('a million'), entry('two hundred thousand'), entry('temp')]);
    expect(read.nextStep).toBe(1000001n);
  });

  it('puts the placeholder in front after a compact marker, nothing after a legacy one', async () => {
    const compacted = await sessionDir({
      meta: META,
      'step-000001': JSON.stringify(entry('before')),
      'step-000002': '{"archive_name":"crab-u-1-1","archived_at":"t"}',
      'step-000003': JSON.stringify(entry('after')),
    });
    const load = readSessionDir(compacted).load as Loaded;
    expect(load.archive).toBe('crab-u-1-1');
    expect(load.history).toEqual([entry('after')]);
    expect(load.resumed).toEqual([archivePlaceholder('crab-u-1-1'), entry('after')]);

    const legacy = await sessionDir({
      meta: META,
      'step-000001': '{"archive_name":"crab-u-1-1","archived_at":"t"}',
      'step-000002': JSON.stringify(entry('middle')),
      'step-000003': '{"compact":"inline"}',
      'step-000004': JSON.stringify(entry('after')),
    });
    const legacyLoad = readSessionDir(legacy).load as Loaded;
    expect(legacyLoad.archive).toBeNull();
    expect(legacyLoad.resumed).toEqual([entry('after')]);
  });

  it('fails the load on a bad meta or an unreadable step entry, finds none without meta', async () => {
    const badMeta = await sessionDir({ meta: '{"agent":"crab"}', 'step-000001': JSON.stringify(entry('x')) });
    const badMetaRead = readSessionDir(badMeta);
    expect(badMetaRead.listed).toBe(false);
    expect(badMetaRead.load).toEqual({ error: expect.stringContaining('created_by') });

    const stepDirectory = await sessionDir({ meta: META });
    fs.mkdirSync(path.join(stepDirectory, 'step-000001'));
    const stepDirectoryRead = readSessionDir(stepDirectory);
    expect(stepDirectoryRead.listed).toBe(true);
    expect(stepDirectoryRead.load).toEqual({ error: expect.stringContaining('step-000001') });

    const noMeta = await sessionDir({ 'step-+7': JSON.stringify(entry('x')) });
    const noMetaRead = readSessionDir(noMeta);
    expect(noMetaRead.load).toBe('none');
    expect(noMetaRead.nextStep).toBe(8n); // Rust's u64 parser takes a leading '+'
  });
});
