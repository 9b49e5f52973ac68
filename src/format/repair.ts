// What repair() decides the same way on every backend: the empty report, and
// the walk over a session's steps that computes message_count by crabtalk's
// rule and finds unreadable steps and markers naming missing archives.

import type { RawStep } from './records.js';
import type { MessageMode, RepairReport } from '../types.js';
import { countAfter } from './bump.js';
import { classifyStep } from './step-line.js';

export function emptyReport(dryRun: boolean): RepairReport {
  return {
    dryRun,
    sessions: 0,
    leftoversRemoved: [],
    incompleteSessions: [],
    countersFixed: [],
    countersSkipped: [],
    danglingMarkers: [],
    unreadableSteps: [],
    corruptMetas: [],
    orphanArchivesRemoved: [],
    corruptArchives: [],
    looseModes: [],
    indexEntriesFixed: [],
  };
}

/**
 * Reads every step of `handle` (oldest first): records unreadable ones and
 * compact markers whose archive is missing in `report`, and returns the true
 * message_count (countAfter over the readable steps: every step has to be
 * read for those checks anyway, so the count costs no read of its own).
 */
export async function checkSteps(
  handle: string,
  steps: AsyncIterable<RawStep[]>,
  archiveExists: (name: string) => Promise<boolean>,
  report: RepairReport,
  mode: MessageMode,
): Promise<number> {
  let count = 0;
  const known = new Map<string, boolean>();
  for await (const slice of steps) {
    for (const raw of slice) {
      const classified = 'problem' in raw ? { kind: null, reason: raw.problem } : classifyStep(raw.text, mode);
      if (classified.kind === null) {
        report.unreadableSteps.push({ handle, step: raw.step, reason: classified.reason });
        continue;
      }
      count = countAfter(count, classified.kind);
      if (classified.kind === 'compact') {
        const archive = (classified.line as { archive_name: string }).archive_name;
        if (!known.has(archive)) known.set(archive, await archiveExists(archive));
        if (!known.get(archive)) report.danglingMarkers.push({ handle, step: raw.step, archive });
      }
    }
  }
  return count;
}
