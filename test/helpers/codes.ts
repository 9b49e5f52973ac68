// What a call threw, as a StepStoreError code: tests compare codes, never messages.
// Anything else thrown is a real failure and propagates. Recognised by name, so
// errors from src/ (unit tests) and from the built package (torture) both count.

function storeErrorCode(err: unknown): string | null {
  if (!(err instanceof Error) || err.name !== 'StepStoreError') return null;
  const { code } = err as Error & { code?: unknown };
  return typeof code === 'string' ? code : null;
}

/** The code a synchronous call threw, or null when it returned. */
export function codeOfSync(call: () => unknown): string | null {
  try {
    call();
    return null;
  } catch (err) {
    const code = storeErrorCode(err);
    if (code === null) throw err;
    return code;
  }
}

/** The code a call or promise rejected with, or 'resolved'. */
export async function codeOf(call: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof call === 'function' ? call() : call);
    return 'resolved';
  } catch (err) {
    const code = storeErrorCode(err);
    if (code === null) throw err;
    return code;
  }
}
