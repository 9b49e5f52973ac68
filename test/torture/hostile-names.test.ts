// Part 7 of the torture suite: hostile names and handles. A table of
// traversal, separator, NUL, control, very long, Windows-reserved and
// Unicode-normalisation inputs, used as agent and as sender, and a table of
// hostile handles and archive names given to every call that takes one.
// Invariant: nothing is created outside the root (or anywhere, for a refused
// call); every refusal has its code (INVALID_NAME, INVALID_HANDLE); accepted
// names (any string without a lone UTF-16 surrogate, as in crabtalk) become
// handles of `{slug}_{slug}_{seq}` (a slug may be empty) directly inside the root,
// within 255 bytes, with the exact name kept in meta; names are never
// normalised, so different names are different senders with their own sessions.

import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type ConversationMeta, type Store } from 'stepstore';
import { dropDir, scratchDir } from './lib/scratch.js';
import { codeOf } from '../helpers/codes.js';
import { report } from './summary.js';
import { steered, userMessage } from '../conformance/fixture.js';

const msg = userMessage;

/** [input, slug it must get (a cut one as a pattern ending in `-`), or null when it must be refused INVALID_NAME]. */
const NAMES: [name: string, slug: string | null][] = [
  ['../x', 'x'],
  ['..', ''],
  ['.', ''],
  ['../../../../etc/passwd', 'etc-passwd'],
  ['/etc/passwd', 'etc-passwd'],
  ['a/b', 'a-b'],
  ['a\\b', 'a-b'],
  ['a:b', 'a-b'],
  ['a_b', 'a-b'],
  ['a\u0000b', 'a-b'],
  ['\u0000', ''],
  ['\u0007', ''],
  ['a\u0007b', 'a-b'],
  ['a\nb', 'a-b'],
  ['a\u0085b', 'a-b'],
  ['\u001b[31mred', '31mred'],
  ['', ''],
  [' ', ''],
  ['_', ''],
  ['~', ''],
  // Cut to the bytes the other part leaves (233 as sender of `crab`, 236 as agent of `u`): a head, `-`, a hash.
  ['x'.repeat(10_000), 'x{216,219}-'],
  ['é'.repeat(5_000), 'é{108,109}-'],
  ['CON', 'con'],
  ['con', 'con'],
  ['NUL', 'nul'],
  ['COM1', 'com1'],
  ['LPT9', 'lpt9'],
  ['con.txt', 'con-txt'],
  ['C:\\Windows\\System32', 'c-windows-system32'],
  ['\\\\?\\C:\\x', 'c-x'],
  ['.stepstore', 'stepstore'],
  ['%2e%2e%2f', '2e-2e-2f'],
  ['$HOME', 'home'],
  ['\u00e9', '\u00e9'],
  ['e\u0301', 'e'],
  ['\u00c9', '\u00c9'],
  ['E\u0301', 'e'],
  ['a\u202eb', 'a-b'],
  ['\u202e', ''],
  ['a\u200db', 'a-b'],
  ['\u200d', ''],
  ['\ufeffa', 'a'],
  ['a\u2028b', 'a-b'],
  ['👨‍👩‍👧', ''],
  ['a😀', 'a'],
  ['\ud800', null],
  ['a\ud800b', null],
  ['\udc00\ud800', null],
  ['İ', 'İ'],
  ['ﬁ', 'ﬁ'],
];

const HOSTILE_HANDLES: unknown[] = [
  '../x',
  '..',
  '.',
  '',
  '/etc/passwd',
  '/tmp/crab_u_1',
  'a\u0000b',
  'crab_u_1\u0000',
  'crab_u_1\n',
  'a_b_01',
  'a_b_0',
  'a_b_1/../x',
  '../crab_u_1',
  'crab_u_1/..',
  'crab_u_1/',
  'crab_u_1/step-000001',
  'C:\\crab_u_1',
  'crab\\u_1',
  'crab___1',
  'crab_u',
  'CON',
  'crab_CON_1',
  'Crab_u_1',
  'crab_u_1.tmp',
  'crab_u_1 ',
  'e\u0301_u_1',
  '\u202ecrab_u_1',
  'crab_u_1\u200d',
  `${'a'.repeat(300)}_u_1`,
  'crab_u_99999999999999999',
  // 16 digits, but past 2^53 - 1: two spellings would name one number.
  'a-b_absent_9999999999999999',
  'crab_u_9007199254740993',
  '.stepstore',
  42,
  null,
  undefined,
  {},
];

const HOSTILE_ARCHIVES: unknown[] = ['../x', 'a/b', '', '.', '..', 'x'.repeat(300), 'A', 'a\u0000', 'crab_u_1', '.stepstore', 'a.b', '-a', 42];

let base: string;
let root: string;
let store: Store;
const tally = { inputs: 0, refusals: 0, accepted: 0, escapes: 0 };

const META: ConversationMeta = { agent: 'crab', created_by: 'u', created_at: '2026-01-01T00:00:00Z', title: '', updated_at: '', message_count: 0 };

beforeAll(async () => {
  base = scratchDir('names');
  root = path.join(base, 'sessions');
  store = await openStore({ dir: root, logger: { warn() {} } });
});

afterAll(async () => {
  await store.close();
  dropDir(base);
});

/** Names directly inside the root, and inside its parent: nothing may appear anywhere else. */
function entries(): { root: string[]; parent: string[] } {
  return { root: fs.readdirSync(root).sort(), parent: fs.readdirSync(base).sort() };
}

describe('7. hostile names', () => {
  const created = new Map<string, { agent: string; sender: string }>();

  for (const position of ['agent', 'sender'] as const) {
    it.each(NAMES.map(([name, slug]) => [JSON.stringify(name).slice(0, 40), name, slug] as const))(
      `as ${position}, %s is refused INVALID_NAME or becomes a handle inside the root that keeps the exact name`,
      async (_shown, name, slug) => {
        tally.inputs += 1;
        const [agent, sender] = position === 'agent' ? [name, 'u'] : ['crab', name];
        const before = entries();
        if (slug === null) {
          const codes = [
            await codeOf(() => store.createSession(agent, sender)),
            await codeOf(() => store.findLatestSession(agent, sender)),
            await codeOf(() => store.listSessions(position === 'agent' ? { agent } : { agent: 'crab', createdBy: sender })),
          ];
          expect(codes).toEqual(['INVALID_NAME', 'INVALID_NAME', 'INVALID_NAME']);
          tally.refusals += codes.length;
          expect(entries()).toEqual(before);
          return;
        }
        tally.accepted += 1;
        const handle = await store.createSession(agent, sender);
        const [a, s, seq] = handle.split('_');
        expect(position === 'agent' ? a : s).toMatch(slug.endsWith('-') ? new RegExp(`^${slug}[0-9a-f]{16}$`, 'u') : new RegExp(`^${slug}$`, 'u'));
        expect(Number(seq)).toBeGreaterThanOrEqual(1);
        expect(Buffer.byteLength(handle, 'utf8')).toBeLessThanOrEqual(255);
        // Directly inside the root, a real directory, and nothing else appeared anywhere.
        expect(path.dirname(path.resolve(root, handle))).toBe(root);
        expect(fs.lstatSync(path.join(root, handle)).isDirectory()).toBe(true);
        expect(entries()).toEqual({ root: [...before.root, handle].sort(), parent: before.parent });
        const meta = (await store.loadSession(handle))!.meta;
        expect([meta.agent, meta.created_by]).toEqual([agent, sender]);
        expect(await store.findLatestSession(agent, sender)).toBe(handle);
        expect(await store.appendMessages(handle, [msg(`from ${JSON.stringify(name).slice(0, 20)}`)])).toEqual([1]);
        created.set(handle, { agent, sender });
      },
    );
  }

  it('names that differ only by normalisation, case of ASCII, or punctuation are different senders with different sessions', async () => {
    const groups = [
      ['\u00e9', 'e\u0301'],
      ['\u00c9', '\u00e9'],
      ['CON', 'con', 'Con'],
      ['a/b', 'a:b', 'a\\b', 'a_b', 'a\u202eb', 'a\u200db'],
      ['../x', 'x'],
    ];
    for (const names of groups) {
      const handles = [];
      for (const sender of names) {
        tally.inputs += 1;
        const handle = await store.createSession('norm', sender);
        await store.appendMessages(handle, [msg(sender)]);
        handles.push(handle);
      }
      expect(new Set(handles).size).toBe(names.length);
      for (const [i, sender] of names.entries()) {
        expect(await store.findLatestSession('norm', sender)).toBe(handles[i]);
        const snapshot = await store.loadSession(handles[i]!);
        expect(snapshot?.meta.created_by).toBe(sender);
        expect(snapshot?.history).toEqual([msg(sender)]);
      }
    }
  });

  it('every call that takes a handle refuses each hostile one INVALID_HANDLE and creates nothing', async () => {
    const before = entries();
    for (const handle of HOSTILE_HANDLES) {
      tally.inputs += 1;
      const h = handle as string;
      const calls: [string, () => unknown][] = [
        ['loadSession', () => store.loadSession(h)],
        ['readSteps', () => store.readSteps(h)],
        ['appendMessages', () => store.appendMessages(h, [msg('x')])],
        ['appendEvents', () => store.appendEvents(h, [steered('x')])],
        ['appendCompact', () => store.appendCompact(h, 'crab-u-1-1')],
        ['compact', () => store.compact(h, 'summary')],
        ['updateMeta', () => store.updateMeta(h, META)],
        ['deleteSession', () => store.deleteSession(h)],
        ['importSession', () => store.importSession(h, META)],
        ['importSteps', () => store.importSteps(h, [msg('x')])],
      ];
      for (const [name, call] of calls) {
        expect(await codeOf(call), `${name}(${JSON.stringify(handle)})`).toBe('INVALID_HANDLE');
        tally.refusals += 1;
      }
    }
    expect(entries()).toEqual(before);
  });

  it('well-formed handles of sessions that do not exist are absent, never created', async () => {
    const before = entries();
    for (const h of ['absent_u_1', '\u00e9-absent_u_1', 'con-absent_u_7', 'stepstore_absent_1', 'a-b_absent_9007199254740991']) {
      tally.inputs += 1;
      expect(await store.loadSession(h)).toBeNull();
      expect(await codeOf(() => store.readSteps(h))).toBe('SESSION_NOT_FOUND');
      expect(await codeOf(() => store.appendMessages(h, [msg('x')]))).toBe('SESSION_NOT_FOUND');
      expect(await codeOf(() => store.compact(h, 's'))).toBe('SESSION_NOT_FOUND');
      expect(await codeOf(() => store.updateMeta(h, META))).toBe('SESSION_NOT_FOUND');
      expect(await store.deleteSession(h)).toBe(false);
      tally.refusals += 6;
    }
    expect(entries()).toEqual(before);
  });

  it('every call that takes an archive name refuses each hostile one INVALID_NAME and creates nothing', async () => {
    const handle = await store.createSession('crab', 'archives');
    const before = entries();
    const archives = () => (fs.existsSync(path.join(root, '.stepstore', 'archives')) ? fs.readdirSync(path.join(root, '.stepstore', 'archives')) : []);
    const archivesBefore = archives();
    for (const name of HOSTILE_ARCHIVES) {
      tally.inputs += 1;
      expect(await codeOf(() => store.getArchive(name as string)), `getArchive(${JSON.stringify(name)})`).toBe('INVALID_NAME');
      expect(await codeOf(() => store.appendCompact(handle, name as string)), `appendCompact(${JSON.stringify(name)})`).toBe('INVALID_NAME');
      expect(await codeOf(() => store.importArchive(name as string, { owner: handle, content: 'x' })), `importArchive(${JSON.stringify(name)})`).toBe('INVALID_NAME');
      tally.refusals += 3;
    }
    expect(entries()).toEqual(before);
    expect(archives()).toEqual(archivesBefore);
    expect(await store.readSteps(handle)).toEqual([]);
  });

  it('nothing was ever created outside the root, and every session directory in it is one this suite created', async () => {
    const outsideRoot = fs.readdirSync(base).filter((n) => n !== 'sessions');
    const sessions = fs.readdirSync(root).filter((n) => n !== '.stepstore');
    const strangers = sessions.filter(
      (name) =>
        !fs.lstatSync(path.join(root, name)).isDirectory() ||
        !/^[\p{Alphabetic}\p{N}-]*_[\p{Alphabetic}\p{N}-]*_[1-9][0-9]*$/u.test(name) ||
        Buffer.byteLength(name, 'utf8') > 255,
    );
    tally.escapes = outsideRoot.length + strangers.length;
    report({
      part: '7. hostile names',
      invariant: 'hostile names and handles never reach outside the root; every refusal has its code (INVALID_NAME, INVALID_HANDLE); accepted names keep their exact text and are never normalised',
      tried: `${tally.inputs} hostile inputs (${NAMES.length} names as agent and as sender, ${HOSTILE_HANDLES.length} handles × 10 calls, ${HOSTILE_ARCHIVES.length} archive names × 3 calls), ${tally.refusals} refusals checked, ${tally.accepted} accepted names`,
      iterations: tally.inputs,
      faults: tally.inputs,
      lost: tally.escapes,
    });
    expect(outsideRoot).toEqual([]);
    expect(strangers).toEqual([]);
    for (const handle of created.keys()) expect(sessions).toContain(handle);
  });
});
