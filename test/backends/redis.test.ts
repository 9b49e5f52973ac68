// The shared conformance suite on a real Redis server (REDIS_URL). Under
// CI=true an unreachable server fails the run; elsewhere these tests are
// skipped with one line saying how to run them.

import { runConformance } from '../conformance/index.js';
import { REDIS_URL, redisHarness, withRedis } from '../helpers/redis-harness.js';

await withRedis('the Redis suite', () => runConformance('redis', redisHarness(REDIS_URL)));
