// PresenceStore: cluster-wide presence per group, and each user's identified connections anywhere (for the
// per-user cap and the online/offline events backends read). Transitions are decided here, once, cluster-wide.
import type { Availability, SessionId, GroupName, Member, MemberCursor, PresenceMeta, PresenceStatus, UserId, VisibleAvailability } from '../types/domain';

/** What a session says of its user's presence (identify, then `presence` envelopes). */
export interface PresenceLook {
  meta: PresenceMeta;
  availability: Availability;
}

export interface PresenceEntry extends PresenceLook {
  group: GroupName;
  userId: UserId;
  sessionId: SessionId;
  since: number;
}

/**
 * A user came UP, went DOWN or shows otherwise (UPDATE) in a group, cluster-wide. A user is listed while they have a
 * session in the group that is not invisible, and shows as their *leading* one: the most available (online, idle, dnd),
 * the earliest joined among equals; its availability, meta and since are the user's. Each group numbers its
 * transitions (`version`, from 1); an emptied group keeps its number for minutes (batches numbered before must stay
 * ordered), and starts again at 1 only after that, or when Redis lost its data. `count` is the group's listed user
 * count right after this one.
 */
export interface PresenceChange {
  status: PresenceStatus;
  /** The user's meta, since and availability in the member list (for DOWN: as they were listed). */
  meta: PresenceMeta;
  since: number;
  availability: VisibleAvailability;
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
  /** Users listed in the group (the member list's `count`): with a session there that is not invisible. */
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
  /** Adds a session to a group; the transition it causes (UP for the user's first visible session there; UPDATE when it leads now). */
  join(entry: PresenceEntry): Promise<PresenceChange | null>;
  /** Removes a session from a group; the transition it causes (DOWN for the user's last visible session; UPDATE when it led). */
  leave(group: GroupName, userId: UserId, sessionId: SessionId): Promise<PresenceChange | null>;
  /** A session in the group shows otherwise (a `presence` envelope); the transition it causes, if any. Nothing for a session not in the group. */
  update(group: GroupName, userId: UserId, sessionId: SessionId, look: PresenceLook): Promise<PresenceChange | null>;
  /**
   * Up to `limit` members after `after` (from the start without it): one entry per listed user, as their leading
   * session shows them. Costs the page, not the group.
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
  /**
   * A claimer's right to move the session of `userId`, for `ttlMs`; false when another handoff holds it (or the store
   * is unreachable). The user is named so the lease lives with the user's directory entry (one Redis Cluster slot).
   */
  lease(userId: UserId, sessionId: SessionId, lease: string, ttlMs: number): Promise<boolean>;
  /** A claimer that gave up lets its lease go (only its own), so the session can be claimed again at once. */
  release(userId: UserId, sessionId: SessionId, lease: string): Promise<void>;
  /**
   * A session moves here from `fromInstance`, under `lease`: its entries (user count and each group) become this
   * instance's, with no transition and no online/offline event. Moving the user entry is atomic and is the handoff's
   * commit point: false, nothing moved, when the lease is not held or `fromInstance` no longer holds the session. It
   * is idempotent (true again once the entry is this instance's), so an answer lost on the way can be asked again.
   */
  transfer(fromInstance: string, session: { userId: UserId; sessionId: SessionId; since: number } & PresenceLook, groups: GroupName[], lease: string): Promise<boolean>;
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
