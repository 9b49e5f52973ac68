// Replay: history after the last compact boundary. Steps arrive newest first
// and reading stops at the first boundary met, so the work done grows with the
// live tail of a session, not with its whole length.

import type { RawStep } from '../backend.js';
import type { Diagnostic, HistoryEntry, Logger, MessageMode } from '../types.js';
import { classifyStep, isBoundary } from '../format/step-line.js';

export interface Replayed {
  history: HistoryEntry[];
  /** The step number of each history entry. */
  steps: number[];
  archive: string | null;
  diagnostics: Diagnostic[];
  /** Set when replay was limited to the last entries: true when it stopped before the boundary. */
  truncated?: boolean;
}

/** Warns about a skipped step, and records it when `diagnostics` is given. */
export function skipStep(diagnostics: Diagnostic[] | null, logger: Logger, where: string, step: number, reason: string): void {
  diagnostics?.push({ step, reason });
  logger.warn(`skipping step ${step} of ${where}: ${reason}`, { session: where, step, reason });
}

export async function replay(
  slug: string,
  newestFirst: AsyncIterable<RawStep[]>,
  logger: Logger,
  mode: MessageMode,
  last?: number,
): Promise<Replayed> {
  const reversed: HistoryEntry[] = [];
  const reversedSteps: number[] = [];
  const diagnostics: Diagnostic[] = [];
  let archive: string | null = null;
  let truncated = false;
  scan: for await (const slice of newestFirst) {
    for (const raw of slice) {
      if ('problem' in raw) {
        skipStep(diagnostics, logger, slug, raw.step, raw.problem);
        continue;
      }
      const classified = classifyStep(raw.text, mode);
      if (classified.kind === null) {
        skipStep(diagnostics, logger, slug, raw.step, classified.reason);
      } else if (isBoundary(classified.kind)) {
        if (classified.kind === 'compact') archive = (classified.line as { archive_name: string }).archive_name;
        break scan;
      } else if (classified.kind === 'entry') {
        // With `last`, one entry more than wanted tells that older history exists: it is not kept.
        if (last !== undefined && reversed.length === last) {
          truncated = true;
          break scan;
        }
        reversed.push(classified.line as HistoryEntry);
        reversedSteps.push(raw.step);
      }
    }
  }
  diagnostics.reverse();
  const replayed: Replayed = { history: reversed.reverse(), steps: reversedSteps.reverse(), archive, diagnostics };
  if (last !== undefined) replayed.truncated = truncated;
  return replayed;
}
