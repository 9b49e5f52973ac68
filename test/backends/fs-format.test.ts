// Filesystem-only facts (crabtalk's layout and behaviours 6, 9, 10 and 12 of the core
// issue): the on-disk layout, crabtalk sessions built by hand, steps and metas
// planted beside the store (garbage, odd names, leftovers, symlinks), modes
// under any umask, and how the sessions root is vetted. Everything else is in
// the shared conformance suite.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, type Durability, type Store, type StoreOptions } from 'stepstore';
import { doneEvent, expectCode, recordingLogger, steered, toolResult, toolStart, userMessage, userMessages } from '../conformance/fixture.js';
import { makeTempDir, quietLogger } from '../helpers/fs-harness.js';

let base: string;
let root: string;
let opened: Store[];

beforeEach(async () => {
  base = await makeTempDir('format');
  root = path.join(base, 'sessions');
  opened = [];
});

afterEach(async () => {
  await Promise.all(opened.map((store) => store.close()));
  await fs.promises.rm(base, { recursive: true, force: true });
});

async function open(options: Partial<StoreOptions> = {}): Promise<Store> {
  const store = await openStore({ dir: root, durability: 'full', logger: quietLogger, ...options });
  opened.push(store);
  return store;
}

const at = (...parts: string[]) => path.join(root, ...parts);
const modeOf = (p: string) => fs.lstatSync(p).mode & 0o777;
const names = (p: string) => fs.readdirSync(p).sort();
const readJson = (p: string) => JSON.parse(fs.readFileSync(p, 'utf8')) as Record<string, unknown>;
const stepName = (n: number) => `step-${String(n).padStart(6, '0')}`;

/** Writes a session directory by hand, as crabtalk would have left it. */
function plant(slug: string, meta: Record<string, unknown> | string | null, steps: Record<string, unknown> = {}): string {
  const dir = at(slug);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (meta !== null) fs.writeFileSync(path.join(dir, 'meta'), typeof meta === 'string' ? meta : JSON.stringify(meta), { mode: 0o600 });
  for (const [name, content] of Object.entries(steps)) {
    fs.writeFileSync(path.join(dir, name), typeof content === 'string' ? content : JSON.stringify(content), { mode: 0o600 });
  }
  return dir;
}

function crabMeta(createdBy: string, extra: Record<string, unknown> = {}) {
  return {
    agent: 'crab',
    created_by: createdBy,
    created_at: '2026-03-25T10:00:00.123456789+00:00',
    title: '',
    updated_at: '2026-03-25T10:00:00.123456789+00:00',
    message_count: 0,
    ...extra,
  };
}

/** Every entry under `dir`: relative path -> content (files), target (symlinks) or mode (dirs). */
function snapshotTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    const full = path.join(dir, rel);
    const stat = fs.lstatSync(full);
    if (stat.isSymbolicLink()) out[rel] = `-> ${fs.readlinkSync(full)}`;
    else if (stat.isDirectory()) {
      out[rel] = `dir ${(stat.mode & 0o777).toString(8)}`;
      for (const name of fs.readdirSync(full)) walk(path.join(rel, name));
    } else out[rel] = `${(stat.mode & 0o777).toString(8)} ${fs.readFileSync(full, 'utf8')}`;
  };
  walk('.');
  return out;
}

function withUmask<T>(mask: number, body: () => Promise<T>): Promise<T> {
  const previous = process.umask(mask);
  return body().finally(() => process.umask(previous));
}

describe('layout', () => {
  it('a session is a directory named by its handle holding meta and step-NNNNNN files, nothing else', async () => {
    const store = await open();
    const handle = await store.createSession('crab', 'tg:12345');
    const items = [userMessage('a'), { agent: 'guest', message: { role: 'assistant', content: [{ type: 'text', text: 'b' }] } }];
    await store.appendMessages(handle, items);
    await store.appendEvents(handle, [doneEvent('m')]);
    await store.appendCompact(handle, 'crab-tg-12345-1-1');
    await store.appendMessages(handle, [{ agent: '', ...userMessage('c') }]);
    await store.close();
    // Beside the session only the store's own folder (which crabtalk skips): where a compaction's count was taken.
    expect(names(root)).toEqual(['.stepstore', 'crab_tg-12345_1']);
    expect(names(path.join(root, '.stepstore'))).toEqual(['counted']);
    expect(names(at(handle))).toEqual(['meta', 'step-000001', 'step-000002', 'step-000003', 'step-000004', 'step-000005']);
    const text = (n: number) => fs.readFileSync(at(handle, stepName(n)), 'utf8');
    expect(text(1)).toBe(JSON.stringify(items[0]));
    expect(text(2)).toBe(JSON.stringify(items[1]));
    expect(text(3)).toBe(JSON.stringify(doneEvent('m')));
    const marker = JSON.parse(text(4)) as Record<string, unknown>;
    expect(Object.keys(marker).sort()).toEqual(['archive_name', 'archived_at']);
    expect(marker.archive_name).toBe('crab-tg-12345-1-1');
    expect(Number.isNaN(Date.parse(marker.archived_at as string))).toBe(false);
    expect(text(5)).toBe('{"message":{"role":"user","content":[{"type":"text","text":"c"}]}}');
  });

  it('meta holds exactly crabtalk\'s fields, created_at equal to updated_at at first', async () => {
    const store = await open();
    const handle = await store.createSession('crab', 'tg:12345');
    const meta = readJson(at(handle, 'meta'));
    expect(Object.keys(meta).sort()).toEqual(['agent', 'created_at', 'created_by', 'message_count', 'title', 'updated_at']);
    expect(meta).toMatchObject({ agent: 'crab', created_by: 'tg:12345', title: '', message_count: 0 });
    expect(meta.updated_at).toBe(meta.created_at);
    await store.appendMessages(handle, userMessages('m', 3));
    await store.close();
    const bumped = readJson(at(handle, 'meta'));
    expect(bumped.message_count).toBe(3);
    expect(bumped.created_at).toBe(meta.created_at);
    expect(Date.parse(bumped.updated_at as string)).toBeGreaterThanOrEqual(Date.parse(meta.created_at as string));
  });

  it('step numbers of a million and more get more digits and come after step-999999 everywhere', async () => {
    plant('crab_u_1', crabMeta('u'), {
      'step-999998': userMessage('999998'),
      'step-999999': userMessage('999999'),
    });
    const store = await open();
    expect(await store.appendMessages('crab_u_1', [userMessage('1000000'), userMessage('1000001')])).toEqual([
      1_000_000, 1_000_001,
    ]);
    expect(names(at('crab_u_1'))).toEqual(['meta', 'step-1000000', 'step-1000001', 'step-999998', 'step-999999']);
    const expected = ['999998', '999999', '1000000', '1000001'].map(userMessage);
    expect((await store.loadSession('crab_u_1'))!.history).toEqual(expected);
    expect((await store.readSteps('crab_u_1')).map((s) => s.step)).toEqual([999_998, 999_999, 1_000_000, 1_000_001]);
    expect((await store.readSteps('crab_u_1', { after: 999_999 })).map((s) => s.line)).toEqual(expected.slice(2));
    const restarted = await open();
    expect(await restarted.appendEvents('crab_u_1', [doneEvent()])).toEqual([1_000_002]);
  });

  it('archives live in .stepstore/archives, which list, find and crabtalk skip', async () => {
    const store = await open();
    const handle = await store.createSession('crab', 'u');
    const name = await store.compact(handle, 'summary');
    expect(names(at('.stepstore', 'archives'))).toEqual([name]);
    expect((await store.listSessions()).map((s) => s.handle)).toEqual([handle]);
    expect(names(root)).toEqual(['.stepstore', handle]);
    expect(await store.deleteSession(handle)).toBe(true);
    expect(names(at('.stepstore', 'archives'))).toEqual([]);
    expect(names(root).filter((n) => !n.startsWith('.'))).toEqual([]);
  });

  it('archive numbers continue one past the highest archive file there, and never replace one', async () => {
    const store = await open();
    const handle = await store.createSession('crab', 'u');
    fs.mkdirSync(at('.stepstore', 'archives'), { recursive: true, mode: 0o700 });
    fs.writeFileSync(at('.stepstore', 'archives', 'crab-u-1-7'), 'kept elsewhere');
    fs.writeFileSync(at('.stepstore', 'archives', 'crab-u-1-07'), 'not canonical');
    fs.writeFileSync(at('.stepstore', 'archives', 'crab-u-1-1-9'), 'another base');
    expect(await store.compact(handle, 'summary')).toBe('crab-u-1-8');
    expect(await store.compact(handle, 'again')).toBe('crab-u-1-9');
    expect(fs.readFileSync(at('.stepstore', 'archives', 'crab-u-1-7'), 'utf8')).toBe('kept elsewhere');
    expect(await store.deleteSession(handle)).toBe(true);
    expect(names(at('.stepstore', 'archives'))).toEqual(['crab-u-1-07', 'crab-u-1-1-9', 'crab-u-1-7']);
  });

  it.each(['none', 'file', 'full'] as const)('leaves no temp file behind after appends (durability %s)', async (durability) => {
    const store = await open({ durability });
    const handle = await store.createSession('crab', 'u');
    await store.appendMessages(handle, userMessages('batch', 150));
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.appendEvents(handle, [toolStart(`e${i}`)])));
    await store.compact(handle, 'summary');
    await store.updateMeta(handle, { ...(await store.loadSession(handle))!.meta, title: 't' });
    await store.close();
    expect(names(at(handle))).toEqual(['meta', ...Array.from({ length: 171 }, (_, i) => stepName(i + 1))].sort());
    expect(names(at('.stepstore', 'archives'))).toEqual(['crab-u-1-1']);
  });

  it('durability none issues no fsync for a step, file fsyncs each step, full fsyncs the directory too', async () => {
    // Events only: they never touch meta, so no meta write is counted in between.
    const syncsFor = async (durability: Durability) => {
      const store = await open({ durability });
      const handle = await store.createSession('crab', `sync-${durability}`);
      const before = store.stats().syncs;
      await store.appendEvents(handle, [steered('one')]);
      await store.appendEvents(handle, [toolStart('e1'), toolResult('e1')]);
      return store.stats().syncs - before;
    };
    const none = await syncsFor('none');
    const file = await syncsFor('file');
    const full = await syncsFor('full');
    expect(none).toBe(0);
    expect(file).toBeGreaterThanOrEqual(3);
    expect(full).toBeGreaterThan(file);
  });

  it('meta bumps are coalesced: many appends, far fewer meta writes; events write no meta', async () => {
    const store = await open();
    const handle = await store.createSession('crab', 'u');
    const before = store.stats().metaWrites;
    for (let i = 0; i < 40; i++) await store.appendMessages(handle, [userMessage(`m${i}`)]);
    await store.close();
    const writes = store.stats().metaWrites - before;
    expect(writes).toBeGreaterThanOrEqual(1);
    expect(writes).toBeLessThan(20);
    expect(readJson(at(handle, 'meta')).message_count).toBe(40);

    const events = await open();
    const quiet = events.stats().metaWrites;
    for (let i = 0; i < 10; i++) await events.appendEvents(handle, [toolStart(`e${i}`)]);
    await events.close();
    expect(events.stats().metaWrites).toBe(quiet);

    // A compact marker does change the count: crabtalk's live conversation restarts at 1 (the summary).
    const marker = await open();
    await marker.appendCompact(handle, 'crab-u-1-1');
    await marker.close();
    expect(readJson(at(handle, 'meta')).message_count).toBe(1);
  });
});

describe('crabtalk sessions built by hand', () => {
  const META = crabMeta('tg:12345', {
    title: 'weather',
    updated_at: '2026-03-25T10:05:00.987654321+00:00',
    message_count: 6,
    topic: 'old field',
    uptime_secs: 12,
  });

  function plantFullFixture(): void {
    plant('crab_tg-12345_1', META, {
      'step-000001': userMessage('before everything'),
      'step-000002': { event: 'tool_start', calls: [{ id: 'c1', name: 'bash', arguments: '{}' }], ts: 'x' },
      'step-000003': { compact: 'old inline summary', title: 't', archived_at: '2026-03-25T10:01:00+00:00' },
      'step-000004': userMessage('after legacy'),
      'step-000005': 'not json {',
      'step-000006': userMessage('still before the compact marker'),
      'step-000007.tmp.1234.99': userMessage('TEMP FILE'),
      'step-000999.tmp.1234.99': userMessage('TEMP FILE'),
      'step-42': userMessage('ODD NAME'),
      'step-999998': { agent: 'guest', message: { role: 'assistant', content: [{ type: 'text', text: 'pre-marker' }] } },
      'step-999999': { archive_name: 'crab-tg-12345-1-1', archived_at: '2026-03-25T10:04:00.5+00:00' },
      'step-1000000': userMessage('live 1'),
      'step-1000001': { event: 'done', model: 'm', iterations: 2, stop_reason: 'stop', usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 }, ts: 'x' },
      'step-1000002': { agent: 'guest', message: { role: 'assistant', content: [{ type: 'text', text: 'live 2' }] } },
      'step-1000003': { foo: 1 },
      'step-1000004': userMessage('live 3'),
      '.DS_Store': 'junk',
      'meta.bak': 'junk',
    });
  }

  it('loads exactly the entries after the last marker, with its archive and a diagnostic for the bad step', async () => {
    plantFullFixture();
    const logger = recordingLogger();
    const store = await open({ logger });
    const snapshot = (await store.loadSession('crab_tg-12345_1'))!;
    expect(snapshot.history).toEqual([
      userMessage('live 1'),
      { agent: 'guest', message: { role: 'assistant', content: [{ type: 'text', text: 'live 2' }] } },
      userMessage('live 3'),
    ]);
    expect(snapshot.archive).toBe('crab-tg-12345-1-1');
    expect(snapshot.diagnostics).toEqual([{ step: 1_000_003, reason: expect.any(String) }]);
    expect(logger.warnings).toHaveLength(1);
    expect(snapshot.meta).toEqual(META);
  });

  it('the counter continues after the highest step, and bumps keep crabtalk\'s unknown fields and timestamps', async () => {
    plantFullFixture();
    const store = await open();
    expect(await store.appendMessages('crab_tg-12345_1', [userMessage('next')])).toEqual([1_000_005]);
    await store.close();
    expect(fs.existsSync(at('crab_tg-12345_1', 'step-1000005'))).toBe(true);
    const meta = readJson(at('crab_tg-12345_1', 'meta'));
    expect(meta).toMatchObject({ topic: 'old field', uptime_secs: 12, title: 'weather', message_count: 7 });
    expect(meta.created_at).toBe(META.created_at);
    expect(Date.parse(meta.updated_at as string)).toBeGreaterThan(Date.parse(META.updated_at));
    const restarted = await open();
    expect((await restarted.loadSession('crab_tg-12345_1'))!.history.at(-1)).toEqual(userMessage('next'));
  });

  it('readSteps returns the parseable, canonically named steps in numeric order and warns about the rest', async () => {
    plantFullFixture();
    const logger = recordingLogger();
    const store = await open({ logger });
    const steps = await store.readSteps('crab_tg-12345_1');
    expect(steps.map((s) => s.step)).toEqual([1, 2, 3, 4, 6, 999_998, 999_999, 1_000_000, 1_000_001, 1_000_002, 1_000_004]);
    expect(steps[2]!.line).toEqual({ compact: 'old inline summary', title: 't', archived_at: '2026-03-25T10:01:00+00:00' });
    expect(logger.warnings).toHaveLength(3);
    expect((await store.readSteps('crab_tg-12345_1', { after: 6, limit: 3 })).map((s) => s.step)).toEqual([
      999_998, 999_999, 1_000_000,
    ]);
  });

  it('a legacy marker is a boundary without an archive; garbage and odd names after it are diagnosed, never loaded', async () => {
    plant('crab_tg-12345_2', META, {
      'step-000001': userMessage('A'),
      'step-000002': { compact: 'inline summary' },
      'step-000003': userMessage('B'),
      'step-000004': 'garbage',
      'step-000005': doneEvent(),
      'step-000007.tmp.1234.99': userMessage('TEMP'),
      'step-000090.tmp.5.6': userMessage('TEMP'),
      'step-42': userMessage('ODD'),
      'step-0000043': userMessage('ODD'),
      'step-000044': userMessage('C'),
      'step-000044~': userMessage('BACKUP'),
      'step-0000045': userMessage('ODD'),
      'step-000046.swp': userMessage('SWAP'),
      '.DS_Store': 'junk',
    });
    const logger = recordingLogger();
    const store = await open({ logger });
    const snapshot = (await store.loadSession('crab_tg-12345_2', { withArchive: true }))!;
    expect(snapshot.history).toEqual([userMessage('B'), userMessage('C')]);
    expect(snapshot.archive).toBeNull();
    expect(snapshot.archiveContent).toBeNull();
    expect(snapshot.diagnostics.map((d) => d.step)).toEqual([4, 42, 43, 45]);
    for (const d of snapshot.diagnostics) expect(typeof d.reason).toBe('string');
    expect(logger.warnings).toHaveLength(4);
    expect(store.resumeHistory(snapshot)).toEqual([userMessage('B'), userMessage('C')]);
    // step-0000045 is not loaded, but its number is taken: the counter never reuses it.
    expect(await store.appendMessages('crab_tg-12345_2', [userMessage('D')])).toEqual([46]);
    expect(fs.readFileSync(at('crab_tg-12345_2', 'step-0000045'), 'utf8')).toBe(JSON.stringify(userMessage('ODD')));
    expect(fs.readFileSync(at('crab_tg-12345_2', 'step-000046'), 'utf8')).toBe(JSON.stringify(userMessage('D')));
  });

  it('a non-canonical step-42 above every canonical step still moves the counter past 42', async () => {
    plant('crab_u_1', crabMeta('u'), { 'step-000001': userMessage('1'), 'step-42': userMessage('ODD') });
    const store = await open();
    expect(await store.appendMessages('crab_u_1', [userMessage('next')])).toEqual([43]);
    expect((await store.loadSession('crab_u_1'))!.history).toEqual([userMessage('1'), userMessage('next')]);
  });

  it('temp files, backups and .DS_Store never move the counter', async () => {
    plant('crab_u_1', crabMeta('u'), {
      'step-000002': userMessage('2'),
      'step-000099.tmp.1.2': userMessage('TEMP'),
      'step-000098~': userMessage('BACKUP'),
      '.tmp-99-1': userMessage('OUR TEMP'),
      '.DS_Store': 'junk',
    });
    const store = await open();
    expect(await store.appendMessages('crab_u_1', [userMessage('3')])).toEqual([3]);
  });

  it('a meta with only crabtalk\'s required fields gets the defaults', async () => {
    plant('crab_u_1', { agent: 'crab', created_by: 'u', created_at: '2026-03-25T10:00:00+00:00' }, {
      'step-000001': userMessage('hi'),
    });
    const store = await open();
    const snapshot = (await store.loadSession('crab_u_1'))!;
    expect(snapshot.meta).toEqual({
      agent: 'crab',
      created_by: 'u',
      created_at: '2026-03-25T10:00:00+00:00',
      title: '',
      updated_at: '',
      message_count: 0,
    });
    expect(snapshot.history).toEqual([userMessage('hi')]);
    await store.appendMessages('crab_u_1', [userMessage('again')]);
    expect((await store.loadSession('crab_u_1'))!.meta.message_count).toBe(1);
  });

  it('sessions with crabtalk\'s +00:00 nanosecond stamps list among ours by time', async () => {
    plant('crab_old_1', crabMeta('old', { updated_at: '2020-01-01T00:00:00.999999999+00:00' }));
    plant('crab_future_1', crabMeta('future', { updated_at: '2999-01-01T00:00:00.000000001+00:00' }));
    plant('crab_none_1', { agent: 'crab', created_by: 'none', created_at: '2026-03-25T10:00:00+00:00' });
    const store = await open();
    const ours = await store.createSession('crab', 'ours');
    expect((await store.listSessions()).map((s) => s.handle)).toEqual(['crab_future_1', ours, 'crab_old_1', 'crab_none_1']);
  });

  it('a session directory created by hand is found by findLatestSession; decoys are not', async () => {
    plant('crab_tg-12345_9', crabMeta('tg:12345'));
    plant('crab_tg-12345_10', crabMeta('tg:12345'));
    plant('crab_tg-12345_3x', crabMeta('tg:12345'));
    plant('crab_tg-12345_14', crabMeta('tg-12345'));
    plant('crab_tg-12345_12', null, { 'step-000001': userMessage('no meta') });
    fs.writeFileSync(at('crab_tg-12345_11'), JSON.stringify(crabMeta('tg:12345')));
    fs.symlinkSync(at('crab_tg-12345_10'), at('crab_tg-12345_13'));
    const store = await open();
    expect(await store.findLatestSession('crab', 'tg:12345')).toBe('crab_tg-12345_10');
    expect(await store.findLatestSession('crab', 'tg-12345')).toBe('crab_tg-12345_14');
    expect((await store.listSessions()).map((s) => s.handle).sort()).toEqual([
      'crab_tg-12345_10',
      'crab_tg-12345_14',
      'crab_tg-12345_9',
    ]);
    expect(await store.createSession('crab', 'tg:12345')).toBe('crab_tg-12345_15');
    expect(await store.findLatestSession('crab', 'tg:12345')).toBe('crab_tg-12345_15');
  });
});

describe('leftovers in the root', () => {
  it('a directory without meta is not a session and breaks nothing', async () => {
    plant('crab_u_1', null);
    plant('crab_u_2', null, { 'step-000001': userMessage('orphan') });
    const store = await open();
    expect(await store.loadSession('crab_u_1')).toBeNull();
    expect(await store.loadSession('crab_u_2')).toBeNull();
    expect(await store.listSessions()).toEqual([]);
    expect(await store.findLatestSession('crab', 'u')).toBeNull();
    await expectCode(store.appendMessages('crab_u_2', [userMessage('x')]), 'SESSION_NOT_FOUND');
    await expectCode(store.readSteps('crab_u_2'), 'SESSION_NOT_FOUND');
    expect(await store.deleteSession('crab_u_1')).toBe(false);
    expect(await store.deleteSession('crab_u_2')).toBe(false);
    expect(names(at('crab_u_1'))).toEqual([]);
    expect(names(at('crab_u_2'))).toEqual(['step-000001']);
    expect(await store.createSession('crab', 'u')).toBe('crab_u_3');
    expect((await store.listSessions()).map((s) => s.handle)).toEqual(['crab_u_3']);
  });

  it('files and directories that are not handles are skipped by list', async () => {
    fs.mkdirSync(root, { mode: 0o700 });
    fs.writeFileSync(at('.DS_Store'), 'junk');
    fs.writeFileSync(at('notes.txt'), 'junk');
    plant('crab_u_1.bak', crabMeta('u'));
    plant('Crab_u_1', crabMeta('u'));
    plant('crab_u', crabMeta('u'));
    plant('crab_u_1', crabMeta('u'));
    const store = await open();
    expect((await store.listSessions()).map((s) => s.handle)).toEqual(['crab_u_1']);
    expect(await store.findLatestSession('crab', 'u')).toBe('crab_u_1');
  });

  it('unreadable metas are skipped by list with a warning and refused by load with CORRUPT_META', async () => {
    plant('crab_garbage_1', 'not json');
    plant('crab_array_1', '[1,2]');
    plant('crab_noagent_1', { created_by: 'noagent', created_at: '2026-01-01T00:00:00Z' });
    plant('crab_badcount_1', crabMeta('badcount', { message_count: -1 }));
    plant('crab_badtitle_1', crabMeta('badtitle', { title: 5 }));
    plant('crab_empty_1', '');
    plant('crab_good_1', crabMeta('good'));
    const logger = recordingLogger();
    const store = await open({ logger });
    expect((await store.listSessions()).map((s) => s.handle)).toEqual(['crab_good_1']);
    expect(logger.warnings.length).toBeGreaterThanOrEqual(6);
    for (const slug of ['crab_garbage_1', 'crab_array_1', 'crab_noagent_1', 'crab_badcount_1', 'crab_badtitle_1', 'crab_empty_1']) {
      await expectCode(store.loadSession(slug), 'CORRUPT_META');
    }
    expect(await store.findLatestSession('crab', 'garbage')).toBeNull();
  });

  it('appending to a deleted or never-created session creates no directory', async () => {
    const store = await open();
    const handle = await store.createSession('crab', 'u');
    await store.appendMessages(handle, [userMessage('m')]);
    expect(await store.deleteSession(handle)).toBe(true);
    expect(fs.existsSync(at(handle))).toBe(false);
    await expectCode(store.appendMessages(handle, [userMessage('m')]), 'SESSION_NOT_FOUND');
    await expectCode(store.appendMessages('crab_other_1', [userMessage('m')]), 'SESSION_NOT_FOUND');
    await expectCode(store.compact('crab_other_1', 'summary'), 'SESSION_NOT_FOUND');
    await store.close();
    expect(names(root).filter((n) => !n.startsWith('.'))).toEqual([]);
    expect(fs.existsSync(at('.stepstore', 'trash')) ? names(at('.stepstore', 'trash')) : []).toEqual([]);
  });

  it('a session deleted by another store is not recreated by this store\'s cached counter', async () => {
    const a = await open();
    const b = await open();
    const handle = await a.createSession('crab', 'u');
    await a.appendMessages(handle, [userMessage('m')]);
    expect(await b.deleteSession(handle)).toBe(true);
    await expectCode(a.appendMessages(handle, [userMessage('late')]), 'SESSION_NOT_FOUND');
    await a.close();
    expect(fs.existsSync(at(handle))).toBe(false);
  });

  it('a step planted under the number the store would use next is never overwritten', async () => {
    const store = await open();
    const handle = await store.createSession('crab', 'u');
    await store.appendMessages(handle, [userMessage('1')]);
    fs.writeFileSync(at(handle, 'step-000002'), JSON.stringify(userMessage('planted by another writer')));
    fs.writeFileSync(at(handle, 'step-000003'), JSON.stringify(userMessage('planted too')));
    expect(await store.appendMessages(handle, [userMessage('mine')])).toEqual([4]);
    expect(fs.readFileSync(at(handle, 'step-000002'), 'utf8')).toBe(JSON.stringify(userMessage('planted by another writer')));
    expect((await store.readSteps(handle)).map((s) => s.line)).toEqual(
      ['1', 'planted by another writer', 'planted too', 'mine'].map(userMessage),
    );
  });
});

describe('privacy', () => {
  it.each([
    ['000', 0o000],
    ['077', 0o077],
    ['022', 0o022],
    ['277', 0o277],
    ['777', 0o777],
  ])('directories are 0700 and files 0600 under umask %s', async (label, mask) => {
    await withUmask(mask, async () => {
      const nested = path.join(base, `root-${label}`);
      const store = await openStore({ dir: nested, durability: 'file', logger: quietLogger });
      opened.push(store);
      expect(modeOf(nested)).toBe(0o700);
      const handle = await store.createSession('crab', 'u');
      const doomed = await store.createSession('crab', 'doomed');
      await store.appendMessages(handle, userMessages('m', 70));
      await store.appendEvents(handle, [doneEvent()]);
      const archive = await store.compact(handle, 'summary');
      await store.updateMeta(handle, { ...(await store.loadSession(handle))!.meta, title: 't' });
      expect(await store.deleteSession(doomed)).toBe(true);
      await store.close();
      const dir = path.join(nested, handle);
      expect(modeOf(dir)).toBe(0o700);
      for (const name of names(dir)) expect([name, modeOf(path.join(dir, name))]).toEqual([name, 0o600]);
      for (const sub of ['.stepstore', '.stepstore/archives']) expect(modeOf(path.join(nested, sub))).toBe(0o700);
      if (fs.existsSync(path.join(nested, '.stepstore/trash'))) expect(modeOf(path.join(nested, '.stepstore/trash'))).toBe(0o700);
      expect(modeOf(path.join(nested, '.stepstore/archives', archive))).toBe(0o600);
    });
  });

  it('temp files are hidden, never named step-*, and 0600 while they exist, whatever the umask', async () => {
    // umask 277 takes the owner's write bit too: only an explicit chmod gives 0600.
    await withUmask(0o277, async () => {
      const store = await open({ durability: 'file' });
      const handle = await store.createSession('crab', 'u');
      const dir = at(handle);
      const seen = new Map<string, number>();
      const hidden = () => [...seen.keys()].filter((name) => name.startsWith('.'));
      for (let round = 0; round < 40 && hidden().length === 0; round++) {
        let done = false;
        const append = store.appendMessages(handle, userMessages(`r${round}`, 64)).finally(() => (done = true));
        while (!done) {
          for (const name of fs.readdirSync(dir)) {
            if (name === 'meta' || /^step-\d+$/.test(name)) continue;
            try {
              seen.set(name, modeOf(path.join(dir, name)));
            } catch {
              // gone between readdir and lstat
            }
          }
          await new Promise((resolve) => setImmediate(resolve));
        }
        await append;
      }
      expect(hidden().length).toBeGreaterThan(0);
      for (const [name, mode] of seen) {
        expect(name.startsWith('step-'), name).toBe(false);
        // Nobody but the owner may ever read a temp file; the step temps are exactly 0600.
        expect([name, mode & 0o077]).toEqual([name, 0]);
      }
      for (const name of hidden()) expect([name, seen.get(name)]).toEqual([name, 0o600]);
    });
  });

  describe('symlinks', () => {
    let outside: string;
    beforeEach(() => {
      outside = path.join(base, 'outside');
      fs.mkdirSync(outside, { mode: 0o700 });
    });

    it('a symlinked session directory is not a session, and what it points at is untouched', async () => {
      const real = path.join(outside, 'real');
      fs.mkdirSync(real);
      fs.writeFileSync(path.join(real, 'meta'), JSON.stringify(crabMeta('u')));
      fs.writeFileSync(path.join(real, 'step-000001'), JSON.stringify(userMessage('secret')));
      fs.mkdirSync(root, { mode: 0o700 });
      fs.symlinkSync(real, at('crab_u_1'));
      const before = snapshotTree(outside);
      const store = await open();
      expect(await store.loadSession('crab_u_1')).toBeNull();
      expect(await store.listSessions()).toEqual([]);
      expect(await store.findLatestSession('crab', 'u')).toBeNull();
      await expectCode(store.appendMessages('crab_u_1', [userMessage('x')]), 'SESSION_NOT_FOUND');
      await expectCode(store.appendEvents('crab_u_1', [steered('x')]), 'SESSION_NOT_FOUND');
      await expectCode(store.updateMeta('crab_u_1', crabMeta('u')), 'SESSION_NOT_FOUND');
      await expectCode(store.compact('crab_u_1', 'x'), 'SESSION_NOT_FOUND');
      await expectCode(store.readSteps('crab_u_1'), 'SESSION_NOT_FOUND');
      expect(await store.deleteSession('crab_u_1')).toBe(false);
      expect(await store.createSession('crab', 'u')).toBe('crab_u_2');
      await store.close();
      expect(snapshotTree(outside)).toEqual(before);
      expect(fs.lstatSync(at('crab_u_1')).isSymbolicLink()).toBe(true);
    });

    it('a session directory swapped for a symlink while the store runs is not written through', async () => {
      const store = await open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, [userMessage('before the swap')]);
      const real = path.join(outside, 'real');
      fs.mkdirSync(real);
      fs.writeFileSync(path.join(real, 'meta'), JSON.stringify(crabMeta('u')));
      fs.rmSync(at(handle), { recursive: true });
      fs.symlinkSync(real, at(handle));
      const before = snapshotTree(outside);
      await expectCode(store.appendMessages(handle, [userMessage('x')]), 'SESSION_NOT_FOUND');
      await store.close();
      expect(snapshotTree(outside)).toEqual(before);
    });

    it('a symlinked meta makes appends and updateMeta fail CORRUPT_META and is skipped by list', async () => {
      const target = path.join(outside, 'meta.json');
      fs.writeFileSync(target, JSON.stringify(crabMeta('u')));
      plant('crab_u_1', null, { 'step-000001': userMessage('m') });
      fs.symlinkSync(target, at('crab_u_1', 'meta'));
      plant('crab_v_1', crabMeta('v'));
      const before = snapshotTree(outside);
      const store = await open();
      await expectCode(store.appendMessages('crab_u_1', [userMessage('x')]), 'CORRUPT_META');
      await expectCode(store.appendEvents('crab_u_1', [steered('x')]), 'CORRUPT_META');
      await expectCode(store.updateMeta('crab_u_1', crabMeta('u')), 'CORRUPT_META');
      expect((await store.listSessions()).map((s) => s.handle)).toEqual(['crab_v_1']);
      expect(await store.findLatestSession('crab', 'u')).toBeNull();
      expect(await store.deleteSession('crab_u_1')).toBe(false);
      await store.close();
      expect(snapshotTree(outside)).toEqual(before);
      expect(names(at('crab_u_1'))).toEqual(['meta', 'step-000001']);
    });

    it('a meta swapped for a symlink after this store appended still fails CORRUPT_META', async () => {
      const store = await open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, [userMessage('m')]);
      const target = path.join(outside, 'meta.json');
      fs.writeFileSync(target, JSON.stringify(crabMeta('u')));
      fs.rmSync(at(handle, 'meta'));
      fs.symlinkSync(target, at(handle, 'meta'));
      const before = snapshotTree(outside);
      await expectCode(store.appendMessages(handle, [userMessage('x')]), 'CORRUPT_META');
      await expectCode(store.updateMeta(handle, crabMeta('u')), 'CORRUPT_META');
      await store.close();
      expect(snapshotTree(outside)).toEqual(before);
    });

    it('a meta that is a directory or a FIFO is not a regular file: CORRUPT_META, skipped by list', async () => {
      plant('crab_dir_1', null);
      fs.mkdirSync(at('crab_dir_1', 'meta'));
      const slugs = ['crab_dir_1'];
      plant('crab_fifo_1', null);
      if (spawnSync('mkfifo', [at('crab_fifo_1', 'meta')]).status === 0) slugs.push('crab_fifo_1');
      else fs.rmSync(at('crab_fifo_1'), { recursive: true });
      const store = await open();
      for (const slug of slugs) {
        const createdBy = slug.split('_')[1]!;
        await expectCode(store.appendMessages(slug, [userMessage('x')]), 'CORRUPT_META');
        await expectCode(store.updateMeta(slug, crabMeta(createdBy)), 'CORRUPT_META');
        await expectCode(store.loadSession(slug), 'CORRUPT_META');
      }
      expect(await store.listSessions()).toEqual([]);
    });

    it('a symlinked step is skipped with a diagnostic and its target is untouched', async () => {
      const target = path.join(outside, 'step.json');
      fs.writeFileSync(target, JSON.stringify(userMessage('outside')));
      plant('crab_u_1', crabMeta('u'), { 'step-000001': userMessage('1'), 'step-000003': userMessage('3') });
      fs.symlinkSync(target, at('crab_u_1', 'step-000002'));
      const before = snapshotTree(outside);
      const logger = recordingLogger();
      const store = await open({ logger });
      const snapshot = (await store.loadSession('crab_u_1'))!;
      expect(snapshot.history).toEqual([userMessage('1'), userMessage('3')]);
      expect(snapshot.diagnostics).toEqual([{ step: 2, reason: expect.any(String) }]);
      expect(logger.warnings).toHaveLength(1);
      expect((await store.readSteps('crab_u_1')).map((s) => s.step)).toEqual([1, 3]);
      expect(await store.appendMessages('crab_u_1', [userMessage('4')])).toEqual([4]);
      expect(await store.deleteSession('crab_u_1')).toBe(true);
      expect(snapshotTree(outside)).toEqual(before);
    });
  });
});

describe('the sessions root', () => {
  it('creates a missing root, parents included, with mode 0700', async () => {
    const deep = path.join(base, 'x', 'y', 'z');
    await withUmask(0o000, async () => {
      opened.push(await openStore({ dir: deep, logger: quietLogger }));
    });
    expect(modeOf(deep)).toBe(0o700);
  });

  it('opens an existing crabtalk root as it is', async () => {
    plant('crab_u_1', crabMeta('u'), { 'step-000001': userMessage('hi') });
    fs.chmodSync(root, 0o700);
    const store = await open();
    expect((await store.loadSession('crab_u_1'))!.history).toEqual([userMessage('hi')]);
  });

  const UNSAFE: [string, () => void][] = [
    [
      'a symlink to a directory',
      () => {
        fs.mkdirSync(path.join(base, 'real'), { mode: 0o700 });
        fs.symlinkSync(path.join(base, 'real'), root);
      },
    ],
    [
      'writable by others',
      () => {
        fs.mkdirSync(root);
        fs.chmodSync(root, 0o777);
      },
    ],
    [
      "writable by a group that is not the owner's own",
      () => {
        fs.mkdirSync(root);
        // Group "daemon" (gid 1) is nobody's private group.
        fs.chownSync(root, process.getuid!(), 1);
        fs.chmodSync(root, 0o770);
      },
    ],
    ['a regular file', () => fs.writeFileSync(root, 'not a directory')],
  ];

  it.each(UNSAFE)('refuses a root that is %s with UNSAFE_ROOT, touching nothing', async (_, make) => {
    make();
    const before = snapshotTree(base);
    await expectCode(open(), 'UNSAFE_ROOT');
    expect(snapshotTree(base)).toEqual(before);
  });

  it.skipIf(process.getuid?.() !== 0)('refuses a root owned by another user with UNSAFE_ROOT', async () => {
    fs.mkdirSync(root, { mode: 0o700 });
    fs.chownSync(root, 12345, 12345);
    await expectCode(open(), 'UNSAFE_ROOT');
  });

  it.each([
    ['durability "fast"', { durability: 'fast' }],
    ['durability ""', { durability: '' }],
    ['durability null', { durability: null }],
    ['an empty dir', { dir: '' }],
    ['a numeric dir', { dir: 42 }],
    ['no dir', { dir: undefined }],
  ])('refuses %s with INVALID_OPTION', async (_, bad) => {
    await expectCode(openStore({ dir: root, logger: quietLogger, ...(bad as object) } as StoreOptions), 'INVALID_OPTION');
  });

  it.each([[null], ['dir'], [undefined]])('refuses the options %j with INVALID_OPTION', async (options) => {
    await expectCode(openStore(options as unknown as StoreOptions), 'INVALID_OPTION');
  });

  it('fails IO_ERROR, with the errno error as cause, when the root cannot be made', async () => {
    fs.writeFileSync(path.join(base, 'file'), 'x');
    const err = await expectCode(openStore({ dir: path.join(base, 'file', 'sessions') }), 'IO_ERROR');
    expect((err.cause as NodeJS.ErrnoException).code).toBe('ENOTDIR');
  });

  it('fails IO_ERROR, with the errno error as cause, when the root vanishes under an open store', async () => {
    const store = await open();
    fs.rmSync(root, { recursive: true });
    for (const call of [() => store.listSessions(), () => store.createSession('crab', 'u'), () => store.findLatestSession('crab', 'u')]) {
      const err = await expectCode(call, 'IO_ERROR');
      expect((err.cause as NodeJS.ErrnoException).code).toBe('ENOENT');
    }
  });

  it('fails IO_ERROR when the archive folder cannot be made, and appends no marker', async () => {
    const store = await open();
    const handle = await store.createSession('crab', 'u');
    fs.writeFileSync(at('.stepstore'), 'in the way');
    const err = await expectCode(store.compact(handle, 'summary'), 'IO_ERROR');
    expect(err.cause).toBeInstanceOf(Error);
    expect(await store.readSteps(handle)).toEqual([]);
  });
});
