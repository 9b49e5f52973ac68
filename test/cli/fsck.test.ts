// `stepstore fsck`: each kind of damage planted in a real sessions directory
// (and on Redis) is found, exit code 1 while it remains, and --repair fixes
// what store.repair() can fix and leaves the rest reported. Modes merely
// looser than 0600 / 0700 (a crabtalk folder as its umask made it) are a note,
// never a problem, and changed only with --repair --fix-modes.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { describeWithRedis } from '../helpers/redis-harness.js';
import { cliFixture, parseJson, run, seedConversation, textMessage } from './helpers.js';

interface Problem {
  kind: string;
  subject: string;
  detail: string;
  fixable: boolean;
}

const kinds = (problems: Problem[]) => problems.map((p) => `${p.kind} ${p.subject}`).sort();

const CRABTALK_ROOT = fileURLToPath(new URL('../fixtures/crabtalk-0.0.22-root', import.meta.url));

/** `dir` and every file and directory under it. */
function walk(dir: string): string[] {
  return [dir, ...fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]))];
}

describe('fsck on a directory', () => {
  const t = cliFixture('fsck');
  const { cli } = t;
  const at = (...parts: string[]) => path.join(t.root, ...parts);
  const longAgo = new Date(Date.now() - 10 * 60_000);
  const age = (p: string) => fs.utimesSync(p, longAgo, longAgo);

  /** One of every problem fsck knows on the filesystem; returns the handles involved. */
  async function plantEverything() {
    const good = await seedConversation(t.store);
    const drift = await t.store.createSession('owl', 'web:1');
    await t.store.importSteps(drift, [textMessage('user', 'counted by nobody')]); // no meta bump
    const dangling = await t.store.createSession('owl', 'web:2');
    await t.store.appendCompact(dangling, 'nowhere-1');
    const broken = await t.store.createSession('owl', 'web:3');
    fs.writeFileSync(at(broken, 'step-000001'), '{"message":', { mode: 0o600 });
    const corrupt = await t.store.createSession('owl', 'web:4');
    fs.writeFileSync(at(corrupt, 'meta'), 'not json', { mode: 0o600 });
    await t.store.importArchive('ghost-x-1-1', { owner: 'ghost_x_1', content: 'nobody owns me' });
    fs.writeFileSync(at(good, '.tmp-999999999-1'), 'half a step', { mode: 0o600 });
    fs.writeFileSync(at(good, 'step-000009.tmp.42.1'), 'crabtalk temp', { mode: 0o600 });
    age(at(good, 'step-000009.tmp.42.1'));
    fs.chmodSync(at(good, 'step-000001'), 0o644); // looser than stepstore's own: a note
    fs.chmodSync(at(good, 'step-000002'), 0o646); // writable by others: a problem
    fs.mkdirSync(at('crab_empty_1'), { mode: 0o700 });
    age(at('crab_empty_1'));
    fs.mkdirSync(at('crab_orphan_1'), { mode: 0o700 });
    fs.writeFileSync(at('crab_orphan_1', 'step-000001'), JSON.stringify(textMessage('user', 'who am I')), { mode: 0o600 });
    // Counters of sessions written in the last seconds are left alone: make this one look quiet.
    age(at(drift));
    return { good, drift, dangling, broken, corrupt };
  }

  it('finds nothing on a healthy store and exits 0', async () => {
    await seedConversation(t.store);
    const result = await cli('fsck');
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`Checked 1 session in ${t.root}.\nNo problems found.\n`);
  });

  it('finds every planted problem, exits 1 and changes nothing', async () => {
    const { good, drift, dangling, broken, corrupt } = await plantEverything();
    const result = await cli('fsck', '--json');
    expect(result.code).toBe(1);
    const doc = parseJson(result) as { ok: boolean; problems: Problem[]; notes: unknown[] };
    expect(doc.ok).toBe(false);
    expect(doc.notes).toEqual([
      { kind: 'loose-mode', subject: `${good}/step-000001`, detail: 'mode 644', changed: false },
      { kind: 'metaless-session', subject: 'crab_orphan_1', detail: '1 step but no meta: its agent and sender are unknown', changed: false },
    ]);
    expect(doc.problems.find((p) => p.kind === 'unsafe-mode')!.detail).toBe('mode 646: writable by others');
    expect(kinds(doc.problems)).toEqual(
      [
        `leftover ${good}/.tmp-999999999-1`,
        `leftover ${good}/step-000009.tmp.42.1`,
        `unsafe-mode ${good}/step-000002`,
        'incomplete-session crab_empty_1',
        `count-drift ${drift}`,
        `dangling-marker ${dangling} #1`,
        `unreadable-step ${broken} #1`,
        `corrupt-meta ${corrupt}`,
        'orphan-archive ghost-x-1-1',
      ].sort(),
    );
    expect(doc.problems.find((p) => p.kind === 'count-drift')!.detail).toBe('meta says 0, the steps hold 1');
    // A dry run: everything is still there.
    expect(fs.existsSync(at(good, '.tmp-999999999-1'))).toBe(true);
    expect(fs.statSync(at(good, 'step-000001')).mode & 0o777).toBe(0o644);
    expect(fs.statSync(at(good, 'step-000002')).mode & 0o777).toBe(0o646);
    expect(fs.existsSync(at('crab_empty_1'))).toBe(true);
    expect(fs.existsSync(at('.stepstore', 'archives', 'ghost-x-1-1'))).toBe(true);

    const text = await cli('fsck');
    expect(text.code).toBe(1);
    expect(text.stdout).toContain('9 problems found:');
    expect(text.stdout).toContain(`✗ unreadable steps (load and resume skip them): 1\n    ${broken} #1  not valid JSON`);
    expect(text.stdout).toContain(`6 of them can be fixed with "stepstore fsck --repair --dir ${t.root}".`);
    expect(text.stdout).toContain(`Note: 1 file or directory with modes looser than stepstore's own 0600 / 0700`);
    expect(text.stdout).toContain(`    ${good}/step-000001  644\n`);
    expect(text.stdout).toContain('Note: 1 directory holds steps but no meta');
    expect(text.stdout).toContain('    crab_orphan_1  1 step but no meta');
  });

  it('fixes what can be fixed with --repair, reports the rest, and exits 1 while problems remain', async () => {
    const { good, drift, dangling, broken, corrupt } = await plantEverything();
    const repaired = await cli('fsck', '--repair', '--json');
    expect(repaired.code).toBe(1);
    const doc = parseJson(repaired) as { fixed: Problem[]; problems: Problem[] };
    expect(kinds(doc.fixed)).toEqual(
      [
        `leftover ${good}/.tmp-999999999-1`,
        `leftover ${good}/step-000009.tmp.42.1`,
        `unsafe-mode ${good}/step-000002`,
        'incomplete-session crab_empty_1',
        `count-drift ${drift}`,
        'orphan-archive ghost-x-1-1',
      ].sort(),
    );
    expect(kinds(doc.problems)).toEqual(
      [`dangling-marker ${dangling} #1`, `unreadable-step ${broken} #1`, `corrupt-meta ${corrupt}`].sort(),
    );
    // Really fixed on disk.
    expect(fs.existsSync(at(good, '.tmp-999999999-1'))).toBe(false);
    expect(fs.existsSync(at(good, 'step-000009.tmp.42.1'))).toBe(false);
    // The write bit of others is gone; the looser mode, only a note, is as it was.
    expect(fs.statSync(at(good, 'step-000002')).mode & 0o777).toBe(0o644);
    expect(fs.statSync(at(good, 'step-000001')).mode & 0o777).toBe(0o644);
    expect(fs.existsSync(at('crab_empty_1'))).toBe(false);
    expect(fs.existsSync(at('crab_orphan_1', 'step-000001'))).toBe(true);
    expect((await t.store.loadSession(drift))!.meta.message_count).toBe(1);
    expect(await t.store.getArchive('ghost-x-1-1')).toBeNull();

    const again = await cli('fsck');
    expect(again.code).toBe(1);
    expect(again.stdout).toContain('3 problems found:');
    expect(again.stdout).toContain('None of them can be fixed automatically; see the advice above.');
    expect(again.stdout).toContain(`✗ compact markers naming a missing archive: 1\n    ${dangling} #1  archive nowhere-1 is missing`);
  });

  it('exits 0 after --repair when everything it found was fixable', async () => {
    const handle = await seedConversation(t.store);
    await t.stores.closeAll(); // its pending meta bumps are written now, not over the planted mode
    fs.chmodSync(at(handle, 'meta'), 0o646);
    fs.writeFileSync(at(handle, '.tmp-999999999-7'), 'x', { mode: 0o600 });
    const result = await cli('fsck', '--repair');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Fixed 2 problems:');
    expect(result.stdout).toContain(
      `✓ files and directories other users can write to (repair takes the write bits away): 1\n    ${handle}/meta  mode 646: writable by others`,
    );
    expect(result.stdout).toContain('No problems remain.');
    expect(fs.statSync(at(handle, 'meta')).mode & 0o777).toBe(0o644);
    const again = await cli('fsck');
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`Note: 1 file or directory with modes looser than stepstore's own 0600 / 0700`);
    expect(again.stdout).toContain('No problems found.');
  });

  it('a healthy crabtalk folder (0755 / 0644) has no problems: exit 0, its modes a note; --repair --fix-modes sets them', async () => {
    const sessions = ['crab_user_1', 'crab_user_2', 'crab_user_3', 'crab_old-meta_1'];
    const folder = path.join(t.base, 'crabtalk-sessions');
    fs.mkdirSync(folder);
    for (const slug of sessions) fs.cpSync(path.join(CRABTALK_ROOT, slug), path.join(folder, slug), { recursive: true });
    const entries = walk(folder);
    for (const entry of entries) fs.chmodSync(entry, fs.statSync(entry).isDirectory() ? 0o755 : 0o644);
    expect(entries).toHaveLength(14);

    const check = await run(['--dir', folder, 'fsck']);
    expect(check.code).toBe(0);
    expect(check.stdout).toContain(`Checked 4 sessions in ${folder}.`);
    expect(check.stdout).toContain(`Note: 14 files and directories with modes looser than stepstore's own 0600 / 0700`);
    expect(check.stdout).toContain('    … and 4 more (--json lists them all)');
    expect(check.stdout).toContain(`"stepstore fsck --repair --fix-modes --dir ${folder}"`);
    expect(check.stdout).toContain('No problems found.');
    const doc = parseJson(await run(['--dir', folder, 'fsck', '--json'])) as { ok: boolean; problems: Problem[]; notes: { subject: string }[] };
    expect(doc).toMatchObject({ ok: true, problems: [] });
    expect(doc.notes.map((n) => n.subject).sort()).toEqual(entries.map((e) => path.relative(folder, e) || '.').sort());

    // --repair alone changes no mode; with --fix-modes it sets them all.
    expect((await run(['--dir', folder, 'fsck', '--repair'])).code).toBe(0);
    expect(entries.map((e) => fs.statSync(e).mode & 0o777).filter((m) => m !== 0o755 && m !== 0o644)).toEqual([]);
    const fixed = await run(['--dir', folder, 'fsck', '--repair', '--fix-modes']);
    expect(fixed.code).toBe(0);
    expect(fixed.stdout).toContain('Set 14 modes looser than 0600 / 0700 to them (--fix-modes):');
    for (const entry of entries) expect(fs.statSync(entry).mode & 0o777, entry).toBe(fs.statSync(entry).isDirectory() ? 0o700 : 0o600);
    const after = await run(['--dir', folder, 'fsck']);
    expect(after.stdout).toBe(`Checked 4 sessions in ${folder}.\nNo problems found.\n`);
  });
});

describeWithRedis('fsck on Redis', () => {
  const t = cliFixture('fsck', { backend: 'redis' });
  const { cli } = t;

  it('finds a drifted counter and a dangling marker, repairs the counter and keeps reporting the marker', async () => {
    const store = await t.stores.redis(t.prefix);
    const drift = await seedConversation(store);
    await store.updateMeta(drift, { ...(await store.loadSession(drift))!.meta, message_count: 99 });
    const dangling = await store.createSession('owl', 'web:2');
    await store.appendCompact(dangling, 'nowhere-1');

    const check = await cli('fsck', '--json');
    expect(check.code).toBe(1);
    expect(kinds((parseJson(check) as { problems: Problem[] }).problems)).toEqual([`count-drift ${drift}`, `dangling-marker ${dangling} #1`]);
    const repaired = await cli('fsck', '--repair');
    expect(repaired.code).toBe(1);
    // crabtalk's count: the summary of the compaction and the one message after it.
    expect(repaired.stdout).toContain(`✓ message_count differing from the steps: 1\n    ${drift}  meta says 99, the steps hold 2`);
    expect(repaired.stdout).toContain('1 problem remains (repair cannot fix it):');
    expect((await store.loadSession(drift))!.meta.message_count).toBe(2);
  });
});
