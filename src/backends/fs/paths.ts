// The filesystem layout, and the only place that joins paths:
//   <root>/<slug>/meta, <root>/<slug>/step-NNNNNN   (crabtalk's layout)
//   <root>/.stepstore/archives/<name>                (one file per archive)
//   <root>/.stepstore/trash/                         (sessions being deleted)
//   <root>/.stepstore/deleted/<prefix>/<seq>@<created_at>  (one empty file per deleted session: its seq is never reused)
//   <root>/.stepstore/shares/<archive>/<slug>        (one empty file per fork referencing an archive it does not own;
//                                                     `.owner-released` once its owner rewound past its marker)
//   <root>/<slug>/.rewind                            (a rewind under way: retract every step above its number)
//   <root>/<slug>/.fork                              (a fork being made: the directory is not a session yet)
//   <root>/<slug>/.fence                             (a fenced append linking its steps)
//   <root>/.stepstore/counted/<slug>                 (when its message_count was last set outright, for bumps of other processes)
// Callers pass validated slugs and archive names only.

import path from 'node:path';
import { MAX_NAME_BYTES, parseSeq, seqOf, type SessionPrefix, type Slug } from '../../format/slug.js';

export const META_FILE = 'meta';
/** Held while one process rewrites a session's meta (read, bump, replace). */
export const META_LOCK_FILE = '.meta.lock';
export const STEP_PREFIX = 'step-';
/** Temp files are hidden and never start with STEP_PREFIX, so no reader mistakes one for a step. */
export const TEMP_PREFIX = '.tmp-';
export const STORE_DIR = '.stepstore';
/** The intent of a rewind, in its session's directory, from before its first step goes until its meta is written. */
export const REWIND_FILE = '.rewind';
/** In a directory that is becoming a fork until its meta is written: repair removes such a directory. */
export const FORK_FILE = '.fork';

const STEP_DIGITS = 6;
/** Longer numbers are not steps: they could not be counted exactly. */
const MAX_STEP_DIGITS = 15;
/** The highest step number a listing counts (and so the highest an append may claim). */
export const MAX_STEP = 10 ** MAX_STEP_DIGITS - 1;

/** The directory holding `dir` (the root's own parents, when the root is created). */
export function parentDir(dir: string): string {
  return path.dirname(path.resolve(dir));
}

/** Each root, normalized and ending in a separator: a slug (no `/`, never `.` or `..`) is joined by concatenation. */
const rootHeads = new Map<string, string>();

function under(root: string): string {
  let head = rootHeads.get(root);
  if (head === undefined) {
    const normalized = path.normalize(root);
    head = normalized.endsWith(path.sep) ? normalized : normalized + path.sep;
    rootHeads.set(root, head);
  }
  return head;
}

export function sessionDir(root: string, slug: Slug): string {
  return under(root) + slug;
}

/** Listings build this path once per session: no path.join. */
export function metaPath(root: string, slug: Slug): string {
  return under(root) + slug + path.sep + META_FILE;
}

export function metaLockPath(root: string, slug: Slug): string {
  return path.join(root, slug, META_LOCK_FILE);
}

/** Canonical step name: 6 digits zero-padded, more digits (no leading zero) from 1,000,000 on. */
export function stepName(step: number): string {
  return STEP_PREFIX + String(step).padStart(STEP_DIGITS, '0');
}

export function stepPath(dir: string, step: number): string {
  return path.join(dir, stepName(step));
}

/**
 * The number in `step-<digits>`, and whether the name is the canonical one;
 * null for anything else. Hand-rolled: it runs once per entry of a listing.
 */
export function parseStepName(name: string): { step: number; canonical: boolean } | null {
  const digits = name.length - STEP_PREFIX.length;
  if (digits < 1 || digits > MAX_STEP_DIGITS || !name.startsWith(STEP_PREFIX)) return null;
  let step = 0;
  for (let i = STEP_PREFIX.length; i < name.length; i++) {
    const code = name.charCodeAt(i) - 48;
    if (code < 0 || code > 9) return null;
    step = step * 10 + code;
  }
  const canonical = step > 0 && (digits === STEP_DIGITS ? step < 10 ** STEP_DIGITS : digits > STEP_DIGITS && name.charCodeAt(5) !== 48);
  return { step, canonical };
}

/** A name a listing found inside `dir`, to act on it (repair). */
export function entryPath(dir: string, name: string): string {
  return path.join(dir, name);
}

/**
 * Leftovers of interrupted writes: our temp files (`.tmp-<pid>-<n>`, with the
 * writer's pid), write-file-atomic's (`meta.<hex>`) and crabtalk's
 * (`step-000007.tmp.<pid>.<nanos>`). Null for anything else.
 */
export function leftoverOf(name: string): { pid: number | null } | null {
  if (name.startsWith(TEMP_PREFIX)) {
    const pid = /^\.tmp-(\d+)-\d+$/.exec(name);
    return { pid: pid === null ? null : Number(pid[1]) };
  }
  if (/^meta\.[0-9a-f]+$/.test(name) || /\.tmp\.\d+\.\d+$/.test(name)) return { pid: null };
  return null;
}

let tempCounter = 0;

export function tempPath(dir: string): string {
  tempCounter += 1;
  return path.join(dir, `${TEMP_PREFIX}${process.pid}-${tempCounter}`);
}

export function storeDir(root: string): string {
  return path.join(root, STORE_DIR);
}

/** `.stepstore/` and the folders inside it leading to `names`, outermost first. */
export function storeDirChain(root: string, ...names: string[]): string[] {
  const chain = [path.join(root, STORE_DIR)];
  for (const name of names) chain.push(path.join(chain.at(-1)!, name));
  return chain;
}

export const ARCHIVES_CHAIN = ['archives'];
export const TRASH_CHAIN = ['trash'];

/** Where the deleted seqs of one (agent, sender) pair are kept. */
export function deletedChain(prefix: SessionPrefix): string[] {
  return ['deleted', prefix];
}

export function deletedDir(root: string, prefix: SessionPrefix): string {
  return path.join(root, STORE_DIR, 'deleted', prefix);
}

/** Longest encoded created_at kept in a deleted-session name; a longer one is left out (unknown). */
const MAX_ENCODED_CREATED_AT = 200;

/**
 * `<seq>@<created_at, URI-encoded>`: an empty file whose name says which
 * conversation was deleted, so marking a delete needs no data block (a full
 * disk can still delete); just `<seq>` when the created_at is unknown.
 */
export function deletedPath(root: string, prefix: SessionPrefix, slug: Slug, createdAt: string | null): string {
  const encoded = createdAt === null ? '' : encodeURIComponent(createdAt);
  const name = encoded === '' || encoded.length > MAX_ENCODED_CREATED_AT ? String(seqOf(slug)) : `${seqOf(slug)}@${encoded}`;
  return path.join(root, STORE_DIR, 'deleted', prefix, name);
}

/** The seq and created_at ('' when unknown) a deleted-session name records; null for other names. */
export function parseDeletedName(name: string): { seq: number; createdAt: string } | null {
  const at = name.indexOf('@');
  const seq = parseSeq(at < 0 ? name : name.slice(0, at));
  if (seq === null) return null;
  try {
    return { seq, createdAt: at < 0 ? '' : decodeURIComponent(name.slice(at + 1)) };
  } catch {
    return { seq, createdAt: '' };
  }
}

export function archivesDir(root: string): string {
  return path.join(root, STORE_DIR, 'archives');
}

export function archivePath(root: string, name: string): string {
  return path.join(root, STORE_DIR, 'archives', name);
}

export function trashDir(root: string): string {
  return path.join(root, STORE_DIR, 'trash');
}

/** `<slug>-<pid>-<n>`, the slug's tail cut off when the name would pass 255 bytes (handles may take all 255). */
export function trashPath(root: string, slug: Slug): string {
  tempCounter += 1;
  const suffix = `-${process.pid}-${tempCounter}`;
  // A code point cut in two decodes as U+FFFD, which no slug holds: drop it.
  const head = Buffer.from(slug).subarray(0, MAX_NAME_BYTES - suffix.length).toString('utf8').replace(/\uFFFD+$/, '');
  return path.join(root, STORE_DIR, 'trash', `${head}${suffix}`);
}

export function rewindPath(root: string, slug: Slug): string {
  return under(root) + slug + path.sep + REWIND_FILE;
}

/** Where the last count set outright of each session is kept, outside its directory (crabtalk's layout stays as it is). */
export const COUNTED_CHAIN = ['counted'];

export function countedPath(root: string, slug: Slug): string {
  return path.join(root, STORE_DIR, 'counted', slug);
}

export function countedDir(root: string): string {
  return path.join(root, STORE_DIR, 'counted');
}

/** Held by a fenced append while it links its steps: other appends that meet it take theirs back and wait. */
export function fencePath(root: string, slug: Slug): string {
  return under(root) + slug + path.sep + '.fence';
}

export function forkMarkPath(root: string, slug: Slug): string {
  return under(root) + slug + path.sep + FORK_FILE;
}

/** The folder of the sessions referencing archive `name` (forks of its owner). */
export function sharesChain(name: string): string[] {
  return ['shares', name];
}

export function sharesDir(root: string): string {
  return path.join(root, STORE_DIR, 'shares');
}

export function shareDir(root: string, name: string): string {
  return path.join(root, STORE_DIR, 'shares', name);
}

/** In an archive's shares folder: its owner retracted the marker naming it (a rewind), so only the referrers hold it. */
export function ownerReleasedPath(root: string, name: string): string {
  return path.join(root, STORE_DIR, 'shares', name, '.owner-released');
}

export function sharePath(root: string, name: string, slug: Slug): string {
  return path.join(root, STORE_DIR, 'shares', name, slug);
}
