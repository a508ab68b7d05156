// Membership: which local sessions are in which groups and belong to which users, the broker channels that follow
// from it, cluster presence through the PresenceStore, and delivery: local at once, then to other instances.
import type { Broker, BrokerHandlers, ChannelKind } from '../broker/Broker';
import type { Metrics } from '../metrics';
import type { PresenceHandlers, PresenceStore } from '../presence/PresenceStore';
import type { GroupName, Member, PresenceMeta, UserId } from '../types/domain';
import { serializeEnvelope } from '../types/envelope';
import type { Relayed, RelayedType } from '../types/signals';
import type { Logger } from '../utils/logger';
import { keptUtf8, textFrame } from './frames';
import { GroupRegistry } from './Groups';
import type { Session } from './Session';

/** Envelope types that carry `seq` and are kept for replay; everything else (signals) is fire-and-forget. */
const SEQUENCED: ReadonlySet<RelayedType> = new Set(['data_update', 'presence_update']);

export class Membership implements BrokerHandlers, PresenceHandlers {
  private readonly groups = new GroupRegistry();
  /** user → their local sessions. */
  private readonly users = new Map<UserId, Set<Session>>();
  /** Releases of ended sessions still talking to the presence store. */
  private readonly releasing = new Set<Promise<void>>();

  constructor(
    private readonly broker: Broker,
    private readonly presence: PresenceStore,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {}

  get groupCount(): number {
    return this.groups.size;
  }

  // --- users ---------------------------------------------------------------------------------

  /** Counts the session for its user cluster-wide; false when the user already has `max` sessions. */
  async admit(session: Session, max: number): Promise<boolean> {
    if (!(await this.presence.connect(session.userId, session.id, max))) return false;
    this.addUser(session);
    await this.broker.subscribe('user', session.userId);
    return true;
  }

  private addUser(session: Session): void {
    let own = this.users.get(session.userId);
    if (!own) {
      own = new Set();
      this.users.set(session.userId, own);
    }
    own.add(session);
  }

  private removeUser(session: Session): void {
    const own = this.users.get(session.userId);
    if (own?.delete(session) && own.size === 0) {
      this.users.delete(session.userId);
      this.broker.unsubscribe('user', session.userId);
    }
  }

  /** An ended session leaves its groups (announcing DOWN where it was the user's last) and its user's count. */
  release(session: Session): void {
    this.removeUser(session);
    const work = Promise.all([...session.groups].map((group) => this.leave(session, group)))
      .then(() => this.presence.disconnect(session.userId, session.id))
      .catch((err: unknown) => this.log.warn({ sessionId: session.id, userId: session.userId, err: err instanceof Error ? err.message : String(err) }, 'release failed'));
    this.releasing.add(work);
    void work.finally(() => this.releasing.delete(work));
  }

  /** Resolves once every ended session has been released. */
  async idle(): Promise<void> {
    while (this.releasing.size > 0) await Promise.all([...this.releasing]);
  }

  // --- sessions moving between instances --------------------------------------------------

  /** Puts a session arriving from another instance into the local indexes and subscribes its channels; presence is untouched. */
  async attachQuietly(session: Session, groups: GroupName[]): Promise<void> {
    this.addUser(session);
    const subscriptions = [this.broker.subscribe('user', session.userId)];
    for (const group of groups) if (this.groups.join(session, group)) subscriptions.push(this.broker.subscribe('group', group));
    await Promise.all(subscriptions);
  }

  /** The session moved to another instance, which took over its presence entries. */
  handOver(session: Session): void {
    const groups = [...session.groups];
    this.detachQuietly(session);
    this.presence.handedOver(session.userId, session.id, groups);
  }

  /** Takes a session out of the local indexes (it moves to another instance, or a handoff failed); presence is untouched. */
  detachQuietly(session: Session): void {
    for (const group of [...session.groups]) {
      this.groups.leave(session, group);
      if (!this.groups.members(group)) this.broker.unsubscribe('group', group);
    }
    this.removeUser(session);
  }

  // --- groups --------------------------------------------------------------------------------

  /** Joins at once locally (fan-out reaches the session from now on); resolves true when the user came UP cluster-wide. */
  async join(session: Session, group: GroupName): Promise<boolean> {
    if (!this.groups.join(session, group)) return false;
    const [cameUp] = await Promise.all([
      this.presence.join({ group, userId: session.userId, sessionId: session.id, meta: session.meta, since: Date.now() }),
      this.broker.subscribe('group', group),
    ]);
    return cameUp;
  }

  /** Leaves the group and announces DOWN when it was the user's last session in it anywhere. */
  async leave(session: Session, group: GroupName): Promise<void> {
    if (!this.groups.leave(session, group)) return;
    if (!this.groups.members(group)) this.broker.unsubscribe('group', group);
    if (await this.presence.leave(group, session.userId, session.id)) this.announce(group, session.userId, 'DOWN', session.meta);
  }

  members(group: GroupName): Promise<Member[]> {
    return this.presence.members(group);
  }

  /** presence_update to the group's sessions everywhere, except the user's own (they know where they are). */
  announce(group: GroupName, userId: UserId, status: 'UP' | 'DOWN', meta: PresenceMeta): void {
    this.publish('group', group, { type: 'presence_update', frame: serializeEnvelope('presence_update', { group, userId, status, meta }), about: userId }, null);
  }

  // --- delivery ------------------------------------------------------------------------------

  /** The fan-out hot path: one serialized envelope, delivered to every local session but `skip`, then handed to the broker once. */
  publish(kind: ChannelKind, name: string, envelope: Relayed, skip: Session | null): void {
    this.deliver(kind, name, envelope, skip, this.broker.instanceId);
    this.broker.publish(kind, name, envelope);
  }

  onRelayed(kind: ChannelKind, name: string, envelope: Relayed, origin: string): void {
    this.deliver(kind, name, envelope, null, origin);
  }

  onTransition(group: GroupName, userId: UserId, status: 'UP' | 'DOWN', meta: PresenceMeta): void {
    this.announce(group, userId, status, meta);
  }

  private deliver(kind: ChannelKind, name: string, { type, frame, about }: Relayed, skip: Session | null, origin: string): void {
    const targets = kind === 'group' ? this.groups.members(name) : this.users.get(name);
    if (!targets) return;
    const started = process.hrtime.bigint();
    // Sequenced envelopes share one encoded body, each session appending its own seq; others are framed once for all.
    const sequenced = SEQUENCED.has(type);
    const shared = sequenced ? keptUtf8(frame.slice(0, -1)) : textFrame(frame);
    let sent = 0;
    for (const session of targets) {
      if (session === skip || session.userId === about) continue;
      if (sequenced) session.deliver(shared, origin);
      else session.sendFrame(shared);
      sent++;
    }
    this.metrics.fanoutSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    this.metrics.sent(type, sent);
  }
}
