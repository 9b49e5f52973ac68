// Part 5 of the torture suite: property tests (fast-check). Random sequences of
// create / append / compact / delete / update / load / list / find / reopen run
// against the filesystem store and a plain in-memory model, which must agree
// after every command; random concurrent interleavings within one store (the
// fast-check scheduler) must match the model applied in call order; random
// bytes and random JSON as step or meta files never make load throw anything
// but CORRUPT_META (for a meta crabtalk could not read either); senderSlug is
// idempotent and emits only allowed characters; handles fit in 255 bytes.

import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StepStoreError, openStore, senderSlug, type HistoryEntry, type Store } from 'stepstore';
import { dropDir, scratchDir } from './lib/scratch.js';
import { iterations, report } from './summary.js';

const quiet = { warn() {} };
const SLUG_CHARS = /^[\p{Alphabetic}\p{N}-]*$/u;
const HANDLE = /^[\p{Alphabetic}\p{N}-]+_[\p{Alphabetic}\p{N}-]+_[1-9][0-9]*$/u;

const counts = { sequences: 0, commands: 0, interleavings: 0, concurrentOps: 0, plantedFiles: 0, names: 0, failed: 0 };

/** Runs a property; a counterexample counts as a disagreement in the report, then fails the test. */
async function holds(property: () => Promise<void> | void): Promise<void> {
  try {
    await property();
  } catch (err) {
    counts.failed += 1;
    throw err;
  }
}

// ---------------------------------------------------------------- the model

type Line = Record<string, unknown>;

interface ModelSession {
  agent: string;
  createdBy: string;
  title: string;
  /**
   * message_count: entries appended, or what the last updateMeta set, plus entries since; a
   * compaction restarts it at 1 (crabtalk's count of the live conversation: the summary).
   */
  count: number;
  steps: { n: number; line: Line }[];
  live: boolean;
}

interface Model {
  /** Every handle ever created; a handle created again after a delete is a new session. */
  sessions: Map<string, ModelSession>;
  archives: Map<string, { owner: string; content: string }>;
}

interface Real {
  dir: string;
  store: Store;
}

const isMarker = (line: Line) => typeof line.archive_name === 'string';
const isEntry = (line: Line) => typeof line.message === 'object';

function archiveNumber(name: string, base: string): number | null {
  if (!name.startsWith(`${base}-`)) return null;
  const rest = name.slice(base.length + 1);
  return /^[1-9][0-9]*$/.test(rest) ? Number(rest) : null;
}

const model = {
  create(m: Model, agent: string, createdBy: string): string {
    const prefix = `${senderSlug(agent)}_${senderSlug(createdBy)}_`;
    let seq = 1;
    // Deleted sessions count too: a seq is never handed out again.
    for (const handle of m.sessions.keys()) {
      if (handle.startsWith(prefix) && /^[0-9]+$/.test(handle.slice(prefix.length))) seq = Math.max(seq, Number(handle.slice(prefix.length)) + 1);
    }
    const handle = `${prefix}${seq}`;
    m.sessions.set(handle, { agent, createdBy, title: '', count: 0, steps: [], live: true });
    return handle;
  },
  append(m: Model, handle: string, lines: Line[]): number[] | 'SESSION_NOT_FOUND' {
    const s = m.sessions.get(handle);
    if (s === undefined || !s.live) return 'SESSION_NOT_FOUND';
    s.count += lines.filter(isEntry).length;
    return lines.map((line) => {
      const n = (s.steps.at(-1)?.n ?? 0) + 1;
      s.steps.push({ n, line });
      return n;
    });
  },
  compact(m: Model, handle: string, content: string): string | 'SESSION_NOT_FOUND' {
    const s = m.sessions.get(handle);
    if (s === undefined || !s.live) return 'SESSION_NOT_FOUND';
    const base = senderSlug(handle);
    let n = 1;
    for (const name of m.archives.keys()) n = Math.max(n, (archiveNumber(name, base) ?? 0) + 1);
    const name = `${base}-${n}`;
    m.archives.set(name, { owner: handle, content });
    model.append(m, handle, [{ archive_name: name }]);
    s.count = 1;
    return name;
  },
  remove(m: Model, handle: string): boolean {
    const s = m.sessions.get(handle);
    if (s === undefined || !s.live) return false;
    s.live = false;
    const base = senderSlug(handle);
    for (const [name, archive] of m.archives) if (archive.owner === handle && archiveNumber(name, base) !== null) m.archives.delete(name);
    return true;
  },
};

/** Marker lines carry a time the model does not know: compare without it. */
function comparable(line: unknown): unknown {
  const { archived_at: _at, ...rest } = line as Line;
  return rest;
}

async function codeOf(call: () => Promise<unknown>): Promise<{ ok: unknown } | { code: string }> {
  try {
    return { ok: await call() };
  } catch (err) {
    if (!(err instanceof StepStoreError)) throw err;
    return { code: err.code };
  }
}

/** The real session, read through a fresh load, equals the model's. */
async function expectSession(real: Real, m: Model, handle: string): Promise<void> {
  const s = m.sessions.get(handle);
  const snapshot = await real.store.loadSession(handle, { withArchive: true });
  if (s === undefined || !s.live) {
    expect(snapshot, `${handle} is deleted`).toBeNull();
    return;
  }
  expect(snapshot, `${handle} exists`).not.toBeNull();
  const lastMarker = s.steps.findLastIndex(({ line }) => isMarker(line));
  const archive = lastMarker < 0 ? null : (s.steps[lastMarker]!.line.archive_name as string);
  expect(snapshot!.meta).toMatchObject({ agent: s.agent, created_by: s.createdBy, title: s.title, message_count: s.count });
  expect(snapshot!.history).toEqual(s.steps.slice(lastMarker + 1).filter(({ line }) => isEntry(line)).map(({ line }) => line));
  expect(snapshot!.archive).toBe(archive);
  expect(snapshot!.archiveContent).toBe(archive === null ? null : (m.archives.get(archive)?.content ?? null));
  expect(snapshot!.diagnostics).toEqual([]);
}

// ------------------------------------------------------------- the commands

const AGENTS = ['crab', 'Crab', 'crab-tg', 'Émile'];
const SENDERS = ['tg:1', 'TG:1', 'x', 'tg-x'];

type Cmd = fc.AsyncCommand<Model, Real>;

const handles = (m: Model) => [...m.sessions.keys()];
const pickHandle = (m: Model, pick: number) => handles(m)[pick % handles(m).length]!;

class Create implements Cmd {
  constructor(readonly agent: string, readonly sender: string) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const expected = model.create(m, this.agent, this.sender);
    expect(await r.store.createSession(this.agent, this.sender)).toBe(expected);
  }
  toString = () => `create(${this.agent}, ${this.sender})`;
}

class Append implements Cmd {
  constructor(readonly pick: number, readonly lines: Line[], readonly events: boolean) {}
  check = (m: Readonly<Model>) => m.sessions.size > 0;
  async run(m: Model, r: Real) {
    const handle = pickHandle(m, this.pick);
    const expected = model.append(m, handle, this.lines);
    const got = await codeOf(() =>
      this.events ? r.store.appendEvents(handle, this.lines as never) : r.store.appendMessages(handle, this.lines as HistoryEntry[]),
    );
    expect(got).toEqual(expected === 'SESSION_NOT_FOUND' ? { code: expected } : { ok: expected });
  }
  toString = () => `append(#${this.pick}, ${this.lines.length} ${this.events ? 'events' : 'messages'})`;
}

class Compact implements Cmd {
  constructor(readonly pick: number, readonly summary: string) {}
  check = (m: Readonly<Model>) => m.sessions.size > 0;
  async run(m: Model, r: Real) {
    const handle = pickHandle(m, this.pick);
    const expected = model.compact(m, handle, this.summary);
    const got = await codeOf(() => r.store.compact(handle, this.summary));
    expect(got).toEqual(expected === 'SESSION_NOT_FOUND' ? { code: expected } : { ok: expected });
  }
  toString = () => `compact(#${this.pick})`;
}

class Delete implements Cmd {
  constructor(readonly pick: number) {}
  check = (m: Readonly<Model>) => m.sessions.size > 0;
  async run(m: Model, r: Real) {
    const handle = pickHandle(m, this.pick);
    expect(await r.store.deleteSession(handle)).toBe(model.remove(m, handle));
  }
  toString = () => `delete(#${this.pick})`;
}

class Retitle implements Cmd {
  constructor(readonly pick: number, readonly title: string) {}
  check = (m: Readonly<Model>) => m.sessions.size > 0;
  async run(m: Model, r: Real) {
    const handle = pickHandle(m, this.pick);
    const s = m.sessions.get(handle)!;
    const meta = (await r.store.loadSession(handle))?.meta ?? { agent: s.agent, created_by: s.createdBy, created_at: '2026-01-01T00:00:00Z', title: '', updated_at: '', message_count: 0 };
    const got = await codeOf(() => r.store.updateMeta(handle, { ...meta, title: this.title }));
    if (s.live) s.title = this.title;
    expect(got).toEqual(s.live ? { ok: undefined } : { code: 'SESSION_NOT_FOUND' });
  }
  toString = () => `retitle(#${this.pick})`;
}

class Load implements Cmd {
  constructor(readonly pick: number) {}
  check = (m: Readonly<Model>) => m.sessions.size > 0;
  async run(m: Model, r: Real) {
    await expectSession(r, m, pickHandle(m, this.pick));
  }
  toString = () => `load(#${this.pick})`;
}

class ReadSteps implements Cmd {
  constructor(readonly pick: number, readonly after: number) {}
  check = (m: Readonly<Model>) => m.sessions.size > 0;
  async run(m: Model, r: Real) {
    const handle = pickHandle(m, this.pick);
    const s = m.sessions.get(handle)!;
    const got = await codeOf(() => r.store.readSteps(handle, { after: this.after }));
    if (!s.live) return void expect(got).toEqual({ code: 'SESSION_NOT_FOUND' });
    const steps = (got as { ok: { step: number; line: unknown }[] }).ok;
    expect(steps.map(({ step, line }) => ({ n: step, line: comparable(line) }))).toEqual(
      s.steps.filter(({ n }) => n > this.after).map(({ n, line }) => ({ n, line: comparable(line) })),
    );
  }
  toString = () => `readSteps(#${this.pick}, after ${this.after})`;
}

class List implements Cmd {
  constructor(readonly agent: string | null) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const listed = await r.store.listSessions(this.agent === null ? {} : { agent: this.agent });
    const expected = [...m.sessions].filter(([, s]) => s.live && (this.agent === null || s.agent === this.agent)).map(([h]) => h).sort();
    expect(listed.map((s) => s.handle).sort()).toEqual(expected);
    for (const { handle, meta } of listed) {
      const s = m.sessions.get(handle)!;
      expect(meta.message_count).toBe(s.count);
      expect(meta.title).toBe(s.title);
    }
  }
  toString = () => `list(${this.agent ?? 'all'})`;
}

class FindLatest implements Cmd {
  constructor(readonly agent: string, readonly sender: string) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const seqOf = (h: string) => Number(h.slice(h.lastIndexOf('_') + 1));
    const candidates = [...m.sessions].filter(([, s]) => s.live && s.agent === this.agent && s.createdBy === this.sender).map(([h]) => h);
    candidates.sort((a, b) => seqOf(b) - seqOf(a));
    expect(await r.store.findLatestSession(this.agent, this.sender)).toBe(candidates[0] ?? null);
  }
  toString = () => `findLatest(${this.agent}, ${this.sender})`;
}

class Reopen implements Cmd {
  check = () => true;
  async run(m: Model, r: Real) {
    await r.store.close();
    r.store = await openStore({ dir: r.dir, durability: 'none', logger: quiet });
    for (const handle of m.sessions.keys()) await expectSession(r, m, handle);
  }
  toString = () => 'reopen';
}

const text = fc.string({ unit: 'grapheme', maxLength: 12 });
/** A user message as crabtalk builds one: one text block. */
const userLine = (words: string) => ({ message: { role: 'user', content: [{ type: 'text', text: words }] } });
const entryLine = text.map((words): Line => userLine(words));
/** crabtalk's tool_result event, with an extra field (kept, ignored by crabtalk). */
const eventLine = fc.tuple(text, fc.nat()).map(([detail, ms]): Line => ({ event: 'tool_result', call_id: 'c1', duration_ms: ms, ts: '2026-03-25T10:00:00Z', detail }));

const commandArbs = [
  fc.tuple(fc.constantFrom(...AGENTS), fc.constantFrom(...SENDERS)).map(([a, s]) => new Create(a, s)),
  fc.tuple(fc.nat(), fc.array(entryLine, { minLength: 1, maxLength: 4 })).map(([p, lines]) => new Append(p, lines, false)),
  fc.tuple(fc.nat(), fc.array(eventLine, { minLength: 1, maxLength: 2 })).map(([p, lines]) => new Append(p, lines, true)),
  fc.tuple(fc.nat(), text).map(([p, summary]) => new Compact(p, summary)),
  fc.nat().map((p) => new Delete(p)),
  fc.tuple(fc.nat(), text).map(([p, title]) => new Retitle(p, title)),
  fc.nat().map((p) => new Load(p)),
  fc.tuple(fc.nat(), fc.nat({ max: 6 })).map(([p, after]) => new ReadSteps(p, after)),
  fc.option(fc.constantFrom(...AGENTS), { nil: null }).map((a) => new List(a)),
  fc.tuple(fc.constantFrom(...AGENTS), fc.constantFrom(...SENDERS)).map(([a, s]) => new FindLatest(a, s)),
  fc.constant(new Reopen()),
] as fc.Arbitrary<Cmd>[];

// ----------------------------------------------- oracles for planted files

/**
 * crabtalk 0.0.22's step classification (the README's On-disk format section),
 * written again from the spec: first match of compact marker, legacy marker,
 * one of its four events, history entry with a content-block message. Not
 * modelled, because no generator below produces them: duplicate keys, and
 * integers spelled `42.0` or `4.2e1` (JSON.stringify writes neither).
 */
function classify(text: string | null): 'compact' | 'legacy' | 'event' | 'entry' | null {
  if (text === null) return null;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  const plain = (x: unknown): x is Record<string, unknown> =>
    typeof x === 'object' && x !== null && !Array.isArray(x) && (Object.getPrototypeOf(x) === Object.prototype || Object.getPrototypeOf(x) === null);
  // crabtalk's parser refuses a lone surrogate escape anywhere, and nesting deeper than 127 levels.
  const loneSurrogate = /\p{Surrogate}/u;
  const wellFormed = (x: unknown, depth: number): boolean => {
    if (typeof x === 'string') return !loneSurrogate.test(x);
    if (typeof x !== 'object' || x === null) return true;
    if (depth > 127) return false;
    return Array.isArray(x) ? x.every((y) => wellFormed(y, depth + 1)) : Object.entries(x).every(([k, y]) => !loneSurrogate.test(k) && wellFormed(y, depth + 1));
  };
  if (!wellFormed(v, 1) || !plain(v)) return null;
  const str = (x: unknown) => typeof x === 'string';
  // A String field with a default: absent, or a string (null is refused).
  const optStr = (x: unknown) => x === undefined || str(x);
  // An Option<String>: absent, null or a string.
  const nullStr = (x: unknown) => x === undefined || x === null || str(x);
  const uint = (x: unknown, max: number) => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= max;
  const u32 = (x: unknown) => uint(x, 2 ** 32 - 1);
  const optU32 = (x: unknown) => x === undefined || x === null || u32(x);
  const u64 = (x: unknown) => uint(x, 2 ** 64 - 1);
  const event = (e: Record<string, unknown>): boolean => {
    switch (e.event) {
      case 'tool_start':
        return Array.isArray(e.calls) && e.calls.every((c) => plain(c) && str(c.id) && str(c.name) && optStr(c.arguments)) && str(e.ts);
      case 'tool_result':
        return str(e.call_id) && u64(e.duration_ms) && str(e.ts);
      case 'done': {
        const u = e.usage;
        const details = plain(u) ? u.completion_tokens_details : undefined;
        return (
          str(e.model) && u64(e.iterations) && str(e.stop_reason) && str(e.ts) && plain(u) &&
          u32(u.prompt_tokens) && u32(u.completion_tokens) && u32(u.total_tokens) && optU32(u.prompt_cache_hit_tokens) && optU32(u.prompt_cache_miss_tokens) &&
          (details === undefined || details === null || (plain(details) && optU32(details.reasoning_tokens)))
        );
      }
      case 'user_steered':
        return str(e.content) && str(e.ts);
      default:
        return false;
    }
  };
  const blocks = (x: unknown): boolean => Array.isArray(x) && x.every(block);
  const block = (b: unknown): boolean => {
    if (!plain(b)) return false;
    switch (b.type) {
      case 'text':
        return str(b.text);
      case 'tool_use':
        return str(b.id) && str(b.name) && 'input' in b;
      case 'tool_result':
        return str(b.tool_use_id) && nullStr(b.name) && (str(b.content) || blocks(b.content));
      case 'thinking':
        return str(b.thinking) && nullStr(b.signature);
      case 'image':
        return 'source' in b;
      default:
        return false;
    }
  };
  if (str(v.archive_name) && str(v.archived_at)) return 'compact';
  if (str(v.compact) && optStr(v.title) && optStr(v.archived_at)) return 'legacy';
  if (event(v)) return 'event';
  if (plain(v.message) && str(v.message.role) && blocks(v.message.content) && optStr(v.agent)) return 'entry';
  return null;
}

/** crabtalk's meta rules (the README's On-disk format section), written again from the spec: would crabtalk read it? */
function metaReadable(text: string): boolean {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return false;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  if (typeof o.agent !== 'string' || typeof o.created_by !== 'string' || typeof o.created_at !== 'string') return false;
  if (o.title !== undefined && typeof o.title !== 'string') return false;
  if (o.updated_at !== undefined && typeof o.updated_at !== 'string') return false;
  if (o.message_count !== undefined && !(Number.isSafeInteger(o.message_count) && (o.message_count as number) >= 0)) return false;
  if (o.summary !== undefined && o.summary !== null && typeof o.summary !== 'string') return false;
  return true;
}

/** crabtalk's four events (and one it does not know), every field sometimes missing or of the wrong type. */
const crabtalkEvent = fc.record(
  {
    event: fc.constantFrom('tool_start', 'tool_result', 'done', 'user_steered', 'note'),
    calls: fc.array(fc.record({ id: fc.string(), name: fc.oneof(fc.string(), fc.constant(null)), arguments: fc.string() }, { requiredKeys: ['id'] }), { maxLength: 2 }),
    call_id: fc.oneof(fc.string(), fc.integer()),
    duration_ms: fc.oneof(fc.nat(), fc.integer({ min: -3, max: -1 }), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.string()),
    model: fc.string(),
    iterations: fc.oneof(fc.nat(), fc.constant(-1)),
    stop_reason: fc.string(),
    usage: fc.record(
      {
        prompt_tokens: fc.oneof(fc.nat(), fc.constant(2 ** 32)),
        completion_tokens: fc.nat(),
        total_tokens: fc.oneof(fc.nat(), fc.double({ noNaN: true, noDefaultInfinity: true })),
        completion_tokens_details: fc.oneof(fc.constant(null), fc.record({ reasoning_tokens: fc.oneof(fc.nat(), fc.string()) }, { requiredKeys: [] })),
      },
      { requiredKeys: [] },
    ),
    content: fc.oneof(fc.string(), fc.integer()),
    ts: fc.oneof(fc.string(), fc.constant(null)),
  },
  { requiredKeys: ['event'] },
);

/** Content blocks of the five kinds crabtalk knows (and one it does not), every field sometimes missing or wrong. */
const crabtalkBlock: fc.Arbitrary<Record<string, unknown>> = fc.letrec<{ block: Record<string, unknown> }>((tie) => ({
  block: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({ type: fc.constantFrom('text', 'video'), text: fc.oneof(fc.string(), fc.integer()) }, { requiredKeys: ['type'] }),
    fc.record({ type: fc.constant('tool_use'), id: fc.string(), name: fc.string(), input: fc.jsonValue({ maxDepth: 2 }) }, { requiredKeys: ['type'] }),
    fc.record(
      { type: fc.constant('tool_result'), tool_use_id: fc.string(), name: fc.oneof(fc.string(), fc.constant(null), fc.integer()), content: fc.oneof(fc.string(), fc.integer(), fc.array(tie('block'), { maxLength: 2 })) },
      { requiredKeys: ['type'] },
    ),
    fc.record({ type: fc.constant('thinking'), thinking: fc.oneof(fc.string(), fc.constant(null)), signature: fc.oneof(fc.string(), fc.constant(null)) }, { requiredKeys: ['type'] }),
    fc.record({ type: fc.constant('image'), source: fc.jsonValue({ maxDepth: 1 }) }, { requiredKeys: ['type'] }),
  ),
})).block;

/** Messages: crabtalk's `{ role, content: [blocks] }`, or OpenAI's string content, or with role missing. */
const crabtalkMessage = fc.record(
  { role: fc.oneof(fc.constantFrom('user', 'assistant', 'tool'), fc.integer()), content: fc.oneof(fc.array(crabtalkBlock, { maxLength: 3 }), fc.string()) },
  { requiredKeys: [] },
);

const stepText = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? 'null'),
  fc.record({ message: fc.jsonValue({ maxDepth: 2 }), agent: fc.oneof(fc.string(), fc.integer()) }, { requiredKeys: ['message'] }).map((v) => JSON.stringify(v)),
  fc.record({ event: fc.oneof(fc.string(), fc.constant(null)) }).map((v) => JSON.stringify(v)),
  // crabtalk's events and messages, each field right or wrong.
  crabtalkEvent.map((v) => JSON.stringify(v)),
  fc.record({ message: crabtalkMessage, agent: fc.oneof(fc.string(), fc.integer()), event: fc.oneof(fc.string(), fc.integer()) }, { requiredKeys: ['message'] }).map((v) => JSON.stringify(v)),
  fc.record({ compact: fc.oneof(fc.string(), fc.integer()), title: fc.oneof(fc.string(), fc.integer()) }, { requiredKeys: ['compact'] }).map((v) => JSON.stringify(v)),
  fc.record({ archive_name: fc.oneof(fc.constant('crab-x-1-1'), fc.string()), archived_at: fc.oneof(fc.string(), fc.integer()) }).map((v) => JSON.stringify(v)),
  entryLine.map((line) => JSON.stringify(line)),
);

const metaText = fc.oneof(
  fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
  fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v) ?? 'null'),
  fc
    .record(
      {
        agent: fc.oneof(fc.constant('crab'), fc.integer()),
        created_by: fc.oneof(fc.constant('x'), fc.constant(null)),
        created_at: fc.oneof(fc.constant('2026-03-25T10:00:00Z'), fc.boolean()),
        title: fc.oneof(fc.string(), fc.integer()),
        updated_at: fc.oneof(fc.constant('2026-03-25T10:00:00.123456789+00:00'), fc.string(), fc.integer()),
        message_count: fc.oneof(fc.nat(), fc.integer({ min: -5, max: -1 }), fc.double(), fc.string()),
        summary: fc.oneof(fc.string(), fc.constant(null), fc.integer()),
        topic: fc.jsonValue({ maxDepth: 1 }),
      },
      { requiredKeys: [] },
    )
    .map((v) => JSON.stringify(v)),
);

// ----------------------------------------------------------------- the tests

describe('5. properties', () => {
  it('random sequences of operations agree with the in-memory model after every command', async () => {
    const runs = iterations(40, 400);
    await holds(() => fc.assert(
      fc.asyncProperty(fc.commands(commandArbs, { maxCommands: iterations(30, 60), size: 'max' }), async (cmds) => {
        const dir = scratchDir('model');
        const real: Real = { dir: path.join(dir, 'sessions'), store: await openStore({ dir: path.join(dir, 'sessions'), durability: 'none', logger: quiet }) };
        try {
          const list = [...cmds];
          counts.sequences += 1;
          counts.commands += list.length;
          await fc.asyncModelRun(() => ({ model: { sessions: new Map(), archives: new Map() } as Model, real }), list);
        } finally {
          await real.store.close();
          dropDir(dir);
        }
      }),
      { numRuns: runs },
    ));
  });

  it('concurrent appends, compactions, retitles, deletes and creates in one store, in any interleaving, equal the model applied in call order', async () => {
    type Op =
      | { t: 'append'; s: 0 | 1; lines: Line[] }
      | { t: 'events'; s: 0 | 1; lines: Line[] }
      | { t: 'compact'; s: 0 | 1; summary: string }
      | { t: 'retitle'; s: 0 | 1; title: string }
      | { t: 'delete'; s: 0 | 1 }
      | { t: 'create' };
    const which = fc.constantFrom(0 as const, 1 as const);
    const op: fc.Arbitrary<Op> = fc.oneof(
      { weight: 4, arbitrary: fc.record({ t: fc.constant('append' as const), s: which, lines: fc.array(entryLine, { minLength: 1, maxLength: 3 }) }) },
      { weight: 1, arbitrary: fc.record({ t: fc.constant('events' as const), s: which, lines: fc.array(eventLine, { minLength: 1, maxLength: 2 }) }) },
      { weight: 1, arbitrary: fc.record({ t: fc.constant('compact' as const), s: which, summary: text }) },
      { weight: 1, arbitrary: fc.record({ t: fc.constant('retitle' as const), s: which, title: text }) },
      { weight: 1, arbitrary: fc.record({ t: fc.constant('delete' as const), s: which }) },
      { weight: 2, arbitrary: fc.constant({ t: 'create' as const }) },
    );
    await holds(() => fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.array(op, { minLength: 2, maxLength: 14 }), async (s, ops) => {
        const dir = scratchDir('sched');
        const root = path.join(dir, 'sessions');
        let store = await openStore({ dir: root, durability: 'none', logger: quiet });
        try {
          const m: Model = { sessions: new Map(), archives: new Map() };
          const targets = [model.create(m, 'crab', 'tg:1'), model.create(m, 'crab', 'tg:2')] as const;
          expect([await store.createSession('crab', 'tg:1'), await store.createSession('crab', 'tg:2')]).toEqual(targets);
          for (const t of targets) expect(await store.appendMessages(t, [userLine('first')])).toEqual(model.append(m, t, [userLine('first')]));
          const metas = await Promise.all(targets.map(async (t) => (await store.loadSession(t))!.meta));

          // Every operation starts at once, in call order (the order the store queues them); the
          // scheduler decides when each result comes back. An operation's failure is returned as a
          // value: fast-check attaches its handlers only when it delivers a result, so a rejection
          // before that would go unhandled.
          const order: number[] = [];
          const calls = ops.map((o, i) =>
            s.scheduleFunction(async (): Promise<{ value: unknown } | { reason: unknown }> => {
              order.push(i);
              const h = o.t === 'create' ? '' : targets[o.s];
              const run = (): Promise<unknown> => {
                switch (o.t) {
                  case 'append':
                    return store.appendMessages(h, o.lines as HistoryEntry[]);
                  case 'events':
                    return store.appendEvents(h, o.lines as never);
                  case 'compact':
                    return store.compact(h, o.summary);
                  case 'retitle':
                    return store.updateMeta(h, { ...metas[o.s]!, title: o.title });
                  case 'delete':
                    return store.deleteSession(h);
                  case 'create':
                    return store.createSession('crab', 'contended');
                }
              };
              return run().then(
                (value) => ({ value }),
                (reason: unknown) => ({ reason }),
              );
            })(),
          );
          const settled = Promise.all(calls);
          await s.waitIdle();
          const results = (await settled).map((r) =>
            'value' in r ? ({ status: 'fulfilled', value: r.value } as const) : ({ status: 'rejected', reason: r.reason } as const),
          );
          counts.interleavings += 1;
          counts.concurrentOps += ops.length;

          const created: string[] = [];
          for (const i of order) {
            const o = ops[i]!;
            const got = results[i]!;
            const outcome = got.status === 'fulfilled' ? { ok: got.value } : { code: (got.reason as StepStoreError).code ?? String(got.reason) };
            if (o.t === 'create') {
              expect(got.status).toBe('fulfilled');
              created.push(got.status === 'fulfilled' ? (got.value as string) : '');
              continue;
            }
            const h = targets[o.s];
            let expected: unknown;
            if (o.t === 'append' || o.t === 'events') expected = model.append(m, h, o.lines);
            else if (o.t === 'compact') expected = model.compact(m, h, o.summary);
            else if (o.t === 'delete') expected = model.remove(m, h);
            else {
              const session = m.sessions.get(h)!;
              expected = session.live ? undefined : 'SESSION_NOT_FOUND';
              // updateMeta writes the caller's meta whole: its counter too, superseding bumps before it.
              if (session.live) Object.assign(session, { title: o.title, count: metas[o.s]!.message_count });
            }
            expect(outcome, `${i}: ${JSON.stringify(o)} in order ${order.join(',')}`).toEqual(expected === 'SESSION_NOT_FOUND' ? { code: expected } : { ok: expected });
          }
          // Creates racing for one (agent, sender) each got their own seq: 1..k, no two share a directory.
          expect([...created].sort()).toEqual(Array.from({ length: created.length }, (_, k) => `crab_contended_${k + 1}`).sort());
          for (const h of created) m.sessions.set(h, { agent: 'crab', createdBy: 'contended', title: '', count: 0, steps: [], live: true });
          await store.close();
          store = await openStore({ dir: root, durability: 'none', logger: quiet });
          for (const h of m.sessions.keys()) await expectSession({ dir: root, store }, m, h);
        } finally {
          await store.close();
          dropDir(dir);
        }
      }),
      { numRuns: iterations(40, 600) },
    ));
  });

  it('random bytes and random JSON as step files never make load throw; each step is loaded or skipped exactly as the crabtalk format says', async () => {
    await holds(() => fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.integer({ min: 1, max: 40 }), stepText), { minLength: 1, maxLength: 12 }), async (planted) => {
        const dir = scratchDir('bytes');
        const root = path.join(dir, 'sessions');
        const store = await openStore({ dir: root, durability: 'none', logger: quiet });
        try {
          const handle = await store.createSession('crab', 'x');
          const steps = new Map(planted);
          for (const [n, content] of steps) fs.writeFileSync(path.join(root, handle, `step-${String(n).padStart(6, '0')}`), content, 'latin1');
          counts.plantedFiles += steps.size;
          // What a reader of the bytes on disk sees (latin1 writes bytes); null when they are not UTF-8,
          // which crabtalk's parser refuses like any other unparsable step.
          const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
          const decoded = (bytes: Buffer) => {
            try {
              return utf8.decode(bytes);
            } catch {
              return null;
            }
          };
          const onDisk = new Map([...steps].map(([n]) => [n, decoded(fs.readFileSync(path.join(root, handle, `step-${String(n).padStart(6, '0')}`)))]));
          const numbers = [...onDisk.keys()].sort((a, b) => a - b);
          const snapshot = await store.loadSession(handle);
          // Replay by the spec: newest first, stop at the first boundary.
          const history: unknown[] = [];
          const diagnostics: number[] = [];
          for (const n of [...numbers].reverse()) {
            const kind = classify(onDisk.get(n)!);
            if (kind === null) diagnostics.unshift(n);
            else if (kind === 'compact' || kind === 'legacy') break;
            else if (kind === 'entry') history.unshift(JSON.parse(onDisk.get(n)!));
          }
          expect(snapshot!.history).toEqual(history);
          expect(snapshot!.diagnostics.map((d) => d.step)).toEqual(diagnostics);
          const readable = await store.readSteps(handle);
          expect(readable.map((r) => r.step)).toEqual(numbers.filter((n) => classify(onDisk.get(n)!) !== null));
          // The store goes on past the planted numbers, never over them.
          const [next] = await store.appendMessages(handle, [userLine('next')]);
          expect(next).toBe(Math.max(...numbers) + 1);
        } finally {
          await store.close();
          dropDir(dir);
        }
      }),
      { numRuns: iterations(60, 1000) },
    ));
  });

  it('random bytes and random JSON as a meta file make load fail CORRUPT_META or load, as crabtalk would read it; list and find never throw', async () => {
    await holds(() => fc.assert(
      fc.asyncProperty(metaText, async (content) => {
        const dir = scratchDir('meta');
        const root = path.join(dir, 'sessions');
        const store = await openStore({ dir: root, durability: 'none', logger: quiet });
        try {
          const handle = await store.createSession('crab', 'x');
          await store.appendMessages(handle, [userLine('kept')]);
          await store.close();
          fs.writeFileSync(path.join(root, handle, 'meta'), content, 'latin1');
          counts.plantedFiles += 1;
          const text = fs.readFileSync(path.join(root, handle, 'meta'), 'utf8');
          const reader = await openStore({ dir: root, durability: 'none', logger: quiet });
          try {
            const loaded = await codeOf(() => reader.loadSession(handle));
            const listed = await reader.listSessions();
            await reader.findLatestSession('crab', 'x');
            if (metaReadable(text)) {
              expect(loaded).toMatchObject({ ok: { history: [userLine('kept')] } });
              expect(listed.map((s) => s.handle)).toEqual([handle]);
            } else {
              expect(loaded).toEqual({ code: 'CORRUPT_META' });
              expect(listed).toEqual([]);
            }
          } finally {
            await reader.close();
          }
        } finally {
          dropDir(dir);
        }
      }),
      { numRuns: iterations(100, 2000) },
    ));
  });

  it('senderSlug is idempotent, keeps only letters, digits and single inner dashes, and lowercases only ASCII', async () => {
    await holds(() => fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 80 }), (name) => {
        counts.names += 1;
        const slug = senderSlug(name);
        expect(senderSlug(slug)).toBe(slug);
        expect(slug).toMatch(SLUG_CHARS);
        expect(slug).not.toMatch(/[A-Z_/.\\\u0000]|--|^-|-$/);
        // Non-ASCII letters keep their case; only ASCII is lowercased.
        expect([...slug].filter((c) => c.codePointAt(0)! > 127).join('')).toBe([...name].filter((c) => c.codePointAt(0)! > 127 && /[\p{Alphabetic}\p{N}]/u.test(c)).join(''));
      }),
      { numRuns: iterations(2000, 50_000) },
    ));
  });

  it('any valid agent and sender give a handle of {slug}_{slug}_{seq} within 255 bytes that finds its session again', async () => {
    const dir = scratchDir('handles');
    const root = path.join(dir, 'sessions');
    const store = await openStore({ dir: root, durability: 'none', logger: quiet });
    const name = fc
      .string({ unit: fc.oneof(fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }), fc.constantFrom('é', 'É', '𝒜', 'ह', 'ि', '日', '-', ' ')), minLength: 1, maxLength: 400 })
      .filter((n) => senderSlug(n) !== '' && !/\p{Cc}/u.test(n));
    try {
      await holds(() => fc.assert(
        fc.asyncProperty(name, name, async (agent, sender) => {
          counts.names += 2;
          const handle = await store.createSession(agent, sender);
          expect(Buffer.byteLength(handle, 'utf8')).toBeLessThanOrEqual(255);
          expect(handle).toMatch(HANDLE);
          expect(fs.statSync(path.join(root, handle)).isDirectory()).toBe(true);
          expect(await store.findLatestSession(agent, sender)).toBe(handle);
          const meta = (await store.loadSession(handle))!.meta;
          expect([meta.agent, meta.created_by]).toEqual([agent, sender]);
        }),
        { numRuns: iterations(60, 1500) },
      ));
      // Nothing was made anywhere but directly inside the root.
      expect(fs.readdirSync(dir)).toEqual(['sessions']);
    } finally {
      await store.close();
      dropDir(dir);
    }
  });

  it('reports what the properties tried', () => {
    report({
      part: '5. properties',
      invariant: 'the store agrees with a plain model after every command of random sequences and of random concurrent interleavings; planted garbage never makes load throw but CORRUPT_META; senderSlug is idempotent and emits allowed characters; handles stay within 255 bytes',
      tried: `${counts.sequences} random sequences (${counts.commands} commands), ${counts.interleavings} scheduler interleavings (${counts.concurrentOps} concurrent operations), ${counts.plantedFiles} planted step and meta files, ${counts.names} names`,
      iterations: counts.sequences + counts.interleavings,
      faults: counts.plantedFiles,
      lost: counts.failed,
      ...(counts.failed > 0 ? { notes: `${counts.failed} properties found a counterexample` } : {}),
    });
    expect(counts.failed).toBe(0);
    expect(counts.sequences).toBeGreaterThan(0);
  });
});
