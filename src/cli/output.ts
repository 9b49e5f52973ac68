// Writing results: text or one JSON document to stdout, notes to stderr.
// Kept apart so every command prints the same way.

export function print(text = ''): void {
  process.stdout.write(`${text}\n`);
}

/** The single JSON document of a `--json` run. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** One line of a JSON Lines stream (tail, export). */
export function printJsonLine(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** Human notes that must not mix with the results on stdout (prompts, warnings, "nothing to do"). */
export function note(text: string): void {
  process.stderr.write(`${text}\n`);
}
