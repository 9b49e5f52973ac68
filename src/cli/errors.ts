// Failures as the command line reports them: one line on stderr,
// `stepstore: <handle or path>: <what happened> (<CODE>); <what to do>`,
// and an exit code: 1 for a failed operation, 2 for bad usage or a refusal.

import { isStepStoreError, type ErrorCode } from '../index.js';

export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** A failure the CLI itself detects; `subject` is the handle or path it concerns. */
export class CliError extends Error {
  constructor(
    readonly subject: string,
    message: string,
    readonly hint: string,
    readonly exitCode: number = EXIT_FAILED,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export const usage = (subject: string, message: string, hint: string) => new CliError(subject, message, hint, EXIT_USAGE);

/** What to do about a library error, given how to repeat the store options (`--dir x`). */
function hintFor(code: ErrorCode, again: string): string {
  switch (code) {
    case 'SESSION_NOT_FOUND':
    case 'INVALID_HANDLE':
      return `run "stepstore list${again}" to see the session handles`;
    case 'INVALID_NAME':
      return 'agent and sender names need a letter or digit and no control characters';
    case 'INVALID_OPTION':
      return 'check the options (stepstore --help)';
    case 'INVALID_ENTRY':
    case 'STEP_TOO_LARGE':
      return 'fix the input; nothing was written';
    case 'CORRUPT_META':
      return `run "stepstore fsck${again}" to see what is damaged`;
    case 'CONFLICT':
      return 'the target holds something else under that name; choose another target or remove it first';
    case 'UNSAFE_ROOT':
      return 'fix the directory (chmod 700, owned by you) or pass another --dir';
    case 'STORE_CLOSED':
      return 'this is a bug in stepstore; please report it';
    case 'IO_ERROR':
      return again.includes('--redis')
        ? 'check that the Redis server is running and that --redis names it'
        : 'check that the path exists and that you may read and write it';
    case 'MISSING_PEER':
      return 'install the package the message names';
  }
}

/** The one stderr line for any error, and the exit code to leave with. */
export function describeError(err: unknown, subject: string, again: string): { line: string; exitCode: number } {
  if (err instanceof CliError) {
    return { line: `stepstore: ${err.subject}: ${err.message}; ${err.hint}`, exitCode: err.exitCode };
  }
  if (isStepStoreError(err)) {
    const exitCode = err.code === 'INVALID_HANDLE' || err.code === 'INVALID_NAME' || err.code === 'INVALID_OPTION' ? EXIT_USAGE : EXIT_FAILED;
    return { line: `stepstore: ${subject}: ${oneLineOf(err.message)} (${err.code}); ${hintFor(err.code, again)}`, exitCode };
  }
  const errno = (err as NodeJS.ErrnoException | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  if (typeof errno === 'string' && /^E[A-Z]+$/.test(errno)) {
    const where = (err as NodeJS.ErrnoException).path ?? subject;
    return { line: `stepstore: ${where}: ${oneLineOf(message)}; check the path and its permissions`, exitCode: EXIT_FAILED };
  }
  return {
    line: `stepstore: ${subject}: unexpected error: ${oneLineOf(message)}; this is a bug in stepstore, please report it with the command you ran`,
    exitCode: EXIT_FAILED,
  };
}

function oneLineOf(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
