// Membership: which local connections are in which groups and belong to which users, the broker channels that
// follow from it, cluster presence through the PresenceStore, and delivery: local at once, then to other instances.
import type { Broker, BrokerHandlers, ChannelKind } from '../broker/Broker';
import type { PresenceHandlers, PresenceStore } from '../presence/PresenceStore';
import type { GroupName, Member, PresenceMeta, UserId } from '../types/domain';
import { serializeEnvelope } from '../types/envelope';
import type { Logger } from '../utils/logger';
import type { Metrics } from '../metrics';
import type { ConnectionContext } from './ConnectionContext';
import { GroupRegistry } from './Groups';

export class Membership implements BrokerHandlers, PresenceHandlers {
  private readonly groups = new GroupRegistry();
  /** user → their identified local connections. */
  private readonly users = new Map<UserId, Set<ConnectionContext>>();
  /** Releases of closed connections still talking to the presence store. */
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

  isMember(ctx: ConnectionContext, group: GroupName): boolean {
    return ctx.groups.has(group);
  }

  // --- users ---------------------------------------------------------------------------------

  /** Counts the identified connection for its user cluster-wide; false when the user already has `max`. */
  async admit(ctx: ConnectionContext, userId: UserId, max: number): Promise<boolean> {
    if (!(await this.presence.connect(userId, ctx.id, max))) return false;
    let own = this.users.get(userId);
    if (!own) {
      own = new Set();
      this.users.set(userId, own);
    }
    own.add(ctx);
    await this.broker.subscribe('user', userId);
    return true;
  }

  /** A closed connection leaves its groups (announcing DOWN where it was the user's last) and its user's count. */
  release(ctx: ConnectionContext): void {
    const identity = ctx.identity;
    if (!identity) return;
    const own = this.users.get(identity.userId);
    if (own?.delete(ctx) && own.size === 0) {
      this.users.delete(identity.userId);
      this.broker.unsubscribe('user', identity.userId);
    }
    const work = Promise.all([...ctx.groups].map((group) => this.leave(ctx, group)))
      .then(() => this.presence.disconnect(identity.userId, ctx.id))
      .catch((err: unknown) => this.log.warn({ connectionId: ctx.id, userId: identity.userId, err: err instanceof Error ? err.message : String(err) }, 'release failed'));
    this.releasing.add(work);
    void work.finally(() => this.releasing.delete(work));
  }

  /** Resolves once every closed connection has been released. */
  async idle(): Promise<void> {
    while (this.releasing.size > 0) await Promise.all([...this.releasing]);
  }

  // --- groups --------------------------------------------------------------------------------

  /** Joins at once locally (fan-out reaches the connection from now on); resolves true when the user came UP cluster-wide. */
  async join(ctx: ConnectionContext, group: GroupName): Promise<boolean> {
    const identity = ctx.identity!;
    if (!this.groups.join(ctx, group)) return false;
    const [cameUp] = await Promise.all([
      this.presence.join({ group, userId: identity.userId, connectionId: ctx.id, meta: identity.meta, since: Date.now() }),
      this.broker.subscribe('group', group),
    ]);
    return cameUp;
  }

  /** Leaves the group and announces DOWN when it was the user's last connection in it anywhere. */
  async leave(ctx: ConnectionContext, group: GroupName): Promise<void> {
    const identity = ctx.identity!;
    if (!this.groups.leave(ctx, group)) return;
    if (!this.groups.connections(group)) this.broker.unsubscribe('group', group);
    if (await this.presence.leave(group, identity.userId, ctx.id)) this.announce(group, identity.userId, 'DOWN', identity.meta, ctx);
  }

  members(group: GroupName): Promise<Member[]> {
    return this.presence.members(group);
  }

  /** presence_update to the group's connections everywhere, except `origin` (the connection that moved). */
  announce(group: GroupName, userId: UserId, status: 'UP' | 'DOWN', meta: PresenceMeta, origin: ConnectionContext | null): void {
    this.publish('group', group, serializeEnvelope('presence_update', { group, userId, status, meta }), origin);
  }

  // --- delivery ------------------------------------------------------------------------------

  /** The fan-out hot path: one serialized frame, written to every local member but `skip`, then handed to the broker once. */
  publish(kind: ChannelKind, name: string, frame: string, skip: ConnectionContext | null): void {
    this.deliver(kind, name, frame, skip);
    this.broker.publish(kind, name, frame);
  }

  onFrame(kind: ChannelKind, name: string, frame: string): void {
    this.deliver(kind, name, frame, null);
  }

  onTransition(group: GroupName, userId: UserId, status: 'UP' | 'DOWN', meta: PresenceMeta): void {
    this.announce(group, userId, status, meta, null);
  }

  private deliver(kind: ChannelKind, name: string, frame: string, skip: ConnectionContext | null): void {
    const targets = kind === 'group' ? this.groups.connections(name) : this.users.get(name);
    if (!targets) return;
    const started = process.hrtime.bigint();
    let sent = 0;
    for (const ctx of targets) {
      if (ctx === skip) continue;
      ctx.send(frame);
      sent++;
    }
    this.metrics.fanoutSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    this.metrics.sent(envelopeType(frame), sent);
  }
}

const TYPE_PREFIX = '{"type":"';

/** The type of a frame made by serializeEnvelope, which always writes `type` first. */
function envelopeType(frame: string): string {
  return frame.startsWith(TYPE_PREFIX) ? frame.slice(TYPE_PREFIX.length, frame.indexOf('"', TYPE_PREFIX.length)) : 'unknown';
}
