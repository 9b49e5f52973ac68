// Deleting with the CLI is always on purpose: rm and prune show what would
// go, ask on a terminal, refuse without one unless --yes, and delete nothing
// when any input is wrong.

import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliFixture, parseJson, runOnTerminal, snapshotTree, textMessage } from './helpers.js';

const t = cliFixture('delete');
const { cli } = t;
const handles = async () => (await t.store.listSessions()).map((s) => s.handle).sort();

/** A session whose last update was `daysAgo` days ago. */
async function sessionAged(agent: string, sender: string, daysAgo: number): Promise<string> {
  const handle = await t.store.createSession(agent, sender);
  await t.store.appendMessages(handle, [textMessage('user', `from ${daysAgo} days ago`)]);
  const meta = (await t.store.loadSession(handle))!.meta;
  await t.store.updateMeta(handle, { ...meta, updated_at: new Date(Date.now() - daysAgo * 86_400_000).toISOString() });
  return handle;
}

describe('rm', () => {
  it('refuses with exit 2 and deletes nothing when stdin is not a terminal and --yes is missing', async () => {
    const handle = await sessionAged('crab', 'tg:1', 0);
    const before = snapshotTree(t.root);
    const result = await cli('rm', handle);
    expect(result.code).toBe(2);
    expect(result.stderr.trimEnd()).toBe(
      `stepstore: ${handle}: refusing to delete without confirmation: stdin is not a terminal; nothing was deleted; pass --yes to delete without being asked`,
    );
    expect(snapshotTree(t.root)).toEqual(before);
  });

  it('deletes the named sessions with --yes and says so', async () => {
    const a = await sessionAged('crab', 'tg:1', 0);
    const b = await sessionAged('crab', 'tg:2', 0);
    const keep = await sessionAged('crab', 'tg:3', 0);
    const result = await cli('rm', a, b, '--yes');
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`deleted ${a}\ndeleted ${b}\n`);
    expect(await handles()).toEqual([keep]);
  });

  it('deletes nothing when one of the handles does not exist', async () => {
    const a = await sessionAged('crab', 'tg:1', 0);
    const result = await cli('rm', a, 'crab_tg-404_1', '--yes');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^stepstore: crab_tg-404_1: no such session in .*; nothing was deleted; run "stepstore list/);
    expect(await handles()).toEqual([a]);
  });

  it('asks on a terminal: "n" keeps the session, "y" deletes it', async () => {
    const handle = await sessionAged('crab', 'tg:1', 0);
    const no = await runOnTerminal(['--dir', t.root, '--no-color', 'rm', handle], 'n\n');
    expect(no.stdout).toContain(`Delete ${handle} and its steps and archives? [y/N]`);
    expect(no.stdout).toContain('Nothing deleted.');
    expect(no.code).toBe(1);
    expect(await handles()).toEqual([handle]);
    const yes = await runOnTerminal(['--dir', t.root, '--no-color', 'rm', handle], 'y\n');
    expect(yes.code).toBe(0);
    expect(yes.stdout).toContain(`deleted ${handle}`);
    expect(await handles()).toEqual([]);
  });

  it('reports what it deleted as JSON with --json', async () => {
    const handle = await sessionAged('crab', 'tg:1', 0);
    expect(parseJson(await cli('rm', handle, '--yes', '--json'))).toEqual({ deleted: [handle], gone: [], cancelled: false });
  });
});

describe('prune', () => {
  it('prints what it would delete with --dry-run and deletes nothing', async () => {
    const old = await sessionAged('crab', 'tg:1', 40);
    await sessionAged('crab', 'tg:2', 2);
    const before = snapshotTree(t.root);
    const result = await cli('prune', '--older-than', '30d', '--dry-run');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Would delete 1 session last updated before');
    expect(result.stdout).toMatch(new RegExp(`^${old}\\s+crab\\s+tg:1\\s+1\\s+(about )?1 month ago$`, 'm'));
    expect(result.stdout).not.toContain('crab_tg-2_1');
    expect(result.stdout).toContain('Dry run: nothing was deleted.');
    expect(snapshotTree(t.root)).toEqual(before);
  });

  it('refuses with exit 2 and deletes nothing without a terminal and without --yes', async () => {
    await sessionAged('crab', 'tg:1', 40);
    const before = snapshotTree(t.root);
    const result = await cli('prune', '--older-than', '30d');
    expect(result.code).toBe(2);
    expect(result.stderr.trimEnd()).toBe(
      'stepstore: 1 session: refusing to delete without confirmation: stdin is not a terminal; nothing was deleted; pass --yes to delete without being asked',
    );
    expect(snapshotTree(t.root)).toEqual(before);
  });

  it('deletes only sessions older than the cutoff, of the given agent, with --yes', async () => {
    const oldCrab = await sessionAged('crab', 'tg:1', 40);
    const newCrab = await sessionAged('crab', 'tg:2', 1);
    const oldOwl = await sessionAged('owl', 'tg:1', 40);
    const result = await cli('prune', '--older-than', '1d12h', '--agent', 'crab', '--yes');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`deleted ${oldCrab}`);
    expect(result.stdout).toContain('Deleted 1 session.');
    expect(await handles()).toEqual([newCrab, oldOwl].sort());
  });

  it('asks on a terminal and deletes only after "y"', async () => {
    const old = await sessionAged('crab', 'tg:1', 3);
    const no = await runOnTerminal(['--dir', t.root, '--no-color', 'prune', '--older-than', '2d'], '\n');
    expect(no.stdout).toContain('Delete these 1 session? [y/N]');
    expect(await handles()).toEqual([old]);
    const yes = await runOnTerminal(['--dir', t.root, '--no-color', 'prune', '--older-than', '2d'], 'yes\n');
    expect(yes.code).toBe(0);
    expect(await handles()).toEqual([]);
  });

  it('reports the cutoff, the chosen sessions and what was deleted as JSON', async () => {
    const old = await sessionAged('crab', 'tg:1', 10);
    const doc = parseJson(await cli('prune', '--older-than', '1w', '--yes', '--json'));
    expect(doc).toMatchObject({ older_than: '1w', dry_run: false, deleted: [old], skipped: [] });
    expect(Date.now() - Date.parse(doc.cutoff as string)).toBeGreaterThanOrEqual(7 * 86_400_000);
    expect((doc.sessions as { handle: string }[]).map((s) => s.handle)).toEqual([old]);
  });

  it('refuses a malformed or missing --older-than with exit 2', async () => {
    await sessionAged('crab', 'tg:1', 40);
    const bad = await cli('prune', '--older-than', '30 days', '--yes');
    expect(bad.code).toBe(2);
    expect(bad.stderr.trimEnd()).toBe('stepstore: --older-than 30 days: not a duration; use a number and a unit (s, m, h, d, w), e.g. 30d, 12h or 1d12h');
    const missing = await cli('prune', '--yes');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("required option '--older-than <age>' not specified");
    expect(await handles()).toHaveLength(1);
  });

  it('never deletes a session whose times cannot be read, and says so', async () => {
    const handle = await sessionAged('crab', 'tg:1', 40);
    const meta = (await t.store.loadSession(handle))!.meta;
    fs.writeFileSync(path.join(t.root, handle, 'meta'), JSON.stringify({ ...meta, created_at: 'someday', updated_at: '' }), { mode: 0o600 });
    const result = await cli('prune', '--older-than', '1s', '--yes');
    expect(result.code).toBe(0);
    expect(result.stderr.trimEnd()).toBe(`stepstore: warning: ${handle} has no valid updated_at or created_at; prune leaves it alone`);
    expect(result.stdout).toContain('No sessions last updated before');
    expect(await handles()).toEqual([handle]);
  });
});
