// PresenceBatcher: gathers the presence transitions this instance decided, per group, for GW_PRESENCE_BATCH_MS, then
// hands each group's batch on at once: a user's steps merged into where they ended, steps that cancel out marked undone.
import type { PresenceChange } from '../presence/PresenceStore';
import type { GroupName, UserId } from '../types/domain';
import { sameLook } from '../types/members';
import type { BatchedChange, PresenceBatch } from '../types/signals';

/** A user's first and last step in the batch, by version. */
interface Steps {
  first: PresenceChange;
  last: PresenceChange;
}

export class PresenceBatcher {
  private pending = new Map<GroupName, Map<UserId, Steps>>();
  private timer: NodeJS.Timeout | NodeJS.Immediate | null = null;

  constructor(
    /** 0: the batch goes out at the end of the current turn of the event loop. */
    private readonly intervalMs: number,
    private readonly flushTo: (batch: PresenceBatch) => void,
  ) {}

  add(group: GroupName, userId: UserId, change: PresenceChange): void {
    let users = this.pending.get(group);
    if (!users) {
      users = new Map();
      this.pending.set(group, users);
    }
    const steps = users.get(userId);
    // Transitions may be answered out of order (several Redis round trips in flight): the version orders them.
    if (!steps) users.set(userId, { first: change, last: change });
    else if (change.version < steps.first.version) steps.first = change;
    else if (change.version > steps.last.version) steps.last = change;
    this.timer ??= this.intervalMs === 0 ? setImmediate(() => this.flush()) : setTimeout(() => this.flush(), this.intervalMs);
  }

  /** Hands every pending batch on now. */
  flush(): void {
    this.cancelTimer();
    const groups = this.pending;
    this.pending = new Map();
    for (const [group, users] of groups) this.flushTo(batchOf(group, users));
  }

  /** Drops what is pending (the instance stops; survivors announce what follows from it). */
  stop(): void {
    this.cancelTimer();
    this.pending.clear();
  }

  private cancelTimer(): void {
    if (this.timer === null) return;
    clearTimeout(this.timer as NodeJS.Timeout);
    clearImmediate(this.timer as NodeJS.Immediate);
    this.timer = null;
  }
}

/**
 * A user whose first step was UP was not listed before the batch; one whose first step was DOWN or UPDATE was, as that
 * DOWN shows (an UPDATE does not say how they showed before). Where the last step leaves them decides the change:
 * listed again after DOWN, showing as before, or not listed after UP, is undone (only sessions that read their list in
 * between need its end state); listed before and after is an UPDATE to the last look.
 */
function batchOf(group: GroupName, users: Map<UserId, Steps>): PresenceBatch {
  const changes: BatchedChange[] = [];
  let latest: PresenceChange | null = null;
  for (const [userId, { first, last }] of users) {
    const { status, undoneFrom } = net(first, last);
    changes.push({ userId, status, meta: last.meta, since: last.since, availability: last.availability, version: last.version, undoneFrom });
    if (!latest || last.version > latest.version) latest = last;
  }
  return { group, changes, count: latest?.count ?? 0, version: latest?.version ?? 0 };
}

function net(first: PresenceChange, last: PresenceChange): Pick<BatchedChange, 'status' | 'undoneFrom'> {
  const before = first.status !== 'UP';
  const after = last.status !== 'DOWN';
  if (before !== after) return { status: after ? 'UP' : 'DOWN', undoneFrom: null };
  if (!after) return { status: 'DOWN', undoneFrom: first.version };
  if (first.status === 'DOWN' && sameLook(first, last)) return { status: 'UP', undoneFrom: first.version };
  return { status: 'UPDATE', undoneFrom: null };
}
