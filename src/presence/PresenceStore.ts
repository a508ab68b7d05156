// PresenceStore: cluster-wide presence per group, and each user's identified connections anywhere (for the
// per-user cap and the online/offline events backends read). Transitions are decided here, once, cluster-wide.
import type { SessionId, GroupName, Member, MemberCursor, PresenceMeta, UserId } from '../types/domain';

export interface PresenceEntry {
  group: GroupName;
  userId: UserId;
  sessionId: SessionId;
  meta: PresenceMeta;
  since: number;
}

/**
 * A user came UP or went DOWN in a group, cluster-wide. Each group numbers its transitions (`version`, from 1); an
 * emptied group keeps its number for minutes (batches numbered before must stay ordered), and starts again at 1 only
 * after that, or when Redis lost its data. `count` is the group's user count right after this one.
 */
export interface PresenceChange {
  status: 'UP' | 'DOWN';
  /** The user's meta and since in the member list (for DOWN: as they were listed). */
  meta: PresenceMeta;
  since: number;
  version: number;
  count: number;
}

/** A page of a group's member list (ordered by since, then userId), read at one moment of the group: `version`. */
export interface MemberPage {
  members: Member[];
  count: number;
  /** The cursor after the page's last member when more follow, else null. */
  next: string | null;
  /** The group's transition count when the page was read (0 for an empty group). */
  version: number;
}

/** How many are in a group, cluster-wide. */
export interface GroupStats {
  /** Users with at least one session in the group (the member list's `count`). */
  users: number;
  /**
   * Sessions in the group: one per client connection, and one per session whose connection dropped and that can still
   * be resumed. A session moving between instances may count twice for the moment of its move.
   */
  sessions: number;
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

/** One session in the session directory, and the instance holding it. */
export interface DirectoryEntry {
  sessionId: SessionId;
  instanceId: string;
}

export interface PresenceHandlers {
  /** A transition the store found by itself: an instance died, or local state was re-published after an outage. */
  onTransition(group: GroupName, userId: UserId, change: PresenceChange): void;
  /**
   * The store's connection is back (Redis restarted, or the network healed): its versions may have started again (data
   * lost), so what this instance remembers of them must not hold back newer changes.
   */
  onReconnected(): void;
}

export interface PresenceStore {
  start(handlers: PresenceHandlers): Promise<void>;
  /** Adds a connection to a group; the UP transition when its user came UP there (their first connection in the cluster). */
  join(entry: PresenceEntry): Promise<PresenceChange | null>;
  /** Removes a connection from a group; the DOWN transition when its user went DOWN there (their last connection). */
  leave(group: GroupName, userId: UserId, sessionId: SessionId): Promise<PresenceChange | null>;
  /**
   * Up to `limit` members after `after` (from the start without it): one entry per user, with the meta and since of
   * their earliest connection. Costs the page, not the group.
   */
  members(group: GroupName, after: MemberCursor | undefined, limit: number): Promise<MemberPage>;
  /** The group's user and session counts, read at one moment; costs two counters, not the group. */
  stats(group: GroupName): Promise<GroupStats>;
  /** Counts an identified connection for its user; false, counting nothing, when the user already has `max`. */
  connect(userId: UserId, sessionId: SessionId, max: number): Promise<boolean>;
  disconnect(userId: UserId, sessionId: SessionId): Promise<void>;

  // The session directory: a session's user entry names the instance holding it, for the session's whole life.

  /** The instance holding `sessionId` of `userId`, or null. An instance that crashed holds its sessions until survivors reap them. */
  owner(userId: UserId, sessionId: SessionId): Promise<string | null>;
  /**
   * Every session of `userId` the directory lists, with the instance holding each (a crashed instance's until survivors
   * reap them). While the store is unreachable, only this instance's.
   */
  sessionsOf(userId: UserId): Promise<DirectoryEntry[]>;
  /** A claimer's right to move the session, for `ttlMs`; false when another handoff holds it (or the store is unreachable). */
  lease(sessionId: SessionId, lease: string, ttlMs: number): Promise<boolean>;
  /** A claimer that gave up lets its lease go (only its own), so the session can be claimed again at once. */
  release(sessionId: SessionId, lease: string): Promise<void>;
  /**
   * A session moves here from `fromInstance`, under `lease`: its entries (user count and each group) become this
   * instance's, with no transition and no online/offline event. Moving the user entry is atomic and is the handoff's
   * commit point: false, nothing moved, when the lease is not held or `fromInstance` no longer holds the session. It
   * is idempotent (true again once the entry is this instance's), so an answer lost on the way can be asked again.
   */
  transfer(fromInstance: string, session: { userId: UserId; sessionId: SessionId; meta: PresenceMeta; since: number }, groups: GroupName[], lease: string): Promise<boolean>;
  /**
   * The owner takes back a session whose handoff (`lease`) went quiet: true when it still holds it (and that lease can
   * move it no more), false when the session moved, null when the store could not say (ask again: the move may have
   * happened). Another handoff's lease is left alone.
   */
  revoke(userId: UserId, sessionId: SessionId, lease: string): Promise<boolean | null>;
  /**
   * The session is being handed to another instance (`on`), or that is over: meanwhile a reconcile here leaves its
   * entries alone, since the move is changing them.
   */
  moving(userId: UserId, sessionId: SessionId, groups: GroupName[], on: boolean): void;
  /** The session moved to another instance (which took over its shared entries): forget it here, touching nothing shared. */
  handedOver(userId: UserId, sessionId: SessionId, groups: GroupName[]): void;
  /** Cleans up what this instance still holds; resolves once in-flight work is done. */
  stop(): Promise<void>;
}
