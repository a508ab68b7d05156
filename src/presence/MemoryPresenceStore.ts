// MemoryPresenceStore: presence in this process. Stores sharing one MemoryPresenceState act as one cluster
// (in-process instances); online/offline events go to a hook (the log). Not for several processes.
import type { SessionId, GroupName, MemberCursor, UserId } from '../types/domain';
import { PresenceRegistry } from './PresenceRegistry';
import type { DirectoryEntry, GroupStats, MemberPage, PresenceChange, PresenceEntry, PresenceEvent, PresenceLook, PresenceStore } from './PresenceStore';

export class MemoryPresenceState {
  readonly registry = new PresenceRegistry();
  /** user → session → the instance holding it (the session directory). */
  readonly users = new Map<UserId, Map<SessionId, string>>();
  /** session → the lease of the handoff moving it. */
  readonly leases = new Map<SessionId, { lease: string; until: number }>();
}

export class MemoryPresenceStore implements PresenceStore {
  constructor(
    private readonly instanceId: string,
    private readonly onEvent: (event: PresenceEvent) => void,
    private readonly state: MemoryPresenceState = new MemoryPresenceState(),
  ) {}

  async start(): Promise<void> {}

  async join(entry: PresenceEntry): Promise<PresenceChange | null> {
    return this.state.registry.join(entry.group, entry.userId, entry.sessionId, entry, entry.since);
  }

  async update(group: GroupName, userId: UserId, sessionId: SessionId, look: PresenceLook): Promise<PresenceChange | null> {
    return this.state.registry.update(group, userId, sessionId, look);
  }

  async leave(group: GroupName, userId: UserId, sessionId: SessionId): Promise<PresenceChange | null> {
    return this.state.registry.leave(group, userId, sessionId);
  }

  async members(group: GroupName, after: MemberCursor | undefined, limit: number): Promise<MemberPage> {
    return this.state.registry.page(group, after, limit);
  }

  async stats(group: GroupName): Promise<GroupStats> {
    return this.state.registry.stats(group);
  }

  async connect(userId: UserId, sessionId: SessionId, max: number): Promise<boolean> {
    let conns = this.state.users.get(userId);
    if (conns && conns.size >= max) return false;
    if (!conns) {
      conns = new Map();
      this.state.users.set(userId, conns);
      this.onEvent({ type: 'online', userId, instance: this.instanceId, ts: Date.now() });
    }
    conns.set(sessionId, this.instanceId);
    return true;
  }

  async disconnect(userId: UserId, sessionId: SessionId): Promise<void> {
    const conns = this.state.users.get(userId);
    if (!conns?.delete(sessionId) || conns.size > 0) return;
    this.state.users.delete(userId);
    this.onEvent({ type: 'offline', userId, instance: this.instanceId, reason: 'closed', ts: Date.now() });
  }

  /** In-process stores share one state keyed by session id: only the directory entry changes hands. */
  async transfer(fromInstance: string, session: { userId: UserId; sessionId: SessionId }, _groups: GroupName[], lease: string): Promise<boolean> {
    if (this.state.users.get(session.userId)?.get(session.sessionId) === this.instanceId) return true;
    const held = this.state.leases.get(session.sessionId);
    if (held?.lease !== lease || held.until <= Date.now()) return false;
    this.state.leases.delete(session.sessionId);
    const conns = this.state.users.get(session.userId);
    if (conns?.get(session.sessionId) !== fromInstance) return false;
    conns.set(session.sessionId, this.instanceId);
    return true;
  }

  async lease(_userId: UserId, sessionId: SessionId, lease: string, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    if ((this.state.leases.get(sessionId)?.until ?? 0) > now) return false;
    this.state.leases.set(sessionId, { lease, until: now + ttlMs });
    return true;
  }

  async release(_userId: UserId, sessionId: SessionId, lease: string): Promise<void> {
    if (this.state.leases.get(sessionId)?.lease === lease) this.state.leases.delete(sessionId);
  }

  async revoke(userId: UserId, sessionId: SessionId, lease: string): Promise<boolean> {
    if (this.state.users.get(userId)?.get(sessionId) !== this.instanceId) return false;
    if (this.state.leases.get(sessionId)?.lease === lease) this.state.leases.delete(sessionId);
    return true;
  }

  async owner(userId: UserId, sessionId: SessionId): Promise<string | null> {
    return this.state.users.get(userId)?.get(sessionId) ?? null;
  }

  async sessionsOf(userId: UserId): Promise<DirectoryEntry[]> {
    return [...(this.state.users.get(userId) ?? [])].map(([sessionId, instanceId]) => ({ sessionId, instanceId }));
  }

  /** Nothing here is reconciled. */
  moving(): void {}

  handedOver(): void {}

  async stop(): Promise<void> {}
}
