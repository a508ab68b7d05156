// PresenceRegistry: who is in each group, per user, aware of several connections (tabs) per user, with each group's
// member list in order for paging; the in-memory data structure under the presence stores.
import BTree from 'sorted-btree';
import { compareMembers, encodeCursor, type GroupName, type Member, type MemberCursor, type PresenceMeta, type SessionId, type UserId } from '../types/domain';
import type { GroupStats, MemberPage, PresenceChange } from './PresenceStore';

interface ConnectionPresence {
  meta: PresenceMeta;
  since: number;
}

interface GroupPresence {
  /** user → their connections in the group. */
  users: Map<UserId, Map<SessionId, ConnectionPresence>>;
  /** The member list: each user once, as their earliest connection shows them, in list order. */
  order: BTree<MemberCursor, Member>;
  /** user → their entry in `order`. */
  listed: Map<UserId, Member>;
  /** Counts the group's UP and DOWN transitions (see PresenceStore). */
  version: number;
  /** Connections in the group, all users together (kept, not summed: `stats` costs nothing). */
  sessions: number;
}

/**
 * group → user → connection. A user's `meta` and `since` in the member list are those of their earliest connection
 * still in the group (by `since`; the first joined among equals).
 */
/** How long an emptied group's version is kept (see RedisPresenceStore's VERSION_KEEP_MS). */
const VERSION_KEEP_MS = 600_000;

export class PresenceRegistry {
  private readonly groups = new Map<GroupName, GroupPresence>();
  /** Versions of groups that emptied, and when: a group refilled within VERSION_KEEP_MS goes on counting. */
  private readonly emptied = new Map<GroupName, { version: number; at: number }>();

  /** Adds a connection; the UP transition when it is the user's first in the group, else null. */
  join(group: GroupName, userId: UserId, sessionId: SessionId, meta: PresenceMeta, since: number): PresenceChange | null {
    let presence = this.groups.get(group);
    if (!presence) {
      presence = { users: new Map(), order: new BTree(undefined, compareMembers), listed: new Map(), version: this.emptied.get(group)?.version ?? 0, sessions: 0 };
      this.emptied.delete(group);
      this.groups.set(group, presence);
    }
    const conns = presence.users.get(userId);
    if (conns) {
      if (!conns.has(sessionId)) {
        conns.set(sessionId, { meta, since });
        presence.sessions++;
      }
      this.relist(presence, userId, conns);
      return null;
    }
    presence.users.set(userId, new Map([[sessionId, { meta, since }]]));
    presence.sessions++;
    const member = { userId, meta, since };
    presence.order.set(member, member);
    presence.listed.set(userId, member);
    return { status: 'UP', meta, since, version: ++presence.version, count: presence.users.size };
  }

  /** Removes a connection; the DOWN transition when it was the user's last in the group, else null. */
  leave(group: GroupName, userId: UserId, sessionId: SessionId): PresenceChange | null {
    const presence = this.groups.get(group);
    const conns = presence?.users.get(userId);
    if (!presence || !conns || !conns.delete(sessionId)) return null;
    presence.sessions--;
    if (conns.size > 0) {
      this.relist(presence, userId, conns);
      return null;
    }
    presence.users.delete(userId);
    const member = presence.listed.get(userId)!;
    presence.listed.delete(userId);
    presence.order.delete(member);
    const change: PresenceChange = { status: 'DOWN', meta: member.meta, since: member.since, version: ++presence.version, count: presence.users.size };
    if (presence.users.size === 0) this.retire(group, presence.version);
    return change;
  }

  /** The group emptied: its version is kept for a while, versions of groups emptied long ago are forgotten. */
  private retire(group: GroupName, version: number): void {
    this.groups.delete(group);
    const now = Date.now();
    // Oldest first (Map order): stop at the first one still kept.
    for (const [name, { at }] of this.emptied) {
      if (now - at < VERSION_KEEP_MS) break;
      this.emptied.delete(name);
    }
    this.emptied.set(group, { version, at: now });
  }

  /** Keeps the user's list entry on their earliest connection. */
  private relist(presence: GroupPresence, userId: UserId, conns: Map<SessionId, ConnectionPresence>): void {
    let earliest: ConnectionPresence | undefined;
    for (const conn of conns.values()) if (!earliest || conn.since < earliest.since) earliest = conn;
    const current = presence.listed.get(userId)!;
    if (!earliest || (earliest.since === current.since && earliest.meta === current.meta)) return;
    const member = { userId, meta: earliest.meta, since: earliest.since };
    presence.order.delete(current);
    presence.order.set(member, member);
    presence.listed.set(userId, member);
  }

  has(group: GroupName, userId: UserId, sessionId: SessionId): boolean {
    return this.groups.get(group)?.users.get(userId)?.has(sessionId) === true;
  }

  /** Up to `limit` members after `after` (from the start without it), in list order. */
  page(group: GroupName, after: MemberCursor | undefined, limit: number): MemberPage {
    const presence = this.groups.get(group);
    if (!presence) return { members: [], count: 0, next: null, version: 0 };
    const members: Member[] = [];
    let more = false;
    for (const [key, member] of presence.order.entries(after)) {
      if (after && compareMembers(key, after) === 0) continue;
      if (members.length === limit) {
        more = true;
        break;
      }
      members.push(member);
    }
    const last = members[members.length - 1];
    return { members, count: presence.users.size, next: more && last ? encodeCursor(last) : null, version: presence.version };
  }

  stats(group: GroupName): GroupStats {
    const presence = this.groups.get(group);
    return { users: presence?.users.size ?? 0, sessions: presence?.sessions ?? 0 };
  }

  /** Every (group, user, connection) held. */
  *entries(): Generator<[GroupName, UserId, SessionId]> {
    for (const [group, { users }] of this.groups) {
      for (const [userId, conns] of users) for (const sessionId of conns.keys()) yield [group, userId, sessionId];
    }
  }

  get groupCount(): number {
    return this.groups.size;
  }
}
