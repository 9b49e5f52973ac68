// migrate(from, to): copies every session (meta, steps in order, the archives
// its markers name) between any two stores, over the public API only. It is
// idempotent and resumable: a session already in `to` keeps its steps and only
// the steps it lacks are copied; each archive is copied before its marker.

import { isPlainObject } from './format/json.js';
import type { Store } from './store.js';
import type { StepRecord } from './types.js';

export interface MigrateProgress {
  /** Sessions finished so far, and how many there are. */
  done: number;
  total: number;
  /** The session just finished and the steps copied for it in this run. */
  handle: string;
  stepsCopied: number;
}

export interface MigrateReport {
  sessions: number;
  /** Sessions that were not in `to` before this run. */
  sessionsCreated: number;
  stepsCopied: number;
  archivesCopied: number;
}

const PAGE = 500;

async function countSteps(store: Store, handle: string): Promise<number> {
  let count = 0;
  let after = 0;
  for (;;) {
    const page = await store.readSteps(handle, { after, limit: PAGE });
    if (page.length === 0) return count;
    count += page.length;
    after = page[page.length - 1]!.step;
  }
}

function markerArchive(record: StepRecord): { name: string; archivedAt: string } | null {
  const line = record.line as unknown;
  if (!isPlainObject(line) || typeof line.archive_name !== 'string' || typeof line.archived_at !== 'string') return null;
  return { name: line.archive_name, archivedAt: line.archived_at };
}

export async function migrate(
  from: Store,
  to: Store,
  opts: { onProgress?: (progress: MigrateProgress) => void } = {},
): Promise<MigrateReport> {
  const sessions = await from.listSessions();
  const report: MigrateReport = { sessions: sessions.length, sessionsCreated: 0, stepsCopied: 0, archivesCopied: 0 };
  for (const [index, { handle, meta }] of sessions.entries()) {
    if (await to.importSession(handle, meta)) report.sessionsCreated += 1;
    let present = await countSteps(to, handle);
    let stepsCopied = 0;
    let after = 0;
    for (;;) {
      const page = await from.readSteps(handle, { after, limit: PAGE });
      if (page.length === 0) break;
      after = page[page.length - 1]!.step;
      const missing = page.slice(Math.min(present, page.length));
      present = Math.max(0, present - page.length);
      let batch: StepRecord[] = [];
      for (const record of missing) {
        const marker = markerArchive(record);
        const content = marker === null ? null : await from.getArchive(marker.name);
        if (marker !== null && content !== null) {
          // The archive must be in place before the marker that names it.
          await to.importRawSteps(handle, batch.map((r) => r.text));
          batch = [];
          if (await to.importArchive(marker.name, { owner: handle, content, archived_at: marker.archivedAt })) {
            report.archivesCopied += 1;
          }
        }
        batch.push(record);
      }
      await to.importRawSteps(handle, batch.map((r) => r.text));
      stepsCopied += missing.length;
    }
    await to.updateMeta(handle, meta);
    report.stepsCopied += stepsCopied;
    opts.onProgress?.({ done: index + 1, total: sessions.length, handle, stepsCopied });
  }
  return report;
}
