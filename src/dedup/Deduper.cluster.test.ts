// Signal dedup over a real Redis Cluster: one window per (group, kind, user), shared by every instance, its key in the
// group's slot.
import { describe, expect, it } from 'vitest';
import { connected, hasRedis, useRedisCluster } from '../../test/helpers/redisCluster';
import { closeRedis, createRedis, type RedisClient } from '../redis/connection';
import { createLogger } from '../utils/logger';
import { RedisDeduper } from './Deduper';

const log = createLogger('silent');

describe.skipIf(!hasRedis)('RedisDeduper on a Redis Cluster', () => {
  const cluster = useRedisCluster();

  async function connect(name: string): Promise<RedisClient> {
    return connected(createRedis(cluster.server.target, name, log));
  }

  it('lets one signal of a (group, kind, user) through per window, across instances, on every master', async () => {
    const [one, two] = [await connect('dedup-a'), await connect('dedup-b')];
    try {
      const [a, b] = [new RedisDeduper(one), new RedisDeduper(two)];
      const reader = cluster.server.client();
      // Groups whose slots land on all three masters.
      const masters = new Set<number>();
      const groups: string[] = [];
      for (let i = 0; masters.size < 3; i++) {
        const port = (await cluster.server.masterOf(`rt:{g:room-${i}}:presence`)).port;
        if (!masters.has(port)) groups.push(`room-${i}`);
        masters.add(port);
      }
      for (const group of groups) {
        expect(await a.claim(group, 'typing', 'alice', 60_000)).toBe(true);
        expect(await b.claim(group, 'typing', 'alice', 60_000)).toBe(false);
        // Another kind, another user: windows of their own.
        expect(await b.claim(group, 'cursor', 'alice', 60_000)).toBe(true);
        expect(await b.claim(group, 'typing', 'bob', 60_000)).toBe(true);
        // The window is in the group's slot, on the master that holds the group's presence.
        const key = `rt:{g:${group}}:sig:typing|alice`;
        expect((await cluster.server.masterOf(key)).port).toBe((await cluster.server.masterOf(`rt:{g:${group}}:presence`)).port);
        expect(await reader.exists(key)).toBe(1);
      }
      // Once the window has passed, the next one goes through.
      expect(await a.claim(groups[0]!, 'blink', 'alice', 150)).toBe(true);
      expect(await b.claim(groups[0]!, 'blink', 'alice', 150)).toBe(false);
      await expect.poll(() => b.claim(groups[0]!, 'blink', 'alice', 60_000), { timeout: 3_000, interval: 50 }).toBe(true);
    } finally {
      await closeRedis(one);
      await closeRedis(two);
    }
  }, 30_000);
});
