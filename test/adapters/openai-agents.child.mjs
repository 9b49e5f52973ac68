// Child process for test/adapters/openai-agents.test.ts: opens a store and a
// StepstoreSession afresh, then either runs one turn of a real @openai/agents-core
// Agent (scripted model, one function tool) or reads the session's items.
// argv[2]: JSON { store: { kind: 'fs', dir } | { kind: 'redis', url, prefix },
//   open: { agent, sender } | { handle }, task: 'turn' | 'items', input?, script? }.
// Prints one JSON line: { handle, itemsBefore, items, inputs?, added?, output? }
// (itemsBefore: getItems() at open; items: after the turn).

import { openStore } from 'stepstore';
import { StepstoreSession } from 'stepstore/openai-agents';
import { openRedisStore } from 'stepstore/redis';

const quietLogger = { warn() {} };
const { store: spec, open, task, input, script } = JSON.parse(process.argv[2]);

/** One turn of a real Agent whose Model answers each call with the next scripted output list. */
async function runTurn(session) {
  // Loaded only for a turn: reading items needs neither the SDK nor zod.
  const { Agent, Usage, run, setTracingDisabled, tool } = await import('@openai/agents-core');
  const { z } = await import('zod');
  // The default trace exporter prints to stdout, which carries this script's result.
  setTracingDisabled(true);
  const outputs = [...script];
  const inputs = [];
  const model = {
    async getResponse(request) {
      inputs.push(structuredClone(request.input));
      const output = outputs.shift();
      if (output === undefined) throw new Error('scripted model: no output left');
      return { usage: new Usage(), output, responseId: `resp_${inputs.length}` };
    },
    // eslint-disable-next-line require-yield
    async *getStreamedResponse() {
      throw new Error('scripted model: streaming is not scripted');
    },
  };
  const getWeather = tool({
    name: 'get_weather',
    description: 'The weather in a city',
    parameters: z.object({ city: z.string() }),
    execute: async ({ city }) => `Sunny in ${city}`,
  });
  const added = [];
  const addItems = session.addItems.bind(session);
  session.addItems = async (items) => {
    added.push(JSON.parse(JSON.stringify(items)));
    return addItems(items);
  };
  const agent = new Agent({ name: 'weather', instructions: 'Answer about the weather.', model, tools: [getWeather] });
  const turn = await run(agent, input, { session });
  return { inputs, added, output: turn.finalOutput };
}

const store =
  spec.kind === 'fs'
    ? await openStore({ dir: spec.dir, messages: 'any', logger: quietLogger })
    : await openRedisStore({ url: spec.url, prefix: spec.prefix, messages: 'any', logger: quietLogger });
const session = await StepstoreSession.open(store, open);
const result = { handle: await session.getSessionId(), itemsBefore: await session.getItems() };
if (task === 'turn') Object.assign(result, await runTurn(session));
result.items = await session.getItems();
await store.close();
process.stdout.write(`${JSON.stringify(result)}\n`);
