// crabtalk folders as users have them: a sessions root made under umask 002
// (0775) opens when its group is the owner's own private group, and is refused
// (UNSAFE_ROOT, saying which risk and the chmod that fixes it) when others can
// write to it or its group has other members; session directories and files
// of 0755 / 0644 and 0775 / 0664 load, list and take appends; repair() notes
// such modes and changes them only with fixModes, but takes away write bits
// that let other users in.
//
// Run as root, the group cases use real users made here with useradd (a user
// with a private group, another user in that group, a third with it as primary
// group), removed afterwards; the store is opened in a child process running
// as the first user. Without useradd, groups that exist in /etc/group stand in.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { StepStoreError, openStore, type Store } from 'stepstore';
import { makeTempDir, quietLogger } from '../helpers/fs-harness.js';
import { run } from '../cli/helpers.js';
import { userMessage } from '../conformance/fixture.js';

const CRABTALK_ROOT = fileURLToPath(new URL('../fixtures/crabtalk-0.0.22-root', import.meta.url));
const DIST_INDEX = pathToFileURL(fileURLToPath(new URL('../../dist/index.js', import.meta.url))).href;
const isRoot = process.getuid?.() === 0;
const hasCommand = (command: string) => spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
const canMakeUsers = isRoot && ['useradd', 'userdel', 'groupdel', 'usermod'].every(hasCommand);

interface Account {
  name: string;
  uid: number;
  gid: number;
}

function passwdEntry(name: string): Account {
  const line = fs.readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${name}:`));
  if (line === undefined) throw new Error(`no user ${name}`);
  const [, , uid, gid] = line.split(':');
  return { name, uid: Number(uid), gid: Number(gid) };
}

/** Groups of /etc/group: name, gid, members. */
function groups(): { name: string; gid: number; members: string[] }[] {
  return fs
    .readFileSync('/etc/group', 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('#'))
    .map((l) => l.split(':'))
    .map(([name = '', , gid = '', members = '']) => ({ name, gid: Number(gid), members: members.split(',').filter((m) => m !== '') }));
}

/** True when `gid` is nobody's primary group but root's and lists no members (what vetRoot needs for root's own group). */
function rootGroupIsPrivate(): boolean {
  const users = fs.readFileSync('/etc/passwd', 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => l.split(':'));
  const primaries = users.filter((u) => Number(u[3]) === 0 && Number(u[2]) !== 0);
  return primaries.length === 0 && groups().filter((g) => g.gid === 0).every((g) => g.members.every((m) => m === 'root'));
}

function mode(p: string): number {
  return fs.lstatSync(p).mode & 0o777;
}

/** Sets every directory under (and including) `dir` to `dirMode` and every file to `fileMode`. */
function chmodTree(dir: string, dirMode: number, fileMode: number): void {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const child = path.join(dir, entry.name);
    if (entry.isDirectory()) chmodTree(child, dirMode, fileMode);
    else fs.chmodSync(child, fileMode);
  }
  fs.chmodSync(dir, dirMode);
}

/** A copy of sessions of the crabtalk fixture folder at `root`, every directory `dirMode`, every file `fileMode`. */
function crabtalkFolder(root: string, sessions: string[], dirMode: number, fileMode: number): void {
  fs.mkdirSync(root);
  for (const slug of sessions) fs.cpSync(path.join(CRABTALK_ROOT, slug), path.join(root, slug), { recursive: true });
  chmodTree(root, dirMode, fileMode);
}

async function openError(dir: string): Promise<StepStoreError> {
  const outcome = await openStore({ dir, logger: quietLogger }).then(
    async (store) => {
      await store.close();
      return null;
    },
    (err: unknown) => err,
  );
  expect(outcome).toBeInstanceOf(StepStoreError);
  expect((outcome as StepStoreError).code).toBe('UNSAFE_ROOT');
  return outcome as StepStoreError;
}

/** Opens the store at `dir` in a child process running as `user`, creates a session and lists; what it saw. */
function openAs(user: Account, dir: string): { ok: true; handles: string[] } | { ok: false; code: string; message: string } {
  const script = `
    const { openStore } = await import(${JSON.stringify(DIST_INDEX)});
    try {
      const store = await openStore({ dir: ${JSON.stringify(dir)}, logger: { warn() {} } });
      await store.createSession('crab', 'u');
      const handles = (await store.listSessions()).map((s) => s.handle).sort();
      await store.close();
      console.log(JSON.stringify({ ok: true, handles }));
    } catch (err) {
      console.log(JSON.stringify({ ok: false, code: err.code, message: err.message }));
    }`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { uid: user.uid, gid: user.gid, encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`child as ${user.name} failed: ${child.stderr}`);
  return JSON.parse(child.stdout.trim().split('\n').at(-1)!);
}

let base: string;
let root: string;
const opened: Store[] = [];

async function open(dir = root): Promise<Store> {
  const store = await openStore({ dir, logger: quietLogger });
  opened.push(store);
  return store;
}

beforeEach(async () => {
  base = await makeTempDir('root-modes');
  root = path.join(base, 'sessions');
});

afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
  await fs.promises.rm(base, { recursive: true, force: true });
});

describe('a sessions root writable by others is refused, saying so and how to fix it', () => {
  it.each([0o757, 0o777, 0o702, 0o1777])('mode %o', async (unsafe) => {
    fs.mkdirSync(root);
    fs.chmodSync(root, unsafe);
    const before = mode(root);
    const err = await openError(root);
    expect(err.message).toContain(root);
    expect(err.message).toContain('writable by others');
    expect(err.message).toMatch(new RegExp(`chmod g?o-w ${root.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
    expect(mode(root)).toBe(before);
  });

  it('and "stepstore list" says the same and exits non-zero', async () => {
    fs.mkdirSync(root);
    fs.chmodSync(root, 0o777);
    const result = await run(['--dir', root, 'list']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(`writable by others`);
    expect(result.stderr).toContain(`chmod o-w ${root}`);
  });

  it('a symlink, a file and a root owned by another user are refused, each saying which', async () => {
    fs.mkdirSync(path.join(base, 'real'), { mode: 0o700 });
    fs.symlinkSync(path.join(base, 'real'), root);
    expect((await openError(root)).message).toContain('it is a symlink');
    fs.rmSync(root);
    fs.writeFileSync(root, 'x');
    expect((await openError(root)).message).toContain('it is not a directory');
    fs.rmSync(root);
    if (isRoot) {
      fs.mkdirSync(root, { mode: 0o700 });
      fs.chownSync(root, 12345, 12345);
      const err = await openError(root);
      expect(err.message).toContain('owned by uid 12345');
      expect(err.message).toContain('chown');
    }
  });
});

describe.runIf(isRoot)('as root, with groups of /etc/group', () => {
  it('a 0775 root whose group is root\'s own private group opens, lists and takes sessions', async (ctx) => {
    if (!rootGroupIsPrivate()) ctx.skip();
    fs.mkdirSync(root);
    fs.chmodSync(root, 0o775);
    const store = await open();
    const handle = await store.createSession('crab', 'tg:1');
    expect((await store.listSessions()).map((s) => s.handle)).toEqual([handle]);
    expect(mode(root)).toBe(0o775);
  });

  it('a 0775 root whose group is not root\'s own is refused, naming the group', async () => {
    const other = groups().find((g) => g.gid !== 0 && g.name !== '')!;
    fs.mkdirSync(root);
    fs.chmodSync(root, 0o775);
    fs.chownSync(root, 0, other.gid);
    const err = await openError(root);
    expect(err.message).toContain(`group ${other.name} (gid ${other.gid})`);
    expect(err.message).toContain(`chmod g-w ${root}`);
    // The group alone, without write: safe.
    fs.chmodSync(root, 0o755);
    await (await open()).createSession('crab', 'u');
  });

  it('a 0775 root whose group lists other members is refused, naming the group', async (ctx) => {
    const shared = groups().find((g) => g.members.some((m) => m !== 'root'));
    if (shared === undefined) ctx.skip();
    fs.mkdirSync(root);
    fs.chmodSync(root, 0o775);
    fs.chownSync(root, 0, shared!.gid);
    const err = await openError(root);
    expect(err.message).toContain(`${shared!.name} (gid ${shared!.gid})`);
    expect(err.message).toContain(`chmod g-w ${root}`);
  });
});

describe.runIf(canMakeUsers)('with real users: a root owned by a user with a private group', () => {
  const tag = `ss${process.pid.toString(36)}`;
  const names = { owner: `${tag}own`, member: `${tag}mem`, primary: `${tag}pri` };
  let owner: Account;

  const sh = (command: string, ...args: string[]) => {
    const result = spawnSync(command, args, { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`${command} ${args.join(' ')}: ${result.stderr}`);
  };
  const quietly = (command: string, ...args: string[]) => void spawnSync(command, args);

  beforeAll(() => {
    sh('useradd', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', names.owner);
    owner = passwdEntry(names.owner);
  });

  afterAll(() => {
    for (const name of [names.primary, names.member, names.owner]) quietly('userdel', name);
    for (const name of [names.member, names.owner]) quietly('groupdel', name);
    const left = fs.readFileSync('/etc/passwd', 'utf8') + fs.readFileSync('/etc/group', 'utf8');
    expect(left).not.toContain(tag);
  });

  /** `root`, made 0775 by `owner` with its own group, in a base `owner` can reach. */
  function ownersRoot(): void {
    fs.chmodSync(base, 0o755);
    fs.mkdirSync(root);
    fs.chownSync(root, owner.uid, owner.gid);
    fs.chmodSync(root, 0o775);
  }

  it('opens at 0775, lists and takes sessions', () => {
    ownersRoot();
    expect(openAs(owner, root)).toEqual({ ok: true, handles: ['crab_u_1'] });
    expect(mode(root)).toBe(0o775);
  });

  it('is refused once another user is a member of the group, naming the group and the member', () => {
    ownersRoot();
    sh('useradd', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', names.member);
    sh('usermod', '-a', '-G', names.owner, names.member);
    try {
      const seen = openAs(owner, root);
      expect(seen).toMatchObject({ ok: false, code: 'UNSAFE_ROOT' });
      const message = (seen as { message: string }).message;
      expect(message).toContain(`group ${names.owner} (gid ${owner.gid}) has other members (${names.member})`);
      expect(message).toContain(`chmod g-w ${root}`);
      // What the message says to do is enough.
      fs.chmodSync(root, 0o755);
      expect(openAs(owner, root)).toMatchObject({ ok: true });
    } finally {
      quietly('userdel', names.member);
      quietly('groupdel', names.member);
    }
    fs.chmodSync(root, 0o775);
    expect(openAs(owner, root)).toMatchObject({ ok: true });
  });

  it('is refused while another user has the group as primary group', () => {
    ownersRoot();
    sh('useradd', '--no-create-home', '--shell', '/usr/sbin/nologin', '--gid', String(owner.gid), names.primary);
    try {
      const seen = openAs(owner, root);
      expect(seen).toMatchObject({ ok: false, code: 'UNSAFE_ROOT' });
      expect((seen as { message: string }).message).toContain(`has other members (${names.primary})`);
    } finally {
      quietly('userdel', names.primary);
    }
    expect(openAs(owner, root)).toMatchObject({ ok: true });
  });

  it('is refused at 0777 (others) even with its own group, and at 0775 when the group is not its own', () => {
    ownersRoot();
    fs.chmodSync(root, 0o777);
    const others = openAs(owner, root);
    expect(others).toMatchObject({ ok: false, code: 'UNSAFE_ROOT' });
    expect((others as { message: string }).message).toContain(`writable by others (mode 777); chmod o-w ${root}`);
    fs.chmodSync(root, 0o775);
    fs.chownSync(root, owner.uid, 0);
    const notOwn = openAs(owner, root);
    expect(notOwn).toMatchObject({ ok: false, code: 'UNSAFE_ROOT' });
    expect((notOwn as { message: string }).message).toContain(`is not ${names.owner}'s own group`);
  });
});

describe.each([
  ['0755 / 0644 (umask 022)', 0o755, 0o644],
  ['0775 / 0664 (umask 002)', 0o775, 0o664],
])('a crabtalk folder with directories and files %s', (_, dirMode, fileMode) => {
  const SESSIONS = ['crab_tg-12345_1', 'crab_user_1', 'crab_old-meta_1'];
  // Group-writable modes are safe only when the group is the owner's own; as root here, root's group.
  const groupWrites = (dirMode & 0o020) !== 0;

  it('loads, lists and takes appends, leaving the modes it found as they are', async (ctx) => {
    if (groupWrites && !(isRoot && rootGroupIsPrivate())) ctx.skip();
    crabtalkFolder(root, SESSIONS, dirMode, fileMode);
    const store = await open();
    expect((await store.listSessions()).map((s) => s.handle).sort()).toEqual([...SESSIONS].sort());
    const snapshot = (await store.loadSession('crab_tg-12345_1'))!;
    expect(snapshot.history).toHaveLength(5);
    expect(snapshot.meta.message_count).toBe(6);
    const [step] = await store.appendMessages('crab_tg-12345_1', [userMessage('from stepstore')]);
    expect(step).toBe(17);
    expect((await store.loadSession('crab_tg-12345_1'))!.meta.message_count).toBe(7);
    await store.appendMessages('crab_user_1', [userMessage('again')]);
    const fresh = await store.createSession('crab', 'user');
    expect(fresh).toBe('crab_user_2');
    await store.close();

    const reopened = await open();
    expect((await reopened.loadSession('crab_tg-12345_1'))!.history.at(-1)).toEqual(userMessage('from stepstore'));
    expect((await reopened.loadSession('crab_user_1'))!.meta.message_count).toBe(2);
    // What was there keeps its mode; what stepstore wrote is 0600 / 0700.
    expect(mode(root)).toBe(dirMode);
    expect(mode(path.join(root, 'crab_tg-12345_1'))).toBe(dirMode);
    expect(mode(path.join(root, 'crab_tg-12345_1', 'step-000001'))).toBe(fileMode);
    expect(mode(path.join(root, 'crab_tg-12345_1', 'step-000017'))).toBe(0o600);
    expect(mode(path.join(root, fresh))).toBe(0o700);
  });

  it('repair notes the modes and changes none; with fixModes it sets them to 0600 / 0700', async (ctx) => {
    if (groupWrites && !(isRoot && rootGroupIsPrivate())) ctx.skip();
    crabtalkFolder(root, SESSIONS, dirMode, fileMode);
    const files = SESSIONS.flatMap((slug) => fs.readdirSync(path.join(root, slug)).map((name) => `${slug}/${name}`));
    const store = await open();

    const report = await store.repair();
    expect(report.looseModes.map((m) => m.path).sort()).toEqual(['.', ...SESSIONS, ...files].sort());
    for (const m of report.looseModes) {
      expect(m).toEqual({ path: m.path, mode: (m.path.includes('/') ? fileMode : dirMode).toString(8), risk: null, action: 'kept', to: null });
    }
    expect(mode(path.join(root, 'crab_user_1', 'meta'))).toBe(fileMode);
    expect(mode(root)).toBe(dirMode);

    const dry = await store.repair({ dryRun: true, fixModes: true });
    expect(dry.looseModes.every((m) => m.action === 'changed' && m.to === (m.path.includes('/') ? '600' : '700'))).toBe(true);
    expect(mode(path.join(root, 'crab_user_1', 'meta'))).toBe(fileMode);

    const fixed = await store.repair({ fixModes: true });
    expect(fixed.looseModes).toEqual(dry.looseModes);
    expect(mode(root)).toBe(0o700);
    for (const slug of SESSIONS) {
      expect(mode(path.join(root, slug))).toBe(0o700);
      for (const name of fs.readdirSync(path.join(root, slug))) expect(mode(path.join(root, slug, name)), `${slug}/${name}`).toBe(0o600);
    }
    expect((await store.repair()).looseModes).toEqual([]);
  });
});

describe('repair and modes other users could use', () => {
  it('takes away the write bits of others, leaving the rest; fixModes sets 0600 / 0700', async () => {
    crabtalkFolder(root, ['crab_user_1', 'crab_user_2'], 0o755, 0o644);
    fs.chmodSync(path.join(root, 'crab_user_1', 'step-000001'), 0o646);
    fs.chmodSync(path.join(root, 'crab_user_2'), 0o757);
    const store = await open();
    const byPath = async (opts?: { dryRun?: boolean; fixModes?: boolean }) =>
      Object.fromEntries((await store.repair(opts)).looseModes.map((m) => [m.path, m]));

    const dry = await byPath({ dryRun: true });
    expect(dry['crab_user_1/step-000001']).toEqual({ path: 'crab_user_1/step-000001', mode: '646', risk: 'writable by others', action: 'changed', to: '644' });
    expect(dry['crab_user_2']).toEqual({ path: 'crab_user_2', mode: '757', risk: 'writable by others', action: 'changed', to: '755' });
    expect(dry['crab_user_1/meta']).toMatchObject({ risk: null, action: 'kept' });
    expect(mode(path.join(root, 'crab_user_1', 'step-000001'))).toBe(0o646);

    await byPath();
    expect(mode(path.join(root, 'crab_user_1', 'step-000001'))).toBe(0o644);
    expect(mode(path.join(root, 'crab_user_2'))).toBe(0o755);
    expect(mode(path.join(root, 'crab_user_1', 'meta'))).toBe(0o644);
    expect(Object.values(await byPath()).every((m) => m.risk === null && m.action === 'kept')).toBe(true);

    fs.chmodSync(path.join(root, 'crab_user_2', 'meta'), 0o666);
    const fixed = await byPath({ fixModes: true });
    expect(fixed['crab_user_2/meta']).toMatchObject({ mode: '666', action: 'changed', to: '600' });
    expect(fixed['crab_user_2/meta']!.risk).toContain('writable by others');
    expect(mode(path.join(root, 'crab_user_2', 'meta'))).toBe(0o600);
    expect(mode(path.join(root, 'crab_user_2'))).toBe(0o700);
  });

  it.runIf(isRoot)('takes away the group write bit when the group is not the owner\'s own, naming it', async () => {
    const other = groups().find((g) => g.gid !== 0 && g.name !== '')!;
    crabtalkFolder(root, ['crab_user_1'], 0o755, 0o644);
    const step = path.join(root, 'crab_user_1', 'step-000001');
    fs.chownSync(step, 0, other.gid);
    fs.chmodSync(step, 0o664);
    const store = await open();
    const found = (await store.repair()).looseModes.find((m) => m.path === 'crab_user_1/step-000001')!;
    expect(found).toMatchObject({ mode: '664', action: 'changed', to: '644' });
    expect(found.risk).toContain(`group ${other.name} (gid ${other.gid})`);
    expect(mode(step)).toBe(0o644);
  });

  it('never changes a symlink\'s target: a step that is a symlink is no step and its target keeps its mode', async () => {
    crabtalkFolder(root, ['crab_user_1'], 0o700, 0o600);
    const outside = path.join(base, 'outside');
    fs.writeFileSync(outside, '{"message":{"role":"user","content":[{"type":"text","text":"x"}]}}', { mode: 0o666 });
    fs.chmodSync(outside, 0o666);
    fs.symlinkSync(outside, path.join(root, 'crab_user_1', 'step-000002'));
    const store = await open();
    await store.repair({ fixModes: true });
    expect(mode(outside)).toBe(0o666);
  });
});
