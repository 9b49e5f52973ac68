// LangGraph's own checkpointer conformance suite (@langchain/langgraph-checkpoint-validation)
// run against StepstoreSaver on a filesystem store and on a Redis store: every
// checkpointer the suite creates gets a fresh temp directory or key prefix.
// Besides specTest (put, putWrites, getTuple, list, deleteThread), the opt-in
// getDeltaChannelHistory cases, which walk the parent chain through getTuple.

import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, test } from 'vitest';
import { openStore, type Store } from 'stepstore';
import { openRedisStore } from 'stepstore/redis';
import { StepstoreSaver } from 'stepstore/langgraph';
import { deltaChannelHistoryTests, specTest, type CheckpointSaverTestInitializer } from '@langchain/langgraph-checkpoint-validation';
import { makeTempDir, quietLogger } from '../helpers/fs-harness.js';
import { REDIS_URL, deleteKeys, describeWithRedis } from '../helpers/redis-harness.js';

// The suite calls the test API as globals (Jest style); this project's vitest does not define them.
Object.assign(globalThis, { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, test });

/** What to close and remove once the suite is done with a checkpointer. */
const cleanups = new Map<StepstoreSaver, () => Promise<void>>();

function initializer(
  name: string,
  open: () => Promise<{ store: Store; dispose: () => Promise<void> }>,
  afterAllCheckpointers?: () => Promise<void>,
): CheckpointSaverTestInitializer<StepstoreSaver> {
  return {
    checkpointerName: name,
    ...(afterAllCheckpointers === undefined ? {} : { afterAll: afterAllCheckpointers }),
    async createCheckpointer() {
      const { store, dispose } = await open();
      const saver = new StepstoreSaver(store);
      cleanups.set(saver, async () => {
        await store.close();
        await dispose();
      });
      return saver;
    },
    async destroyCheckpointer(saver) {
      await cleanups.get(saver)?.();
      cleanups.delete(saver);
    },
  };
}

describe('StepstoreSaver on the filesystem', () => {
  const fsInitializer = initializer('stepstore-fs', async () => {
    const base = await makeTempDir('langgraph-validation');
    // Durability 'none' only skips fsyncs, which this suite has no use for.
    const store = await openStore({ dir: path.join(base, 'sessions'), durability: 'none', messages: 'any', logger: quietLogger });
    return { store, dispose: () => fs.promises.rm(base, { recursive: true, force: true }) };
  });
  specTest(fsInitializer);
  deltaChannelHistoryTests(fsInitializer);
});

// Each checkpointer has its own prefix below the run's; the run's keys are removed once, at the end
// (one SCAN per checkpointer would be most of the run time).
describeWithRedis('StepstoreSaver on Redis', () => {
  const runPrefix = `stepstore-test:langgraph-validation:${randomBytes(6).toString('hex')}:`;
  let created = 0;
  const redisInitializer = initializer(
    'stepstore-redis',
    async () => {
      const store = await openRedisStore({ url: REDIS_URL, prefix: `${runPrefix}${++created}:`, messages: 'any', logger: quietLogger });
      return { store, dispose: async () => undefined };
    },
    () => deleteKeys(REDIS_URL, runPrefix),
  );
  specTest(redisInitializer);
  deltaChannelHistoryTests(redisInitializer);
});
