// Opens the Redis store a child process is handed (a WorkerStoreSpec of kind
// 'redis', see test/conformance/harness.ts): through `url`, or, when the spec
// lists cluster seed URLs, through a node-redis Cluster client of its own,
// which closeRedisFromSpec closes after the store (a store never closes a
// client it was given).

const clusterClients = new WeakMap();

export async function openRedisFromSpec(spec, logger = { warn() {} }) {
  const { openRedisStore } = await import('stepstore/redis');
  if (spec.cluster === undefined) return openRedisStore({ url: spec.url, prefix: spec.prefix, logger });
  const { createCluster } = await import('redis');
  const client = createCluster({ rootNodes: spec.cluster.map((url) => ({ url })), RESP: 2 });
  client.on('error', () => {});
  await client.connect();
  const store = await openRedisStore({ client, prefix: spec.prefix, logger });
  clusterClients.set(store, client);
  return store;
}

/** Closes a store opened by openRedisFromSpec, and its Cluster client if it has one. */
export async function closeRedisFromSpec(store) {
  await store.close();
  await clusterClients.get(store)?.close();
}
