// What the torture parts were told was done: every acknowledged step, session,
// compaction and delete, gathered from the workers' JSON lines (or the test's
// own calls); and the check that all of it is still in a store, byte for byte.

import fs from 'node:fs';
import path from 'node:path';
import type { Store } from 'stepstore';

export interface ErrorLine {
  worker: string;
  op: string;
  error: string;
  message: string;
  /** The handle the call was for, when the worker said (churn tasks). */
  handle?: string;
  /** When the call began and when its error came back (µs, machine-wide monotonic clock; churn tasks). */
  t0?: number;
  t1?: number;
}

/** Who was told an operation was done, and when (t0 before the call, t1 after; µs, `monotonicMicros`). */
export interface Ack {
  worker: string;
  t0?: number;
  t1?: number;
}

/** Microseconds on CLOCK_MONOTONIC: the clock the workers stamp their lines with (one clock per machine). */
export function monotonicMicros(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** `step-NNNNNN`, crabtalk's step file name. */
export function stepFileName(step: number): string {
  return `step-${String(step).padStart(6, '0')}`;
}

/** The archive base of a handle (src/format/archive.ts: senderSlug of the handle) for the ASCII handles the tests use. */
export function archiveBaseOf(handle: string): string {
  return handle
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
}

/** `conv=<handle>@<created_at or ?>` and `made=<creator tag>#<n>`, as the churn tasks write them (test/helpers/worker.mjs). */
export function parseConvTag(text: string): { handle: string; born: string; made: string | null } | null {
  const match = /(?:^|\s)conv=(\S+)@(\S+)(?: made=(\S+))?/.exec(text);
  return match === null ? null : { handle: match[1]!, born: match[2]!, made: match[3] ?? null };
}

export class Ledger {
  /** handle -> step -> the exact JSON text the step must hold (kept after a delete: it must be gone then). */
  readonly steps = new Map<string, Map<number, string>>();
  /** Sessions acknowledged created (or made by the test) and not deleted. */
  readonly sessions = new Set<string>();
  readonly compactions: ({ handle: string; archive: string; summary: string } & Partial<Ack>)[] = [];
  /** Sessions whose delete was acknowledged (or, tried by a killed process, was found done): their steps are gone on purpose. */
  readonly deleted = new Set<string>();
  readonly errors: ErrorLine[] = [];
  /** How many times a create gave out a handle that had been given out (or deleted) before. */
  handlesReused = 0;
  /** Each reuse, one line. */
  readonly reuses: string[] = [];
  /** Step numbers acknowledged twice (two writers told they own one step): must stay empty. */
  readonly doubles: string[] = [];
  /** Every acknowledged append batch, with its timing when the worker gave it. */
  readonly appends: ({ handle: string; steps: number[] } & Ack)[] = [];
  /** handle -> the creates that handed it out, with the creator's conversation tag (`made=`) when it gave one. */
  readonly creates = new Map<string, (Ack & { conv?: string })[]>();
  /** handle -> created_at, as its creator read it back. */
  readonly born = new Map<string, string>();
  /** handle -> every delete begun (`deleting` lines), acknowledged or not. */
  readonly deletesBegun = new Map<string, Ack[]>();
  /** handle -> its acknowledged delete. */
  readonly deletes = new Map<string, Ack>();
  /** Deletes that returned false (nothing to delete). */
  deletesRefused = 0;
  /** Deletes cut short by SIGKILL that a check found done. */
  readonly deletesFoundDone = new Set<string>();
  /** handle -> when (test clock) a check last found the session there although a delete of it had begun. */
  readonly survivedDelete = new Map<string, number>();

  get stepCount(): number {
    let n = 0;
    for (const steps of this.steps.values()) n += steps.size;
    return n;
  }

  addSteps(handle: string, numbers: number[], items: unknown[], ack: Ack = { worker: 'test' }): void {
    let steps = this.steps.get(handle);
    if (steps === undefined) this.steps.set(handle, (steps = new Map()));
    numbers.forEach((step, i) => {
      if (steps.has(step)) this.doubles.push(`${handle} step ${step}`);
      steps.set(step, JSON.stringify(items[i]));
    });
    this.appends.push({ handle, steps: numbers, ...ack });
  }

  /** Deletes begun and neither acknowledged nor found done: the session may be there or not. */
  inDoubt(): string[] {
    return [...this.deletesBegun.keys()].filter((handle) => !this.deleted.has(handle));
  }

  /** When the first delete of `handle` began (µs), if one did. */
  deleteBegan(handle: string): number | undefined {
    const begun = (this.deletesBegun.get(handle) ?? []).map((d) => d.t0).filter((t): t is number => t !== undefined);
    return begun.length === 0 ? undefined : Math.min(...begun);
  }

  /**
   * Takes in the lines a worker printed (see test/helpers/worker.mjs), in
   * order. A handle names one conversation forever, so a delete keeps what
   * the handle was told (it must be gone now) and a create of a handle given
   * out before counts as a reuse (after which the handle is taken as live again).
   */
  absorb(worker: string, lines: Record<string, unknown>[]): void {
    const times = (line: Record<string, unknown>): Ack => ({
      worker,
      ...(typeof line.t0 === 'number' ? { t0: line.t0 } : {}),
      ...(typeof line.t1 === 'number' ? { t1: line.t1 } : {}),
    });
    for (const line of lines) {
      if (typeof line.error === 'string') {
        this.errors.push({
          op: String(line.op),
          error: line.error,
          message: String(line.message),
          ...(typeof line.handle === 'string' ? { handle: line.handle } : {}),
          ...times(line),
        });
      } else if (Array.isArray(line.steps) && typeof line.handle === 'string') {
        this.addSteps(line.handle, line.steps as number[], line.items as unknown[], times(line));
      } else if (typeof line.archive === 'string' && typeof line.handle === 'string') {
        this.compactions.push({ handle: line.handle, archive: line.archive, summary: String(line.summary), ...times(line) });
      } else if (line.op === 'deleting' && typeof line.handle === 'string') {
        const begun = this.deletesBegun.get(line.handle) ?? [];
        this.deletesBegun.set(line.handle, [...begun, times(line)]);
      } else if (line.op === 'delete' && typeof line.handle === 'string') {
        const handle = line.handle;
        if (line.deleted !== true) {
          this.deletesRefused += 1;
          continue;
        }
        this.deleted.add(handle);
        this.sessions.delete(handle);
        this.deletes.set(handle, times(line));
        if (!this.deletesBegun.has(handle)) this.deletesBegun.set(handle, [times(line)]);
      } else if (line.op === 'born' && typeof line.handle === 'string') {
        this.born.set(line.handle, String(line.born));
      } else if (typeof line.handle === 'string' && (line.op === 'create' || typeof line.sender === 'string')) {
        const handle = line.handle;
        const before = this.creates.get(handle) ?? [];
        if (before.length > 0 || this.sessions.has(handle) || this.deleted.has(handle)) {
          this.handlesReused += 1;
          this.reuses.push(
            `${handle} handed out to ${worker} although ${before.length > 0 ? `${before.map((c) => c.worker).join(', ')} had it` : 'the test made it'}` +
              `${this.deleted.has(handle) ? ' and its session was deleted' : ''}`,
          );
        }
        this.creates.set(handle, [...before, { ...times(line), ...(typeof line.conv === 'string' ? { conv: line.conv } : {}) }]);
        this.deleted.delete(handle);
        this.sessions.add(handle);
      }
    }
  }

  /**
   * Takes the errors absorbed so far, split: SESSION_NOT_FOUND for a handle
   * whose delete had begun before the error came back is a stale handle
   * refused as it must be; everything else is unexpected.
   */
  takeErrors(): { refused: ErrorLine[]; unexpected: ErrorLine[] } {
    const refused: ErrorLine[] = [];
    const unexpected: ErrorLine[] = [];
    for (const e of this.errors.splice(0)) {
      const began = e.handle === undefined ? undefined : this.deleteBegan(e.handle);
      const stale = e.error === 'SESSION_NOT_FOUND' && began !== undefined && e.t1 !== undefined && began <= e.t1;
      (stale ? refused : unexpected).push(e);
    }
    return { refused, unexpected };
  }
}

export interface LedgerCheck {
  /** Acknowledged steps, sessions and archives looked at. */
  checked: number;
  /** What did not survive (or, exact: showed up where it does not belong), one line each: must be empty. */
  lost: string[];
  /** Exact: appends acknowledged after the delete of their session had begun (legal: they overlapped it). */
  overlapped: number;
}

/**
 * Checks that every acknowledged step is in `store` and holds exactly its JSON
 * (also byte for byte on disk when `dir` is the fs root), every created
 * session loads, and every compaction's archive and marker are there.
 * Sessions whose delete was acknowledged are skipped, unless `exact`.
 *
 * `exact` checks the whole store against the ledger, conversation by
 * conversation (a handle names one conversation forever):
 * - deletes cut short by SIGKILL are settled by looking (the session is there
 *   or not; once seen there, it may vanish only by a later delete);
 * - every acknowledged step of a live session is found exactly once in the
 *   store, at its handle and step; one of a deleted session is found nowhere;
 * - no append or compaction was acknowledged for a handle whose delete had
 *   been acknowledged before the call began, and no handle was handed out twice;
 * - every step and archive that carries a conversation tag (`conv=`, `made=`)
 *   sits in that conversation (handle, created_at and creator agree), also in
 *   what loadSession returns; deleted sessions neither load nor list;
 * - every acknowledged archive of a live session reads back as its summary and
 *   exactly one marker (in its session) names it; one of a deleted session
 *   reads as null and no marker names it; every marker's archive is readable.
 */
export async function checkLedger(
  store: Store,
  ledger: Ledger,
  dir: string | null = null,
  options: { exact?: boolean } = {},
): Promise<LedgerCheck> {
  if (options.exact === true) return checkExact(store, ledger, dir);
  const lost: string[] = [];
  let checked = 0;
  const stepsOf = new Map<string, Map<number, unknown>>();
  const readAll = async (handle: string) => {
    let steps = stepsOf.get(handle);
    if (steps === undefined) {
      try {
        steps = new Map((await store.readSteps(handle)).map((s) => [s.step, s.line]));
      } catch (err) {
        lost.push(`${handle}: readSteps failed: ${(err as Error).message}`);
        steps = new Map();
      }
      stepsOf.set(handle, steps);
    }
    return steps;
  };
  for (const [handle, acked] of ledger.steps) {
    if (ledger.deleted.has(handle)) continue;
    const steps = await readAll(handle);
    for (const [step, json] of acked) {
      checked += 1;
      if (!steps.has(step)) {
        lost.push(`${handle} step ${step}: missing`);
        continue;
      }
      if (JSON.stringify(steps.get(step)) !== json) {
        lost.push(`${handle} step ${step}: holds ${JSON.stringify(steps.get(step)).slice(0, 120)}, not ${json.slice(0, 120)}`);
        continue;
      }
      if (dir !== null) {
        const raw = fs.readFileSync(path.join(dir, handle, stepFileName(step)), 'utf8');
        if (raw !== json) lost.push(`${handle} step ${step}: the file holds ${JSON.stringify(raw.slice(0, 120))}`);
      }
    }
  }
  for (const handle of ledger.sessions) {
    if (ledger.deleted.has(handle)) continue;
    checked += 1;
    if ((await store.loadSession(handle)) === null) lost.push(`session ${handle}: does not load`);
  }
  for (const { handle, archive, summary } of ledger.compactions) {
    if (ledger.deleted.has(handle)) continue;
    checked += 1;
    const content = await store.getArchive(archive);
    if (content !== summary) lost.push(`archive ${archive}: holds ${JSON.stringify(content)}`);
    const steps = await readAll(handle);
    const marked = [...steps.values()].some((line) => (line as { archive_name?: string }).archive_name === archive);
    if (!marked) lost.push(`${handle}: no compact marker names ${archive}`);
  }
  return { checked, lost, overlapped: 0 };
}

/** The text a step carries a conversation tag in: a message's text blocks, a user_steered event's content. */
function taggedText(line: unknown): string | null {
  const { message, event, content } = line as { message?: unknown; event?: unknown; content?: unknown };
  if (message !== undefined) return messageText(message);
  return event === 'user_steered' && typeof content === 'string' ? content : null;
}

/** The text blocks of a content-block message, joined; null when it has none. */
function messageText(message: unknown): string | null {
  const content = (message as { content?: unknown } | null)?.content;
  if (!Array.isArray(content)) return null;
  const texts = content.flatMap((block: { type?: unknown; text?: unknown }) => (block?.type === 'text' && typeof block.text === 'string' ? [block.text] : []));
  return texts.length > 0 ? texts.join('') : null;
}

const clip = (text: string) => JSON.stringify(text.slice(0, 140));

async function checkExact(store: Store, ledger: Ledger, dir: string | null): Promise<LedgerCheck> {
  const lost: string[] = [];
  let checked = 0;

  // Deletes cut short by SIGKILL: done or not, by looking; a session seen after such a delete may
  // vanish later only through a delete begun after it was seen.
  const lookedAt = monotonicMicros();
  for (const handle of ledger.inDoubt()) {
    if ((await store.loadSession(handle)) !== null) {
      ledger.survivedDelete.set(handle, lookedAt);
      continue;
    }
    const seen = ledger.survivedDelete.get(handle);
    const laterDelete = (ledger.deletesBegun.get(handle) ?? []).some((d) => d.t0 !== undefined && seen !== undefined && d.t0 > seen);
    if (seen !== undefined && !laterDelete) {
      lost.push(`session ${handle}: a delete of it was cut short by SIGKILL, a check found the session still there, and now it is gone though no delete of it began since`);
    }
    ledger.deleted.add(handle);
    ledger.sessions.delete(handle);
    ledger.deletesFoundDone.add(handle);
  }

  // Reuse: a handle names one conversation forever.
  lost.push(...ledger.reuses.map((r) => `handle reused: ${r}`));

  // Everything in the store, by where it is.
  const listed = await store.listSessions();
  const metas = new Map(listed.map(({ handle, meta }) => [handle, meta]));
  const foundAt = new Map<string, string[]>(); // step JSON -> `handle step n`
  const stepsAt = new Map<string, Map<number, string>>(); // handle -> step -> JSON
  const markersOf = new Map<string, string[]>(); // archive name -> `handle step n`
  const tagged = new Set<string>(); // sessions holding conversation-tagged steps
  const place = (handle: string, step: number) => `${handle} step ${step}`;
  const checkTag = (where: string, handle: string, text: string) => {
    const tag = parseConvTag(text);
    if (tag === null) return;
    tagged.add(handle);
    const meta = metas.get(handle);
    const made = (ledger.creates.get(handle) ?? []).map((c) => c.conv).filter((c) => c !== undefined);
    if (tag.handle !== handle) lost.push(`${where}: holds ${clip(text)} of conversation ${tag.handle}, another conversation`);
    else if (tag.born !== '?' && meta !== undefined && tag.born !== meta.created_at) {
      lost.push(`${where}: holds ${clip(text)}, written to ${handle} as created at ${tag.born}, but this ${handle} was created at ${meta.created_at}`);
    } else if (tag.made !== null && made.length > 0 && !made.includes(tag.made)) {
      lost.push(`${where}: holds ${clip(text)} of creation ${tag.made}, but ${handle} was created as ${made.join(', ')}`);
    }
  };
  for (const { handle, meta } of listed) {
    if (ledger.deleted.has(handle)) {
      lost.push(`session ${handle}: deleted${ledger.deletes.has(handle) ? ' (acknowledged)' : ''}, but listed`);
    }
    const born = ledger.born.get(handle);
    if (born !== undefined && born !== meta.created_at) lost.push(`session ${handle}: created at ${born} as its creator read it, now lists created at ${meta.created_at}`);
    let records: Awaited<ReturnType<Store['readSteps']>>;
    try {
      records = await store.readSteps(handle);
    } catch (err) {
      // Listed, then deleted by nobody (every writer is dead): a listed session must read.
      lost.push(`${handle}: readSteps failed: ${(err as Error).message}`);
      continue;
    }
    const byStep = new Map<number, string>();
    stepsAt.set(handle, byStep);
    for (const { step, line } of records) {
      const json = JSON.stringify(line);
      byStep.set(step, json);
      const at = foundAt.get(json) ?? [];
      foundAt.set(json, [...at, place(handle, step)]);
      const archive = (line as { archive_name?: unknown }).archive_name;
      if (typeof archive === 'string') {
        markersOf.set(archive, [...(markersOf.get(archive) ?? []), place(handle, step)]);
        if (!archive.startsWith(`${archiveBaseOf(handle)}-`)) lost.push(`${place(handle, step)}: a marker names ${archive}, another session's archive`);
      }
      const text = taggedText(line);
      if (text !== null) checkTag(place(handle, step), handle, text);
    }
  }

  // Every acknowledged step: exactly once, where it was acknowledged; gone with its conversation.
  const expectedAt = new Map<string, Set<string>>(); // step JSON -> where live acknowledgements put it
  for (const [handle, acked] of ledger.steps) {
    if (ledger.deleted.has(handle)) continue;
    for (const [step, json] of acked) expectedAt.set(json, (expectedAt.get(json) ?? new Set()).add(place(handle, step)));
  }
  for (const [handle, acked] of ledger.steps) {
    const gone = ledger.deleted.has(handle);
    for (const [step, json] of acked) {
      checked += 1;
      const here = place(handle, step);
      const at = foundAt.get(json) ?? [];
      const expected = expectedAt.get(json) ?? new Set<string>();
      const strays = at.filter((where) => !expected.has(where));
      if (gone) {
        if (strays.length > 0) lost.push(`${here} (its session deleted since): ${clip(json)} shows up at ${strays.join(', ')}`);
        continue;
      }
      if (!at.includes(here)) {
        const instead = stepsAt.get(handle)?.get(step);
        lost.push(
          `${here}: ${clip(json)} missing` +
            (instead === undefined ? '' : `, the step holds ${clip(instead)}`) +
            (strays.length > 0 ? `; found at ${strays.join(', ')}` : ''),
        );
      } else if (strays.length > 0) {
        lost.push(`${here}: ${clip(json)} also found at ${strays.join(', ')}`);
      } else if (at.filter((where) => where === here).length > 1) {
        lost.push(`${here}: read twice`);
      }
      if (dir !== null && at.includes(here)) {
        const raw = fs.readFileSync(path.join(dir, handle, stepFileName(step)), 'utf8');
        if (raw !== json) lost.push(`${here}: the file holds ${clip(raw)}`);
      }
    }
  }

  // Nothing acknowledged for a handle after its delete was acknowledged.
  let overlapped = 0;
  const afterDelete = (what: string, handle: string, ack: Ack) => {
    const deleted = ledger.deletes.get(handle);
    const began = ledger.deleteBegan(handle);
    if (ack.t0 === undefined || ack.t1 === undefined) return;
    if (deleted?.t1 !== undefined && deleted.t1 < ack.t0) {
      lost.push(
        `${what}: acknowledged to ${ack.worker} for ${handle}, ${ack.t0 - deleted.t1} µs after its delete was acknowledged to ${deleted.worker} (a stale handle must get SESSION_NOT_FOUND)`,
      );
    } else if (began !== undefined && began < ack.t1) {
      overlapped += 1;
    }
  };
  for (const append of ledger.appends) afterDelete(`${append.handle} steps ${append.steps.join(',')}`, append.handle, append);
  for (const c of ledger.compactions) afterDelete(`archive ${c.archive}`, c.handle, c as Ack);

  // Sessions: live ones load (one conversation, tags included), deleted ones do not.
  for (const handle of ledger.sessions) {
    checked += 1;
    const snapshot = await store.loadSession(handle, { withArchive: true });
    if (snapshot === null) {
      lost.push(`session ${handle}: does not load`);
      continue;
    }
    if (!tagged.has(handle)) continue;
    const meta = metas.get(handle);
    if (meta !== undefined && snapshot.meta.created_at !== meta.created_at) {
      lost.push(`session ${handle}: loads as created at ${snapshot.meta.created_at}, lists as created at ${meta.created_at}`);
    }
    metas.set(handle, snapshot.meta);
    snapshot.history.forEach((entry, i) => {
      const text = messageText(entry.message);
      if (text !== null) checkTag(`loadSession(${handle}) history[${i}]`, handle, text);
    });
    if (typeof snapshot.archiveContent === 'string') checkTag(`loadSession(${handle}) archive ${snapshot.archive}`, handle, snapshot.archiveContent);
  }
  for (const handle of ledger.deleted) {
    checked += 1;
    const snapshot = await store.loadSession(handle);
    if (snapshot !== null) lost.push(`session ${handle}: deleted, but loads (${snapshot.history.length} entries, created at ${snapshot.meta.created_at})`);
  }

  // Archives: acknowledged ones read back with their summary, their one marker in their session; deleted ones are null.
  const acknowledgedArchives = new Set<string>();
  for (const { handle, archive, summary } of ledger.compactions) {
    checked += 1;
    acknowledgedArchives.add(archive);
    const content = await store.getArchive(archive);
    const markers = markersOf.get(archive) ?? [];
    if (ledger.deleted.has(handle)) {
      if (content !== null) lost.push(`archive ${archive} of ${handle} (deleted since): getArchive returns ${clip(content)}`);
      if (markers.length > 0) lost.push(`archive ${archive} of ${handle} (deleted since): a marker names it at ${markers.join(', ')}`);
      continue;
    }
    if (content !== summary) lost.push(`archive ${archive} of ${handle}: getArchive returns ${content === null ? 'null' : clip(content)}, not ${clip(summary)}`);
    if (markers.length !== 1 || !markers[0]!.startsWith(`${handle} step `)) {
      lost.push(`archive ${archive} of ${handle}: markers naming it at [${markers.join(', ')}], not one in ${handle}`);
    }
  }
  // Every marker in the store, acknowledged or not: its archive is there, and belongs to the marker's conversation.
  for (const [archive, markers] of markersOf) {
    if (acknowledgedArchives.has(archive)) continue;
    const content = await store.getArchive(archive);
    if (content === null) {
      lost.push(`archive ${archive}: named by the marker at ${markers.join(', ')}, but getArchive returns null`);
      continue;
    }
    for (const where of markers) checkTag(`archive ${archive} (marker at ${where})`, where.slice(0, where.indexOf(' ')), content);
  }
  return { checked, lost, overlapped };
}

/** A logger that keeps what it is told, to assert that nothing was skipped or torn. */
export function recordingLogger(): { warnings: string[]; warn(message: string): void } {
  const warnings: string[] = [];
  return { warnings, warn: (message: string) => void warnings.push(message) };
}

/** Every entry of the tree under `dir` (relative paths); for scanning an fs root. */
export function walk(dir: string): string[] {
  const found: string[] = [];
  const visit = (rel: string) => {
    for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel === '' ? entry.name : `${rel}/${entry.name}`;
      found.push(child);
      if (entry.isDirectory()) visit(child);
    }
  };
  visit('');
  return found;
}

/** Sets the times of everything under `dir` (and `dir`) `ms` into the past: "time passes" without waiting. */
export function age(dir: string, ms: number): void {
  const then = (Date.now() - ms) / 1000;
  // Deepest first, so no later change to a child moves a directory's mtime again.
  for (const rel of walk(dir).reverse()) fs.utimesSync(path.join(dir, rel), then, then);
  fs.utimesSync(dir, then, then);
}

/** Leftovers of interrupted writes by name (src/backends/fs/paths.ts). */
export function isLeftover(rel: string): boolean {
  const name = rel.slice(rel.lastIndexOf('/') + 1);
  return (
    name.startsWith('.tmp-') ||
    /^meta\.[0-9a-f]+$/.test(name) ||
    /\.tmp\.\d+\.\d+$/.test(name) ||
    name === '.meta.lock' ||
    /^\.stepstore\/trash\/[^/]+$/.test(rel)
  );
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const randomInt = (below: number) => Math.floor(Math.random() * below);
