// Child of fs-descriptors.test.ts, run under a low descriptor limit
// (`ulimit -n 64`): one store, SESSIONS sessions made and seeded one after
// another, then one append per session and one load per session, all at once.
// Prints one JSON line: what succeeded and failed (by error code), and every
// mismatch found when each session is read back afterwards.

import { openStore } from 'stepstore';

const [dir, sessionsArg = '300', durability = 'full'] = process.argv.slice(2);
const SESSIONS = Number(sessionsArg);
const SEED = 3;

const msg = (text) => ({ message: { role: 'user', content: [{ type: 'text', text }] } });
const seedOf = (i) => Array.from({ length: SEED }, (_, k) => msg(`s${i}:seed${k}`));
/** Every fifth append is a batch of several messages. */
const batchOf = (i) => Array.from({ length: i % 5 === 0 ? 2 + (i % 4) : 1 }, (_, k) => msg(`s${i}:new${k}`));

let warnings = 0;
let firstWarning = null;
const logger = {
  warn(message) {
    warnings += 1;
    firstWarning ??= message;
  },
};

const store = await openStore({ dir, durability, logger });
const handles = [];
for (let i = 0; i < SESSIONS; i++) {
  const handle = await store.createSession('crab', 'tg:1');
  await store.appendMessages(handle, seedOf(i));
  handles.push(handle);
}

const tally = { appends: { ok: 0, failed: {} }, loads: { ok: 0, failed: {} } };
const mismatches = [];
const fail = (kind, err) => {
  const code = err?.code ?? String(err);
  tally[kind].failed[code] = (tally[kind].failed[code] ?? 0) + 1;
};
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

const started = performance.now();
const appended = new Array(SESSIONS).fill(null);
await Promise.all(
  handles.flatMap((handle, i) => [
    store.appendMessages(handle, batchOf(i)).then(
      (numbers) => {
        tally.appends.ok += 1;
        appended[i] = numbers;
      },
      (err) => fail('appends', err),
    ),
    store.loadSession(handle).then(
      (snapshot) => {
        tally.loads.ok += 1;
        // The seed, then as much of the racing batch as was linked (steps are linked one by one), never anything else.
        const history = snapshot?.history ?? [];
        const whole = [...seedOf(i), ...batchOf(i)];
        if (history.length < SEED || !same(history, whole.slice(0, history.length))) {
          mismatches.push(`load of ${handle} during the burst: ${JSON.stringify(history)?.slice(0, 200)}`);
        }
      },
      (err) => fail('loads', err),
    ),
  ]),
);
const burstMs = Math.round(performance.now() - started);
await store.close();

// Read everything back through a fresh store: each session's steps, contents and counter.
const check = await openStore({ dir, durability, logger });
for (let i = 0; i < SESSIONS; i++) {
  const handle = handles[i];
  const expected = appended[i] === null ? seedOf(i) : [...seedOf(i), ...batchOf(i)];
  const snapshot = await check.loadSession(handle);
  if (!same(snapshot?.history, expected)) mismatches.push(`${handle}: history ${JSON.stringify(snapshot?.history)?.slice(0, 200)}`);
  if (snapshot?.meta.message_count !== expected.length) mismatches.push(`${handle}: message_count ${snapshot?.meta.message_count}, expected ${expected.length}`);
  const steps = await check.readSteps(handle);
  if (!same(steps.map((s) => s.line), expected)) mismatches.push(`${handle}: steps ${JSON.stringify(steps.map((s) => s.step))}`);
  if (appended[i] !== null && !same(appended[i], steps.slice(SEED).map((s) => s.step))) {
    mismatches.push(`${handle}: append acknowledged steps ${JSON.stringify(appended[i])}, stored ${JSON.stringify(steps.map((s) => s.step))}`);
  }
}
await check.close();

process.stdout.write(JSON.stringify({ ...tally, burstMs, mismatches, warnings, firstWarning }) + '\n');
