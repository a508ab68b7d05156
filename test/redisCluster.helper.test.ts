// The Redis Cluster helper itself: six real nodes, three masters with a replica each, every slot served, a failover
// promoting the replica, and nothing left running or on disk after stop.
import { describe, expect, it } from 'vitest';
import { hasRedis, startRedisCluster } from './helpers/redisCluster';

describe.skipIf(!hasRedis)('redis cluster helper', () => {
  it('starts three masters with a replica each, promotes a replica when a master dies, and stops everything', async () => {
    const cluster = await startRedisCluster();
    try {
      expect(cluster.nodes).toHaveLength(6);
      expect(await cluster.masters()).toHaveLength(3);
      const client = cluster.client();
      await client.set('rt:{g:demo}:probe', '1');
      expect(await client.get('rt:{g:demo}:probe')).toBe('1');
      const owner = await cluster.masterOf('rt:{g:demo}:probe');
      await owner.kill();
      await cluster.healthy();
      const promoted = await cluster.masterOf('rt:{g:demo}:probe');
      expect(promoted.port).not.toBe(owner.port);
      // Nothing is persisted: the key went with the dead master only if the replica had not copied it yet.
      await expect.poll(() => client.set('rt:{g:demo}:probe', '2'), { timeout: 10_000 }).toBe('OK');
    } finally {
      await cluster.stop();
    }
    expect(cluster.nodes.every((n) => !n.alive)).toBe(true);
  }, 90_000);
});
