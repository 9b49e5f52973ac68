// The conformance suite: every behaviour of the public API, registered once
// per backend by that backend's test file with its own harness. Uses only the
// public API, so a second backend runs it unchanged. The heavy areas
// (child processes, a 20,000-step session) come last.

import { describe } from 'vitest';
import { appendTests } from './append.js';
import { compactTests } from './compact.js';
import { concurrencyTests } from './concurrency.js';
import { createFindTests } from './create-find.js';
import { deleteTests } from './delete.js';
import { errorTests } from './errors.js';
import type { Harness } from './harness.js';
import { historyTests } from './history.js';
import { identityTests } from './identity.js';
import { importTests } from './imports.js';
import { largeTests } from './large.js';
import { listTests } from './list.js';
import { loadTests } from './load.js';
import { metaTests } from './meta.js';
import { namingTests } from './naming.js';
import { processTests } from './processes.js';
import { pruneTests } from './prune.js';
import { repairTests } from './repair.js';
import { rootChangeTests } from './root-changes.js';
import { watchTests } from './watch.js';

export function runConformance(name: string, harness: Harness): void {
  describe(name, () => {
    namingTests(harness);
    identityTests(harness);
    createFindTests(harness);
    appendTests(harness);
    metaTests(harness);
    loadTests(harness);
    listTests(harness);
    deleteTests(harness);
    compactTests(harness);
    errorTests(harness);
    importTests(harness);
    repairTests(harness);
    concurrencyTests(harness);
    historyTests(harness);
    pruneTests(harness);
    processTests(harness);
    watchTests(harness);
    rootChangeTests(harness);
    largeTests(harness);
  });
}
