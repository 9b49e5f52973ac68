// What repair() decides the same way on every backend: the empty report, and
// the walk over a session's steps that counts its history entries and finds
// unreadable steps and markers naming missing archives.

import type { RawStep } from './records.js';
import type { RepairReport } from '../types.js';
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
    modesFixed: [],
    indexEntriesFixed: [],
  };
}

/**
 * Reads every step of `handle` (oldest first): records unreadable ones and
 * compact markers whose archive is missing in `report`, calls `onReadable`
 * for the others, and returns how many history entries there are (the true
 * message_count).
 */
export async function checkSteps(
  handle: string,
  steps: AsyncIterable<RawStep[]>,
  archiveExists: (name: string) => Promise<boolean>,
  report: RepairReport,
  onReadable: (step: number) => void = () => undefined,
): Promise<number> {
  let messages = 0;
  const known = new Map<string, boolean>();
  for await (const slice of steps) {
    for (const raw of slice) {
      const classified = 'problem' in raw ? { kind: null, reason: raw.problem } : classifyStep(raw.text);
      if (classified.kind === null) {
        report.unreadableSteps.push({ handle, step: raw.step, reason: classified.reason });
        continue;
      }
      onReadable(raw.step);
      if (classified.kind === 'entry') messages += 1;
      if (classified.kind === 'compact') {
        const archive = (classified.line as { archive_name: string }).archive_name;
        if (!known.has(archive)) known.set(archive, await archiveExists(archive));
        if (!known.get(archive)) report.danglingMarkers.push({ handle, step: raw.step, archive });
      }
    }
  }
  return messages;
}
