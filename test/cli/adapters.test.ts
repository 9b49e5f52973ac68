// `stepstore show` of sessions written by each framework adapter, through the
// frameworks' own message objects: the conversation's text, tool calls with
// their arguments and the results must be printed, on a folder and on Redis,
// without --messages (the meta names the framework).

import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { Store } from 'stepstore';
import { StepstoreSession } from 'stepstore/openai-agents';
import { StepstoreChatMessageHistory } from 'stepstore/langchain';
import { StepstoreSaver } from 'stepstore/langgraph';
import { saveChat } from 'stepstore/ai-sdk';
import { AIMessage, HumanMessage, ToolMessage } from '@langchain/core/messages';
import { END, MessagesAnnotation, START, StateGraph } from '@langchain/langgraph';
import type { UIMessage } from 'ai';
import { openStore } from 'stepstore';
import { openRedisStore } from 'stepstore/redis';
import { quietLogger } from '../helpers/fs-harness.js';
import { REDIS_URL, deleteKeys } from '../helpers/redis-harness.js';
import { run, tempRoot } from './helpers.js';

const QUESTION = 'What is the weather in Paris?';
const RESULT = 'Sunny, 21 C';
const ANSWER = 'It is sunny in Paris.';
const CALL = 'get_weather({"city":"Paris"}) [call_1]';

/** Writes one conversation with a tool call through each adapter; returns the handles. */
async function writeAll(store: Store): Promise<Record<string, string>> {
  const agents = await StepstoreSession.open(store, { agent: 'bot', sender: 'openai' });
  await agents.addItems([
    { role: 'user', content: QUESTION },
    { type: 'function_call', callId: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}', status: 'completed' },
    { type: 'function_call_result', callId: 'call_1', name: 'get_weather', status: 'completed', output: { type: 'text', text: RESULT } },
    { role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: ANSWER }] },
  ]);
  const calls = [{ name: 'get_weather', args: { city: 'Paris' }, id: 'call_1', type: 'tool_call' as const }];
  const langchainMessages = [new HumanMessage(QUESTION), new AIMessage({ content: '', tool_calls: calls }), new ToolMessage({ content: RESULT, tool_call_id: 'call_1' }), new AIMessage(ANSWER)];
  const history = await StepstoreChatMessageHistory.open(store, { agent: 'bot', sessionId: 'langchain' });
  await history.addMessages(langchainMessages);
  const graph = new StateGraph(MessagesAnnotation)
    .addNode('agent', () => ({ messages: langchainMessages.slice(1) }))
    .addEdge(START, 'agent')
    .addEdge('agent', END)
    .compile({ checkpointer: new StepstoreSaver(store, { agent: 'bot' }) });
  await graph.invoke({ messages: [new HumanMessage(QUESTION)] }, { configurable: { thread_id: 'langgraph' } });
  const chat: UIMessage[] = [
    { id: 'm1', role: 'user', parts: [{ type: 'text', text: QUESTION }] },
    {
      id: 'm2',
      role: 'assistant',
      parts: [
        { type: 'step-start' },
        { type: 'tool-get_weather', toolCallId: 'call_1', state: 'output-available', input: { city: 'Paris' }, output: RESULT },
        { type: 'text', text: ANSWER, state: 'done' },
      ],
    },
  ];
  await saveChat(store, 'aisdk', chat, { agent: 'bot' });
  const handles: Record<string, string> = {};
  for (const sender of ['openai', 'langchain', 'langgraph', 'aisdk']) handles[sender] = (await store.findLatestSession('bot', sender))!;
  return handles;
}

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe.each(['fs', 'redis'] as const)('show of sessions written by the adapters (%s)', (backend) => {
  it('prints the text, the tool call with its arguments and the result, for every framework', async () => {
    let store: Store;
    let where: string[];
    if (backend === 'fs') {
      const temp = await tempRoot('adapters');
      cleanups.push(() => temp.dispose());
      store = await openStore({ dir: temp.root, messages: 'any', logger: quietLogger, durability: 'none' });
      where = ['--dir', temp.root];
    } else {
      const prefix = `stepstore-test:${randomBytes(6).toString('hex')}:`;
      cleanups.push(() => deleteKeys(REDIS_URL, prefix));
      store = await openRedisStore({ url: REDIS_URL, prefix, messages: 'any', logger: quietLogger });
      where = ['--redis', REDIS_URL, '--prefix', prefix];
    }
    const handles = await writeAll(store);
    await store.close();
    for (const [framework, handle] of Object.entries(handles)) {
      const result = await run([...where, 'show', handle], { env: { NO_COLOR: '1' } });
      expect(result.stderr, framework).toBe('');
      expect(result.code, framework).toBe(0);
      const out = result.stdout;
      expect(out, framework).toContain('written by');
      const at = (text: string) => {
        const index = out.indexOf(text);
        expect(index, `${framework}: ${text} in\n${out}`).toBeGreaterThanOrEqual(0);
        return index;
      };
      // In conversation order: question, call with arguments, its result, answer.
      const order = [at(QUESTION), at(CALL.replace(' [call_1]', '')), at(RESULT), at(ANSWER)];
      expect(order, framework).toEqual([...order].sort((a, b) => a - b));
      expect(out, framework).toContain('call_1');
      expect(out, framework).not.toContain('(empty)');
    }
  });
});
