// A child process for the multi-process tests: opens the store described by
// argv[2] (see test/conformance/harness.ts), runs one task, prints one JSON
// line per acknowledged operation, so a parent can check nothing acknowledged
// was lost even when it kills this process.

const { store: storeSpec, task } = JSON.parse(process.argv[2]);

async function openFromSpec(spec) {
  if (spec.kind === 'fs') {
    const { openStore } = await import('stepstore');
    return openStore({ dir: spec.dir, durability: spec.durability, logger: { warn() {} } });
  }
  const { openRedisFromSpec } = await import('./redis-spec.mjs');
  return openRedisFromSpec(spec);
}

// crabtalk's own writes (the plain-* tasks) open no store: they touch the root (an fs spec's dir) directly.
const store = task.name.startsWith('plain-') ? null : await openFromSpec(storeSpec);
// stdout is a pipe: on Linux writes to it are synchronous, so a line printed
// here has reached the parent even if this process is killed right after.
const say = (line) => process.stdout.write(JSON.stringify(line) + '\n');

switch (task.name) {
  case 'append': {
    // count messages, one per call, or forever when count is null
    for (let i = 0; task.count === null || i < task.count; i++) {
      const content = `${task.tag}:${i}`;
      const [step] = await store.appendMessages(task.handle, [userMessage(content)]);
      say({ i, step, content });
    }
    break;
  }
  case 'append-batches': {
    // batches of 1..maxBatch messages (padded to make writes take a while), forever when count is null
    for (let i = 0; task.count === null || i < task.count; i++) {
      const size = 1 + Math.floor(Math.random() * task.maxBatch);
      const items = Array.from({ length: size }, (_, j) =>
        userMessage(`${task.tag}:${i}:${j} ${'é'.repeat(Math.floor(Math.random() * task.pad))}`),
      );
      const steps = await store.appendMessages(task.handle, items);
      say({ i, steps, items });
    }
    break;
  }
  case 'append-sizes': {
    // one batch per size, every third of events (crabtalk's user_steered), the rest messages
    for (const [i, size] of task.sizes.entries()) {
      const kind = i % 3 === 2 ? 'event' : 'entry';
      const items = batchItems(`${task.tag}:${i}`, kind, size, 0);
      say({ i, steps: await (kind === 'event' ? store.appendEvents(task.handle, items) : store.appendMessages(task.handle, items)) });
    }
    break;
  }
  case 'delete': {
    say({ handle: task.handle, deleted: await store.deleteSession(task.handle) });
    break;
  }
  case 'create-compact': {
    // one new session of (agent, sender): a few messages, then a compaction
    const handle = await store.createSession(task.agent, task.sender);
    const steps = await store.appendMessages(handle, [1, 2, 3].map((i) => userMessage(`${task.tag}:${i}`)));
    const archive = await store.compact(handle, `${task.tag} summary`);
    say({ handle, steps, archive });
    break;
  }
  case 'create': {
    for (let i = 0; i < task.count; i++) {
      say({ i, handle: await store.createSession(task.agent, task.sender) });
    }
    break;
  }
  case 'fenced-race': {
    // Round r starts at startAt + r * periodMs (one clock for both workers, so they try it at about the same
    // time) and once rounds 0..r-1 are written, at expectedStep = their steps (a compact is 1, a batch `batch`).
    let expectedStep = 0;
    for (let round = 0; round < task.rounds; round++) {
      // (plus up to 4 ms at random, so either worker gets to be first)
      await sleep(Math.max(0, task.startAt + round * task.periodMs + Math.random() * 4 - Date.now()));
      while (expectedStep > 0 && (await store.readSteps(task.handle, { after: expectedStep - 1, limit: 1 })).length === 0) {
        await sleep(1);
      }
      const kind = round % 5 === 4 ? 'compact' : round % 2 === 1 ? 'event' : 'entry';
      const tag = `${task.tag}:${round}`;
      const fence = { expectedStep };
      try {
        if (kind === 'compact') say({ round, expectedStep, kind, archive: await store.compact(task.handle, `${tag} summary`, fence) });
        else {
          const items = batchItems(tag, kind, task.batch, 0);
          const write = kind === 'event' ? store.appendEvents(task.handle, items, fence) : store.appendMessages(task.handle, items, fence);
          say({ round, expectedStep, kind, steps: await write });
        }
      } catch (err) {
        if (err?.name !== 'StepStoreError') throw err;
        say({ round, expectedStep, kind, error: err.code });
      }
      expectedStep += kind === 'compact' ? 1 : task.batch;
    }
    break;
  }
  case 'append-for': {
    const deadline = Date.now() + task.durationMs;
    for (let i = 0; Date.now() < deadline; i++) {
      const content = `${task.tag}:${i}`;
      const [step] = await store.appendMessages(task.handle, [userMessage(content)]);
      say({ i, step, content });
    }
    break;
  }
  case 'rewind-loop': {
    const deadline = Date.now() + task.durationMs;
    for (let i = 0; Date.now() < deadline; i++) {
      const [last] = await store.readSteps(task.handle, { last: 1 });
      if (last !== undefined) {
        const toStep = Math.max(0, last.step - Math.floor(Math.random() * (task.maxBack + 1)));
        say({ i, toStep, retracted: await store.rewind(task.handle, toStep) });
      }
      await sleep(task.delayMs);
    }
    break;
  }
  case 'append-then-retract': {
    // appends one message of its own, then retracts it with a fenced rewind (only if it is still the newest step)
    const deadline = Date.now() + task.durationMs;
    for (let i = 0; Date.now() < deadline; i++) {
      const content = `${task.tag}:${i}`;
      const [step] = await store.appendMessages(task.handle, [userMessage(content)]);
      try {
        say({ i, step, content, retracted: await store.rewind(task.handle, step - 1, { expectedStep: step }) });
      } catch (err) {
        if (err?.code !== 'CONFLICT') throw err;
        say({ i, step, content, retracted: 'conflict' });
      }
    }
    break;
  }
  case 'create-delete': {
    // creates a session of (agent, sender) and deletes it again, count times back to back
    for (let i = 0; i < task.count; i++) {
      const handle = await store.createSession(task.agent, task.sender);
      say({ i, op: 'create', handle });
      say({ i, op: 'delete', handle, deleted: await store.deleteSession(handle) });
    }
    break;
  }
  case 'plain-create': {
    // creates `handles` in order as crabtalk does: mkdir <root>/<handle>, then its meta written to a
    // temp file beside it and renamed in (with metaAfterMs, the mkdir is printed, and the meta
    // written that long after it); with removeEach, `rm -rf`s each one right after; a pause of
    // pauseMs after every pauseEvery sessions (0: none)
    const fs = await import('node:fs');
    const path = await import('node:path');
    for (const [i, handle] of task.handles.entries()) {
      const dir = path.join(storeSpec.dir, handle);
      const created_at = crabtalkNow();
      fs.mkdirSync(dir);
      if (task.metaAfterMs > 0) {
        say({ i, op: 'mkdir', handle });
        await sleep(task.metaAfterMs);
      }
      const meta = { agent: task.agent, created_by: task.sender, created_at, title: '', updated_at: created_at, message_count: 0 };
      const temp = path.join(dir, `meta.tmp.${process.pid}.${process.hrtime.bigint()}`);
      fs.writeFileSync(temp, JSON.stringify(meta));
      fs.renameSync(temp, path.join(dir, 'meta'));
      say({ i, op: 'create', handle, created_at });
      if (task.removeEach) {
        fs.rmSync(dir, { recursive: true });
        say({ i, op: 'delete', handle });
      }
      if (task.pauseEvery > 0 && i % task.pauseEvery === task.pauseEvery - 1) await sleep(task.pauseMs);
    }
    break;
  }
  case 'plain-remove': {
    // `rm -rf <root>/<handle>` of each of `handles`, as crabtalk (or a user) removes a session
    const fs = await import('node:fs');
    const path = await import('node:path');
    for (const [i, handle] of task.handles.entries()) {
      fs.rmSync(path.join(storeSpec.dir, handle), { recursive: true });
      say({ i, op: 'delete', handle });
    }
    break;
  }
  // The torture tasks below (test/torture) run until killed or for a set time,
  // and print a StepStoreError as an `error` line instead of dying, so the
  // parent sees every failure and decides which ones it expected.
  case 'append-shared': {
    // batches of messages (every eventsEvery-th an event batch) to random sessions among
    // `handles` and, when `agent` is set, the sessions listed for it (refreshed now and then);
    // with `pair`, a share of the ops goes to the sessions of that pair instead (pairWriter)
    const handles = new Set(task.handles);
    const toPair = task.pair ? pairWriter(task.pair, task) : null;
    for (let i = 0; task.count === null || i < task.count; i++) {
      if (toPair !== null && Math.random() < task.pair.share) {
        await toPair(i);
        continue;
      }
      if (task.agent && i % task.refreshEvery === 0) {
        const listed = await attempt('list', () => store.listSessions({ agent: task.agent }));
        for (const { handle } of listed ?? []) handles.add(handle);
      }
      if (handles.size === 0) break;
      const handle = pick([...handles]);
      const kind = task.eventsEvery > 0 && i % task.eventsEvery === task.eventsEvery - 1 ? 'event' : 'entry';
      const items = batchItems(`${task.tag}:${i}`, kind, 1 + Math.floor(Math.random() * task.maxBatch), task.pad);
      const steps = await attempt('append', () =>
        kind === 'event' ? store.appendEvents(handle, items) : store.appendMessages(handle, items),
      );
      if (steps !== undefined) say({ i, handle, kind, steps, items });
    }
    break;
  }
  case 'create-loop': {
    // sessions for (agent, one of senders), one every delayMs, forever when count is null
    for (let i = 0; task.count === null || i < task.count; i++) {
      const sender = task.senders[i % task.senders.length];
      const handle = await attempt('create', () => store.createSession(task.agent, sender));
      if (handle !== undefined) say({ i, handle, agent: task.agent, sender });
      if (task.delayMs > 0) await sleep(task.delayMs);
    }
    break;
  }
  case 'compact-loop': {
    // compact() a random session among `handles` and those listed for `agent`, one every delayMs
    const handles = new Set(task.handles);
    for (let i = 0; task.count === null || i < task.count; i++) {
      if (task.agent && i % task.refreshEvery === 0) {
        const listed = await attempt('list', () => store.listSessions({ agent: task.agent }));
        for (const { handle } of listed ?? []) handles.add(handle);
      }
      if (handles.size === 0) {
        await sleep(task.delayMs);
        continue;
      }
      const handle = pick([...handles]);
      const summary = `${task.tag}:${i} summary of what came before`;
      const archive = await attempt('compact', () => store.compact(handle, summary));
      if (archive !== undefined) say({ i, handle, archive, summary });
      if (task.delayMs > 0) await sleep(task.delayMs);
    }
    break;
  }
  case 'churn': {
    // Deletes the newest session of (agent, sender) and creates the next one, appends to it and
    // compacts it now and then; forever when count is null. Every line carries t0 (before the
    // call) and t1 (after it returned), microseconds on the machine-wide monotonic clock, so the
    // parent can order operations of different processes. `deleting` is printed before a delete
    // is tried, so a delete cut short by SIGKILL is known to be in doubt.
    for (let k = 0; task.count === null || k < task.count; k++) {
      const newest = await attempt('find', () => store.findLatestSession(task.agent, task.sender));
      if (newest !== undefined && newest !== null) {
        const t0 = now();
        say({ op: 'deleting', handle: newest, t0 });
        const deleted = await attempt('delete', () => store.deleteSession(newest), { handle: newest, t0 });
        if (deleted !== undefined) say({ op: 'delete', handle: newest, deleted, t0, t1: now() });
      }
      const conv = `${task.tag}#${k}`;
      const t0 = now();
      const handle = await attempt('create', () => store.createSession(task.agent, task.sender), { t0 });
      if (handle === undefined) continue;
      say({ op: 'create', handle, agent: task.agent, sender: task.sender, conv, t0, t1: now() });
      const snapshot = await attempt('load', () => store.loadSession(handle), { handle, t0: now() });
      const born = snapshot?.meta.created_at ?? '?';
      if (born !== '?') say({ op: 'born', handle, born });
      const batches = 1 + Math.floor(Math.random() * task.batches);
      for (let b = 0; b < batches; b++) {
        const kind = task.eventsEvery > 0 && b % task.eventsEvery === task.eventsEvery - 1 ? 'event' : 'entry';
        const size = 1 + Math.floor(Math.random() * task.maxBatch);
        const items = batchItems(`${convTag(handle, born, conv)} by=${task.tag}:${k}:${b}`, kind, size, task.pad);
        const a0 = now();
        const steps = await attempt('append', () => (kind === 'event' ? store.appendEvents(handle, items) : store.appendMessages(handle, items)), {
          handle,
          t0: a0,
        });
        if (steps !== undefined) say({ op: 'append', handle, kind, steps, items, t0: a0, t1: now() });
      }
      if (task.compactEvery > 0 && k % task.compactEvery === task.compactEvery - 1) {
        const summary = `${convTag(handle, born, conv)} by=${task.tag}:${k}:c summary of what came before`;
        const c0 = now();
        const archive = await attempt('compact', () => store.compact(handle, summary), { handle, t0: c0 });
        if (archive !== undefined) say({ op: 'compact', handle, archive, summary, t0: c0, t1: now() });
      }
      if (task.delayMs > 0) await sleep(task.delayMs);
    }
    break;
  }
  case 'mixed': {
    await mixed(task);
    break;
  }
  default:
    throw new Error(`unknown task ${task.name}`);
}
if (store !== null) await (storeSpec.kind === 'fs' ? store.close() : (await import('./redis-spec.mjs')).closeRedisFromSpec(store));

function pick(items) {
  return items[Math.floor(Math.random() * items.length)];
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A user message holding `text`, as crabtalk builds one (test/conformance/fixture.ts's userMessage). */
function userMessage(text) {
  return { message: { role: 'user', content: [{ type: 'text', text }] } };
}

/**
 * `size` messages (or events: crabtalk's user_steered) tagged `tag:j`, padded with up to `pad`
 * two-byte characters; the tagged text is the message's one text block, or the event's `content`.
 */
function batchItems(tag, kind, size, pad) {
  return Array.from({ length: size }, (_, j) => {
    const text = `${tag}:${j} ${'é'.repeat(Math.floor(Math.random() * (pad + 1)))}`;
    return kind === 'event' ? { event: 'user_steered', content: text, ts: new Date().toISOString() } : userMessage(text);
  });
}

/**
 * Runs one store call; a StepStoreError becomes an `error` line (and undefined), anything else kills the worker.
 * `extra` (e.g. the handle and t0) goes into the error line, with t1 when it has t0.
 */
async function attempt(op, call, extra) {
  try {
    return await call();
  } catch (err) {
    if (err?.name !== 'StepStoreError') throw err;
    say({ op, error: err.code, message: err.message, ...extra, ...(extra?.t0 !== undefined ? { t1: now() } : {}) });
    return undefined;
  }
}

/**
 * One op on the sessions of (pair.agent, pair.sender), where a churn worker deletes the newest and
 * creates the next: an append (every pair.compactEvery-th op: a compact) to the newest session it
 * knows half of the time, else to any it knows, so often to a stale handle (its session deleted).
 * It knows pair.handles and every session listed for the pair (refreshed every pair.refreshEvery
 * ops) and forgets none. Lines carry the handle, t0 and t1 (as in churn), errors included
 * (SESSION_NOT_FOUND for a stale handle); every message and summary carries the conversation tag.
 */
function pairWriter(pair, task) {
  const known = new Map(pair.handles.map(({ handle, born }) => [handle, born]));
  let n = 0;
  return async (i) => {
    if (n++ % pair.refreshEvery === 0 || known.size === 0) {
      const listed = await attempt('list', () => store.listSessions({ agent: pair.agent, createdBy: pair.sender }));
      for (const { handle, meta } of listed ?? []) known.set(handle, meta.created_at);
    }
    if (known.size === 0) return;
    const handles = [...known.keys()];
    const handle = Math.random() < 0.5 ? handles.reduce((a, b) => (seqOfHandle(b) > seqOfHandle(a) ? b : a)) : pick(handles);
    const tag = convTag(handle, known.get(handle), null);
    const t0 = now();
    if (pair.compactEvery > 0 && n % pair.compactEvery === 0) {
      const summary = `${tag} by=${task.tag}:${i}:c summary of what came before`;
      const archive = await attempt('compact', () => store.compact(handle, summary), { handle, t0 });
      if (archive !== undefined) say({ i, op: 'compact', handle, archive, summary, t0, t1: now() });
      return;
    }
    const kind = task.eventsEvery > 0 && n % task.eventsEvery === 0 ? 'event' : 'entry';
    const items = batchItems(`${tag} by=${task.tag}:${i}`, kind, 1 + Math.floor(Math.random() * task.maxBatch), task.pad);
    const steps = await attempt('append', () => (kind === 'event' ? store.appendEvents(handle, items) : store.appendMessages(handle, items)), {
      handle,
      t0,
    });
    if (steps !== undefined) say({ i, op: 'append', handle, kind, steps, items, t0, t1: now() });
  };
}

/** Now as crabtalk stamps it: nanoseconds and `+00:00` (the digits below the millisecond from the monotonic clock). */
function crabtalkNow() {
  const below = String(process.hrtime.bigint() % 1_000_000n).padStart(6, '0');
  return `${new Date().toISOString().slice(0, 23)}${below}+00:00`;
}

/** Microseconds on CLOCK_MONOTONIC (process.hrtime), one clock for every process on this machine. */
function now() {
  return Number(process.hrtime.bigint() / 1000n);
}

/** `{agent}_{sender}_{seq}` -> seq. */
function seqOfHandle(handle) {
  return Number(handle.slice(handle.lastIndexOf('_') + 1));
}

/**
 * What tells conversations apart, in every message and summary of the churn tasks:
 * `conv=<handle>@<created_at>` (`?` when the writer does not know it) and, from the
 * creating worker, `made=<its tag>#<creation counter>`.
 */
function convTag(handle, born, conv) {
  return `conv=${handle}@${born ?? '?'}${conv === null ? '' : ` made=${conv}`}`;
}

/**
 * The soak workload for durationMs: creates, appends (own sessions and one
 * shared session), compacts, loads, lists, reads and deletes its own
 * sessions, and reads everyone's. Prints each write it got acknowledged,
 * error lines, its RSS after warmupMs and at the end, and a `done` line
 * with the count of every operation.
 */
async function mixed(task) {
  const counts = {};
  const count = (op) => (counts[op] = (counts[op] ?? 0) + 1);
  const own = [];
  const deadline = Date.now() + task.durationMs;
  const warmedUpAt = Date.now() + task.warmupMs;
  let measured = false;
  const memory = (at) => {
    globalThis.gc?.();
    const { rss, heapUsed } = process.memoryUsage();
    say({ memory: at, rss, heapUsed, gc: typeof globalThis.gc === 'function' });
  };
  const ops = [
    ['create', 8, async () => {
      if (own.length >= task.maxOwn) return;
      const handle = await attempt('create', () => store.createSession(task.agent, task.sender));
      if (handle !== undefined) {
        own.push(handle);
        say({ op: 'create', handle });
      }
    }],
    ['append', 30, async () => {
      if (own.length === 0) return;
      const handle = pick(own);
      const kind = Math.random() < 0.2 ? 'event' : 'entry';
      const items = batchItems(`${task.tag}:${counts.append ?? 0}`, kind, 1 + Math.floor(Math.random() * task.maxBatch), task.pad);
      const steps = await attempt('append', () =>
        kind === 'event' ? store.appendEvents(handle, items) : store.appendMessages(handle, items),
      );
      if (steps !== undefined) say({ op: 'append', handle, kind, steps, items });
    }],
    ['append-shared', 10, async () => {
      const items = batchItems(`${task.tag}:shared:${counts['append-shared'] ?? 0}`, 'entry', 1, task.pad);
      const steps = await attempt('append-shared', () => store.appendMessages(task.sharedHandle, items));
      if (steps !== undefined) say({ op: 'append', handle: task.sharedHandle, kind: 'entry', steps, items });
    }],
    ['compact', 4, async () => {
      if (own.length === 0) return;
      const handle = pick(own);
      const summary = `${task.tag}:${counts.compact ?? 0} summary`;
      const archive = await attempt('compact', () => store.compact(handle, summary));
      if (archive !== undefined) say({ op: 'compact', handle, archive, summary });
    }],
    ['load-shared', 6, async () => {
      const snapshot = await attempt('load-shared', () => store.loadSession(task.sharedHandle));
      if (snapshot === null) say({ op: 'load-shared', error: 'MISSING', message: 'the shared session did not load' });
      else if (snapshot !== undefined && snapshot.diagnostics.length > 0) {
        say({ op: 'load-shared', error: 'DIAGNOSTICS', message: JSON.stringify(snapshot.diagnostics) });
      }
    }],
    ['load-any', 8, async () => {
      const listed = await attempt('list', () => store.listSessions({ limit: 50 }));
      if (listed === undefined || listed.length === 0) return;
      await attempt('load-any', () => store.loadSession(pick(listed).handle, { withArchive: true }));
    }],
    ['read-any', 8, async () => {
      const listed = await attempt('list', () => store.listSessions({ agent: task.agent, limit: 50 }));
      if (listed === undefined || listed.length === 0) return;
      await attempt('read-any', () => store.readSteps(pick(listed).handle, { after: Math.floor(Math.random() * 20), limit: 50 }));
    }],
    ['find-latest', 3, async () => {
      await attempt('find-latest', () => store.findLatestSession(task.agent, task.sender));
    }],
    ['delete', 4, async () => {
      if (own.length < 2) return;
      const [handle] = own.splice(Math.floor(Math.random() * own.length), 1);
      const deleted = await attempt('delete', () => store.deleteSession(handle));
      if (deleted !== undefined) say({ op: 'delete', handle, deleted });
    }],
  ];
  const total = ops.reduce((sum, [, weight]) => sum + weight, 0);
  while (Date.now() < deadline) {
    if (!measured && Date.now() >= warmedUpAt) {
      memory('start');
      measured = true;
    }
    let roll = Math.random() * total;
    const [name, , run] = ops.find(([, weight]) => (roll -= weight) < 0) ?? ops[0];
    count(name);
    await run();
  }
  if (!measured) memory('start');
  memory('end');
  say({ done: true, counts, own });
}
