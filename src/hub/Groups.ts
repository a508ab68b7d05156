// GroupRegistry: group → sessions, the fan-out index. The reverse index is each session's own `groups` set.
import type { GroupName } from '../types/domain';
import type { Session } from './Session';

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

  get size(): number {
    return this.groups.size;
  }
}
