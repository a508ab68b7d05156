// The cluster contract over a real Redis Cluster (six redis-server processes, three masters with a replica each):
// two gateway instances with GW_REDIS_CLUSTER_NODES act as one gateway, as they do on one redis-server. Sessions do not
// move between instances on a cluster yet (issue 17): the contract's handoff cases are skipped, and what a client sees
// instead is asserted here.
import { describe, expect, it } from 'vitest';
import { clusterContract } from './cluster.contract';
import { startTestGateway } from './helpers/gateway';
import { hasRedis, useRedisCluster } from './helpers/redisCluster';

describe.skipIf(!hasRedis)('redis cluster', () => {
  const cluster = useRedisCluster();
  const startPair = (env: Record<string, string> = {}) => {
    const common = { GW_REDIS_CLUSTER_NODES: cluster.server.seeds, ...env };
    return Promise.all([startTestGateway({ GW_INSTANCE_ID: 'rc-a', ...common }), startTestGateway({ GW_INSTANCE_ID: 'rc-b', ...common })]);
  };

  clusterContract('redis cluster', startPair, { handoffs: false });

  it('a resume on the other instance starts a fresh session (resumed: false); a resume on the same instance continues it', async () => {
    const [a, b] = await startPair();
    const bob = await b.join('bob', ['g']);
    const alice = await a.connect();
    const ready = (await alice.identify(await a.token({ sub: 'alice', groups: ['g'] }), ['g'])).data as { sessionId: string; sessionToken: string };
    await bob.request('data_update', { group: 'g', payload: 'before the drop' });
    await alice.next((e) => e.type === 'data_update');
    alice.socket.terminate();
    await a.connections(1);

    const elsewhere = await b.connect();
    const fresh = await elsewhere.request('identify', { token: await b.token({ sub: 'alice', groups: ['g'] }), resume: { sessionId: ready.sessionId, sessionToken: ready.sessionToken, lastSeq: 1 } });
    expect(fresh.type).toBe('ready');
    expect(fresh.data).toMatchObject({ resumed: false });
    expect((fresh.data as { sessionId: string }).sessionId).not.toBe(ready.sessionId);
    elsewhere.socket.terminate();

    const home = await a.connect();
    const resumed = await home.request('identify', { token: await a.token({ sub: 'alice', groups: ['g'] }), resume: { sessionId: ready.sessionId, sessionToken: ready.sessionToken, lastSeq: 1 } });
    expect(resumed.data).toMatchObject({ resumed: true, sessionId: ready.sessionId });
  });
});
