// A new process for test/adapters/langchain.test.ts: opens the store described
// by argv[2] ({ store, task }) with { messages: 'any' } and either runs one
// turn of a RunnableWithMessageHistory chain (task 'turn': prints the answer
// and the messages the model received, in LangChain's stored form) or prints a
// conversation's history (task 'dump').

import { mapChatMessagesToStoredMessages } from '@langchain/core/messages';
import { ChatPromptTemplate, MessagesPlaceholder } from '@langchain/core/prompts';
import { RunnableLambda, RunnableWithMessageHistory } from '@langchain/core/runnables';
import { FakeListChatModel } from '@langchain/core/utils/testing';
import { StepstoreChatMessageHistory } from 'stepstore/langchain';

const { store: spec, task } = JSON.parse(process.argv[2]);

async function openFromSpec() {
  const common = { logger: { warn() {} }, messages: 'any' };
  if (spec.kind === 'fs') {
    const { openStore } = await import('stepstore');
    return openStore({ dir: spec.dir, durability: spec.durability, ...common });
  }
  const { openRedisStore } = await import('stepstore/redis');
  return openRedisStore({ url: spec.url, prefix: spec.prefix, ...common });
}

const store = await openFromSpec();
let output;
if (task.name === 'turn') {
  // The same chain as the test's own: the lambda records what the model is given.
  const received = [];
  const prompt = ChatPromptTemplate.fromMessages([['system', task.system], new MessagesPlaceholder('history'), ['human', '{question}']]);
  const recorder = RunnableLambda.from((promptValue) => {
    received.push(promptValue.toChatMessages());
    return promptValue;
  });
  const chain = new RunnableWithMessageHistory({
    runnable: prompt.pipe(recorder).pipe(new FakeListChatModel({ responses: task.responses })),
    getMessageHistory: StepstoreChatMessageHistory.factory(store, { agent: task.agent }),
    inputMessagesKey: 'question',
    historyMessagesKey: 'history',
  });
  const answer = await chain.invoke({ question: task.question }, { configurable: { sessionId: task.sessionId } });
  output = { answer: answer.content, received: mapChatMessagesToStoredMessages(received[0]) };
} else if (task.name === 'dump') {
  const history = await StepstoreChatMessageHistory.open(store, { agent: task.agent, sessionId: task.sessionId });
  const messages = await history.getMessages();
  output = {
    handle: history.handle,
    classes: messages.map((message) => message.constructor.name),
    messages: mapChatMessagesToStoredMessages(messages),
  };
} else {
  throw new Error(`unknown task ${task.name}`);
}
await store.close();
process.stdout.write(JSON.stringify(output) + '\n');
