// stepstore/openai-agents with other writers around: fences after an empty
// read, no session made by reading, following a conversation another process
// cleared (found by a hostile review; each test failed before its fix). Run on
// the filesystem and on Redis; several stores on one storage stand for several processes.

import type { AgentInputItem } from '@openai/agents-core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Store } from 'stepstore';
import { StepstoreSession } from 'stepstore/openai-agents';
import type { Fixture, Harness } from '../conformance/harness.js';
import { fsHarness } from '../helpers/fs-harness.js';
import { describeWithRedis, redisHarness } from '../helpers/redis-harness.js';

const user = (text: string): AgentInputItem => ({ role: 'user', content: text });
const compaction = (id: string): AgentInputItem => ({ type: 'compaction', id, encrypted_content: `enc-${id}` }) as unknown as AgentInputItem;

function otherWritersTests(harness: Harness): void {
  let fixture: Fixture;
  beforeEach(async () => {
    fixture = await harness.fixture();
  });
  afterEach(async () => {
    await fixture.dispose();
  });
  /** A new store on the same storage: another process. */
  const open = (): Promise<Store> => fixture.open({ messages: 'any' });

  it('replaceHistoryWithCompaction after a getItems() that held no entry is still fenced: another writer’s item is not hidden', async () => {
    const setup = await StepstoreSession.open(await open(), { agent: 'bot', sender: 'user-2' });
    await setup.addItems([user('one'), user('two')]);
    await setup.replaceHistoryWithCompaction([compaction('c1')]);

    // A fresh session object (a new process) reads the compacted history: only the archive's item, no entry.
    const reader = await StepstoreSession.open(await open(), { agent: 'bot', sender: 'user-2' });
    expect(await reader.getItems()).toEqual([compaction('c1')]);
    // Meanwhile another writer appends.
    const writer = await StepstoreSession.open(await open(), { agent: 'bot', sender: 'user-2' });
    await writer.addItems([user('appended by another writer')]);

    // The fence is the highest step getItems saw (the marker): the reader never saw the new item.
    await expect(reader.replaceHistoryWithCompaction([compaction('c2')])).rejects.toMatchObject({ code: 'CONFLICT' });
    const items = await (await StepstoreSession.open(await open(), { agent: 'bot', sender: 'user-2' })).getItems();
    expect(items).toEqual([compaction('c1'), user('appended by another writer')]);
    // The same after a getItems(limit) that held no entry: the highest step is recorded there too.
    expect(await reader.getItems(1)).toEqual([user('appended by another writer')]);
    await reader.replaceHistoryWithCompaction([compaction('c2')]);
    const emptyView = await StepstoreSession.open(await open(), { agent: 'bot', sender: 'user-2' });
    expect(await emptyView.getItems(1)).toEqual([compaction('c2')]);
    await writer.addItems([user('appended again')]);
    await expect(emptyView.replaceHistoryWithCompaction([compaction('c3')])).rejects.toMatchObject({ code: 'CONFLICT' });
  });

  it('opening a conversation only to read it creates no session; the first write or getSessionId() does', async () => {
    const store = await open();
    const session = await StepstoreSession.open(store, { agent: 'bot', sender: 'just-looking' });
    expect(await session.getItems()).toEqual([]);
    expect(await session.getItems(3)).toEqual([]);
    expect(await session.popItem()).toBeUndefined();
    await session.clearSession();
    expect(await store.listSessions({ agent: 'bot', createdBy: 'just-looking' })).toEqual([]);

    // getSessionId ensures the session (the SDK's contract); the first write then lands in it.
    const handle = await session.getSessionId();
    expect((await store.listSessions({ agent: 'bot', createdBy: 'just-looking' })).map((summary) => summary.handle)).toEqual([handle]);
    expect((await store.loadSession(handle))!.meta.framework).toBe('openai-agents');
    const writer = await StepstoreSession.open(await open(), { agent: 'bot', sender: 'first-write' });
    expect(await writer.getItems()).toEqual([]);
    await writer.addItems([user('hello')]);
    const [created] = await store.listSessions({ agent: 'bot', createdBy: 'first-write' });
    expect(await (await StepstoreSession.open(store, { handle: created!.handle })).getItems()).toEqual([user('hello')]);
  });

  it('a long-lived session object keeps working after another process cleared the conversation in delete mode', async () => {
    const longLived = await StepstoreSession.open(await open(), { agent: 'bot', sender: 'user-6' });
    await longLived.addItems([user('before the clear')]);
    const first = await longLived.getSessionId();
    const byHandle = await StepstoreSession.open(await open(), { handle: first });
    const other = await StepstoreSession.open(await open(), { agent: 'bot', sender: 'user-6', clear: 'delete' });
    await other.clearSession();
    // The conversation has no session now: reads see nothing and create nothing.
    expect(await longLived.getItems()).toEqual([]);
    await other.addItems([user('after the clear')]);
    // The (agent, sender) object resolves the conversation's live session again.
    expect(await longLived.getItems()).toEqual([user('after the clear')]);
    await longLived.addItems([user('next turn')]);
    expect(await longLived.getSessionId()).not.toBe(first);
    const resumed = await StepstoreSession.open(await open(), { agent: 'bot', sender: 'user-6' });
    expect(await resumed.getItems()).toEqual([user('after the clear'), user('next turn')]);
    // Opened by handle, the deleted session stays gone.
    await expect(byHandle.getItems()).rejects.toMatchObject({ code: 'SESSION_NOT_FOUND' });
    await expect(byHandle.addItems([user('lost')])).rejects.toMatchObject({ code: 'SESSION_NOT_FOUND' });
  });

  it('a long-lived session object writing first after a delete-mode clear elsewhere lands in the live session', async () => {
    const longLived = await StepstoreSession.open(await open(), { agent: 'bot', sender: 'user-7' });
    await longLived.addItems([user('before the clear')]);
    const other = await StepstoreSession.open(await open(), { agent: 'bot', sender: 'user-7', clear: 'delete' });
    await other.clearSession();
    await other.addItems([user('after the clear')]);
    // A write (not a read) is the first to meet the gone session: it is retried once in the live one.
    await longLived.addItems([user('next turn')]);
    expect(await other.getItems()).toEqual([user('after the clear'), user('next turn')]);
  });
}

describe('stepstore/openai-agents with other writers on the filesystem', () => {
  otherWritersTests(fsHarness('none'));
});

describeWithRedis('stepstore/openai-agents with other writers on Redis', () => {
  otherWritersTests(redisHarness());
});
