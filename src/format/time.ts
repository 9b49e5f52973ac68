// Timestamps: the one place date-fns is imported. Metas and markers may be
// written by crabtalk (`+00:00`, nanoseconds) or by us (`Z`, milliseconds),
// so times are always compared as instants, to the nanosecond, never as strings.

import { parseISO } from 'date-fns/parseISO';

/** Now as RFC 3339 UTC with milliseconds, e.g. `2026-03-25T10:00:00.123Z`. */
export function now(): string {
  return new Date().toISOString();
}

/** An instant: whole seconds since the epoch, and nanoseconds within the second. */
export interface Instant {
  seconds: number;
  nanos: number;
}

/** RFC 3339 as both writers spell it; anything else goes to date-fns. */
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9})\d*)?(?:(Z)|([+-])(\d{2}):(\d{2}))$/;
const FRACTION = /^(.*T\d{2}:\d{2}:\d{2})[.,](\d+)(.*)$/;

/** The instant a timestamp names, or null for an empty or unparsable one. */
export function instantOf(timestamp: string): Instant | null {
  const m = RFC3339.exec(timestamp);
  if (m !== null) {
    const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number);
    const [fraction, zulu, sign] = [m[7], m[8], m[9]];
    const [offsetHours, offsetMinutes] = zulu === undefined ? [Number(m[10]), Number(m[11])] : [0, 0];
    const daysInMonth = new Date(Date.UTC(year!, month!, 0)).getUTCDate();
    const valid = month! >= 1 && month! <= 12 && day! >= 1 && day! <= daysInMonth && hour! < 24 && minute! < 60 &&
      second! < 60 && offsetHours < 24 && offsetMinutes < 60;
    if (!valid) return null;
    const offset = (sign === '-' ? -1 : 1) * (offsetHours * 60 + offsetMinutes);
    const ms = Date.UTC(year!, month! - 1, day!, hour!, minute! - offset, second!);
    return { seconds: ms / 1000, nanos: fraction === undefined ? 0 : Number(fraction.padEnd(9, '0')) };
  }
  if (timestamp === '') return null;
  // Other ISO 8601 shapes: date-fns parses the whole seconds (it keeps milliseconds only), we the fraction.
  const match = FRACTION.exec(timestamp);
  const ms = parseISO(match === null ? timestamp : match[1]! + match[3]!).getTime();
  if (Number.isNaN(ms)) return null;
  const nanos = match === null ? 0 : Number(match[2]!.slice(0, 9).padEnd(9, '0'));
  return { seconds: Math.floor(ms / 1000), nanos };
}

/** Negative, zero or positive as `a` is before, at or after `b`; null (unparsable) comes first. */
export function compareInstants(a: Instant | null, b: Instant | null): number {
  if (a === null || b === null) return (a === null ? 0 : 1) - (b === null ? 0 : 1);
  return a.seconds - b.seconds || a.nanos - b.nanos;
}

export function compareTimes(a: string, b: string): number {
  return compareInstants(instantOf(a), instantOf(b));
}

/** Whole milliseconds since the epoch (truncated, for scores), or NaN when unparsable. */
export function timeOf(timestamp: string): number {
  const instant = instantOf(timestamp);
  return instant === null ? Number.NaN : instant.seconds * 1000 + Math.floor(instant.nanos / 1e6);
}

/** The later of two timestamps; an unparsable one loses. */
export function later(a: string, b: string): string {
  return compareTimes(b, a) > 0 ? b : a;
}

/** Equal strings, or two spellings of the same instant. */
export function sameInstant(a: string, b: string): boolean {
  return a === b || (instantOf(a) !== null && compareTimes(a, b) === 0);
}
