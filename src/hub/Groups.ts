// GroupRegistry: group → connections, the fan-out index. The reverse index is each connection's own `groups` set.
import type { GroupName } from '../types/domain';
import type { ConnectionContext } from './ConnectionContext';

export class GroupRegistry {
  private readonly groups = new Map<GroupName, Set<ConnectionContext>>();

  /** False when the connection was already a member. */
  join(ctx: ConnectionContext, group: GroupName): boolean {
    if (ctx.groups.has(group)) return false;
    let members = this.groups.get(group);
    if (!members) {
      members = new Set();
      this.groups.set(group, members);
    }
    members.add(ctx);
    ctx.groups.add(group);
    return true;
  }

  /** False when the connection was not a member. */
  leave(ctx: ConnectionContext, group: GroupName): boolean {
    if (!ctx.groups.delete(group)) return false;
    const members = this.groups.get(group);
    if (members) {
      members.delete(ctx);
      if (members.size === 0) this.groups.delete(group);
    }
    return true;
  }

  connections(group: GroupName): ReadonlySet<ConnectionContext> | undefined {
    return this.groups.get(group);
  }

  get size(): number {
    return this.groups.size;
  }
}
