// GroupRegistry: group → sessions, the fan-out index. The reverse index is each session's own `groups` set.
import type { GroupName } from '../types/domain';
import type { Session } from './Session';

/** A group and how many of this instance's sessions (attached or orphaned) are in it. */
export interface GroupLoad {
  group: GroupName;
  sessions: number;
}

/** Most sessions first; equal counts by name, so every instance ranks ties alike. */
export function byLoad(a: GroupLoad, b: GroupLoad): number {
  return b.sessions - a.sessions || (a.group < b.group ? -1 : a.group > b.group ? 1 : 0);
}

export class GroupRegistry {
  private readonly groups = new Map<GroupName, Set<Session>>();

  /** False when the session was already a member. */
  join(session: Session, group: GroupName): boolean {
    if (session.groups.has(group)) return false;
    let members = this.groups.get(group);
    if (!members) {
      members = new Set();
      this.groups.set(group, members);
    }
    members.add(session);
    session.groups.add(group);
    return true;
  }

  /** False when the session was not a member. */
  leave(session: Session, group: GroupName): boolean {
    if (!session.groups.delete(group)) return false;
    const members = this.groups.get(group);
    if (members) {
      members.delete(session);
      if (members.size === 0) this.groups.delete(group);
    }
    return true;
  }

  members(group: GroupName): ReadonlySet<Session> | undefined {
    return this.groups.get(group);
  }

  /**
   * The `limit` groups with the most local sessions (those whose name starts with `prefix`, when given), busiest first.
   * One pass over the groups keeping the best `limit` in order: no sort of every group.
   */
  busiest(limit: number, prefix?: string): GroupLoad[] {
    const best: GroupLoad[] = [];
    for (const [group, members] of this.groups) {
      if (prefix !== undefined && !group.startsWith(prefix)) continue;
      const load = { group, sessions: members.size };
      if (best.length === limit && byLoad(load, best[limit - 1]!) >= 0) continue;
      let at = best.length;
      while (at > 0 && byLoad(load, best[at - 1]!) < 0) at--;
      best.splice(at, 0, load);
      if (best.length > limit) best.pop();
    }
    return best;
  }

  get size(): number {
    return this.groups.size;
  }
}
