// The shape of src/ as the README's Architecture table states it: every
// relative import of every source file is checked against the row of the
// file that makes it, and no two folders import each other.

import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const projectDir = path.resolve(import.meta.dirname, '../..');

interface Row {
  /** Files (`src/x.ts`) and folders (`src/x/`) the row covers. */
  where: string[];
  mayImport: string[];
}

/** The Architecture table of the README, row by row. */
function architectureTable(): Row[] {
  const readme = fs.readFileSync(path.join(projectDir, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### Architecture'));
  const rows = section.split('\n').filter((line) => line.startsWith('| `src/'));
  const paths = (cell: string) => [...cell.matchAll(/`(src\/[^`]*)`/g)].map((m) => m[1]!);
  return rows.map((line) => {
    const cells = line.split(' | ');
    return { where: paths(cells[0]!), mayImport: paths(cells.at(-1)!) };
  });
}

const covers = (entry: string, file: string) => (entry.endsWith('/') ? file.startsWith(entry) : file === entry);

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(path.join(projectDir, dir), { withFileTypes: true }).flatMap((entry) => {
    const rel = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return sourceFiles(rel);
    return entry.name.endsWith('.ts') ? [rel] : [];
  });
}

/** The files under src/ that `file` imports (relative specifiers only, static or dynamic). */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(path.join(projectDir, file), 'utf8');
  const specifiers = [...text.matchAll(/(?:from\s+|import\()\s*'(\.[^']+)'/g)].map((m) => m[1]!);
  return specifiers.map((spec) => path.posix.join(path.posix.dirname(file), spec).replace(/\.js$/, '.ts'));
}

/** The folder a file counts under for the no-cycles rule: its row's first entry. */
function areaOf(rows: Row[], file: string): string {
  return rows.find((row) => row.where.some((entry) => covers(entry, file)))?.where[0] ?? file;
}

describe('architecture', () => {
  const rows = architectureTable();
  const files = sourceFiles('src');

  it('the README table covers every source file exactly once', () => {
    expect(rows.length).toBeGreaterThan(8);
    for (const file of files) {
      const matching = rows.filter((row) => row.where.some((entry) => covers(entry, file)));
      expect(matching.length, file).toBe(1);
    }
  });

  it('every import of src/ is one the README table allows', () => {
    const refused: string[] = [];
    let checked = 0;
    for (const file of files) {
      const row = rows.find((r) => r.where.some((entry) => covers(entry, file)))!;
      for (const target of importsOf(file)) {
        checked += 1;
        expect(fs.existsSync(path.join(projectDir, target)), `${file} imports ${target}`).toBe(true);
        const own = row.where.some((entry) => covers(entry, target));
        if (!own && !row.mayImport.some((entry) => covers(entry, target))) refused.push(`${file} -> ${target}`);
      }
    }
    expect(checked).toBeGreaterThan(100);
    expect(refused).toEqual([]);
  });

  it('no two areas import each other', () => {
    const edges = new Set<string>();
    for (const file of files) {
      for (const target of importsOf(file)) {
        const [from, to] = [areaOf(rows, file), areaOf(rows, target)];
        if (from !== to) edges.add(`${from} -> ${to}`);
      }
    }
    const mutual = [...edges].filter((edge) => edges.has(edge.split(' -> ').reverse().join(' -> ')));
    expect(edges.size).toBeGreaterThan(10);
    expect(mutual).toEqual([]);
  });
});
