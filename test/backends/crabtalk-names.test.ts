// crabtalk's own session names, in a sessions folder crabtalk 0.0.22 wrote
// (test/fixtures/crabtalk-0.0.22-root): every session directory with a meta is
// listed, found and loaded, `crab__1` (an emoji-only sender),
// `crab_line-break_1` (a newline in the sender) and a 120-character agent
// included; find agrees with crabtalk's find_latest except where stepstore
// differs on purpose; stepstore carries on in that folder under the very
// handles crabtalk makes. The same folder migrated to Redis reads alike.

import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { migrate, openStore, type Store } from 'stepstore';
import { openRedisStore } from 'stepstore/redis';
import { makeTempDir, quietLogger } from '../helpers/fs-harness.js';
import { REDIS_URL, deleteKeys, describeWithRedis } from '../helpers/redis-harness.js';
import { run } from '../cli/helpers.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/crabtalk-0.0.22-root', import.meta.url));

interface ExpectedSession {
  dir: string;
  listed: boolean;
  meta: { agent: string; created_by: string } | null;
  load: { history: unknown[] } | null;
}

const EXPECTED = JSON.parse(fs.readFileSync(new URL('../fixtures/crabtalk-0.0.22-root.expected.json', import.meta.url), 'utf8')) as {
  sessions: ExpectedSession[];
  /** "agent\u001fsender" -> the handle crabtalk's find_latest returns. */
  find_latest: Record<string, string>;
};

/** Where stepstore's findLatestSession answers otherwise than crabtalk, on purpose. */
const DELIBERATE: Record<string, { crabtalk: string; stepstore: string | null }> = {
  // crabtalk resumes by slug prefix, so `tg:1` gets `crab_tg-1_2`, the session of sender `tg-1`;
  // stepstore matches the exact sender in meta and returns tg:1's own session.
  'crab\u001ftg:1': { crabtalk: 'crab_tg-1_2', stepstore: 'crab_tg-1_1' },
  // crab_deleted_1 has no meta: crabtalk returns it (and its resume then fails); to stepstore it is no session.
  'crab\u001fdeleted': { crabtalk: 'crab_deleted_1', stepstore: null },
};

const LONG_AGENT = 'a'.repeat(120);
const text = (t: string) => ({ message: { role: 'user', content: [{ type: 'text', text: t }] } });
const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

const opened: Store[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((store) => store.close()));
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/** Directories 0700 and files 0600 all the way down, as a private root. */
function makePrivate(dir: string): void {
  fs.chmodSync(dir, 0o700);
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) makePrivate(full);
    else fs.chmodSync(full, 0o600);
  }
}

/** A private copy of the fixture folder, removed after the test. */
async function fixtureCopy(): Promise<string> {
  const base = await makeTempDir('crabtalk-names');
  cleanups.push(() => fs.promises.rm(base, { recursive: true, force: true }));
  const root = path.join(base, 'sessions');
  await fs.promises.cp(FIXTURE, root, { recursive: true });
  makePrivate(root);
  return root;
}

async function openDir(dir: string): Promise<Store> {
  const store = await openStore({ dir, durability: 'none', logger: quietLogger });
  opened.push(store);
  return store;
}

async function openRedis(): Promise<Store> {
  const prefix = `stepstore-test:names:${randomBytes(6).toString('hex')}:`;
  cleanups.push(() => deleteKeys(REDIS_URL, prefix));
  const store = await openRedisStore({ url: REDIS_URL, prefix, logger: quietLogger });
  opened.push(store);
  return store;
}

const withMeta = EXPECTED.sessions.filter((s) => s.meta !== null);

/** What both backends must read from crabtalk's folder. */
function readsCrabtalkNames(open: () => Promise<Store>): void {
  it('the fixture holds the names in question: crab__1, crab_line-break_1 and a 120-character agent', () => {
    const dirs = EXPECTED.sessions.map((s) => s.dir);
    expect(dirs).toEqual(expect.arrayContaining(['crab__1', 'crab_line-break_1', `${LONG_AGENT}_tg-9_1`]));
    expect(withMeta.every((s) => s.listed)).toBe(true);
    for (const [key, { crabtalk }] of Object.entries(DELIBERATE)) expect(EXPECTED.find_latest[key]).toBe(crabtalk);
  });

  it('lists every session directory with a meta, and nothing else', async () => {
    const store = await open();
    const listed = await store.listSessions();
    expect(listed.map((s) => s.handle).sort()).toEqual(withMeta.map((s) => s.dir).sort());
    for (const { handle, meta } of listed) {
      const expected = withMeta.find((s) => s.dir === handle)!.meta!;
      expect([meta.agent, meta.created_by]).toEqual([expected.agent, expected.created_by]);
    }
  });

  it('loads every one of them; the sessions named by an empty slug, a newline and a long agent replay what crabtalk replays', async () => {
    const store = await open();
    for (const expected of withMeta) {
      const snapshot = await store.loadSession(expected.dir);
      expect(snapshot, expected.dir).not.toBeNull();
      expect([snapshot!.meta.agent, snapshot!.meta.created_by]).toEqual([expected.meta!.agent, expected.meta!.created_by]);
      if (['crab__1', 'crab_line-break_1', `${LONG_AGENT}_tg-9_1`].includes(expected.dir)) {
        expect(snapshot!.history).toEqual(expected.load!.history);
      }
    }
  });

  it("finds what crabtalk's find_latest finds, but for the exact-identity and no-meta differences", async () => {
    const store = await open();
    for (const [key, crabtalkHandle] of Object.entries(EXPECTED.find_latest)) {
      const [agent, sender] = key.split('\u001f') as [string, string];
      const wanted = key in DELIBERATE ? DELIBERATE[key]!.stepstore : crabtalkHandle;
      expect([agent, sender, await store.findLatestSession(agent, sender)]).toEqual([agent, sender, wanted]);
    }
  });

  it('lists by agent and by sender for the odd names', async () => {
    const store = await open();
    expect((await store.listSessions({ agent: 'crab', createdBy: '😀' })).map((s) => s.handle)).toEqual(['crab__1']);
    expect((await store.listSessions({ createdBy: 'line\nbreak' })).map((s) => s.handle)).toEqual(['crab_line-break_1']);
    expect((await store.listSessions({ createdBy: 'line-break' })).map((s) => s.handle)).toEqual([]);
    expect((await store.listSessions({ agent: LONG_AGENT })).map((s) => s.handle)).toEqual([`${LONG_AGENT}_tg-9_1`]);
  });

  it("carries on under crabtalk's handles: next seqs, appends, archives named crab-1-<n>, deletes", async () => {
    const store = await open();
    expect(await store.createSession('crab', '😀')).toBe('crab__2');
    expect(await store.createSession('crab', 'line\nbreak')).toBe('crab_line-break_2');
    expect(await store.createSession(LONG_AGENT, 'tg:9')).toBe(`${LONG_AGENT}_tg-9_2`);
    expect(await store.findLatestSession('crab', '😀')).toBe('crab__2');
    expect(await store.appendMessages('crab__1', [text('more')])).toEqual([2]);
    expect(await store.compact('crab__1', 'the emoji sender so far')).toBe('crab-1-1');
    expect(await store.compact('crab__1', 'and again')).toBe('crab-1-2');
    expect((await store.loadSession('crab__1', { withArchive: true }))!.archiveContent).toBe('and again');
    expect(await store.deleteSession('crab__1')).toBe(true);
    expect(await store.getArchive('crab-1-1')).toBeNull();
    expect((await store.listSessions({ createdBy: '😀' })).map((s) => s.handle)).toEqual(['crab__2']);
    expect(await store.createSession('crab', '😀')).toBe('crab__3');
  });
}

describe('a sessions folder crabtalk 0.0.22 wrote, on the filesystem', () => {
  readsCrabtalkNames(async () => openDir(await fixtureCopy()));

  it('marks a deleted empty-slug session in .stepstore/deleted/crab__/', async () => {
    const root = await fixtureCopy();
    const store = await openDir(root);
    expect(await store.deleteSession('crab__1')).toBe(true);
    expect(fs.readdirSync(path.join(root, '.stepstore', 'deleted', 'crab__')).map((n) => n.split('@')[0])).toEqual(['1']);
    expect(fs.existsSync(path.join(root, 'crab__1'))).toBe(false);
    expect(await (await openDir(root)).createSession('crab', '😀')).toBe('crab__2');
  });

  it('finds a whole name crabtalk made where stepstore cuts (two slugs of 238 to 252 bytes) until it makes its own cut one', async () => {
    // crabtalk keeps any name up to 255 bytes; stepstore cuts pairs past 237 bytes so that the largest seq still fits.
    const root = await fixtureCopy();
    const [agent, sender] = ['p'.repeat(100), 'q'.repeat(145)];
    const whole = `${agent}_${sender}_1`;
    expect(bytes(whole)).toBe(248);
    fs.mkdirSync(path.join(root, whole), { mode: 0o700 });
    const meta = { agent, created_by: sender, created_at: '2026-12-02T19:43:25.964730098+00:00', title: '', updated_at: '2026-12-02T19:43:25.964730098+00:00', message_count: 1 };
    fs.writeFileSync(path.join(root, whole, 'meta'), JSON.stringify(meta), { mode: 0o600 });
    fs.writeFileSync(path.join(root, whole, 'step-000001'), JSON.stringify(text('whole')), { mode: 0o600 });
    const store = await openDir(root);
    expect((await store.loadSession(whole))!.history).toEqual([text('whole')]);
    expect((await store.listSessions({ agent })).map((s) => s.handle)).toEqual([whole]);
    expect((await store.listSessions({ agent, createdBy: sender })).map((s) => s.handle)).toEqual([whole]);
    expect(await store.findLatestSession(agent, sender)).toBe(whole);
    // The archive base of a 248-byte handle is cut too, so that `{base}-{n}` fits in 255 bytes with any n.
    expect(await store.compact(whole, 'summary of the whole-named session')).toMatch(/^p{100}-q{120}-[0-9a-f]{16}-1$/);

    const cut = await store.createSession(agent, sender);
    expect(cut).toMatch(/^p{100}_q{120}-[0-9a-f]{16}_1$/);
    expect(bytes(`${cut.slice(0, -1)}9007199254740991`)).toBe(255);
    expect(await store.findLatestSession(agent, sender)).toBe(cut);
    expect((await store.listSessions({ agent, createdBy: sender })).map((s) => s.handle).sort()).toEqual([cut, whole].sort());
    expect(await store.deleteSession(cut)).toBe(true);
    expect(await store.findLatestSession(agent, sender)).toBe(whole);
  });

  it('loads a crabtalk marker naming an archive past 255 bytes (its handle took 253) as a missing archive, not an error, and deletes that session', async () => {
    const root = await fixtureCopy();
    const whole = `${'p'.repeat(100)}_${'r'.repeat(150)}_1`;
    const archive = `${'p'.repeat(100)}-${'r'.repeat(150)}-1-10`;
    expect([bytes(whole), bytes(archive)]).toEqual([253, 256]);
    fs.mkdirSync(path.join(root, whole), { mode: 0o700 });
    const meta = { agent: 'p'.repeat(100), created_by: 'r'.repeat(150), created_at: '2026-12-02T19:43:25Z', title: '', updated_at: '2026-12-02T19:43:25Z', message_count: 2 };
    fs.writeFileSync(path.join(root, whole, 'meta'), JSON.stringify(meta), { mode: 0o600 });
    fs.writeFileSync(path.join(root, whole, 'step-000001'), JSON.stringify({ archive_name: archive, archived_at: '2026-12-02T19:43:25Z' }), { mode: 0o600 });
    fs.writeFileSync(path.join(root, whole, 'step-000002'), JSON.stringify(text('after')), { mode: 0o600 });
    const store = await openDir(root);
    expect(await store.compact('crab__1', 'an archive of our own, so the archive folder exists')).toBe('crab-1-1');
    const snapshot = (await store.loadSession(whole, { withArchive: true }))!;
    expect([snapshot.archive, snapshot.archiveContent, snapshot.history]).toEqual([archive, null, [text('after')]]);
    // Deleting it renames it into the trash under a name cut to fit.
    expect(await store.deleteSession(whole)).toBe(true);
    expect(fs.existsSync(path.join(root, whole))).toBe(false);
    expect(await store.loadSession(whole)).toBeNull();
  });

  it('the CLI shows a sender with a newline or an escape as one quoted line', async () => {
    const root = await fixtureCopy();
    const store = await openDir(root);
    expect(await store.createSession('crab', 'line\u001bbreak')).toBe('crab_line-break_2');
    await store.close();
    const result = await run(['--dir', root, 'latest', 'crab', 'line-break']);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('crab_line-break_1  sender "line\\nbreak"');
    expect(result.stdout).toContain('crab_line-break_2  sender "line\\u001bbreak"');
    expect(result.stdout).not.toContain('\u001b');
  });

  it('the CLI exports and imports sessions of an empty and an emoji-only sender', async () => {
    const root = await fixtureCopy();
    const store = await openDir(root);
    expect(await store.createSession('crab', '')).toBe('crab__2');
    await store.appendMessages('crab__2', [text('from nobody')]);
    await store.close();
    const other = path.join(await makeTempDir('crabtalk-names-import'), 'sessions');
    cleanups.push(() => fs.promises.rm(path.dirname(other), { recursive: true, force: true }));
    for (const handle of ['crab__1', 'crab__2']) {
      const exported = await run(['--dir', root, 'export', handle]);
      expect(exported.code).toBe(0);
      const imported = await run(['--dir', other, 'import', '-'], { input: exported.stdout });
      expect([handle, imported.code, imported.stderr]).toEqual([handle, 0, '']);
    }
    const copy = await openDir(other);
    expect((await copy.loadSession('crab__2'))!.meta.created_by).toBe('');
    expect(await copy.findLatestSession('crab', '')).toBe('crab__2');
    expect(await copy.findLatestSession('crab', '😀')).toBe('crab__1');
  });
});

describeWithRedis('a sessions folder crabtalk 0.0.22 wrote, migrated to Redis', () => {
  readsCrabtalkNames(async () => {
    const from = await openDir(await fixtureCopy());
    const to = await openRedis();
    await migrate(from, to);
    return to;
  });
});
