// stepstore/ai-sdk refuses a message that is not JSON (a BigInt, a cycle) with
// INVALID_ENTRY and writes nothing (it used to throw JSON.stringify's TypeError).

import fs from 'node:fs';
import type { UIMessage } from 'ai';
import { afterEach, describe, expect, it } from 'vitest';
import { StepStoreError, openStore, type Store } from 'stepstore';
import { loadChat, saveChat } from 'stepstore/ai-sdk';
import { makeTempDir } from '../helpers/fs-harness.js';

const text = (id: string, role: 'user' | 'assistant', body: string, metadata?: unknown): UIMessage =>
  ({ id, role, parts: [{ type: 'text', text: body }], ...(metadata === undefined ? {} : { metadata }) }) as UIMessage;

describe('stepstore/ai-sdk: messages that are not JSON', () => {
  let dir: string | undefined;
  const stores: Store[] = [];
  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
    if (dir !== undefined) await fs.promises.rm(dir, { recursive: true, force: true });
    dir = undefined;
  });
  const open = async (): Promise<Store> => {
    dir ??= await makeTempDir('review-ai');
    const store = await openStore({ dir, messages: 'any' });
    stores.push(store);
    return store;
  };

  it('a message that is not JSON (a BigInt in metadata) is INVALID_ENTRY, nothing written', async () => {
    const store = await open();
    const error = await saveChat(store, 'chat-1', [text('m1', 'user', 'hi', { tokens: 12n })]).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(StepStoreError);
    expect((error as StepStoreError).code).toBe('INVALID_ENTRY');
    expect(await loadChat(store, 'chat-1')).toEqual([]);
  });

  it('a message holding a cycle is INVALID_ENTRY, not a TypeError', async () => {
    const store = await open();
    const metadata: Record<string, unknown> = {};
    metadata.self = metadata;
    const error = await saveChat(store, 'chat-2', [text('m1', 'user', 'hi', metadata)]).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(StepStoreError);
    expect((error as StepStoreError).code).toBe('INVALID_ENTRY');
  });
});
