// The cluster contract on the embedded broker: two gateways in one process sharing a MemoryCluster.
import { MemoryCluster } from '../src/cluster';
import { clusterContract } from './cluster.contract';
import { startTestGateway } from './helpers/gateway';

clusterContract('memory', async (env = {}) => {
  const memoryCluster = new MemoryCluster();
  return Promise.all([
    startTestGateway({ GW_INSTANCE_ID: 'mem-a', ...env }, { memoryCluster }),
    startTestGateway({ GW_INSTANCE_ID: 'mem-b', ...env }, { memoryCluster }),
  ]);
});
