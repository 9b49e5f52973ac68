// Behaviour 1 of the core issue: handles are exactly crabtalk's
// `{senderSlug(agent)}_{senderSlug(createdBy)}_{seq}`. Any string is a name
// (empty slugs, emoji only, NUL and other control characters included); only
// a string with a lone UTF-16 surrogate, or no string, is INVALID_NAME. Names
// stay whole while the handle fits in 255 bytes with any seq; longer pairs are
// cut the same way for create, find and list.

import { describe, expect, it } from 'vitest';
import { senderSlug, type Store } from 'stepstore';
import type { Harness } from './harness.js';
import { expectCode, useFixture, userMessage } from './fixture.js';

/** crabtalk's naming examples, and the Unicode rules behind them. */
export const SLUG_EXAMPLES: readonly [name: string, slug: string][] = [
  ['Telegram User 42', 'telegram-user-42'],
  ['tg:12345', 'tg-12345'],
  ['a__b', 'a-b'],
  ['../../etc', 'etc'],
  ['Émile', 'Émile'],
  ['हिन्दी', 'हिन-दी'],
  ['ÉMILE', 'Émile'],
  ['İstanbul', 'İstanbul'],
  ['Ⅻ', 'Ⅻ'],
  ['ΑΒΓ δ', 'ΑΒΓ-δ'],
  ['E\u0301mile', 'e-mile'],
  ['--a--', 'a'],
  ['a - b', 'a-b'],
  ['Hello, World!', 'hello-world'],
  ['user@example.com', 'user-example-com'],
  ['a😀b', 'a-b'],
  ['a\u00a0b', 'a-b'],
  ['١٢٣', '١٢٣'],
  ['½', '½'],
  ['日本語', '日本語'],
  ['crab', 'crab'],
  ['42', '42'],
];

/**
 * Names crabtalk takes like any other although their slug is empty or they
 * hold NUL or control characters: the meta keeps them verbatim, the handle
 * holds their slug.
 */
export const ODD_NAMES: readonly [name: string, slug: string][] = [
  ['', ''],
  [' ', ''],
  ['---', ''],
  ['...', ''],
  ['_', ''],
  ['/', ''],
  ['😀', ''],
  ['👨‍👩‍👧', ''],
  ['\u0301', ''],
  ['\u0000', ''],
  ['a\u0000b', 'a-b'],
  ['line\nbreak', 'line-break'],
  ['a\tb', 'a-b'],
  ['a\rb', 'a-b'],
  ['\u001b[31mred', '31mred'],
  ['a\u007fb', 'a-b'],
  ['a\u0085b', 'a-b'],
  ['\ufeff', ''],
];

/** The only strings that are no names: a lone UTF-16 surrogate, which no meta can carry. And non-strings. */
export const BAD_NAMES: readonly unknown[] = ['\ud800', '\udfff', 'a\udc00b', '\udc00\ud800', `tg:${'😀'.slice(0, 1)}`, 42, null, undefined, {}, ['crab']];

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

/** The largest seq: every handle stepstore makes stays within 255 bytes with it. */
const MAX_SEQ = '9007199254740991';

/** Long names (120, 200, 300 bytes and more), in several scripts. */
const LONG_NAMES: readonly string[] = [
  'a'.repeat(120),
  'b'.repeat(200),
  'c'.repeat(300),
  'é'.repeat(150),
  '𝒜'.repeat(50),
  'हिन्दी'.repeat(20),
  `${'x'.repeat(120)}:${'Y'.repeat(400)}`,
];

/** The pairs the long names are tried in: as agent, as sender, as both. */
const LONG_PAIRS: readonly [agent: string, sender: string][] = LONG_NAMES.flatMap((name) => [
  [name, 'tg:9'],
  ['crab', name],
  [name, name],
]);

/** The handle crabtalk gives a pair's first session; stepstore's is the same whenever the two slugs fit in 237 bytes. */
const crabtalkHandle = (agent: string, sender: string, seq = 1) => `${senderSlug(agent)}_${senderSlug(sender)}_${seq}`;
const keptWhole = (agent: string, sender: string) => bytes(senderSlug(agent)) + bytes(senderSlug(sender)) <= 237;
/** True when a handle's part begins like the slug it came from: a cut keeps nearly its first 101 bytes. */
const sharesHead = (part: string, slug: string) => {
  const n = Math.min(90, bytes(slug));
  return Buffer.from(part).subarray(0, n).equals(Buffer.from(slug).subarray(0, n));
};

/**
 * Everything a runtime does with one pair, checked end to end: create, find,
 * list (by pair and by agent), load, append, compact into an archive, a second
 * session, delete (seq never reused), find and list again, after a restart too.
 */
async function roundTrip(open: () => Promise<Store>, agent: string, sender: string): Promise<string> {
  const store = await open();
  const first = await store.createSession(agent, sender);
  expect(first.endsWith('_1')).toBe(true);
  expect(bytes(`${first.slice(0, -1)}${MAX_SEQ}`)).toBeLessThanOrEqual(255);
  expect(await store.findLatestSession(agent, sender)).toBe(first);
  expect((await store.listSessions({ agent, createdBy: sender })).map((s) => s.handle)).toEqual([first]);
  expect((await store.listSessions({ agent })).map((s) => s.handle)).toEqual([first]);
  expect((await store.listSessions()).map((s) => s.handle)).toEqual([first]);
  expect(await store.appendMessages(first, [userMessage('hi')])).toEqual([1]);
  const loaded = (await store.loadSession(first))!;
  expect([loaded.meta.agent, loaded.meta.created_by]).toEqual([agent, sender]);
  expect(loaded.history).toEqual([userMessage('hi')]);

  const archive = await store.compact(first, 'summary');
  expect(bytes(archive)).toBeLessThanOrEqual(255);
  // crabtalk's `{senderSlug(handle)}-{n}`, cut only where the name could pass 255 bytes.
  if (bytes(first) <= 238) expect(archive).toBe(`${senderSlug(first)}-1`);
  else expect(archive).toMatch(/-[0-9a-f]{16}-1$/);
  expect(await store.getArchive(archive)).toBe('summary');
  expect((await store.loadSession(first, { withArchive: true }))!.archiveContent).toBe('summary');

  const second = await store.createSession(agent, sender);
  expect(second).toBe(`${first.slice(0, -1)}2`);
  expect(await store.deleteSession(first)).toBe(true);
  expect(await store.getArchive(archive)).toBeNull();
  expect(await store.loadSession(first)).toBeNull();
  const restarted = await open();
  expect(await restarted.findLatestSession(agent, sender)).toBe(second);
  expect((await restarted.listSessions({ agent, createdBy: sender })).map((s) => s.handle)).toEqual([second]);
  expect(await restarted.createSession(agent, sender)).toBe(`${first.slice(0, -1)}3`);
  return first;
}

export function namingTests(harness: Harness): void {
  describe('naming', () => {
    const t = useFixture(harness);
    const open = () => t.open();

    it.each(SLUG_EXAMPLES)('senderSlug(%j) is %j', (name, slug) => {
      expect(senderSlug(name)).toBe(slug);
    });

    it.each(ODD_NAMES)('senderSlug(%j) is %j', (name, slug) => {
      expect(senderSlug(name)).toBe(slug);
    });

    it('names a session {senderSlug(agent)}_{senderSlug(createdBy)}_{seq}, seq counting from 1', async () => {
      const store = await t.open();
      expect(await store.createSession('Telegram User 42', 'tg:12345')).toBe('telegram-user-42_tg-12345_1');
      expect(await store.createSession('Telegram User 42', 'tg:12345')).toBe('telegram-user-42_tg-12345_2');
      expect(await store.createSession('crab', 'tg:12345')).toBe('crab_tg-12345_1');
      for (const [i, [name, slug]] of [...SLUG_EXAMPLES, ...ODD_NAMES].entries()) {
        expect(await store.createSession(`agent ${i}`, name)).toBe(`agent-${i}_${slug}_1`);
        expect(await store.createSession(name, `sender ${i}`)).toBe(`${slug}_sender-${i}_1`);
      }
    });

    it('keeps non-ASCII capitals and never lowercases İ or Ⅻ in a handle', async () => {
      const store = await t.open();
      expect(await store.createSession('ÉMILE', 'İⅫ')).toBe('Émile_İⅫ_1');
    });

    it.each(ODD_NAMES.map(([name, slug]) => [JSON.stringify(name), name, slug]))(
      'takes %s as a sender: create, find, list, load, compact, delete',
      async (_shown, name, slug) => {
        expect(await roundTrip(open, 'crab', name)).toBe(`crab_${slug}_1`);
      },
    );

    it.each(ODD_NAMES.map(([name, slug]) => [JSON.stringify(name), name, slug]))(
      'takes %s as an agent: create, find, list, load, compact, delete',
      async (_shown, name, slug) => {
        expect(await roundTrip(open, name, 'tg:1')).toBe(`${slug}_tg-1_1`);
      },
    );

    it('an empty-slug sender gets crab__1 and archives crab-1-<n>; an empty-slug pair gets __1 and archives 1-<n>', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', '😀');
      expect(handle).toBe('crab__1');
      expect(await store.compact(handle, 'one')).toBe('crab-1-1');
      expect(await store.compact(handle, 'two')).toBe('crab-1-2');
      const both = await store.createSession('🦀', '😀');
      expect(both).toBe('__1');
      expect(await store.compact(both, 'three')).toBe('1-1');
      expect(await store.getArchive('crab-1-2')).toBe('two');
      expect(await store.getArchive('1-1')).toBe('three');
      const restarted = await t.open();
      expect((await restarted.listSessions()).map((s) => s.handle).sort()).toEqual(['__1', 'crab__1']);
      expect((await restarted.loadSession('__1'))!.archive).toBe('1-1');
      expect((await restarted.listSessions({ agent: '🦀' })).map((s) => s.handle)).toEqual(['__1']);
    });

    it('names with one slug are different senders: each finds and lists only its own sessions', async () => {
      const store = await t.open();
      const names = ['😀', '', '---', '\u0000', '\n', '😀 '];
      const handles = [];
      for (const name of names) handles.push(await store.createSession('crab', name));
      expect(handles).toEqual(names.map((_, i) => `crab__${i + 1}`));
      for (const [i, name] of names.entries()) {
        expect(await store.findLatestSession('crab', name)).toBe(handles[i]);
        expect((await store.listSessions({ createdBy: name })).map((s) => s.handle)).toEqual([handles[i]]);
        expect((await store.loadSession(handles[i]!))!.meta.created_by).toBe(name);
      }
      expect(await store.deleteSession(handles[3]!)).toBe(true);
      expect(await store.findLatestSession('crab', '\u0000')).toBeNull();
      expect(await store.createSession('crab', '\u0000')).toBe(`crab__${names.length + 1}`);
    });

    it.each(BAD_NAMES.map((name) => [name]))('refuses %j as an agent or a sender with INVALID_NAME', async (name) => {
      const store = await t.open();
      await expectCode(store.createSession(name as string, 'tg:1'), 'INVALID_NAME');
      await expectCode(store.createSession('crab', name as string), 'INVALID_NAME');
      await expectCode(store.findLatestSession(name as string, 'tg:1'), 'INVALID_NAME');
      await expectCode(store.findLatestSession('crab', name as string), 'INVALID_NAME');
      if (name !== undefined) {
        await expectCode(store.listSessions({ agent: name as string }), 'INVALID_NAME');
        await expectCode(store.listSessions({ createdBy: name as string }), 'INVALID_NAME');
      }
      expect(await store.listSessions()).toEqual([]);
    });

    it('keeps names whole while the two slugs fit in 237 bytes (a 255-byte handle with the largest seq), like crabtalk', async () => {
      const store = await t.open();
      const cases: [string, string][] = [
        ['a'.repeat(120), 'tg:9'],
        ['crab', 'b'.repeat(200)],
        ['c'.repeat(118), 'd'.repeat(119)],
        ['e'.repeat(200), 'f'.repeat(37)],
        ['é'.repeat(60), '日'.repeat(39)],
      ];
      for (const [agent, sender] of cases) {
        const handle = await store.createSession(agent, sender);
        expect(handle).toBe(crabtalkHandle(agent, sender));
        expect(await store.findLatestSession(agent, sender)).toBe(handle);
      }
      expect(bytes(`${'c'.repeat(118)}_${'d'.repeat(119)}_${MAX_SEQ}`)).toBe(255);
    });

    it('cuts a pair past 237 bytes: a readable head and a hash, within 255 bytes with any seq', async () => {
      const store = await t.open();
      const sender = await store.createSession('a'.repeat(118), 'b'.repeat(120));
      expect(sender).toMatch(/^a{118}_b{102}-[0-9a-f]{16}_1$/);
      expect(bytes(`${sender.slice(0, -1)}${MAX_SEQ}`)).toBe(255);
      const agent = await store.createSession('c'.repeat(300), 'tg:9');
      expect(agent).toMatch(/^c{216}-[0-9a-f]{16}_tg-9_1$/);
      expect(bytes(`${agent.slice(0, -1)}${MAX_SEQ}`)).toBe(255);
      const both = await store.createSession('e'.repeat(300), 'f'.repeat(300));
      expect(both).toMatch(/^e{101}-[0-9a-f]{16}_f{102}-[0-9a-f]{16}_1$/);
      expect(bytes(`${both.slice(0, -1)}${MAX_SEQ}`)).toBe(255);
    });

    it.each(LONG_PAIRS.map(([agent, sender]) => [bytes(agent), bytes(sender), agent, sender]))(
      'a %i-byte agent and a %i-byte sender: create, find, list, load, compact, delete',
      async (_a, _s, agent, sender) => {
        const first = await roundTrip(open, agent, sender);
        if (keptWhole(agent, sender)) expect(first).toBe(crabtalkHandle(agent, sender));
        const [agentPart, senderPart] = first.split('_') as [string, string];
        expect(sharesHead(agentPart, senderSlug(agent))).toBe(true);
        expect(sharesHead(senderPart, senderSlug(sender))).toBe(true);
      },
    );

    it('lists every session of a long agent, whatever the sender makes of its part of the handle', async () => {
      const store = await t.open();
      const agent = 'x'.repeat(200);
      const handles = [];
      for (const sender of ['u', 'y'.repeat(100), 'z'.repeat(300)]) handles.push(await store.createSession(agent, sender));
      expect(handles[0]).toBe(`${agent}_u_1`);
      expect(new Set(handles.map((h) => h.split('_')[0])).size).toBe(3);
      await store.createSession('x'.repeat(199), 'u');
      expect((await store.listSessions({ agent })).map((s) => s.handle).sort()).toEqual([...handles].sort());
      for (const [i, sender] of ['u', 'y'.repeat(100), 'z'.repeat(300)].entries()) {
        expect(await store.findLatestSession(agent, sender)).toBe(handles[i]);
      }
    });

    it('two long names that differ only at the end are different senders', async () => {
      const store = await t.open();
      const a = `${'q'.repeat(400)}-a`;
      const b = `${'q'.repeat(400)}-b`;
      const ha = await store.createSession('crab', a);
      const hb = await store.createSession('crab', b);
      expect(ha).not.toBe(hb);
      expect(await store.findLatestSession('crab', a)).toBe(ha);
      expect(await store.findLatestSession('crab', b)).toBe(hb);
      expect((await store.listSessions({ createdBy: a })).map((s) => s.handle)).toEqual([ha]);
    });
  });
}
