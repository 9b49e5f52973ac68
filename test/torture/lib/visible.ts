// What a store on a directory shows through the public API: every listed
// session with its meta, replayed history, archive and every readable step,
// plus every archive. Used to compare "before" and "after" states, read by a
// fresh store (plain node:fs) so nothing cached in the store under test counts.

import fs from 'node:fs';
import path from 'node:path';
import { openStore, type Durability } from 'stepstore';

export interface VisibleSession {
  meta: Record<string, unknown>;
  history: unknown[];
  archive: string | null;
  archiveContent: string | null | undefined;
  steps: { step: number; line: unknown }[];
  diagnostics: { step: number; reason: string }[];
}

export interface VisibleState {
  sessions: Record<string, VisibleSession>;
  archives: Record<string, string | null>;
}

/** Drops timestamps (`*_at` keys), which differ between two runs of one script. */
export function withoutTimes(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutTimes);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .filter(([key]) => !key.endsWith('_at'))
        .map(([key, v]) => [key, withoutTimes(v)]),
    );
  }
  return value;
}

/**
 * Opens a fresh store on `root` and reads everything it shows. With
 * `stripTimes`, timestamps are dropped so that two runs of one script compare.
 */
export async function visibleState(root: string, opts: { stripTimes?: boolean; durability?: Durability } = {}): Promise<VisibleState> {
  const strip = opts.stripTimes === true ? withoutTimes : (v: unknown) => v;
  const store = await openStore({ dir: root, durability: opts.durability ?? 'none', logger: { warn() {} } });
  try {
    const sessions: Record<string, VisibleSession> = {};
    const archiveNames = new Set<string>();
    for (const { handle } of await store.listSessions()) {
      const snapshot = await store.loadSession(handle, { withArchive: true });
      if (snapshot === null) throw new Error(`listed session ${handle} does not load`);
      const steps = await store.readSteps(handle);
      for (const { line } of steps) {
        const name = (line as { archive_name?: unknown }).archive_name;
        if (typeof name === 'string') archiveNames.add(name);
      }
      sessions[handle] = {
        meta: strip(snapshot.meta) as Record<string, unknown>,
        history: snapshot.history,
        archive: snapshot.archive,
        archiveContent: snapshot.archiveContent,
        // A step's exact stored `text` holds the times that stripTimes drops from its line: leave it out then.
        steps: strip(opts.stripTimes === true ? steps.map(({ text: _text, ...step }) => step) : steps) as VisibleSession['steps'],
        diagnostics: snapshot.diagnostics,
      };
    }
    // Archive files no marker names count only when getArchive shows them (an archive whose
    // owner is deleted is gone for the API even while its file waits for repair()).
    const unnamed = new Set<string>();
    try {
      for (const name of fs.readdirSync(path.join(root, '.stepstore', 'archives'))) {
        if (/^[\p{Alphabetic}\p{N}-]+$/u.test(name) && !archiveNames.has(name)) unnamed.add(name);
      }
    } catch {
      // no archives folder yet
    }
    const archives: Record<string, string | null> = {};
    for (const name of [...archiveNames, ...unnamed].sort()) {
      const content = await store.getArchive(name);
      if (content !== null || archiveNames.has(name)) archives[name] = content;
    }
    return { sessions, archives };
  } finally {
    await store.close();
  }
}
