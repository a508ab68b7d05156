// PresenceFanout: writes presence batches (this instance's own and other instances') to this instance's sessions of
// the group, each in its mode: one presence_diff, or one presence_update per change. In large groups it writes
// counts only (presence_count, at most once per interval), except to sessions that watch the group.
import { channelName } from '../broker/wire';
import type { Metrics } from '../metrics';
import type { GroupName, Member, UserId } from '../types/domain';
import { serializeEnvelope } from '../types/envelope';
import type { BatchedChange, PresenceBatch } from '../types/signals';
import { keptUtf8, textFrame } from './frames';
import type { ListedRange, Session } from './Session';

export interface PresenceFanoutOptions {
  /** Above this many users a group is large (GW_PRESENCE_LARGE_GROUP). */
  largeGroup: number;
  /** The shortest gap between two presence_counts of one group (GW_PRESENCE_COUNT_INTERVAL_MS). */
  countIntervalMs: number;
  /** How long a batch may take to reach this instance after a later one (GW_PRESENCE_BATCH_MS plus slack). */
  reorderWindowMs: number;
}

/** What this instance knows of a group it has sessions in. */
interface GroupState {
  /** The count of the latest batch, by version, and when it was taken. */
  count: number;
  version: number;
  at: number;
  /** user → the version of their latest change and when it arrived, for batches that arrive late. */
  recent: Map<UserId, { version: number; at: number }>;
  sweptAt: number;
  /** The last count sent, when, and the timer of the next send. */
  countSent: number;
  countSentAt: number;
  countTimer: NodeJS.Timeout | null;
}

export class PresenceFanout {
  private readonly groups = new Map<GroupName, GroupState>();

  constructor(
    private readonly options: PresenceFanoutOptions,
    /** This instance's sessions of a group. */
    private readonly sessionsOf: (group: GroupName) => ReadonlySet<Session> | undefined,
    private readonly metrics: Metrics,
  ) {}

  /** Writes a batch from `origin` (an instance id) to this instance's sessions of its group. */
  deliver(batch: PresenceBatch, origin: string): void {
    this.write(batch, origin, false);
  }

  /**
   * This instance's own batch, read back from the broker: written as an echo to the sessions of its group that are
   * arriving from another instance (see ChannelCut), to no other.
   */
  echo(batch: PresenceBatch, self: string): void {
    this.write(batch, self, true);
  }

  private write(batch: PresenceBatch, origin: string, echo: boolean): void {
    const targets = this.sessionsOf(batch.group);
    if (!targets) return;
    const channel = channelName('group', batch.group);
    const started = process.hrtime.bigint();
    const now = Date.now();
    const state = this.state(batch.group, now);
    const changes = batch.changes.filter((change) => this.fresh(state, change, now));
    if (batch.version > state.version || now - state.at > this.options.reorderWindowMs) {
      state.count = batch.count;
      state.version = batch.version;
      state.at = now;
    }
    if (changes.length === 0) return;
    const bodies = new Bodies(batch.group, changes, state.count);
    const large = state.count > this.options.largeGroup;
    const write = echo ? (session: Session, body: Buffer) => session.echo(body, channel) : (session: Session, body: Buffer) => session.deliver(body, origin, channel);
    let counted = false;
    let diffs = 0;
    let updates = 0;
    for (const session of targets) {
      if (echo && !session.capturing) continue;
      if (large && !session.watching.has(batch.group)) {
        counted ||= session.presenceMode === 'diffs';
        continue;
      }
      const full = bodies.needsFull(session.listed.get(batch.group));
      if (session.presenceMode === 'diffs') {
        const body = bodies.diff(full);
        if (body) write(session, body);
        diffs += body ? 1 : 0;
        continue;
      }
      for (const change of full ? changes : bodies.net) {
        if (change.userId === session.userId) continue;
        write(session, bodies.update(change));
        updates++;
      }
    }
    this.metrics.fannedOut(Number(process.hrtime.bigint() - started) / 1e9);
    this.metrics.sent('presence_diff', diffs);
    this.metrics.sent('presence_update', updates);
    if (counted) this.scheduleCount(batch.group, state);
  }

  /** Versions may have started again (the store lost its data): order what comes from now on afresh. */
  forgetVersions(): void {
    for (const state of this.groups.values()) {
      state.recent.clear();
      state.version = 0;
    }
  }

  /** This instance has no session in the group any more. */
  forget(group: GroupName): void {
    const state = this.groups.get(group);
    if (state?.countTimer) clearTimeout(state.countTimer);
    this.groups.delete(group);
  }

  stop(): void {
    for (const group of [...this.groups.keys()]) this.forget(group);
  }

  private state(group: GroupName, now: number): GroupState {
    let state = this.groups.get(group);
    if (!state) {
      state = { count: 0, version: 0, at: now, recent: new Map(), sweptAt: now, countSent: -1, countSentAt: 0, countTimer: null };
      this.groups.set(group, state);
    }
    return state;
  }

  /**
   * False for a change older than one already written for the same user: batches of two instances can arrive in
   * either order (each goes out at the end of its own period). Versions are compared only within the reorder window,
   * so a group whose versions started again (it emptied, or Redis lost its data) is not held back.
   */
  private fresh(state: GroupState, change: BatchedChange, now: number): boolean {
    const window = this.options.reorderWindowMs;
    if (now - state.sweptAt > window) {
      for (const [userId, seen] of state.recent) if (now - seen.at > window) state.recent.delete(userId);
      state.sweptAt = now;
    }
    const seen = state.recent.get(change.userId);
    if (seen && now - seen.at <= window && seen.version > change.version) return false;
    state.recent.set(change.userId, { version: change.version, at: now });
    return true;
  }

  private scheduleCount(group: GroupName, state: GroupState): void {
    if (state.countTimer) return;
    const delay = Math.max(0, state.countSentAt + this.options.countIntervalMs - Date.now());
    state.countTimer = setTimeout(() => {
      state.countTimer = null;
      this.sendCount(group, state);
    }, delay);
    state.countTimer.unref();
  }

  /** presence_count to the sessions that get counts only, when the count changed since the last one. */
  private sendCount(group: GroupName, state: GroupState): void {
    const targets = this.sessionsOf(group);
    if (!targets || state.count === state.countSent || state.count <= this.options.largeGroup) return;
    const frame = textFrame(serializeEnvelope('presence_count', { group, count: state.count }));
    let sent = 0;
    for (const session of targets) {
      if (session.presenceMode !== 'diffs' || session.watching.has(group)) continue;
      session.sendFrame(frame);
      sent++;
    }
    state.countSent = state.count;
    state.countSentAt = Date.now();
    this.metrics.sent('presence_count', sent);
  }
}

/** The envelopes of one batch, each encoded once for all the sessions it goes to. */
class Bodies {
  readonly net: BatchedChange[];
  /** The versions between which a member list shows a state undone within the batch. */
  private undoneFrom = Infinity;
  private undoneTo = -Infinity;
  private readonly diffs = new Map<boolean, Buffer | null>();
  private readonly updates = new Map<BatchedChange, Buffer>();

  constructor(
    private readonly group: GroupName,
    private readonly changes: BatchedChange[],
    private readonly count: number,
  ) {
    this.net = changes.filter((change) => change.undoneFrom === null);
    for (const { undoneFrom, version } of changes) {
      if (undoneFrom === null) continue;
      this.undoneFrom = Math.min(this.undoneFrom, undoneFrom);
      this.undoneTo = Math.max(this.undoneTo, version);
    }
  }

  /**
   * Whether a session whose list pages were read within `listed` may show a state undone within the batch (one that
   * held from an undone change's first step until its last): it gets every change, each as it ended.
   */
  needsFull(listed: ListedRange | undefined): boolean {
    return listed !== undefined && listed.to >= this.undoneFrom && listed.from < this.undoneTo;
  }

  /** The presence_diff of the net changes (or of all of them), or null when there is nothing to say. */
  diff(full: boolean): Buffer | null {
    let body = this.diffs.get(full);
    if (body === undefined) {
      const changes = full ? this.changes : this.net;
      const joins = changes.filter((c) => c.status === 'UP').map(member);
      const leaves = changes.filter((c) => c.status === 'DOWN').map((c) => c.userId);
      const updates = changes.filter((c) => c.status === 'UPDATE').map(member);
      const diff = updates.length > 0 ? { group: this.group, joins, leaves, updates, count: this.count } : { group: this.group, joins, leaves, count: this.count };
      body = changes.length === 0 ? null : sequencedBody(serializeEnvelope('presence_diff', diff));
      this.diffs.set(full, body);
    }
    return body;
  }

  update(change: BatchedChange): Buffer {
    let body = this.updates.get(change);
    if (!body) {
      const { userId, status, meta, availability } = change;
      body = sequencedBody(serializeEnvelope('presence_update', { group: this.group, userId, status, meta, availability }));
      this.updates.set(change, body);
    }
    return body;
  }
}

/** A change as a member-list entry. */
function member({ userId, meta, since, availability }: BatchedChange): Member {
  return { userId, meta, since, availability };
}

/** A sequenced envelope's shared body: the frame without its closing brace (each session appends `,"seq":N}`). */
function sequencedBody(frame: string): Buffer {
  return keptUtf8(frame.slice(0, -1));
}
