// The README's "What each level syncs" table and the code's SYNCS table say
// the same thing: every sync point, every level, the same yes or no.

import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DURABILITIES, SYNCS, type SyncPoint } from '../../src/backends/fs/durability.js';

const readme = fs.readFileSync(path.resolve(import.meta.dirname, '../../README.md'), 'utf8');

/** The README table as point -> level -> syncs; the point is the cell's words before the colon, camel-cased. */
function readmeTable(): Record<string, Record<string, boolean>> {
  const section = readme.slice(readme.indexOf('**What each level syncs.**'));
  const all = section.split('\n');
  const start = all.findIndex((line) => line.startsWith('|'));
  const end = all.findIndex((line, i) => i > start && !line.startsWith('|'));
  const lines = all.slice(start, end);
  const levels = lines[0]!.split('|').slice(2, -1).map((cell) => cell.trim().replace(/`/g, ''));
  const table: Record<string, Record<string, boolean>> = {};
  for (const line of lines.slice(2)) {
    const [point, ...cells] = line.split('|').slice(1, -1).map((cell) => cell.trim());
    const key = point!.split(':')[0]!.replace(/ (\w)/g, (_, c: string) => c.toUpperCase());
    table[key] = Object.fromEntries(levels.map((level, i) => [level, cells[i] === 'yes']));
  }
  return table;
}

describe('durability table', () => {
  it('the README states exactly what SYNCS decides, for every level and sync point', () => {
    const expected: Record<string, Record<string, boolean>> = {};
    for (const point of Object.keys(SYNCS.full) as SyncPoint[]) {
      expected[point] = Object.fromEntries(DURABILITIES.map((level) => [level, SYNCS[level][point]]));
    }
    expect(Object.keys(expected).length).toBeGreaterThanOrEqual(5);
    expect(readmeTable()).toEqual(expected);
  });
});
