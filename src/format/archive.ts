// Archive entries: naming (`{senderSlug(slug)}-{n}`, the README's Format
// section) and the record a backend stores. Each record names its owner session, because two sessions
// can share an archive base (`crab-tg_1_1` and `crab_tg-1_1`).

import { isPlainObject } from './json.js';
import { archiveBaseOf, parseSeq, type Slug } from './slug.js';
import { sameInstant } from './time.js';

export interface ArchiveRecord {
  /** Handle of the session that compacted into this archive. */
  owner: string;
  /** The owner's created_at, when known: with the handle, it names the one conversation that owns the archive. */
  owner_created_at?: string;
  archived_at: string;
  content: string;
}

/** `senderSlug(slug)`, cut only where `{base}-{n}` could pass 255 bytes (see archiveBaseOf). */
export function archiveBase(slug: Slug): string {
  return archiveBaseOf(slug);
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
  const { owner, owner_created_at, archived_at, content } = record;
  return JSON.stringify(owner_created_at === undefined ? { owner, archived_at, content } : { owner, owner_created_at, archived_at, content });
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
  const { owner, owner_created_at, archived_at, content } = raw;
  if (typeof owner !== 'string' || typeof archived_at !== 'string' || typeof content !== 'string') return null;
  if (owner_created_at !== undefined && typeof owner_created_at !== 'string') return null;
  return owner_created_at === undefined ? { owner, archived_at, content } : { owner, owner_created_at, archived_at, content };
}

/** True when `record` belongs to the conversation `owner` created at `createdAt` (null: unknown, the handle decides). */
export function ownedBy(record: ArchiveRecord, owner: string, createdAt: string | null): boolean {
  if (record.owner !== owner) return false;
  return record.owner_created_at === undefined || createdAt === null || sameInstant(record.owner_created_at, createdAt);
}
