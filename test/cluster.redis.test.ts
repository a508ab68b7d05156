// The cluster contract over a real redis-server: two gateway instances with GW_REDIS_URL.
import { afterAll, beforeAll, beforeEach, describe } from 'vitest';
import { clusterContract } from './cluster.contract';
import { startTestGateway } from './helpers/gateway';
import { hasRedis, startRedis, stopAllRedis, type RedisServer } from './helpers/redis';

describe.skipIf(!hasRedis)('redis', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  beforeEach(async () => {
    await redis.client().flushall();
  });
  afterAll(stopAllRedis);

  clusterContract('redis', async (env = {}) => {
    const common = { GW_REDIS_URL: redis.url, ...env };
    return Promise.all([
      startTestGateway({ GW_INSTANCE_ID: 'redis-a', ...common }),
      startTestGateway({ GW_INSTANCE_ID: 'redis-b', ...common }),
    ]);
  });
});
