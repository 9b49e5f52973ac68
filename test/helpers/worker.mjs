// A child process for the multi-process tests: opens the store described by
// argv[2] (see test/conformance/harness.ts), runs one task, prints one JSON
// line per acknowledged operation, so a parent can check nothing acknowledged
// was lost even when it kills this process.

const { store: storeSpec, task } = JSON.parse(process.argv[2]);

async function openFromSpec(spec) {
  if (spec.kind === 'fs') {
    const { openStore } = await import('stepstore');
    return openStore({ dir: spec.dir, durability: spec.durability, logger: { warn() {} } });
  }
  const { openRedisStore } = await import('stepstore/redis');
  return openRedisStore({ url: spec.url, prefix: spec.prefix, logger: { warn() {} } });
}

const store = await openFromSpec(storeSpec);
// stdout is a pipe: on Linux writes to it are synchronous, so a line printed
// here has reached the parent even if this process is killed right after.
const say = (line) => process.stdout.write(JSON.stringify(line) + '\n');

switch (task.name) {
  case 'append': {
    // count messages, one per call, or forever when count is null
    for (let i = 0; task.count === null || i < task.count; i++) {
      const content = `${task.tag}:${i}`;
      const [step] = await store.appendMessages(task.handle, [{ message: { role: 'user', content } }]);
      say({ i, step, content });
    }
    break;
  }
  case 'append-batches': {
    // batches of 1..maxBatch messages (padded to make writes take a while), forever when count is null
    for (let i = 0; task.count === null || i < task.count; i++) {
      const size = 1 + Math.floor(Math.random() * task.maxBatch);
      const items = Array.from({ length: size }, (_, j) => ({
        message: { role: 'user', content: `${task.tag}:${i}:${j} ${'é'.repeat(Math.floor(Math.random() * task.pad))}` },
      }));
      const steps = await store.appendMessages(task.handle, items);
      say({ i, steps, items });
    }
    break;
  }
  case 'create': {
    for (let i = 0; i < task.count; i++) {
      say({ i, handle: await store.createSession(task.agent, task.sender) });
    }
    break;
  }
  default:
    throw new Error(`unknown task ${task.name}`);
}
await store.close();
