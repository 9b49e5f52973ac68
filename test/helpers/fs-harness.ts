// The filesystem harness: each fixture is a fresh temp directory.
//
// Temp directories go under STEPSTORE_TEST_TMPDIR when set, else os.tmpdir()
// (the project's own disk here). The suite creates and deletes some 100,000
// files, and on ext4 without a journal file creation then stays slow for a few
// minutes (the README's On-disk format section): `STEPSTORE_TEST_TMPDIR=/dev/shm` runs it
// faster on tmpfs, where everything but fsync behaves the same.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openStore, type Durability, type Store } from 'stepstore';
import type { Fixture, Harness, StoreOverrides } from '../conformance/harness.js';
import { startWorker } from './children.js';

export const quietLogger = { warn() {} };

function tempBase(): string {
  const fromEnv = process.env.STEPSTORE_TEST_TMPDIR;
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : os.tmpdir();
}

export async function makeTempDir(label: string): Promise<string> {
  return fs.promises.mkdtemp(path.join(tempBase(), `stepstore-${label}-`));
}

export function fsHarness(durability: Durability): Harness {
  return {
    async fixture(): Promise<Fixture> {
      const base = await makeTempDir(durability);
      const dir = path.join(base, 'sessions');
      const opened: Store[] = [];
      return {
        async open(overrides: StoreOverrides = {}) {
          const store = await openStore({ dir, durability, logger: quietLogger, ...overrides });
          opened.push(store);
          return store;
        },
        workerSpec: () => ({ kind: 'fs', dir, durability }),
        async dispose() {
          await Promise.all(opened.map((store) => store.close()));
          await fs.promises.rm(base, { recursive: true, force: true });
        },
      };
    },
    plainWrites: (fixture, task) => startWorker(fixture.workerSpec(), task),
  };
}
