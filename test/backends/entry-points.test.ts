// What each entry point loads: `stepstore/redis` must not load the
// filesystem backend's dependencies, so a Redis user never pays for them.
// Each import runs in a fresh node process and reads the CommonJS module
// cache afterwards (fs-extra and write-file-atomic are CommonJS).

import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const FS_DEPENDENCIES = /node_modules\/(fs-extra|write-file-atomic)\//;

/** The fs backend's dependencies loaded by importing `specifier` in a fresh process. */
function fsDependenciesLoadedBy(specifier: string): string[] {
  const script = `
    import { createRequire } from 'node:module';
    await import(${JSON.stringify(specifier)});
    console.log(JSON.stringify(Object.keys(createRequire(import.meta.url).cache)));
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: process.cwd(), encoding: 'utf8' });
  return (JSON.parse(out) as string[]).filter((path) => FS_DEPENDENCIES.test(path));
}

describe('entry points', () => {
  it('importing stepstore loads the filesystem backend with fs-extra and write-file-atomic', () => {
    const loaded = fsDependenciesLoadedBy('stepstore');
    expect(loaded.some((path) => path.includes('/fs-extra/'))).toBe(true);
    expect(loaded.some((path) => path.includes('/write-file-atomic/'))).toBe(true);
  });

  it('importing stepstore/redis loads neither fs-extra nor write-file-atomic', () => {
    expect(fsDependenciesLoadedBy('stepstore/redis')).toEqual([]);
  });
});
