// The cluster contract on the embedded broker: two gateways in one process sharing a MemoryCluster; once as it runs,
// once with its brokers acting as on a Redis Cluster (no order across channels: handoffs cut each channel on its own).
import { MemoryCluster } from '../src/cluster';
import { clusterContract } from './cluster.contract';
import { startTestGateway } from './helpers/gateway';

for (const singleOrder of [true, false]) {
  clusterContract(singleOrder ? 'memory' : 'memory, cut per channel', async (env = {}) => {
    const memoryCluster = new MemoryCluster(singleOrder);
    return Promise.all([
      startTestGateway({ GW_INSTANCE_ID: 'mem-a', ...env }, { memoryCluster }),
      startTestGateway({ GW_INSTANCE_ID: 'mem-b', ...env }, { memoryCluster }),
    ]);
  });
}
