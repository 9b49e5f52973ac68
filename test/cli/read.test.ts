// The reading commands of the CLI, spawned as a user runs them on a real
// sessions directory: list, show, latest, stats, help, colours, the
// newcomer's path through `npm run demo`, and how failures are reported.

import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, REPO, cliFixture, parseJson, run, runOnTerminal, snapshotTree, textMessage } from './helpers.js';

const t = cliFixture('read', { seed: true });
const { cli } = t;

describe('list', () => {
  it('prints a table of handle, agent, sender, title, messages and a relative update time', async () => {
    const other = await t.store.createSession('owl', 'web:7');
    await t.store.updateMeta(other, { ...(await t.store.loadSession(other))!.meta, title: 'Night shift' });
    const result = await cli('list');
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^HANDLE\s+AGENT\s+SENDER\s+TITLE\s+MESSAGES\s+UPDATED$/);
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(/^owl_web-7_1\s+owl\s+web:7\s+Night shift\s+0\s+less than a minute ago$/);
    // After the compaction crabtalk counts the live conversation: the summary and the one message after it.
    expect(lines[2]).toMatch(/^crab_tg-12345_1\s+crab\s+tg:12345\s+2\s+less than a minute ago$/);
  });

  it('gives the exact times and the whole meta with --json', async () => {
    const result = await cli('list', '--json');
    expect(result.code).toBe(0);
    const { sessions } = parseJson(result) as { sessions: Record<string, unknown>[] };
    const meta = (await t.store.loadSession(t.handle))!.meta;
    expect(sessions).toEqual([
      { handle: t.handle, agent: 'crab', sender: 'tg:12345', title: '', messages: 2, created_at: meta.created_at, updated_at: meta.updated_at, meta },
    ]);
  });

  it('filters by agent and sender and stops at --limit', async () => {
    await t.store.createSession('crab', 'tg:999');
    await t.store.createSession('owl', 'tg:12345');
    const bySender = parseJson(await cli('list', '--agent', 'crab', '--sender', 'tg:12345', '--json')) as { sessions: { handle: string }[] };
    expect(bySender.sessions.map((s) => s.handle)).toEqual([t.handle]);
    const byAgent = parseJson(await cli('list', '--agent', 'crab', '--json')) as { sessions: { handle: string }[] };
    expect(byAgent.sessions.map((s) => s.handle).sort()).toEqual(['crab_tg-12345_1', 'crab_tg-999_1']);
    const limited = parseJson(await cli('list', '--limit', '1', '--json')) as { sessions: unknown[] };
    expect(limited.sessions).toHaveLength(1);
  });

  it('says so when nothing matches, and exits 0', async () => {
    const result = await cli('list', '--agent', 'nobody');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('No sessions for agent "nobody"');
  });

  it('refuses a bad --limit with exit 2 and one line on stderr', async () => {
    const result = await cli('list', '--limit', 'lots');
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/^stepstore: --limit lots: .*whole number/);
  });

  it('reads the sessions directory from STEPSTORE_DIR when --dir is not given', async () => {
    const result = await run(['list', '--json'], { env: { STEPSTORE_DIR: t.root } });
    expect((parseJson(result) as { sessions: unknown[] }).sessions).toHaveLength(1);
  });

  it('defaults to ./sessions and never creates a missing directory', async () => {
    const cwd = path.dirname(t.root);
    fs.rmSync(t.root, { recursive: true, force: true });
    const result = await run(['list'], { cwd });
    expect(result.code).toBe(1);
    expect(result.stderr.trimEnd()).toBe(
      `stepstore: ${t.root}: no such sessions directory; pass --dir <path> or set STEPSTORE_DIR to your sessions folder (the default is ./sessions)`,
    );
    expect(fs.existsSync(t.root)).toBe(false);
  });
});

describe('show', () => {
  it('prints the replayed history: one block per message with role, guest agent and text, after a compaction note', async () => {
    const result = await cli('show', t.handle);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`${t.handle}  agent crab  sender tg:12345`);
    expect(result.stdout).toContain('2 messages');
    expect(result.stdout).toContain('compacted earlier: older history is summarised in archive crab-tg-12345-1-1');
    expect(result.stdout).toContain('assistant · agent forecaster\n  Tomorrow: rain.');
    expect(result.stdout).not.toContain('Weather in Lisbon?');
  });

  it('prints the archived summary first with --archive', async () => {
    const { stdout } = await cli('show', t.handle, '--archive');
    const summary = stdout.indexOf('User asked for the Lisbon weather: 19 C and sunny.');
    expect(summary).toBeGreaterThan(0);
    expect(summary).toBeLessThan(stdout.indexOf('Tomorrow: rain.'));
  });

  it('shows every step with its number, tool calls summarised, events and the compaction marked with --all', async () => {
    const { stdout, code } = await cli('show', t.handle, '--all');
    expect(code).toBe(0);
    expect(stdout).toContain('#1 user\n  Weather in Lisbon?');
    expect(stdout).toContain('#2 assistant\n  Checking.\n  → weather({"city":"Lisbon"}) [c1]');
    expect(stdout).toContain('#3 event tool_start: weather({}) [c1]');
    expect(stdout).toContain('#4 user\n  [result of c1] 19 C, sunny');
    expect(stdout).toMatch(/#5 ══ compacted: everything above is summarised in archive crab-tg-12345-1-1 \(.* UTC\) ══/);
    expect(stdout).toContain('#6 assistant · agent forecaster');
  });

  it('marks an unreadable step in place with --all and warns about it once on the default view', async () => {
    fs.writeFileSync(path.join(t.root, t.handle, 'step-000007'), '{oops', { mode: 0o600 });
    const all = await cli('show', t.handle, '--all');
    expect(all.stdout).toContain('#7 unreadable step, skipped: not valid JSON');
    expect(all.stdout.match(/#7 /g)).toHaveLength(1);
    expect(all.stderr).toBe('');
    const plain = await cli('show', t.handle);
    expect(plain.code).toBe(0);
    expect(plain.stderr.trimEnd()).toBe(`stepstore: warning: skipping step 7 of ${t.handle}: not valid JSON`);
  });

  it('gives meta, history, archive and its content as one JSON document with --json', async () => {
    const doc = parseJson(await cli('show', t.handle, '--archive', '--json'));
    expect(doc).toMatchObject({
      handle: t.handle,
      archive: 'crab-tg-12345-1-1',
      archive_content: 'User asked for the Lisbon weather: 19 C and sunny.',
      history: [{ agent: 'forecaster', ...textMessage('assistant', 'Tomorrow: rain.') }],
      diagnostics: [],
    });
    const all = parseJson(await cli('show', t.handle, '--all', '--json')) as { steps: { step: number; kind: string }[] };
    expect(all.steps.map((s) => `${s.step}:${s.kind}`)).toEqual(['1:entry', '2:entry', '3:event', '4:entry', '5:compact', '6:entry']);
  });

  it('fails with exit 1 and one line naming the handle and what to do when the session does not exist', async () => {
    const result = await cli('show', 'crab_nobody_1');
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr.trimEnd()).toBe(`stepstore: crab_nobody_1: no such session in ${t.root}; run "stepstore list --dir ${t.root}" to see the session handles`);
  });

  it('rejects something that is not a handle with exit 2 and the error code', async () => {
    const result = await cli('show', '../etc');
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^stepstore: \.\.\/etc: not a session handle: "\.\.\/etc" \(INVALID_HANDLE\); run "stepstore list/);
  });
});

describe('latest', () => {
  it('names the session resume would pick, the rule, and what it replays', async () => {
    const second = await t.store.createSession('crab', 'tg:12345');
    // The older session is the most recently updated one: resume still picks the highest number.
    await t.store.appendMessages(t.handle, [textMessage('user', 'later')]);
    const result = await cli('latest', 'crab', 'tg:12345');
    expect(result.code).toBe(0);
    expect(result.stdout.split('\n')[0]).toBe(second);
    expect(result.stdout).toContain(`why: ${second} has the highest number of the 2 sessions of agent "crab" and sender "tg:12345"`);
    expect(result.stdout).toContain('not the most recently updated one');
    expect(result.stdout).toMatch(new RegExp(`${second}\\s+0\\s+.*← picked`));
    const doc = parseJson(await cli('latest', 'crab', 'tg:12345', '--json'));
    expect(doc).toMatchObject({ handle: second, resume: { archive: null, messages: 0 } });
    expect((doc.candidates as { handle: string }[]).map((c) => c.handle)).toEqual([second, t.handle]);
  });

  it('exits 1 when there is none and points at senders spelled differently', async () => {
    const result = await cli('latest', 'crab', 'tg-12345');
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('No session for agent "crab" and sender "tg-12345"');
    expect(result.stdout).toContain(`${t.handle}  sender "tg:12345"`);
    expect(parseJson(await cli('latest', 'crab', 'tg-12345', '--json'))).toMatchObject({ handle: null, other_senders: [{ handle: t.handle, sender: 'tg:12345' }] });
  });
});

describe('stats', () => {
  it('counts sessions, steps, messages and bytes, in all and per agent', async () => {
    const owl = await t.store.createSession('owl', 'web:7');
    await t.store.appendMessages(owl, [textMessage('user', 'hoot')]);
    const doc = parseJson(await cli('stats', '--json')) as Record<string, unknown> & { agents: Record<string, unknown>[] };
    // messages are the metas' counts: crabtalk's 2 for the compacted session (summary + one message), 1 for owl's.
    expect(doc).toMatchObject({ sessions: 2, steps: 7, messages: 3, unreadable_steps: 0 });
    expect(doc.agents.map((a) => [a.agent, a.sessions, a.steps, a.messages])).toEqual([
      ['crab', 1, 6, 2],
      ['owl', 1, 1, 1],
    ]);
    expect(doc.bytes).toBe((doc.agents[0]!.bytes as number) + (doc.agents[1]!.bytes as number));
    expect(doc.bytes).toBeGreaterThan(300);
    const text = await cli('stats');
    expect(text.stdout).toMatch(/2 sessions, 7 steps, 3 messages, [\d.]+ (B|KiB) of JSON/);
    expect(text.stdout).toMatch(/^crab\s+1\s+6\s+2\s+/m);
  });
});

describe('help and colour', () => {
  it('has examples in the main help and in every command help', async () => {
    const main = await run(['--help']);
    expect(main.code).toBe(0);
    expect(main.stdout).toContain('Examples:');
    for (const command of ['list', 'show', 'latest', 'tail', 'rm', 'prune', 'fsck', 'export', 'import', 'migrate', 'stats']) {
      const help = await run([command, '--help']);
      expect(help.code, command).toBe(0);
      expect(help.stdout, command).toMatch(new RegExp(`Examples:\\n  stepstore ${command}`));
    }
  });

  it('reports an unknown command or option as one usage line with exit 2', async () => {
    const unknown = await run(['lsit']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trimEnd()).toBe(`stepstore: unknown command 'lsit' (Did you mean list?); run "stepstore --help" for usage`);
    const option = await cli('show', t.handle, '--everything');
    expect(option.code).toBe(2);
    expect(option.stderr.trimEnd()).toBe(`stepstore: unknown option '--everything'; run "stepstore show --help" for usage`);
  });

  it('colours output on a terminal only, and never with NO_COLOR or --no-color', async () => {
    const ansi = /\x1b\[[0-9;]*m/;
    expect((await runOnTerminal(['--dir', t.root, 'list'])).stdout).toMatch(ansi);
    expect((await runOnTerminal(['--dir', t.root, 'list'], '', { NO_COLOR: '1' })).stdout).not.toMatch(ansi);
    expect((await runOnTerminal(['--dir', t.root, '--no-color', 'list'])).stdout).not.toMatch(ansi);
    const piped = await cli('show', t.handle, '--all');
    expect(piped.stdout).not.toMatch(ansi);
  });
});

describe('loading', () => {
  it('never loads node-redis for a directory store, only with --redis', async () => {
    const hooks = path.join(path.dirname(t.root), 'no-redis-hooks.mjs');
    const register = path.join(path.dirname(t.root), 'no-redis.mjs');
    fs.writeFileSync(
      hooks,
      `export async function resolve(specifier, context, next) {
        if (specifier === 'redis' || specifier.startsWith('@redis/')) throw new Error('node-redis was loaded');
        return next(specifier, context);
      }\n`,
    );
    fs.writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(`file://${hooks}`)});\n`);
    const { spawnSync } = await import('node:child_process');
    const fsRun = spawnSync(process.execPath, ['--import', register, CLI, '--dir', t.root, 'list', '--json'], { encoding: 'utf8' });
    expect(fsRun.stderr).toBe('');
    expect(fsRun.status).toBe(0);
    // The hook does catch the Redis client when it is loaded.
    const redisRun = spawnSync(process.execPath, ['--import', register, CLI, '--redis', 'redis://127.0.0.1:1', 'list'], { encoding: 'utf8' });
    expect(redisRun.status).toBe(1);
    expect(redisRun.stderr).toContain('node-redis was loaded');
  });
});

describe('the newcomer path', () => {
  it('runs the demo, then list, show and fsck on its directory with sensible output and nothing changed', async () => {
    const cwd = path.dirname(t.root);
    const demo = await import('node:child_process').then(
      ({ spawnSync }) => spawnSync(process.execPath, [path.join(REPO, 'examples', 'demo.mjs')], { cwd, encoding: 'utf8' }),
    );
    expect(demo.status, demo.stderr).toBe(0);
    const dir = path.join(cwd, '.stepstore-demo');
    const before = snapshotTree(dir);
    const listed = await run(['list', '--dir', dir]);
    // The demo compacts, then appends one message: crabtalk counts the summary and that message.
    expect(listed.stdout).toMatch(/^crab_tg-12345_1\s+crab\s+tg:12345\s+2\s+less than a minute ago$/m);
    const shown = await run(['show', 'crab_tg-12345_1', '--dir', dir]);
    expect(shown.stdout).toContain('user\n  And tomorrow?');
    const checked = await run(['fsck', '--dir', dir]);
    expect(checked.code).toBe(0);
    expect(checked.stdout).toContain('Checked 1 session');
    expect(checked.stdout).toContain('No problems found.');
    expect(snapshotTree(dir)).toEqual(before);
  });
});
