// Placeholder: the Redis backend (stepstore/redis) does not exist yet.
//
// When it lands, give this group the same shape as the filesystem groups
// beside it: `setup(env)` (start or reach a local redis-server on 127.0.0.1,
// prepare data outside timing), and `scenarios(state, env)` returning
// { id, title, unit, floors: [...], variants: [...] } with run(ctx) functions
// that call ctx.start() / ctx.stop(t) around the timed part and check their
// results afterwards. A natural floor is a raw RPUSH per step with
// `appendfsync always` through the same client, beside the single-stream
// fdatasync floor; variants mirror single/many/load with openRedisStore.

export default {
  id: 'redis',
  title: 'Redis backend',
  skip: 'skipped: the Redis backend does not exist yet',
};
