// Timestamps: the one place date-fns is imported. Metas and markers may be
// written by crabtalk (`+00:00`, nanoseconds) or by us (`Z`, milliseconds),
// so times are always compared as instants, never as strings.

import { parseISO } from 'date-fns';

/** Now as RFC 3339 UTC with milliseconds, e.g. `2026-03-25T10:00:00.123Z`. */
export function now(): string {
  return new Date().toISOString();
}

/** Milliseconds since the epoch, or NaN for an empty or unparsable timestamp. */
export function timeOf(timestamp: string): number {
  return timestamp === '' ? Number.NaN : parseISO(timestamp).getTime();
}

/** The later of two timestamps; an unparsable one loses. */
export function later(a: string, b: string): string {
  const ta = timeOf(a);
  const tb = timeOf(b);
  if (Number.isNaN(ta)) return b;
  if (Number.isNaN(tb)) return a;
  return tb > ta ? b : a;
}

/** Equal strings, or two spellings of the same instant. */
export function sameInstant(a: string, b: string): boolean {
  if (a === b) return true;
  const ta = timeOf(a);
  return !Number.isNaN(ta) && ta === timeOf(b);
}
