// What /health reads on a real Redis Cluster: the masters answering, and a recovery told to listeners each time the
// slot map names another set of masters, even when every master kept answering (a manual failover here; in the field,
// a former master back with a stale slot map, then demoted, which loses what it took meanwhile).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { connected, hasRedis, useRedisCluster } from '../../test/helpers/redisCluster';
import { createLogger } from '../utils/logger';
import { closeRedis, createRedis, type RedisClient } from './connection';
import { watchRedis, type RedisHealth } from './health';

const log = createLogger('silent');

describe.skipIf(!hasRedis)('redis cluster health', () => {
  const cluster = useRedisCluster();
  const made: { health: RedisHealth; redis: RedisClient }[] = [];

  afterEach(async () => {
    for (const { health, redis } of made.splice(0)) {
      health.stop();
      await closeRedis(redis);
    }
  });

  it('tells its listeners once the masters changed by a manual failover, while every master kept answering', async () => {
    const redis = await connected(createRedis(cluster.server.target, 'test:health', log));
    const health = watchRedis(redis);
    made.push({ health, redis });
    const statuses: string[] = [];
    const probe = setInterval(() => statuses.push(health.status()), 50);
    let recoveries = 0;
    health.onRecovered(() => recoveries++);
    // Two probes with every master answering: the set of masters is known.
    await vi.waitFor(() => expect(statuses.filter((s) => s === 'up').length).toBeGreaterThan(40), { timeout: 10_000, interval: 100 });
    expect(recoveries).toBe(0);

    const [master] = await cluster.server.masters();
    const replicas = String(await cluster.server.nodeClient(master!.port).call('INFO', 'replication'));
    const replicaPort = Number(/slave0:ip=[^,]+,port=(\d+)/.exec(replicas)![1]);
    const before = statuses.length;
    expect(await cluster.server.nodeClient(replicaPort).call('CLUSTER', 'FAILOVER')).toBe('OK');
    await vi.waitFor(async () => expect((await cluster.server.masters()).map((m) => m.port)).toContain(replicaPort), { timeout: 10_000, interval: 100 });
    await vi.waitFor(() => expect(recoveries).toBeGreaterThan(0), { timeout: 10_000, interval: 100 });
    clearInterval(probe);
    // Told although no probe failed: the recovery came from the masters changing, not from Redis coming back.
    expect(new Set(statuses.slice(before))).toEqual(new Set(['up']));
  }, 30_000);
});
