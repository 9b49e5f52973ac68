// The CLI and crabtalk's memory file (--crabtalk-memory, or
// STEPSTORE_CRABTALK_MEMORY): fsck on a crabtalk folder notes the markers
// whose archives crabtalk keeps instead of calling them damage, checks them
// once given the file, and show --archive prints crabtalk's summaries. The
// memory file is never written.

import fs from 'node:fs';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { archiveEntry, writeMemory } from '../helpers/crabtalk-memory.js';
import { describeWithRedis } from '../helpers/redis-harness.js';
import { REPO, cliFixture, parseJson, redisUrl, run } from './helpers.js';

interface Listed {
  kind: string;
  subject: string;
  detail: string;
}

const FIXTURE = path.join(REPO, 'test', 'fixtures', 'crabtalk-0.0.22-root');
/** The two compact markers of the fixture, both naming archives crabtalk keeps in its memory. */
const MARKERS = ['crab_legacy-user_1 #5', 'crab_tg-12345_1 #11'];
const ENV = 'STEPSTORE_CRABTALK_MEMORY';

const ofKind = (list: Listed[], kind: string) => list.filter((p) => p.kind === kind).map((p) => p.subject).sort();

/** A copy of the crabtalk fixture folder in `base`, and a memory file holding the archives its markers name. */
function crabtalkFolder(base: string): { root: string; memory: string; written: string } {
  const root = path.join(base, 'crabtalk-root');
  fs.cpSync(FIXTURE, root, { recursive: true });
  const memory = path.join(base, 'memory.db');
  const written = writeMemory(memory, [
    archiveEntry('crab-tg-12345-1-1', 'User asked for the Lisbon weather.'),
    archiveEntry('crab-legacy-user-1-1', 'An old conversation.'),
  ]).toString('base64');
  return { root, memory, written };
}

describe('crabtalk memory in the CLI', () => {
  const t = cliFixture('crabtalk-memory');
  let root = '';
  let memory = '';
  let written = '';

  beforeEach(() => {
    ({ root, memory, written } = crabtalkFolder(t.base));
  });

  const memoryUnchanged = () => expect(fs.readFileSync(memory).toString('base64')).toBe(written);

  async function fsckJson(args: string[], env: Record<string, string> = {}) {
    const result = await run(['--dir', root, 'fsck', '--json', ...args], { env });
    const out = parseJson(result) as { problems: Listed[]; notes: Listed[] };
    return { result, problems: out.problems, notes: out.notes };
  }

  it('without a memory file, fsck notes the markers of a crabtalk folder instead of counting them as problems', async () => {
    const { problems, notes } = await fsckJson([]);
    expect(ofKind(problems, 'dangling-marker')).toEqual([]);
    expect(ofKind(notes, 'archive-elsewhere')).toEqual(MARKERS);
    expect(notes.find((n) => n.kind === 'archive-elsewhere')!.detail).toContain('kept elsewhere (crabtalk memory)');
    const text = await run(['--dir', root, 'fsck']);
    expect(text.stdout).toContain('Note: 2 compact markers name archives kept elsewhere (crabtalk memory; not a problem):');
    expect(text.stdout).toContain('--crabtalk-memory');
    expect(text.stdout).not.toContain('compact markers naming a missing archive');
  });

  it('with the memory file (option or environment), archives found there are neither notes nor problems', async () => {
    for (const [args, env] of [[['--crabtalk-memory', memory], {}], [[], { [ENV]: memory }]] as const) {
      const { problems, notes, result } = await fsckJson([...args], { ...env });
      expect(ofKind(problems, 'dangling-marker')).toEqual([]);
      expect(ofKind(notes, 'archive-elsewhere')).toEqual([]);
      expect(result.stderr).toBe('');
    }
    memoryUnchanged();
  });

  it('with the memory file, an archive in neither place is a dangling marker', async () => {
    writeMemory(memory, [archiveEntry('crab-tg-12345-1-1', 'only this one')]);
    const { problems, notes, result } = await fsckJson(['--crabtalk-memory', memory]);
    expect(ofKind(problems, 'dangling-marker')).toEqual(['crab_legacy-user_1 #5']);
    expect(ofKind(notes, 'archive-elsewhere')).toEqual([]);
    expect(result.code).toBe(1);
  });

  it('a memory file that does not exist holds no archives: every marker is dangling, with a warning', async () => {
    const missing = path.join(t.base, 'nowhere.db');
    const { problems, result } = await fsckJson(['--crabtalk-memory', missing]);
    expect(ofKind(problems, 'dangling-marker')).toEqual(MARKERS);
    expect(result.stderr).toContain(`crabtalk's memory file ${missing} does not exist`);
  });

  it('fsck --repair with the memory file never writes it', async () => {
    const result = await run(['--dir', root, 'fsck', '--repair', '--crabtalk-memory', memory]);
    expect(result.stdout).not.toContain('compact markers naming a missing archive');
    memoryUnchanged();
  });

  it('show --archive prints crabtalk\'s summary given the memory file, and says where to look without it', async () => {
    const shown = await run(['--dir', root, 'show', 'crab_tg-12345_1', '--archive', '--crabtalk-memory', memory]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain('User asked for the Lisbon weather.');
    const json = parseJson(await run(['--dir', root, '--json', 'show', 'crab_tg-12345_1', '--archive'], { env: { [ENV]: memory } }));
    expect(json.archive_content).toBe('User asked for the Lisbon weather.');
    const all = await run(['--dir', root, 'show', 'crab_tg-12345_1', '--all', '--archive', '--crabtalk-memory', memory]);
    expect(all.stdout).toContain('User asked for the Lisbon weather.');
    const without = await run(['--dir', root, 'show', 'crab_tg-12345_1', '--archive']);
    expect(without.stdout).toContain('[archived context unavailable: crab-tg-12345-1-1]');
    expect(without.stdout).toContain('--crabtalk-memory');
    memoryUnchanged();
  });

  it('refuses --crabtalk-memory with --redis (exit 2): crabtalk\'s archives live beside a folder', async () => {
    const result = await run(['--redis', redisUrl, 'fsck', '--crabtalk-memory', memory]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--crabtalk-memory goes with a sessions folder');
  });
});

describeWithRedis('crabtalk memory and Redis', () => {
  const t = cliFixture('crabtalk-memory', { backend: 'redis' });

  it('migrate with STEPSTORE_CRABTALK_MEMORY copies crabtalk\'s archives into Redis with the markers naming them', async () => {
    const { root, memory, written } = crabtalkFolder(t.base);
    const migrated = await run(['--dir', root, 'migrate', '--to', redisUrl, '--to-prefix', t.prefix], { env: { [ENV]: memory } });
    expect(migrated.code, migrated.stderr).toBe(0);
    const store = await t.stores.redis(t.prefix);
    expect(await store.getArchive('crab-tg-12345-1-1')).toBe('User asked for the Lisbon weather.');
    const snapshot = (await store.loadSession('crab_tg-12345_1', { withArchive: true }))!;
    expect(snapshot.archiveContent).toBe('User asked for the Lisbon weather.');
    // The next archive Redis mints skips the name crabtalk's marker uses.
    expect(await store.compact('crab_tg-12345_1', 'after the move')).toBe('crab-tg-12345-1-2');
    const checked = parseJson(await t.cli('fsck', '--json')) as { problems: Listed[] };
    expect(ofKind(checked.problems, 'dangling-marker')).toEqual([]);
    expect(fs.readFileSync(memory).toString('base64')).toBe(written);
  });
});
