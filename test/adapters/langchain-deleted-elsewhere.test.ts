// stepstore/langchain when another process deletes the conversation under it
// (found by a hostile review; each test failed before its fix), on the
// filesystem and on Redis. Two store instances on one storage stand for two
// processes.

import { AIMessage, HumanMessage } from '@langchain/core/messages';
import { describe, expect, it } from 'vitest';
import type { Store } from 'stepstore';
import { StepstoreChatMessageHistory } from 'stepstore/langchain';
import type { Harness } from '../conformance/harness.js';
import { useFixture } from '../conformance/fixture.js';
import { fsHarness } from '../helpers/fs-harness.js';
import { describeWithRedis, redisHarness } from '../helpers/redis-harness.js';

function deletedElsewhereSuite(makeHarness: () => Harness): void {
  const t = useFixture(makeHarness());
  const open = (): Promise<Store> => t.open({ messages: 'any' });

  it('after another process clears (delete mode) and writes anew, getMessages shows the new messages, not []', async () => {
    const store = await open();
    const reader = await StepstoreChatMessageHistory.open(store, { agent: 'helpdesk', sessionId: 'user-2' });
    await reader.addMessages([new HumanMessage('old question'), new AIMessage('old answer')]);
    expect(await reader.getMessages()).toHaveLength(2);
    const oldHandle = reader.handle;

    const other = await StepstoreChatMessageHistory.open(await open(), { agent: 'helpdesk', sessionId: 'user-2', clear: 'delete' });
    await other.clear();
    await other.addMessage(new HumanMessage('new question'));

    // The conversation now lives in its new latest session; the long-lived history object follows it there.
    const contents = (await reader.getMessages()).map((message) => message.content);
    expect(contents).toEqual(['new question']);
    expect(reader.handle).toBe(other.handle);
    expect(reader.handle).not.toBe(oldHandle);
    // And writes after the re-resolution land in that session, seen by both.
    await reader.addMessage(new AIMessage('new answer'));
    expect((await other.getMessages()).map((message) => message.content)).toEqual(['new question', 'new answer']);
  });

  it('a history opened by { handle } keeps its handle after another process deletes it and writes anew', async () => {
    const store = await open();
    const first = await StepstoreChatMessageHistory.open(store, { agent: 'helpdesk', sessionId: 'user-4' });
    await first.addMessage(new HumanMessage('old question'));
    const pinned = await StepstoreChatMessageHistory.open(store, { handle: first.handle! });

    const other = await StepstoreChatMessageHistory.open(await open(), { agent: 'helpdesk', sessionId: 'user-4', clear: 'delete' });
    await other.clear();
    await other.addMessage(new HumanMessage('new question'));

    await expect(pinned.getMessages()).rejects.toMatchObject({ code: 'SESSION_NOT_FOUND' });
    expect(pinned.handle).toBe(first.handle);
  });
}

describe('stepstore/langchain after a delete elsewhere on the filesystem', () => {
  deletedElsewhereSuite(() => fsHarness('none'));
});

describeWithRedis('stepstore/langchain after a delete elsewhere on Redis', () => {
  deletedElsewhereSuite(() => redisHarness());
});
