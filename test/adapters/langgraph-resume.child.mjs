// A new process resuming a LangGraph thread interrupted in another one
// (test/adapters/langgraph.test.ts): argv[2] is JSON { store, threadId, answer }
// with store { kind: 'fs', dir, durability } or { kind: 'redis', url, prefix }.
// It builds the same graph on a StepstoreSaver, resumes with Command({ resume: answer }),
// and prints one JSON line: the final state, getState and getStateHistory as it sees them.

import { AIMessage, HumanMessage } from '@langchain/core/messages';
import { Annotation, Command, END, MessagesAnnotation, START, StateGraph, interrupt } from '@langchain/langgraph';
import { openStore } from 'stepstore';
import { StepstoreSaver } from 'stepstore/langgraph';

const { store: spec, threadId, answer } = JSON.parse(process.argv[2]);
const quiet = { warn() {} };
const store =
  spec.kind === 'fs'
    ? await openStore({ dir: spec.dir, durability: spec.durability, messages: 'any', logger: quiet })
    : await (await import('stepstore/redis')).openRedisStore({ url: spec.url, prefix: spec.prefix, messages: 'any', logger: quiet });

// The graph of the test file, node for node.
const State = Annotation.Root({
  ...MessagesAnnotation.spec,
  log: Annotation({ reducer: (a, b) => a.concat(b), default: () => [] }),
  blob: Annotation(),
  numbers: Annotation(),
});
const graph = new StateGraph(State)
  .addNode('draft', (state) => ({
    messages: [new AIMessage(`draft: ${state.messages.at(-1).content}`)],
    log: ['draft'],
    blob: new Uint8Array([0, 1, 127, 128, 255]),
    numbers: [0.1 + 0.2, 2 ** 53 - 1, -1e-300, 1e21],
  }))
  .addNode('review', () => {
    const verdict = interrupt({ question: 'publish the draft?' });
    return { messages: [new HumanMessage(`review: ${verdict}`)], log: [`review:${verdict}`] };
  })
  .addNode('publish', () => ({ messages: [new AIMessage('published')], log: ['publish'] }))
  .addEdge(START, 'draft')
  .addEdge('draft', 'review')
  .addEdge('review', 'publish')
  .addEdge('publish', END)
  .compile({ checkpointer: new StepstoreSaver(store) });

const config = { configurable: { thread_id: threadId } };
const before = await graph.getState(config);
const final = await graph.invoke(new Command({ resume: answer }), config);
const after = await graph.getState(config);
const history = [];
for await (const snapshot of graph.getStateHistory(config)) history.push({ next: snapshot.next, log: snapshot.values.log ?? [] });
await store.close();

const messages = (list) => list.map((m) => ({ type: m.getType(), content: m.content }));
console.log(
  JSON.stringify({
    pendingBefore: before.next,
    interruptsBefore: before.tasks.flatMap((task) => task.interrupts.map((i) => i.value)),
    final: { messages: messages(final.messages), log: final.log, blob: Array.from(final.blob), blobIsBytes: final.blob instanceof Uint8Array, numbers: final.numbers },
    after: { next: after.next, log: after.values.log },
    history,
  }),
);
