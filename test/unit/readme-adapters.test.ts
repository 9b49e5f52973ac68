// The README's framework adapter examples run as written: each ```js block of
// the "Framework adapters" section is run by node in a temp directory (its
// './sessions' lands there) and must end by itself, exit 0, and print what its
// `// ...` comments say it prints.

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const projectDir = path.resolve(import.meta.dirname, '../..');

function adapterExamples(): { title: string; code: string }[] {
  const readme = fs.readFileSync(path.join(projectDir, 'README.md'), 'utf8');
  const start = readme.indexOf('## Framework adapters');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
  const examples: { title: string; code: string }[] = [];
  let title = '';
  for (const block of section.split(/^```/m).map((part, i) => ({ part, i }))) {
    if (block.i % 2 === 0) {
      title = [...block.part.matchAll(/^### (.*)$/gm)].at(-1)?.[1] ?? title;
    } else if (block.part.startsWith('js\n')) examples.push({ title, code: block.part.slice(3) });
  }
  return examples;
}

/** What a line's trailing `// value` comment says it prints, when it prints something. */
function promised(code: string): string[] {
  return code
    .split('\n')
    .filter((line) => line.includes('console.log(') && line.includes('// '))
    .map((line) => {
      const comment = line.slice(line.lastIndexOf('// ') + 3).trim();
      // "value (why)" and "[ array ]: why" promise the value only.
      return /^(.*?) \(.*\)$/.exec(comment)?.[1] ?? /^(\[.*\]): /.exec(comment)?.[1] ?? comment;
    });
}

describe('README framework adapter examples', () => {
  const examples = adapterExamples();

  it('there is one per adapter', () => {
    expect(examples.map((e) => e.title)).toEqual(['OpenAI Agents JS', 'LangChain.js', 'LangGraph.js', 'Vercel AI SDK']);
  });

  it.each(examples.map((e) => [e.title, e.code]))('%s runs as written and prints what it says', async (_title, code) => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'stepstore-readme-'));
    // Inside the project, so that 'stepstore' and the frameworks resolve as in a user's project.
    const script = path.join(projectDir, `.readme-example-${process.pid}-${Date.now()}.mjs`);
    fs.writeFileSync(script, code);
    try {
      const { stdout } = await promisify(execFile)(process.execPath, [script], { cwd: work, timeout: 60_000 });
      const printed = stdout.split('\n');
      for (const expected of promised(code)) {
        expect(printed.some((line) => line.includes(expected.replace(/^\[ (.*) \]$/, '$1'))), `${expected} in\n${stdout}`).toBe(true);
      }
    } finally {
      fs.rmSync(script, { force: true });
      fs.rmSync(work, { recursive: true, force: true });
    }
  });
});
