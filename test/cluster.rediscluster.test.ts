// The cluster contract over a real Redis Cluster (six redis-server processes, three masters with a replica each):
// two gateway instances with GW_REDIS_CLUSTER_NODES act as one gateway, as they do on one redis-server, session
// handoffs included (cut channel by channel, see src/hub/ChannelCut.ts).
import { describe } from 'vitest';
import { clusterContract } from './cluster.contract';
import { startTestGateway } from './helpers/gateway';
import { hasRedis, useRedisCluster } from './helpers/redisCluster';

describe.skipIf(!hasRedis)('redis cluster', () => {
  const cluster = useRedisCluster();
  clusterContract('redis cluster', (env = {}) => {
    const common = { GW_REDIS_CLUSTER_NODES: cluster.server.seeds, ...env };
    return Promise.all([startTestGateway({ GW_INSTANCE_ID: 'rc-a', ...common }), startTestGateway({ GW_INSTANCE_ID: 'rc-b', ...common })]);
  });
});
