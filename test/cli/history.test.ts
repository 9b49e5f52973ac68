// `stepstore fork` and `stepstore rewind` as a user runs them: fork prints the
// new handle and holds what was asked; rewind shows how many steps would go,
// asks on a terminal, refuses without one unless --yes, and retracts nothing
// on a bad step number.

import { describe, expect, it } from 'vitest';
import { cliFixture, parseJson, runOnTerminal, snapshotTree, textMessage } from './helpers.js';

const t = cliFixture('history');
const { cli } = t;

async function sessionOf(steps: number): Promise<string> {
  const handle = await t.store.createSession('crab', 'tg:1');
  await t.store.appendMessages(handle, Array.from({ length: steps }, (_, i) => textMessage('user', `message ${i + 1}`)));
  // Its meta bump written: the tree stays as it is unless a command changes it.
  await t.reopen();
  return handle;
}

describe('fork', () => {
  it('prints the new handle, which holds every step of the source', async () => {
    const handle = await sessionOf(5);
    const result = await cli('fork', handle);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`forked ${handle} up to step 5 as crab_tg-1_2\n`);
    expect((await t.store.readSteps('crab_tg-1_2')).map((s) => s.text)).toEqual((await t.store.readSteps(handle)).map((s) => s.text));
  });

  it('with --at holds steps 1..N only, and --json says what it made', async () => {
    const handle = await sessionOf(5);
    const result = await cli('--json', 'fork', handle, '--at', '2');
    expect(result.code).toBe(0);
    expect(parseJson(result)).toEqual({ handle: 'crab_tg-1_2', forked_from: handle, forked_at_step: 2 });
    expect((await t.store.readSteps('crab_tg-1_2')).map((s) => s.step)).toEqual([1, 2]);
  });

  it('refuses a step above the highest with exit 2 and creates nothing', async () => {
    const handle = await sessionOf(2);
    const before = snapshotTree(t.root);
    for (const at of ['3', '-1', 'x']) {
      const result = await cli('fork', handle, '--at', at);
      expect(result.code, at).toBe(2);
    }
    expect(snapshotTree(t.root)).toEqual(before);
  });
});

describe('rewind', () => {
  it('refuses with exit 2 and retracts nothing when stdin is not a terminal and --yes is missing', async () => {
    const handle = await sessionOf(5);
    const before = snapshotTree(t.root);
    const result = await cli('rewind', handle, '--to', '2');
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/refusing to delete without confirmation: stdin is not a terminal/);
    expect(snapshotTree(t.root)).toEqual(before);
  });

  it('retracts every step after --to with --yes and says how many', async () => {
    const handle = await sessionOf(5);
    const result = await cli('rewind', handle, '--to', '2', '--yes');
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`rewound ${handle} to step 2: 3 steps retracted\n`);
    expect((await t.store.readSteps(handle)).map((s) => s.step)).toEqual([1, 2]);
  });

  it('asks on a terminal: n keeps everything, y retracts', async () => {
    const handle = await sessionOf(4);
    const no = await runOnTerminal(['--dir', t.root, '--no-color', 'rewind', handle, '--to', '1'], 'n\n');
    expect(no.code).toBe(1);
    expect((await t.store.readSteps(handle)).length).toBe(4);
    const yes = await runOnTerminal(['--dir', t.root, '--no-color', 'rewind', handle, '--to', '1'], 'y\n');
    expect(yes.code).toBe(0);
    expect((await t.store.readSteps(handle)).map((s) => s.step)).toEqual([1]);
  });

  it('says there is nothing to rewind when no step lies after --to, and rejects a bad step number', async () => {
    const handle = await sessionOf(2);
    const nothing = await cli('rewind', handle, '--to', '2');
    expect(nothing.code).toBe(0);
    expect(nothing.stdout).toBe(`${handle} has no step after 2: nothing to rewind.\n`);
    const bad = await cli('rewind', handle, '--to', '1.5', '--yes');
    expect(bad.code).toBe(2);
    expect((await t.store.readSteps(handle)).length).toBe(2);
  });
});
