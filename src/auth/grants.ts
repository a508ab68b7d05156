// The token's `groups` claim: exact group names, or a prefix ending in `*` that grants every group starting with it.
import type { GroupName } from '../types/domain';

export function isGranted(grants: readonly string[], group: GroupName): boolean {
  for (const grant of grants) {
    if (grant.endsWith('*') ? group.startsWith(grant.slice(0, -1)) : grant === group) return true;
  }
  return false;
}
