// crabtalk's archives, kept in its memory file: the strict parser of the
// binary layout (whole files only, never a part), and a filesystem store
// opened with `crabtalkMemory` finding them (getArchive, withArchive,
// resumeHistory, repair), seeing the file replaced or deleted, never writing
// it, and numbering new archives past every name crabtalk's memory or the
// session's markers use, reading no step older than its own last compaction.

import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, type Store } from 'stepstore';
import { memoryArchives, parseCrabtalkMemory, type CrabtalkMemory } from '../../src/format/crabtalk-memory.js';
import { expectCode, recordingLogger, userMessage, userMessages } from '../conformance/fixture.js';
import { ARCHIVE, NOTE, TOPIC, archiveEntry, encodeMemory, replaceMemoryFile, writeMemory } from '../helpers/crabtalk-memory.js';
import { makeTempDir, quietLogger } from '../helpers/fs-harness.js';

function parsed(bytes: Uint8Array): CrabtalkMemory {
  const result = parseCrabtalkMemory(bytes);
  if ('problem' in result) throw new Error(`unreadable: ${result.problem}`);
  return result.memory;
}

function problemOf(bytes: Uint8Array): string {
  const result = parseCrabtalkMemory(bytes);
  if (!('problem' in result)) throw new Error('parsed a file that should be unreadable');
  return result.problem;
}

describe('the memory file parser', () => {
  const small = encodeMemory(
    [
      { kind: NOTE, name: 'likes', content: 'tea', aliases: ['prefs'] },
      { kind: ARCHIVE, name: 'crab-tg-12345-1-1', content: 'Summary: 🌦 in Lisbon', aliases: ['lisbon', 'crab-tg-12345-1-7'], id: 9n, createdAt: 1_774_000_123n },
      { kind: TOPIC, name: 'weather', content: '' },
      { kind: ARCHIVE, name: 'crab-Émile-zoë-1-1', content: 'é\u0000"quoted"\n' },
    ],
    { nextId: 10n },
  );

  it('reads a whole file: every entry, kind, id, time, alias and UTF-8 text', () => {
    const memory = parsed(small);
    expect(memory.nextId).toBe(10n);
    expect(memory.entries.map((e) => [e.kind, e.name, e.content, e.aliases])).toEqual([
      [NOTE, 'likes', 'tea', ['prefs']],
      [ARCHIVE, 'crab-tg-12345-1-1', 'Summary: 🌦 in Lisbon', ['lisbon', 'crab-tg-12345-1-7']],
      [TOPIC, 'weather', '', []],
      [ARCHIVE, 'crab-Émile-zoë-1-1', 'é\u0000"quoted"\n', []],
    ]);
    expect(memory.entries[1]).toMatchObject({ id: 9n, createdAt: 1_774_000_123n });
  });

  it('reads a file inside a larger buffer (its own offsets, not the buffer\'s)', () => {
    const padded = Buffer.concat([Buffer.from('xyz'), small, Buffer.from('!')]);
    expect(parsed(padded.subarray(3, 3 + small.length))).toEqual(parsed(small));
  });

  it('reads a file with no entries', () => {
    expect(parsed(encodeMemory([], { nextId: 1n }))).toEqual({ nextId: 1n, entries: [] });
  });

  it('only kind 1 entries are archives; their aliases are names too', () => {
    const archives = memoryArchives(parsed(small));
    expect([...archives.byName.keys()]).toEqual(['crab-tg-12345-1-1', 'crab-Émile-zoë-1-1']);
    expect(archives.names).toEqual(['crab-tg-12345-1-1', 'lisbon', 'crab-tg-12345-1-7', 'crab-Émile-zoë-1-1']);
  });

  it('a file cut at any byte is unreadable, never read in part', () => {
    for (let length = 0; length < small.length; length++) {
      const result = parseCrabtalkMemory(small.subarray(0, length));
      expect('problem' in result, `cut at ${length} of ${small.length} bytes`).toBe(true);
    }
  });

  it('bytes after the last entry make it unreadable', () => {
    expect(problemOf(Buffer.concat([small, Buffer.alloc(1)]))).toMatch(/1 bytes follow the last entry/);
  });

  it.each([
    ['wrong magic', { magic: Buffer.from('CRMEX\0', 'latin1') }, /wrong magic/],
    ['another version', { version: 2 }, /version 2/],
    ['version 0', { version: 0 }, /version 0/],
    ['unknown flags', { flags: 1 }, /flags/],
    ['reserved bytes set', { reserved: Buffer.from([0, 0, 1, 0]) }, /reserved/],
    ['more entries than the file holds', { count: 5 }, /./],
    ['an entry count past the end', { count: 0xffffffff }, /cannot fit/],
  ])('%s is unreadable', (_what, header, reason) => {
    expect(problemOf(encodeMemory([archiveEntry('a-1', 'x')], header))).toMatch(reason);
  });

  it('a length running past the end, or text that is not UTF-8, is unreadable', () => {
    const bytes = encodeMemory([archiveEntry('a-1', 'content')]);
    const nameLengthAt = 16 + 8 + 4 + 8 + 8 + 4;
    const tooLong = Buffer.from(bytes);
    tooLong.writeUInt32LE(0xfffffff0, nameLengthAt);
    expect(problemOf(tooLong)).toMatch(/past the end/);
    const aliasCountAt = bytes.length - 4;
    const aliases = Buffer.from(bytes);
    aliases.writeUInt32LE(1000, aliasCountAt);
    expect(problemOf(aliases)).toMatch(/aliases/);
    const notUtf8 = Buffer.from(bytes);
    notUtf8[nameLengthAt + 4] = 0xff;
    expect(problemOf(notUtf8)).toMatch(/UTF-8/);
  });
});

/** Everything about a file that a write would change. */
function fingerprint(file: string): string {
  if (!fs.existsSync(file)) return 'missing';
  const stat = fs.statSync(file);
  return `${stat.ino} ${stat.size} ${stat.mtimeMs} ${stat.ctimeMs} ${fs.readFileSync(file).toString('base64')}`;
}

describe('a filesystem store reading crabtalk\'s memory file', () => {
  let base = '';
  let dir = '';
  let memory = '';
  const opened: Store[] = [];

  beforeEach(async () => {
    base = await makeTempDir('crabtalk-memory');
    dir = path.join(base, 'sessions');
    fs.mkdirSync(path.join(base, 'crabtalk'));
    memory = path.join(base, 'crabtalk', 'memory.db');
  });

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((s) => s.close()));
    await fs.promises.rm(base, { recursive: true, force: true });
  });

  /** A store on `dir` reading `crabtalkMemory` (null: none). */
  async function open(logger: { warn(message: string): void } = quietLogger, crabtalkMemory: string | null = memory): Promise<Store> {
    const store = await openStore({ dir, durability: 'none', logger, ...(crabtalkMemory === null ? {} : { crabtalkMemory }) });
    opened.push(store);
    return store;
  }

  /** A session crabtalk compacted: messages, its marker naming `archive`, then more. */
  async function crabtalkSession(store: Store, archive = 'crab-tg-12345-1-1'): Promise<string> {
    const handle = await store.createSession('crab', 'tg:12345');
    expect(handle).toBe('crab_tg-12345_1');
    await store.importSteps(handle, [...userMessages('old', 3), { archive_name: archive, archived_at: '2026-03-25T10:00:00.000000000+00:00' }, userMessage('new')]);
    return handle;
  }

  it.each([[42], [''], [null], [{}], ['a\u0000b']])('refuses crabtalkMemory %j with INVALID_OPTION and creates nothing', async (bad) => {
    await expectCode(openStore({ dir, crabtalkMemory: bad as string }), 'INVALID_OPTION');
    expect(fs.existsSync(dir)).toBe(false);
  });

  it('getArchive finds crabtalk\'s archives; its own archive of the same name comes first', async () => {
    writeMemory(memory, [archiveEntry('crab-tg-12345-1-1', 'crabtalk summary 🌦'), archiveEntry('crab-u-1-4', 'other')]);
    const store = await open();
    const handle = await crabtalkSession(store);
    expect(await store.getArchive('crab-tg-12345-1-1')).toBe('crabtalk summary 🌦');
    expect(await store.getArchive('crab-u-1-4')).toBe('other');
    expect(await store.getArchive('crab-u-1-5')).toBeNull();
    expect(await store.importArchive('crab-u-1-4', { owner: handle, content: 'mine' })).toBe(true);
    expect(await store.getArchive('crab-u-1-4')).toBe('mine');
  });

  it('loadSession withArchive and resumeHistory put crabtalk\'s summary in front, as crabtalk does', async () => {
    writeMemory(memory, [archiveEntry('crab-tg-12345-1-1', 'They talked about Lisbon.')]);
    const store = await open();
    const handle = await crabtalkSession(store);
    const snapshot = (await store.loadSession(handle, { withArchive: true }))!;
    expect(snapshot.archive).toBe('crab-tg-12345-1-1');
    expect(snapshot.archiveContent).toBe('They talked about Lisbon.');
    expect(store.resumeHistory(snapshot)).toEqual([userMessage('They talked about Lisbon.'), userMessage('new')]);
  });

  it('without the option, crabtalk\'s archives stay unavailable (the placeholder)', async () => {
    writeMemory(memory, [archiveEntry('crab-tg-12345-1-1', 'They talked about Lisbon.')]);
    const store = await open(quietLogger, null);
    const handle = await crabtalkSession(store);
    const snapshot = (await store.loadSession(handle, { withArchive: true }))!;
    expect(snapshot.archiveContent).toBeNull();
    expect(store.resumeHistory(snapshot)[0]).toEqual(userMessage('[archived context unavailable: crab-tg-12345-1-1]'));
  });

  it('notes and topics are not archives, whatever their name', async () => {
    writeMemory(memory, [
      { kind: NOTE, name: 'crab-tg-12345-1-1', content: 'a note' },
      { kind: TOPIC, name: 'crab-tg-12345-1-2', content: 'a topic' },
      { kind: 7, name: 'crab-tg-12345-1-3', content: 'a kind this stepstore does not know' },
    ]);
    const store = await open();
    const handle = await crabtalkSession(store);
    for (const name of ['crab-tg-12345-1-1', 'crab-tg-12345-1-2', 'crab-tg-12345-1-3']) expect(await store.getArchive(name)).toBeNull();
    expect((await store.loadSession(handle, { withArchive: true }))!.archiveContent).toBeNull();
    // Their names are not archive names either: only the marker's counts.
    expect(await store.compact(handle, 'mine')).toBe('crab-tg-12345-1-2');
  });

  it('sees the file replaced (renamed over), deleted and back, at the next lookup', async () => {
    const store = await open();
    const handle = await crabtalkSession(store);
    const content = async () => (await store.loadSession(handle, { withArchive: true }))!.archiveContent;
    expect(await content()).toBeNull();
    writeMemory(memory, [archiveEntry('crab-tg-12345-1-1', 'first')]);
    expect(await content()).toBe('first');
    expect(await store.getArchive('crab-tg-12345-1-1')).toBe('first');
    // Same size, new inode: a snapshot crabtalk renamed over the old file.
    writeMemory(memory, [archiveEntry('crab-tg-12345-1-1', 'again')]);
    expect(await content()).toBe('again');
    writeMemory(memory, [archiveEntry('crab-tg-12345-1-1', 'a longer summary'), archiveEntry('crab-tg-12345-1-2', 'next')]);
    expect(await store.getArchive('crab-tg-12345-1-1')).toBe('a longer summary');
    expect(await store.getArchive('crab-tg-12345-1-2')).toBe('next');
    fs.unlinkSync(memory);
    expect(await content()).toBeNull();
    expect(await store.getArchive('crab-tg-12345-1-2')).toBeNull();
    writeMemory(memory, [archiveEntry('crab-tg-12345-1-1', 'back')]);
    expect(await content()).toBe('back');
  });

  it('a memory file that is not whole is unreadable: warned about once per version, no archives, no compaction, nothing written', async () => {
    const logger = recordingLogger();
    const whole = encodeMemory([archiveEntry('crab-tg-12345-1-1', 'summary'), archiveEntry('crab-tg-12345-1-5', 'later')]);
    replaceMemoryFile(memory, whole.subarray(0, whole.length - 3));
    const store = await open(logger);
    const handle = await crabtalkSession(store);
    expect(await store.getArchive('crab-tg-12345-1-1')).toBeNull();
    expect(await store.getArchive('crab-tg-12345-1-1')).toBeNull();
    expect((await store.loadSession(handle, { withArchive: true }))!.archiveContent).toBeNull();
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0]).toContain(`ignoring crabtalk's memory file ${memory}`);
    // A name crabtalk may hold must not be given again: compact() refuses rather than guess.
    const stepsBefore = (await store.readSteps(handle)).length;
    const refused = await expectCode(store.compact(handle, 'mine'), 'IO_ERROR');
    expect(refused.message).toContain('memory file');
    expect((await store.readSteps(handle)).length).toBe(stepsBefore);
    expect(fs.existsSync(path.join(dir, '.stepstore', 'archives', 'crab-tg-12345-1-2'))).toBe(false);
    // Another version of the file is looked at afresh.
    replaceMemoryFile(memory, encodeMemory([archiveEntry('crab-tg-12345-1-1', 'summary')], { version: 2 }));
    expect(await store.getArchive('crab-tg-12345-1-1')).toBeNull();
    expect(logger.warnings).toHaveLength(2);
    expect(logger.warnings[1]).toContain('version 2');
    replaceMemoryFile(memory, whole);
    expect(await store.getArchive('crab-tg-12345-1-1')).toBe('summary');
    expect(await store.compact(handle, 'mine')).toBe('crab-tg-12345-1-6');
    expect(logger.warnings).toHaveLength(2);
  });

  it('a directory, or a file that cannot be read, is unreadable, not an error', async () => {
    const logger = recordingLogger();
    fs.mkdirSync(memory);
    const store = await open(logger);
    expect(await store.getArchive('crab-u-1-1')).toBeNull();
    expect(logger.warnings.join('\n')).toContain('memory file');
  });

  it('never writes the memory file, whatever the store does (compact, delete, repair, close)', async () => {
    writeMemory(memory, [archiveEntry('crab-tg-12345-1-1', 'summary'), { kind: NOTE, name: 'n', content: 'note' }]);
    const before = fingerprint(memory);
    const folder = () => fs.readdirSync(path.dirname(memory)).sort();
    const unchanged = (after: string) => {
      expect(fingerprint(memory), after).toBe(before);
      expect(folder(), after).toEqual(['memory.db']);
    };
    const store = await open();
    const handle = await crabtalkSession(store);
    unchanged('importSteps');
    await store.getArchive('crab-tg-12345-1-1');
    await store.loadSession(handle, { withArchive: true });
    unchanged('lookups');
    expect(await store.compact(handle, 'mine')).toBe('crab-tg-12345-1-2');
    await store.appendMessages(handle, [userMessage('after')]);
    unchanged('compact');
    await store.repair({ dryRun: true });
    await store.repair();
    unchanged('repair');
    expect(await store.deleteSession(handle)).toBe(true);
    unchanged('deleteSession');
    expect(await store.getArchive('crab-tg-12345-1-1')).toBe('summary');
    await store.close();
    unchanged('close');
  });

  it('numbers past crabtalk\'s marker and memory, reading no step older than its own last compaction', async () => {
    writeMemory(memory, [archiveEntry('crab-tg-12345-1-2', 'crabtalk kept this one, its marker is gone')]);
    const store = await open();
    const handle = await store.createSession('crab', 'tg:12345');
    await store.appendMessages(handle, userMessages('long ago', 600));
    await store.importSteps(handle, [{ archive_name: 'crab-tg-12345-1-1', archived_at: '2026-03-25T10:00:00Z' }]);
    await store.appendMessages(handle, userMessages('old', 400));
    expect(await store.compact(handle, 'first of mine')).toBe('crab-tg-12345-1-3');

    // Everything before that compaction stays unread from now on.
    await store.appendMessages(handle, userMessages('since', 20));
    let read = store.stats().stepsRead;
    expect(await store.compact(handle, 'second of mine')).toBe('crab-tg-12345-1-4');
    read = store.stats().stepsRead - read;
    expect(read).toBeGreaterThanOrEqual(21);
    expect(read).toBeLessThan(100);

    // crabtalk compacted meanwhile (a marker past ours) and its memory grew: both are skipped.
    await store.importSteps(handle, [{ archive_name: 'crab-tg-12345-1-7', archived_at: '2026-03-26T10:00:00Z' }, ...userMessages('crab', 5)]);
    read = store.stats().stepsRead;
    expect(await store.compact(handle, 'third of mine')).toBe('crab-tg-12345-1-8');
    expect(store.stats().stepsRead - read).toBeLessThan(100);
    writeMemory(memory, [archiveEntry('crab-tg-12345-1-2', 'x'), archiveEntry('crab-tg-12345-1-11', 'y', ['crab-tg-12345-1-12'])]);
    expect(await store.compact(handle, 'fourth of mine')).toBe('crab-tg-12345-1-13');

    const restarted = await open();
    expect(await restarted.compact(handle, 'fifth')).toBe('crab-tg-12345-1-14');
    expect(await restarted.getArchive('crab-tg-12345-1-3')).toBe('first of mine');
    expect(await restarted.getArchive('crab-tg-12345-1-2')).toBe('x');
  });

  it('an imported archive is no proof of its name\'s order: the scan goes on past it', async () => {
    const store = await open(quietLogger, null);
    const handle = await store.createSession('crab', 'u');
    await store.importSteps(handle, [{ archive_name: 'crab-u-1-9', archived_at: '2026-03-25T10:00:00Z' }]);
    expect(await store.importArchive('crab-u-1-3', { owner: handle, content: 'imported' })).toBe(true);
    await store.importSteps(handle, [{ archive_name: 'crab-u-1-3', archived_at: '2026-03-25T11:00:00Z' }]);
    expect(await store.compact(handle, 'mine')).toBe('crab-u-1-10');
  });

  it('repair() resolves markers through the memory file: found is fine, absent from both places is dangling', async () => {
    writeMemory(memory, [archiveEntry('crab-tg-12345-1-1', 'summary')]);
    const store = await open();
    const handle = await crabtalkSession(store);
    expect((await store.repair({ dryRun: true })).danglingMarkers).toEqual([]);
    await store.importSteps(handle, [{ archive_name: 'crab-tg-12345-1-2', archived_at: '2026-03-25T10:00:00Z' }]);
    expect((await store.repair({ dryRun: true })).danglingMarkers).toEqual([{ handle, step: 6, archive: 'crab-tg-12345-1-2' }]);
    const without = await open(quietLogger, null);
    expect((await without.repair({ dryRun: true })).danglingMarkers.map((m) => m.archive)).toEqual(['crab-tg-12345-1-1', 'crab-tg-12345-1-2']);
  });
});
