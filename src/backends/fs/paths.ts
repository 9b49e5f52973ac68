// The filesystem layout, and the only place that joins paths:
//   <root>/<slug>/meta, <root>/<slug>/step-NNNNNN   (crabtalk's layout)
//   <root>/.stepstore/archives/<name>                (one file per archive)
//   <root>/.stepstore/trash/                         (sessions being deleted)
// Callers pass validated slugs and archive names only.

import path from 'node:path';
import type { Slug } from '../../sessions/slug.js';

export const META_FILE = 'meta';
export const STEP_PREFIX = 'step-';
/** Temp files are hidden and never start with STEP_PREFIX, so no reader mistakes one for a step. */
export const TEMP_PREFIX = '.tmp-';
export const STORE_DIR = '.stepstore';

const STEP_DIGITS = 6;
const STEP_NAME = /^step-([0-9]{1,15})$/;

export function sessionDir(root: string, slug: Slug): string {
  return path.join(root, slug);
}

export function metaPath(root: string, slug: Slug): string {
  return path.join(root, slug, META_FILE);
}

/** Canonical step name: 6 digits zero-padded, more digits (no leading zero) from 1,000,000 on. */
export function stepName(step: number): string {
  return STEP_PREFIX + String(step).padStart(STEP_DIGITS, '0');
}

export function stepPath(dir: string, step: number): string {
  return path.join(dir, stepName(step));
}

/** The number in `step-<digits>`, and whether the name is the canonical one; null for anything else. */
export function parseStepName(name: string): { step: number; canonical: boolean } | null {
  if (!name.startsWith(STEP_PREFIX)) return null;
  const match = STEP_NAME.exec(name);
  if (match === null) return null;
  const step = Number(match[1]);
  return { step, canonical: step > 0 && name === stepName(step) };
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
