// npm run demo: a simulated agent runtime on stepstore. It creates a session,
// appends turns and trace events, compacts into an archive, "restarts",
// resumes the latest session for the same agent and sender with the archive
// in front, then lists and deletes sessions. Files go to ./.stepstore-demo.

import fs from 'node:fs';
import path from 'node:path';
import { openStore } from 'stepstore';

const dir = path.resolve('.stepstore-demo');
const say = (text = '') => console.log(text);
// Messages are crabtalk's: a role and a list of content blocks (text, tool_use, tool_result, ...).
const text = (role, words) => ({ message: { role, content: [{ type: 'text', text: words }] } });
const blockText = (block) =>
  block.type === 'text' ? block.text
  : block.type === 'tool_use' ? `[calls ${block.name}(${JSON.stringify(block.input)})]`
  : block.type === 'tool_result' ? `[result of ${block.tool_use_id}] ${block.content}`
  : `[${block.type}]`;
const show = (entry) => `${entry.message.role}: ${entry.message.content.map(blockText).join(' ')}`;
const now = () => new Date().toISOString();

fs.rmSync(dir, { recursive: true, force: true });
say(`stepstore demo: sessions root ${dir}\n`);

// --- first run of the runtime -------------------------------------------------
let store = await openStore({ dir }); // durability 'full' by default
const agent = 'crab';
const sender = 'tg:12345';
const handle = await store.createSession(agent, sender);
say(`created session ${handle} for agent "${agent}", sender "${sender}"`);

const turns = [
  text('user', 'Hi! Can you check the weather in Lisbon?'),
  {
    message: {
      role: 'assistant',
      content: [
        { type: 'text', text: 'Let me look that up.' },
        { type: 'tool_use', id: 'c1', name: 'weather', input: { city: 'Lisbon' } },
      ],
    },
  },
  'tool',
  text('assistant', 'It is 19 °C and sunny in Lisbon.'),
];
for (const turn of turns) {
  if (turn === 'tool') {
    // A tool call: trace events around the tool's result, which crabtalk stores as a user message.
    const [start] = await store.appendEvents(handle, [
      { event: 'tool_start', calls: [{ id: 'c1', name: 'weather', arguments: '{"city":"Lisbon"}' }], ts: now() },
    ]);
    const result = { type: 'tool_result', tool_use_id: 'c1', name: 'weather', content: '{"city":"Lisbon","temp_c":19,"sky":"sunny"}' };
    const [step] = await store.appendMessages(handle, [{ message: { role: 'user', content: [result] } }]);
    const [end] = await store.appendEvents(handle, [{ event: 'tool_result', call_id: 'c1', duration_ms: 12, ts: now() }]);
    say(`  step ${start}: event tool_start   step ${step}: tool result   step ${end}: event tool_result`);
  } else {
    const [step] = await store.appendMessages(handle, [turn]);
    say(`  step ${step}: ${show(turn)}`);
  }
}
const usage = { prompt_tokens: 120, completion_tokens: 30, total_tokens: 150 };
const [done] = await store.appendEvents(handle, [{ event: 'done', model: 'demo-model', iterations: 2, stop_reason: 'stop', usage, ts: now() }]);
say(`  step ${done}: event done (the turn is over)`);

const archive = await store.compact(handle, 'The user asked about the weather in Lisbon; it was 19 °C and sunny.');
say(`\ncompacted: summary stored as archive "${archive}", then a marker step naming it`);
const [after] = await store.appendMessages(handle, [text('user', 'And tomorrow?')]);
say(`  step ${after}: user: And tomorrow?`);
await store.close();
say('\n--- the runtime restarts ---\n');

// --- second run: resume where we were ----------------------------------------
store = await openStore({ dir });
const latest = await store.findLatestSession(agent, sender);
say(`latest session for ("${agent}", "${sender}"): ${latest}`);
const snapshot = await store.loadSession(latest, { withArchive: true });
say(`loaded ${snapshot.history.length} live message(s) after the compact marker; archive ${snapshot.archive}`);
say(`meta: ${snapshot.meta.message_count} messages so far, updated ${snapshot.meta.updated_at}`);
say('history handed to the model on resume:');
for (const entry of store.resumeHistory(snapshot)) say(`  ${show(entry)}`);

const other = await store.createSession(agent, 'tg:67890');
await store.appendMessages(other, [text('user', 'hello from another user')]);
say('\nall sessions, newest first:');
for (const { handle: h, meta } of await store.listSessions()) {
  say(`  ${h}  sender=${meta.created_by}  messages=${meta.message_count}  updated=${meta.updated_at}`);
}

say(`\nraw steps of ${latest} (events and pre-compact steps included):`);
for (const { step, line } of await store.readSteps(latest)) say(`  ${step}: ${JSON.stringify(line).slice(0, 90)}`);

say(`\ndeleting ${other}: ${await store.deleteSession(other)}`);
say(`deleting it again: ${await store.deleteSession(other)}`);
say(`sessions left: ${(await store.listSessions()).map((s) => s.handle).join(', ')}`);
await store.close();
say(`\nthe files are in ${dir} (try: ls -la ${path.relative(process.cwd(), dir)}/${latest})`);
