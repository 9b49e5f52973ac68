// stepstore/langgraph when another process deletes the conversation under it
// (found by a hostile review; each test failed before its fix), on the
// filesystem and on Redis. Two store instances on one storage stand for two
// processes.

import { MemorySaver, uuid6, type BaseCheckpointSaver, type Checkpoint } from '@langchain/langgraph-checkpoint';
import { describe, expect, it } from 'vitest';
import type { Store } from 'stepstore';
import { StepstoreSaver } from 'stepstore/langgraph';
import type { Harness } from '../conformance/harness.js';
import { useFixture } from '../conformance/fixture.js';
import { fsHarness } from '../helpers/fs-harness.js';
import { describeWithRedis, redisHarness } from '../helpers/redis-harness.js';

function deletedElsewhereSuite(makeHarness: () => Harness): void {
  const t = useFixture(makeHarness());
  const open = (): Promise<Store> => t.open({ messages: 'any' });

  it('a checkpoint put after another process deleted the thread keeps its unchanged channels, as MemorySaver does', async () => {
    const run = async (writer: BaseCheckpointSaver, deleter: BaseCheckpointSaver, reader: BaseCheckpointSaver) => {
      const config = { configurable: { thread_id: 'thread-3', checkpoint_ns: '' } };
      const first: Checkpoint = { v: 4, id: uuid6(-1), ts: new Date().toISOString(), channel_values: { topic: 'kept', count: 1 }, channel_versions: { topic: 1, count: 1 }, versions_seen: {} };
      const stored = await writer.put(config, first, { source: 'input', step: -1, parents: {} }, { topic: 1, count: 1 });
      await deleter.deleteThread('thread-3');
      const second: Checkpoint = { ...first, id: uuid6(-1), channel_values: { topic: 'kept', count: 2 }, channel_versions: { topic: 1, count: 2 } };
      await writer.put(stored, second, { source: 'loop', step: 0, parents: {} }, { count: 2 });
      return (await reader.getTuple({ configurable: { thread_id: 'thread-3' } }))?.checkpoint.channel_values;
    };
    const memory = new MemorySaver();
    const expected = await run(memory, memory, memory);
    expect(expected).toEqual({ topic: 'kept', count: 2 });
    const actual = await run(new StepstoreSaver(await open()), new StepstoreSaver(await open()), new StepstoreSaver(await open()));
    // The put retried into a new session finds no parent there: 'topic' (unchanged, held by the parent) must be stored with it.
    expect(actual).toEqual(expected);
  });
}

describe('stepstore/langgraph after a delete elsewhere on the filesystem', () => {
  deletedElsewhereSuite(() => fsHarness('none'));
});

describeWithRedis('stepstore/langgraph after a delete elsewhere on Redis', () => {
  deletedElsewhereSuite(() => redisHarness());
});
