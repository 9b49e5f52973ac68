// The one error class the public API throws, and its stable codes.
// Codes never change once released; messages may. Backends map their own
// failures (errno, Redis replies) onto these codes at the seam.

export const ERROR_CODES = [
  'INVALID_NAME',
  'INVALID_HANDLE',
  'INVALID_ENTRY',
  'INVALID_OPTION',
  'STEP_TOO_LARGE',
  'SESSION_NOT_FOUND',
  'CORRUPT_META',
  'CONFLICT',
  'UNSAFE_ROOT',
  'STORE_CLOSED',
  'IO_ERROR',
  'MISSING_PEER',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class StepStoreError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StepStoreError';
    this.code = code;
  }
}

export function isStepStoreError(err: unknown, code?: ErrorCode): err is StepStoreError {
  return err instanceof StepStoreError && (code === undefined || err.code === code);
}

// Constructors for the errors raised in more than one place, so each reads the same everywhere.

export function sessionNotFound(handle: string): StepStoreError {
  return new StepStoreError('SESSION_NOT_FOUND', `no session ${handle}`);
}

/** A handle whose session was deleted, asked to name another conversation (importSession). */
export function handleDeleted(handle: string): StepStoreError {
  return new StepStoreError('CONFLICT', `${handle} was deleted, and a handle never names another conversation`);
}

/** An optional peer package (`redis`, a framework an adapter plugs into) that is not installed. */
export function missingPeer(pkg: string, entryPoint: string, cause: unknown): StepStoreError {
  return new StepStoreError('MISSING_PEER', `${entryPoint} needs ${pkg}, which is not installed: npm install ${pkg}`, { cause });
}

export function invalidOption(message: string): StepStoreError {
  return new StepStoreError('INVALID_OPTION', message);
}

export function invalidEntry(message: string): StepStoreError {
  return new StepStoreError('INVALID_ENTRY', message);
}

/** A failure of the storage underneath as IO_ERROR, keeping the original as `cause`; a StepStoreError passes through. */
export function ioError(err: unknown, doing: string): StepStoreError {
  if (err instanceof StepStoreError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  return new StepStoreError('IO_ERROR', `${doing} failed: ${typeof code === 'string' ? code : 'unknown error'}`, { cause: err });
}
