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

/** The framework packages the adapters plug into (optional peers). */
const FRAMEWORKS = /^(@langchain\/|@openai\/|ai$|ai\/)/;

/**
 * Imports `specifier` in a fresh process whose resolver refuses every
 * framework package as not installed (a user without them), and reports the
 * framework specifiers asked for and how the import ended.
 */
function importWithoutFrameworks(specifier: string): { asked: string[]; error: { name: string; code: string; message: string } | null } {
  const hooks = `
    export async function resolve(specifier, context, next) {
      if (${FRAMEWORKS}.test(specifier)) {
        console.log('asked ' + specifier);
        const err = new Error("Cannot find package '" + specifier + "' imported from " + context.parentURL);
        err.code = 'ERR_MODULE_NOT_FOUND';
        throw err;
      }
      return next(specifier, context);
    }`;
  const script = `
    import { register } from 'node:module';
    register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hooks)}));
    try {
      await import(${JSON.stringify(specifier)});
      console.log('result null');
    } catch (err) {
      console.log('result ' + JSON.stringify({ name: err.name, code: err.code, message: err.message }));
    }
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: process.cwd(), encoding: 'utf8' });
  const lines = out.trim().split('\n');
  const result = lines.find((line) => line.startsWith('result '))!.slice(7);
  return { asked: lines.filter((line) => line.startsWith('asked ')).map((line) => line.slice(6)), error: JSON.parse(result) };
}

describe('adapter entry points', () => {
  it('stepstore and stepstore/redis load no framework package', () => {
    expect(importWithoutFrameworks('stepstore')).toEqual({ asked: [], error: null });
    expect(importWithoutFrameworks('stepstore/redis')).toEqual({ asked: [], error: null });
  });

  it('an adapter whose framework is missing fails with MISSING_PEER naming the package to install', () => {
    const cases: [string, string][] = [
      ['stepstore/langchain', '@langchain/core'],
      ['stepstore/langgraph', '@langchain/langgraph-checkpoint'],
    ];
    for (const [entry, pkg] of cases) {
      const { asked, error } = importWithoutFrameworks(entry);
      expect(asked.length, entry).toBeGreaterThan(0);
      expect(error, entry).toMatchObject({ name: 'StepStoreError', code: 'MISSING_PEER' });
      expect(error!.message, entry).toContain(`npm install ${pkg}`);
    }
  });

  it('the OpenAI Agents and AI SDK adapters need their framework only for types: they load without it', () => {
    for (const entry of ['stepstore/openai-agents', 'stepstore/ai-sdk']) expect(importWithoutFrameworks(entry), entry).toEqual({ asked: [], error: null });
  });
});
