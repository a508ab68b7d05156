// PresenceRegistry: who is in each group, per user, aware of several connections (tabs) per user; the in-memory data structure under the presence stores.
import type { SessionId, GroupName, Member, PresenceMeta, UserId } from '../types/domain';

interface ConnectionPresence {
  meta: PresenceMeta;
  since: number;
}

/**
 * group → user → connection, with connections in join order, so a user's `meta` and `since`
 * are those of their earliest connection still in the group.
 */
export class PresenceRegistry {
  private readonly groups = new Map<GroupName, Map<UserId, Map<SessionId, ConnectionPresence>>>();

  /** Adds a connection; true when it is the user's first in the group (the user came UP). */
  join(group: GroupName, userId: UserId, sessionId: SessionId, meta: PresenceMeta, now: number): boolean {
    let users = this.groups.get(group);
    if (!users) {
      users = new Map();
      this.groups.set(group, users);
    }
    let conns = users.get(userId);
    const first = conns === undefined;
    if (!conns) {
      conns = new Map();
      users.set(userId, conns);
    }
    if (!conns.has(sessionId)) conns.set(sessionId, { meta, since: now });
    return first;
  }

  /** Removes a connection; true when it was the user's last in the group (the user went DOWN). */
  leave(group: GroupName, userId: UserId, sessionId: SessionId): boolean {
    const users = this.groups.get(group);
    const conns = users?.get(userId);
    if (!users || !conns || !conns.delete(sessionId)) return false;
    if (conns.size > 0) return false;
    users.delete(userId);
    if (users.size === 0) this.groups.delete(group);
    return true;
  }

  has(group: GroupName, userId: UserId, sessionId: SessionId): boolean {
    return this.groups.get(group)?.get(userId)?.has(sessionId) === true;
  }

  /** One entry per user, in the order users came UP. */
  members(group: GroupName): Member[] {
    const users = this.groups.get(group);
    if (!users) return [];
    const out: Member[] = [];
    for (const [userId, conns] of users) {
      const earliest = conns.values().next().value as ConnectionPresence;
      out.push({ userId, meta: earliest.meta, since: earliest.since });
    }
    return out;
  }

  /** Every (group, user, connection) held. */
  *entries(): Generator<[GroupName, UserId, SessionId]> {
    for (const [group, users] of this.groups) {
      for (const [userId, conns] of users) for (const sessionId of conns.keys()) yield [group, userId, sessionId];
    }
  }

  get groupCount(): number {
    return this.groups.size;
  }
}
