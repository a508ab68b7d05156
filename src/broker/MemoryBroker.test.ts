// The Broker contract on the embedded broker: instances sharing one MemoryBus act as one cluster.
import { afterEach } from 'vitest';
import { brokerContract } from './Broker.contract';
import { MemoryBroker, MemoryBus } from './MemoryBroker';

const made: MemoryBroker[] = [];

afterEach(async () => {
  await Promise.all(made.splice(0).map((b) => b.stop()));
});

brokerContract('memory', () => {
  const bus = new MemoryBus();
  return async (instanceId) => {
    const broker = new MemoryBroker(instanceId, bus);
    made.push(broker);
    return broker;
  };
});
