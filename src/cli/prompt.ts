// Asking before deleting: a y/N question on stderr, answered on a terminal.
// Without a terminal on stdin there is nobody to ask, so deleting needs --yes.

import readline from 'node:readline';
import { usage } from './errors.js';

/** Throws the refusal (exit 2) unless there is a terminal to ask on; call it before showing what would go. */
export function assertCanAsk(what: string): void {
  if (process.stdin.isTTY !== true) {
    throw usage(what, 'refusing to delete without confirmation: stdin is not a terminal; nothing was deleted', 'pass --yes to delete without being asked');
  }
}

/**
 * Resolves true only for an answer of y or yes. Throws a refusal (exit 2)
 * when stdin is not a terminal; `what` names what would be deleted.
 */
export async function confirm(question: string, what: string): Promise<boolean> {
  assertCanAsk(what);
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  try {
    const answer = await new Promise<string | null>((resolve) => {
      rl.once('close', () => resolve(null));
      rl.question(`${question} [y/N] `, resolve);
    });
    return answer !== null && /^\s*y(es)?\s*$/i.test(answer);
  } finally {
    rl.close();
  }
}
