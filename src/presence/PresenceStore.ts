// PresenceStore: cluster-wide presence per group, and each user's identified connections anywhere (for the
// per-user cap and the online/offline events backends read). Transitions are decided here, once, cluster-wide.
import type { SessionId, GroupName, Member, PresenceMeta, UserId } from '../types/domain';

export interface PresenceEntry {
  group: GroupName;
  userId: UserId;
  sessionId: SessionId;
  meta: PresenceMeta;
  since: number;
}

/** What backends read (Redis stream rt:events, or the log without Redis). */
export interface PresenceEvent {
  type: 'online' | 'offline';
  userId: UserId;
  /** The instance that held the connection. */
  instance: string;
  /** `closed`: the connection ended; `instance-lost`: its instance died and a survivor cleaned up. */
  reason?: 'closed' | 'instance-lost';
  ts: number;
}

export interface PresenceHandlers {
  /** A transition the store found by itself: an instance died, or local state was re-published after an outage. */
  onTransition(group: GroupName, userId: UserId, status: 'UP' | 'DOWN', meta: PresenceMeta): void;
}

export interface PresenceStore {
  start(handlers: PresenceHandlers): Promise<void>;
  /** Adds a connection to a group; true when its user came UP there (their first connection in the cluster). */
  join(entry: PresenceEntry): Promise<boolean>;
  /** Removes a connection from a group; true when its user went DOWN there (their last connection). */
  leave(group: GroupName, userId: UserId, sessionId: SessionId): Promise<boolean>;
  /** One entry per user in the group, earliest first, with the meta of their earliest connection. */
  members(group: GroupName): Promise<Member[]>;
  /** Counts an identified connection for its user; false, counting nothing, when the user already has `max`. */
  connect(userId: UserId, sessionId: SessionId, max: number): Promise<boolean>;
  disconnect(userId: UserId, sessionId: SessionId): Promise<void>;
  /**
   * A session moved here from `fromInstance`: its entries (user count and each group) become this instance's,
   * with no transition and no online/offline event.
   */
  transfer(fromInstance: string, session: { userId: UserId; sessionId: SessionId; meta: PresenceMeta; since: number }, groups: GroupName[]): Promise<void>;
  /** The session moved to another instance (which took over its shared entries): forget it here, touching nothing shared. */
  handedOver(userId: UserId, sessionId: SessionId, groups: GroupName[]): void;
  /** Cleans up what this instance still holds; resolves once in-flight work is done. */
  stop(): Promise<void>;
}
