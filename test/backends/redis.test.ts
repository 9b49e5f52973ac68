// The shared conformance suite on a real Redis server (REDIS_URL). Under
// CI=true an unreachable server fails the run; elsewhere these tests are
// skipped with one line saying how to run them.

import { describe, it } from 'vitest';
import { runConformance } from '../conformance/index.js';
import { REDIS_URL, redisHarness, redisReachable } from '../helpers/redis-harness.js';

const reachable = await redisReachable(REDIS_URL);

if (reachable) {
  runConformance('redis', redisHarness(REDIS_URL));
} else if (process.env.CI === 'true') {
  describe('redis', () => {
    it('has a server to test against', () => {
      throw new Error(`no Redis server at ${REDIS_URL} (CI=true): start redis-server or set REDIS_URL`);
    });
  });
} else {
  console.log(`skipping the Redis suite: no server at ${REDIS_URL}. Start redis-server or set REDIS_URL to run it.`);
  describe.skip('redis', () => {
    it('needs a Redis server', () => undefined);
  });
}
