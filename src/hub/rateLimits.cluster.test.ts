// The per-IP upgrade limit over a real Redis Cluster: rate-limiter-flexible's store is single-key (one Lua script on
// `rt:rl:conn:<ip>`), so an ioredis Cluster serves it, and every instance counts together.
import { describe, expect, it } from 'vitest';
import { connected, hasRedis, useRedisCluster } from '../../test/helpers/redisCluster';
import { closeRedis, createRedis, type RedisClient } from '../redis/connection';
import { createLogger } from '../utils/logger';
import { createConnectionRateLimiter } from './rateLimits';

const log = createLogger('silent');

describe.skipIf(!hasRedis)('connection rate limiter on a Redis Cluster', () => {
  const cluster = useRedisCluster();

  async function connect(name: string): Promise<RedisClient> {
    return connected(createRedis(cluster.server.target, name, log));
  }

  it('counts upgrade attempts per IP across instances, in the cluster, and refuses with the time left', async () => {
    const [one, two] = [await connect('limit-a'), await connect('limit-b')];
    try {
      const [a, b] = [createConnectionRateLimiter(3, one), createConnectionRateLimiter(3, two)];
      const reader = cluster.server.client();
      // IPs whose keys land on all three masters: each counted on its own.
      const masters = new Set<number>();
      const ips: string[] = [];
      for (let i = 1; masters.size < 3; i++) {
        const port = (await cluster.server.masterOf(`rt:rl:conn:10.0.0.${i}`)).port;
        if (!masters.has(port)) ips.push(`10.0.0.${i}`);
        masters.add(port);
      }
      for (const ip of ips) {
        // Two instances share the count: a memory count per instance (the insurance limiter) would admit six.
        expect(await a.admit(ip)).toEqual({ ok: true });
        expect(await b.admit(ip)).toEqual({ ok: true });
        expect(await a.admit(ip)).toEqual({ ok: true });
        const refused = await b.admit(ip);
        expect(refused.ok).toBe(false);
        expect(refused.ok ? null : refused.retryAfterMs).toBeGreaterThan(50_000);
        expect(refused.ok ? null : refused.retryAfterMs).toBeLessThanOrEqual(60_000);
        expect(await reader.get(`rt:rl:conn:${ip}`)).toBe('4');
      }
    } finally {
      await closeRedis(one);
      await closeRedis(two);
    }
  }, 30_000);
});
