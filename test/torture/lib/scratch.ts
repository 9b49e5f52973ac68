// Scratch directories for the torture parts, and small filesystem helpers
// shared by them. The parts create and drop tens of thousands of files, so
// they work on tmpfs (/dev/shm) when it is there: on ext4 without a journal
// mass deletion slows later file creation for minutes (the README's On-disk format section). Their
// durability claims never rest on the scratch disk: power loss is modelled
// by crash-fs.ts, faults by faulty-fs.ts.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

function scratchBase(): string {
  const fromEnv = process.env.STEPSTORE_TEST_TMPDIR;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  try {
    fs.accessSync('/dev/shm', fs.constants.W_OK);
    return '/dev/shm';
  } catch {
    return os.tmpdir();
  }
}

/** A fresh, empty directory for one iteration; remove it with dropDir. */
export function scratchDir(label: string): string {
  return fs.mkdtempSync(path.join(scratchBase(), `stepstore-torture-${label}-`));
}

export function dropDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

export interface TreeEntry {
  kind: 'dir' | 'file' | 'symlink' | 'other';
  mode: number;
  /** File contents (utf8) or symlink target. */
  content?: string;
}

/** Everything under `dir`, by relative path, without following symlinks. */
export function snapshotTree(dir: string): Map<string, TreeEntry> {
  const out = new Map<string, TreeEntry>();
  const walk = (rel: string) => {
    const abs = path.join(dir, rel);
    let stat: fs.Stats;
    try {
      stat = fs.lstatSync(abs);
    } catch {
      return;
    }
    const mode = stat.mode & 0o7777;
    if (stat.isSymbolicLink()) {
      out.set(rel, { kind: 'symlink', mode, content: fs.readlinkSync(abs) });
    } else if (stat.isDirectory()) {
      out.set(rel, { kind: 'dir', mode });
      for (const name of fs.readdirSync(abs).sort()) walk(rel === '' ? name : path.join(rel, name));
    } else if (stat.isFile()) {
      out.set(rel, { kind: 'file', mode, content: fs.readFileSync(abs, 'utf8') });
    } else {
      out.set(rel, { kind: 'other', mode });
    }
  };
  walk('');
  return out;
}

/** Plain object form of a tree snapshot, for toEqual with a readable diff. */
export function treeObject(tree: Map<string, TreeEntry>): Record<string, TreeEntry> {
  return Object.fromEntries([...tree.entries()].sort(([a], [b]) => (a < b ? -1 : 1)));
}
