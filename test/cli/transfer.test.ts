// `stepstore export` and `stepstore import`: the round trip is identical,
// crabtalk's older single-file sessions import, a copy under another identity
// gets its own archives, and bad input is refused whole with nothing written.

import fs from 'node:fs';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { cliFixture, parseJson, run, snapshotTree, textMessage } from './helpers.js';

const t = cliFixture('transfer', { seed: true });
let target: string;

beforeEach(async () => {
  target = path.join(t.base, 'target');
  await t.reopen(); // meta bumps written: the exported meta is what is on disk
});

const withoutTime = (jsonl: string) => jsonl.replace(/"exported_at":"[^"]*",/, '');

describe('export', () => {
  it('writes the meta line, every step with its number, and each archive before the marker naming it', async () => {
    const result = await run(['--dir', t.root, 'export', t.handle]);
    expect(result.code).toBe(0);
    const lines = result.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ stepstore_export: 1, handle: t.handle, meta: (await t.store.loadSession(t.handle))!.meta });
    expect(lines.slice(1).map((l) => ('step' in l ? `step ${l.step}` : `archive ${l.archive}`))).toEqual([
      'step 1',
      'step 2',
      'step 3',
      'step 4',
      'archive crab-tg-12345-1-1',
      'step 5',
      'step 6',
    ]);
    expect(lines[5]).toMatchObject({ content: 'User asked for the Lisbon weather: 19 C and sunny.' });
    expect(lines[7]).toEqual({ step: 6, line: { agent: 'forecaster', ...textMessage('assistant', 'Tomorrow: rain.') } });
  });

  it('writes --out through a temp file, reports it, and never replaces a file without --force', async () => {
    const out = path.join(t.base, 'crab.jsonl');
    const first = await run(['--dir', t.root, 'export', t.handle, '--out', out, '--json']);
    expect(parseJson(first)).toEqual({ handle: t.handle, out, steps: 6, archives: 1, missing_archives: [], unreadable_steps: [] });
    fs.writeFileSync(out, 'precious');
    const second = await run(['--dir', t.root, 'export', t.handle, '--out', out]);
    expect(second.code).toBe(2);
    expect(second.stderr.trimEnd()).toBe(`stepstore: ${out}: the file exists; choose another --out, or pass --force to replace it`);
    expect(fs.readFileSync(out, 'utf8')).toBe('precious');
    expect((await run(['--dir', t.root, 'export', t.handle, '--out', out, '--force'])).code).toBe(0);
    expect(fs.readFileSync(out, 'utf8')).toContain('"stepstore_export":1');
    expect(fs.readdirSync(t.base).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });
});

describe('import', () => {
  it('round-trips: export, import into another directory, export again gives the same file', async () => {
    const file = path.join(t.base, 'crab.jsonl');
    await run(['--dir', t.root, 'export', t.handle, '--out', file]);
    const imported = await run(['--dir', target, 'import', file]);
    expect(imported.code).toBe(0);
    expect(imported.stdout).toBe(`Imported ${t.handle} from ${file} (stepstore-export): 6 steps, 1 archive.\n`);
    const again = await run(['--dir', target, 'export', t.handle]);
    expect(withoutTime(again.stdout)).toBe(withoutTime(fs.readFileSync(file, 'utf8')));
    const copy = await t.stores.fs(target);
    expect(await copy.loadSession(t.handle, { withArchive: true })).toEqual(await t.store.loadSession(t.handle, { withArchive: true }));
  });

  it('reads an export from stdin', async () => {
    const exported = await run(['--dir', t.root, 'export', t.handle]);
    const imported = await run(['--dir', target, 'import', '-', '--json'], { input: exported.stdout });
    expect(parseJson(imported)).toEqual({ handle: t.handle, format: 'stepstore-export', from: 'stdin', steps: 6, archives: 1, renumbered: false });
  });

  it('refuses to import over an existing session and writes nothing', async () => {
    const exported = await run(['--dir', t.root, 'export', t.handle]);
    const before = snapshotTree(t.root);
    const result = await run(['--dir', t.root, 'import', '-'], { input: exported.stdout });
    expect(result.code).toBe(1);
    expect(result.stderr.trimEnd()).toBe(
      `stepstore: ${t.handle}: this session exists in ${t.root} already; nothing was imported; remove it first ("stepstore rm ${t.handle} --dir ${t.root}"), import into another --dir, or pass --agent/--sender to import a copy`,
    );
    expect(snapshotTree(t.root)).toEqual(before);
  });

  it('imports a copy for another agent and sender with --agent/--sender, with archives of its own', async () => {
    const exported = await run(['--dir', t.root, 'export', t.handle]);
    const result = await run(['--dir', t.root, 'import', '-', '--sender', 'tg:99', '--json'], { input: exported.stdout });
    expect(result.code).toBe(0);
    expect(parseJson(result)).toMatchObject({ handle: 'crab_tg-99_1', steps: 6, archives: 1 });
    const copy = (await t.store.loadSession('crab_tg-99_1', { withArchive: true }))!;
    // The exported meta's count, crabtalk's after the compaction: the summary and the one message after it.
    expect(copy.meta).toMatchObject({ agent: 'crab', created_by: 'tg:99', message_count: 2 });
    expect(copy.archive).toBe('crab-tg-99-1-1');
    expect(copy.archiveContent).toBe('User asked for the Lisbon weather: 19 C and sunny.');
    // Deleting the original leaves the copy whole.
    await t.store.deleteSession(t.handle);
    expect(await t.store.getArchive('crab-tg-99-1-1')).toBe('User asked for the Lisbon weather: 19 C and sunny.');
  });

  it("imports crabtalk's older single-file session: meta line, messages and compact lines", async () => {
    const file = path.join(t.base, 'legacy.jsonl');
    fs.writeFileSync(
      file,
      [
        { agent: 'crab', created_by: 'tg:12345', created_at: '2025-01-02T03:04:05.123456789+00:00', title: 'Weather chat', topic: 'weather' },
        textMessage('user', 'Weather?'),
        { agent: '', ...textMessage('assistant', 'Sunny.') },
        { compact: 'The user asked about the weather; sunny.', title: 'Weather' },
        { agent: 'researcher', ...textMessage('assistant', 'Rain tomorrow.') },
      ]
        .map((l) => JSON.stringify(l))
        .join('\n') + '\n',
    );
    const result = await run(['--dir', target, 'import', file, '--json']);
    expect(parseJson(result)).toEqual({ handle: 'crab_tg-12345_1', format: 'crabtalk-jsonl', from: file, steps: 4, archives: 0, renumbered: false });
    const copy = await t.stores.fs(target);
    const snapshot = (await copy.loadSession('crab_tg-12345_1'))!;
    expect(snapshot.meta).toMatchObject({ agent: 'crab', created_by: 'tg:12345', title: 'Weather chat', topic: 'weather', message_count: 1 }); // crabtalk's count: the entries after the last (legacy) boundary
    // The legacy compact line is still a boundary: only what follows it replays.
    expect(snapshot.history).toEqual([{ agent: 'researcher', ...textMessage('assistant', 'Rain tomorrow.') }]);
    expect((await copy.readSteps('crab_tg-12345_1')).map((r) => r.line)).toContainEqual({ compact: 'The user asked about the weather; sunny.', title: 'Weather' });
    const shown = await run(['--dir', target, 'show', 'crab_tg-12345_1', '--all']);
    expect(shown.stdout).toContain('#3 ══ compacted (legacy marker "Weather"): everything above is summarised as ══\n  The user asked about the weather; sunny.');
  });

  const badFiles: [string, string, RegExp][] = [
    ['an empty file', '', /:1: the file is empty; nothing was imported/],
    ['a header that is not JSON', '{"stepstore_export":1,', /:1: not valid JSON; nothing was imported/],
    ['a step that is not JSON', '{"stepstore_export":1,"handle":"crab_x_1","meta":{"agent":"crab","created_by":"x"}}\n{"step":1,"line":{"message":{"role":"user","content":[]}}}\n{"step":2', /:3: not valid JSON/],
    ['a step of no known shape', '{"stepstore_export":1,"handle":"crab_x_1","meta":{"agent":"crab","created_by":"x"}}\n{"step":1,"line":{"hello":1}}', /:2: step 1 is not a message, event or compact marker/],
    ['steps out of order', '{"stepstore_export":1,"handle":"crab_x_1","meta":{"agent":"crab","created_by":"x"}}\n{"step":2,"line":{"message":{"role":"user","content":[]}}}\n{"step":1,"line":{"message":{"role":"user","content":[]}}}', /:3: step 1 comes after step 2/],
    ['a newer format', '{"stepstore_export":7,"handle":"crab_x_1","meta":{}}', /:1: export format 7 is newer than this stepstore reads \(1\): upgrade stepstore/],
    ['a crabtalk file with a bad line', '{"agent":"crab","created_by":"x"}\n{"message":{"role":"user","content":[]}}\n[1,2]', /:3: not a JSON object/],
    ['something else entirely', '{"hello":"world"}', /:1: neither a stepstore export header nor a crabtalk session meta/],
  ];

  it.each(badFiles)('refuses %s with exit 2, one line naming the file and line, and writes nothing', async (_name, text, message) => {
    const file = path.join(t.base, 'bad.jsonl');
    fs.writeFileSync(file, text);
    const result = await run(['--dir', target, 'import', file]);
    expect(result.code).toBe(2);
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(new RegExp(`^stepstore: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}${message.source}`));
    // Not even the sessions directory was created.
    expect(fs.existsSync(target)).toBe(false);
  });

  it('undoes a half-written import when the store rejects a step, leaving no session behind', async () => {
    const big = 'x'.repeat(5 * 1024 * 1024); // over the default 4 MiB step limit
    const file = path.join(t.base, 'big.jsonl');
    fs.writeFileSync(
      file,
      `${JSON.stringify({ stepstore_export: 1, handle: 'crab_big_1', meta: { agent: 'crab', created_by: 'big', created_at: '2026-01-01T00:00:00Z', title: '', updated_at: '2026-01-01T00:00:00Z', message_count: 2 } })}\n` +
        `${JSON.stringify({ step: 1, line: textMessage('user', 'small') })}\n` +
        `${JSON.stringify({ step: 2, line: textMessage('user', big) })}\n`,
    );
    const result = await run(['--dir', target, 'import', file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^stepstore: crab_big_1: .*\(STEP_TOO_LARGE\); fix the input; nothing was written\n$/);
    expect((await run(['--dir', target, 'list', '--json'])).stdout).toContain('"sessions": []');
  });

  it('fails with one line when the file cannot be read', async () => {
    const result = await run(['--dir', target, 'import', path.join(t.base, 'missing.jsonl')]);
    expect(result.code).toBe(1);
    expect(result.stderr.trimEnd()).toBe(
      `stepstore: ${path.join(t.base, 'missing.jsonl')}: cannot read it: no such file; pass the path of a file written by "stepstore export" or a crabtalk .jsonl session`,
    );
  });
});
