// The --messages option: a store holding other message shapes than crabtalk's
// is read as it was written only when the CLI is told its mode.

import { afterEach, describe, expect, it } from 'vitest';
import { openStore } from 'stepstore';
import { parseJson, run, tempRoot } from './helpers.js';

describe('--messages', () => {
  let dispose: (() => Promise<void>) | null = null;
  afterEach(async () => {
    await dispose?.();
    dispose = null;
  });

  it("shows an 'any' store's OpenAI-style messages with --messages any, and as unreadable steps without it", async () => {
    const t = await tempRoot('messages');
    dispose = t.dispose;
    const store = await openStore({ dir: t.root, messages: 'any' });
    const handle = await store.createSession('crab', 'u');
    await store.appendMessages(handle, [{ message: { role: 'user', content: 'Hi!' } }]);
    await store.appendEvents(handle, [{ event: 'note', text: 'made-up tag' }]);
    await store.close();

    const any = parseJson(await run(['show', handle, '--all', '--json', '--messages', 'any', '--dir', t.root]));
    expect((any.steps as { kind: string }[]).map((s) => s.kind)).toEqual(['entry', 'event']);
    const crabtalk = parseJson(await run(['show', handle, '--all', '--json', '--dir', t.root]));
    expect((crabtalk.steps as { kind: string }[]).map((s) => s.kind)).toEqual(['unreadable', 'unreadable']);
    const bad = await run(['list', '--messages', 'openai', '--dir', t.root]);
    expect(bad.code).toBe(2);
  });
});
