// The PresenceStore contract in memory: stores sharing one MemoryPresenceState act as one cluster.
import { MemoryPresenceState, MemoryPresenceStore } from './MemoryPresenceStore';
import { presenceStoreContract } from './PresenceStore.contract';
import type { PresenceEvent, PresenceStore } from './PresenceStore';

presenceStoreContract('memory', () => {
  const state = new MemoryPresenceState();
  const events: PresenceEvent[] = [];
  return {
    async store(instanceId, handlers) {
      const store: PresenceStore = new MemoryPresenceStore(instanceId, (event) => events.push(event), state);
      await store.start(handlers);
      return store;
    },
    events: async () => events.map((e) => [e.type, e.userId, e.instance, ...(e.reason ? [e.reason] : [])].join(' ')),
  };
});
