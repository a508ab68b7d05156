// MemoryPresenceStore: presence in this process. Stores sharing one MemoryPresenceState act as one cluster
// (in-process instances); online/offline events go to a hook (the log). Not for several processes.
import type { SessionId, GroupName, Member, UserId } from '../types/domain';
import { PresenceRegistry } from './PresenceRegistry';
import type { PresenceEntry, PresenceEvent, PresenceStore } from './PresenceStore';

export class MemoryPresenceState {
  readonly registry = new PresenceRegistry();
  readonly users = new Map<UserId, Set<SessionId>>();
}

export class MemoryPresenceStore implements PresenceStore {
  constructor(
    private readonly instanceId: string,
    private readonly onEvent: (event: PresenceEvent) => void,
    private readonly state: MemoryPresenceState = new MemoryPresenceState(),
  ) {}

  async start(): Promise<void> {}

  async join(entry: PresenceEntry): Promise<boolean> {
    return this.state.registry.join(entry.group, entry.userId, entry.sessionId, entry.meta, entry.since);
  }

  async leave(group: GroupName, userId: UserId, sessionId: SessionId): Promise<boolean> {
    return this.state.registry.leave(group, userId, sessionId);
  }

  async members(group: GroupName): Promise<Member[]> {
    return this.state.registry.members(group);
  }

  async connect(userId: UserId, sessionId: SessionId, max: number): Promise<boolean> {
    let conns = this.state.users.get(userId);
    if (conns && conns.size >= max) return false;
    if (!conns) {
      conns = new Set();
      this.state.users.set(userId, conns);
      this.onEvent({ type: 'online', userId, instance: this.instanceId, ts: Date.now() });
    }
    conns.add(sessionId);
    return true;
  }

  async disconnect(userId: UserId, sessionId: SessionId): Promise<void> {
    const conns = this.state.users.get(userId);
    if (!conns?.delete(sessionId) || conns.size > 0) return;
    this.state.users.delete(userId);
    this.onEvent({ type: 'offline', userId, instance: this.instanceId, reason: 'closed', ts: Date.now() });
  }

  /** In-process stores share one state keyed by session id, so a move changes nothing. */
  async transfer(): Promise<void> {}

  handedOver(): void {}

  async stop(): Promise<void> {}
}
