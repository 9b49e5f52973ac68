// Archive entries: naming (`{senderSlug(slug)}-{n}`, the README's Format
// section) and the record a backend stores. Each record names its owner session, because two sessions
// can share an archive base (`crab-tg_1_1` and `crab_tg-1_1`).

import { isPlainObject } from './json.js';
import { parseSeq, senderSlug, type Slug } from './slug.js';

export interface ArchiveRecord {
  /** Handle of the session that compacted into this archive. */
  owner: string;
  archived_at: string;
  content: string;
}

export function archiveBase(slug: Slug): string {
  return senderSlug(slug);
}

/** `n` when `name` is `{base}-{n}` with canonical decimal n, else null. */
export function archiveNumber(name: string, base: string): number | null {
  if (!name.startsWith(`${base}-`)) return null;
  return parseSeq(name.slice(base.length + 1));
}

/** `{base}-{n}` split into its base and n; null for names not of that form. */
export function splitArchiveName(name: string): { base: string; n: number } | null {
  const dash = name.lastIndexOf('-');
  if (dash <= 0) return null;
  const base = name.slice(0, dash);
  const n = archiveNumber(name, base);
  return n === null ? null : { base, n };
}

export function encodeArchive(record: ArchiveRecord): string {
  return JSON.stringify({ owner: record.owner, archived_at: record.archived_at, content: record.content });
}

/** Null when the text is not an archive record. */
export function decodeArchive(text: string): ArchiveRecord | null {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isPlainObject(raw)) return null;
  const { owner, archived_at, content } = raw;
  if (typeof owner !== 'string' || typeof archived_at !== 'string' || typeof content !== 'string') return null;
  return { owner, archived_at, content };
}
