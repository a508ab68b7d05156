// PresenceRegistry: who is in each group, per user, aware of several connections (tabs) per user, with each group's
// member list in order for paging; the in-memory data structure under the presence stores.
import BTree from 'sorted-btree';
import { compareMembers, encodeCursor, type Availability, type GroupName, type Member, type MemberCursor, type SessionId, type UserId } from '../types/domain';
import { sameLook } from '../types/members';
import type { GroupStats, MemberPage, PresenceChange, PresenceLook } from './PresenceStore';

interface SessionPresence extends PresenceLook {
  since: number;
}

interface GroupPresence {
  /** user → their sessions in the group, invisible ones included. */
  users: Map<UserId, Map<SessionId, SessionPresence>>;
  /** The member list: each listed user once, as their leading session shows them, in list order. */
  order: BTree<MemberCursor, Member>;
  /** user → their entry in `order`; its size is the group's (listed) user count. */
  listed: Map<UserId, Member>;
  /** Counts the group's transitions (see PresenceStore). */
  version: number;
  /** Sessions in the group, all users together (kept, not summed: `stats` costs nothing). */
  sessions: number;
}

/** How available each availability is; 0: the session does not count (invisible). RedisPresenceStore's RANK says the same. */
export const AVAILABILITY_RANK: Record<Availability, number> = { online: 3, idle: 2, dnd: 1, invisible: 0 };

/** How long an emptied group's version is kept (see RedisPresenceStore's VERSION_KEEP_MS). */
const VERSION_KEEP_MS = 600_000;

/**
 * group → user → session. A user is listed while one of their sessions in the group is not invisible, and shows as
 * their leading session (the most available; the earliest joined among equals, then the smallest session id): its
 * availability, meta and since.
 */
export class PresenceRegistry {
  private readonly groups = new Map<GroupName, GroupPresence>();
  /** Versions of groups that emptied, and when: a group refilled within VERSION_KEEP_MS goes on counting. */
  private readonly emptied = new Map<GroupName, { version: number; at: number }>();

  /** Adds a session (or sets it again); the transition it causes. */
  join(group: GroupName, userId: UserId, sessionId: SessionId, look: PresenceLook, since: number): PresenceChange | null {
    let presence = this.groups.get(group);
    if (!presence) {
      presence = { users: new Map(), order: new BTree(undefined, compareMembers), listed: new Map(), version: this.emptied.get(group)?.version ?? 0, sessions: 0 };
      this.emptied.delete(group);
      this.groups.set(group, presence);
    }
    let sessions = presence.users.get(userId);
    if (!sessions) {
      sessions = new Map();
      presence.users.set(userId, sessions);
    }
    if (!sessions.has(sessionId)) presence.sessions++;
    sessions.set(sessionId, { meta: look.meta, availability: look.availability, since });
    return this.relist(presence, userId, sessions);
  }

  /** Removes a session; the transition it causes. */
  leave(group: GroupName, userId: UserId, sessionId: SessionId): PresenceChange | null {
    const presence = this.groups.get(group);
    const sessions = presence?.users.get(userId);
    if (!presence || !sessions || !sessions.delete(sessionId)) return null;
    presence.sessions--;
    if (sessions.size === 0) presence.users.delete(userId);
    const change = this.relist(presence, userId, sessions);
    if (presence.users.size === 0) this.retire(group, presence.version);
    return change;
  }

  /** A session in the group shows otherwise; the transition it causes (null, changing nothing, when it is not in the group). */
  update(group: GroupName, userId: UserId, sessionId: SessionId, look: PresenceLook): PresenceChange | null {
    const presence = this.groups.get(group);
    const sessions = presence?.users.get(userId);
    const current = sessions?.get(sessionId);
    if (!presence || !sessions || !current) return null;
    sessions.set(sessionId, { ...look, since: current.since });
    return this.relist(presence, userId, sessions);
  }

  /** A session's entry in the group: how it shows, and since when it is there. */
  entry(group: GroupName, userId: UserId, sessionId: SessionId): SessionPresence | undefined {
    return this.groups.get(group)?.users.get(userId)?.get(sessionId);
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

  /** Lists the user as their leading session shows them now: the transition from how they were listed, if any. */
  private relist(presence: GroupPresence, userId: UserId, sessions: Map<SessionId, SessionPresence>): PresenceChange | null {
    const lead = leading(userId, sessions);
    const current = presence.listed.get(userId);
    if (!lead && !current) return null;
    if (!lead) {
      presence.listed.delete(userId);
      presence.order.delete(current!);
      return { status: 'DOWN', meta: current!.meta, since: current!.since, availability: current!.availability, version: ++presence.version, count: presence.listed.size };
    }
    if (current && current.since === lead.since && current.availability === lead.availability && current.meta === lead.meta) return null;
    if (current) presence.order.delete(current);
    presence.order.set(lead, lead);
    presence.listed.set(userId, lead);
    // A leading session that shows the same as the last one moves the user in the list, unannounced.
    if (current && sameLook(current, lead)) return null;
    return { status: current ? 'UPDATE' : 'UP', meta: lead.meta, since: lead.since, availability: lead.availability, version: ++presence.version, count: presence.listed.size };
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
    return { members, count: presence.listed.size, next: more && last ? encodeCursor(last) : null, version: presence.version };
  }

  stats(group: GroupName): GroupStats {
    const presence = this.groups.get(group);
    return { users: presence?.listed.size ?? 0, sessions: presence?.sessions ?? 0 };
  }

  /** Every (group, user, connection) held. */
  *entries(): Generator<[GroupName, UserId, SessionId]> {
    for (const [group, { users }] of this.groups) {
      for (const [userId, conns] of users) for (const sessionId of conns.keys()) yield [group, userId, sessionId];
    }
  }

  /** Whether any session is in the group. */
  hasGroup(group: GroupName): boolean {
    return this.groups.has(group);
  }

  get groupCount(): number {
    return this.groups.size;
  }
}

/** The user's leading session as a member-list entry, or null when every session is invisible. */
function leading(userId: UserId, sessions: Map<SessionId, SessionPresence>): Member | null {
  let lead: [SessionId, SessionPresence] | null = null;
  for (const [id, session] of sessions) {
    const rank = AVAILABILITY_RANK[session.availability];
    if (rank === 0) continue;
    if (!lead) {
      lead = [id, session];
      continue;
    }
    const leadRank = AVAILABILITY_RANK[lead[1].availability];
    if (rank > leadRank || (rank === leadRank && (session.since < lead[1].since || (session.since === lead[1].since && id < lead[0])))) lead = [id, session];
  }
  if (!lead) return null;
  const { meta, since, availability } = lead[1];
  return { userId, meta, since, availability: availability as Member['availability'] };
}
