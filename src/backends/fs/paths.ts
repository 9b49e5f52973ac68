// The filesystem layout, and the only place that joins paths:
//   <root>/<slug>/meta, <root>/<slug>/step-NNNNNN   (crabtalk's layout)
//   <root>/.stepstore/archives/<name>                (one file per archive)
//   <root>/.stepstore/trash/                         (sessions being deleted)
// Callers pass validated slugs and archive names only.

import path from 'node:path';
import type { Slug } from '../../format/slug.js';

export const META_FILE = 'meta';
/** Held while one process rewrites a session's meta (read, bump, replace). */
export const META_LOCK_FILE = '.meta.lock';
export const STEP_PREFIX = 'step-';
/** Temp files are hidden and never start with STEP_PREFIX, so no reader mistakes one for a step. */
export const TEMP_PREFIX = '.tmp-';
export const STORE_DIR = '.stepstore';

const STEP_DIGITS = 6;
/** Longer numbers are not steps: they could not be counted exactly. */
const MAX_STEP_DIGITS = 15;

/** The directory holding `dir` (the root's own parents, when the root is created). */
export function parentDir(dir: string): string {
  return path.dirname(path.resolve(dir));
}

export function sessionDir(root: string, slug: Slug): string {
  return path.join(root, slug);
}

export function metaPath(root: string, slug: Slug): string {
  return path.join(root, slug, META_FILE);
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

export function archivesDir(root: string): string {
  return path.join(root, STORE_DIR, 'archives');
}

export function archivePath(root: string, name: string): string {
  return path.join(root, STORE_DIR, 'archives', name);
}

export function trashDir(root: string): string {
  return path.join(root, STORE_DIR, 'trash');
}

export function trashPath(root: string, slug: Slug): string {
  tempCounter += 1;
  return path.join(root, STORE_DIR, 'trash', `${slug}-${process.pid}-${tempCounter}`);
}
