// Membership: which local sessions are in which groups and belong to which users, the broker channels that follow
// from it, cluster presence through the PresenceStore (its transitions batched, then written by PresenceFanout), and
// delivery: local at once, then to other instances.
import type { Broker, BrokerHandlers, ChannelKind } from '../broker/Broker';
import { channelName, presenceBatch } from '../broker/wire';
import type { Config } from '../config';
import type { Metrics } from '../metrics';
import type { MemberPage, PresenceChange, PresenceHandlers, PresenceLook, PresenceStore } from '../presence/PresenceStore';
import type { GroupName, MemberCursor, UserId } from '../types/domain';
import { compileFilter, type Filter } from '../types/filter';
import type { Forwarded, PresenceBatch, Relayed } from '../types/signals';
import type { Logger } from '../utils/logger';
import { keptUtf8, textFrame } from './frames';
import { GroupRegistry, type GroupLoad } from './Groups';
import { PresenceBatcher } from './PresenceBatcher';
import { PresenceFanout } from './PresenceFanout';
import type { Session } from './Session';

export type PresenceConfig = Pick<Config, 'presenceBatchMs' | 'presenceLargeGroup' | 'presenceCountIntervalMs'>;

export class Membership implements BrokerHandlers, PresenceHandlers {
  private readonly groups = new GroupRegistry();
  /** user → their local sessions. */
  private readonly users = new Map<UserId, Set<Session>>();
  /** Releases of ended sessions still talking to the presence store. */
  private readonly releasing = new Set<Promise<void>>();
  private readonly batcher: PresenceBatcher;
  private readonly fanout: PresenceFanout;

  constructor(
    private readonly broker: Broker,
    private readonly presence: PresenceStore,
    private readonly log: Logger,
    private readonly metrics: Metrics,
    config: PresenceConfig,
  ) {
    this.batcher = new PresenceBatcher(config.presenceBatchMs, (batch) => this.publishPresence(batch));
    const reorderWindowMs = 2 * config.presenceBatchMs + 2_000;
    this.fanout = new PresenceFanout({ largeGroup: config.presenceLargeGroup, countIntervalMs: config.presenceCountIntervalMs, reorderWindowMs }, (group) => this.groups.members(group), metrics);
  }

  get groupCount(): number {
    return this.groups.size;
  }

  /** This instance's busiest groups by local sessions (server API `groups`). */
  busiestGroups(limit: number, prefix?: string): GroupLoad[] {
    return this.groups.busiest(limit, prefix);
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

  /** Resolves once every ended session has been released and its presence changes sent. */
  async idle(): Promise<void> {
    while (this.releasing.size > 0) await Promise.all([...this.releasing]);
    this.batcher.flush();
  }

  stop(): void {
    this.batcher.stop();
    this.fanout.stop();
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
      this.lastLocalLeft(group);
    }
    this.removeUser(session);
  }

  /** Once a group has no local session, this instance stops listening to it. */
  private lastLocalLeft(group: GroupName): void {
    if (this.groups.members(group)) return;
    this.broker.unsubscribe('group', group);
    this.fanout.forget(group);
  }

  // --- groups --------------------------------------------------------------------------------

  /** Joins at once locally (fan-out reaches the session from now on); a user who came UP cluster-wide goes in the next batch. */
  async join(session: Session, group: GroupName): Promise<void> {
    if (!this.groups.join(session, group)) return;
    const [change] = await Promise.all([
      this.presence.join({ group, userId: session.userId, sessionId: session.id, meta: session.meta, availability: session.availability, since: Date.now() }),
      this.broker.subscribe('group', group),
    ]);
    if (change) this.batcher.add(group, session.userId, change);
  }

  /** Leaves the group; a user who went DOWN (it was their last session in it anywhere) goes in the next batch. */
  async leave(session: Session, group: GroupName): Promise<void> {
    if (!this.groups.leave(session, group)) return;
    session.watching.delete(group);
    session.listed.delete(group);
    this.lastLocalLeft(group);
    const change = await this.presence.leave(group, session.userId, session.id);
    if (change) this.batcher.add(group, session.userId, change);
  }

  /** The session shows otherwise (a `presence` envelope): its user is listed anew in each of its groups; changes go in the next batch. */
  async setPresence(session: Session, look: PresenceLook): Promise<void> {
    session.availability = look.availability;
    session.meta = look.meta;
    await Promise.all(
      [...session.groups].map(async (group) => {
        const change = await this.presence.update(group, session.userId, session.id, look);
        if (change) this.batcher.add(group, session.userId, change);
      }),
    );
  }

  /** A page of the group's member list, noted on the session that reads it (see PresenceFanout). */
  async members(session: Session, group: GroupName, after: MemberCursor | undefined, limit: number): Promise<MemberPage> {
    const page = await this.presence.members(group, after, limit);
    session.noteListed(group, page.version, after === undefined);
    return page;
  }

  /** A batch of this instance's presence changes: to the local sessions of its group, then to other instances. */
  private publishPresence(batch: PresenceBatch): void {
    this.fanout.deliver(batch, this.broker.instanceId);
    this.broker.publish('group', batch.group, presenceBatch(batch));
  }

  // --- delivery ------------------------------------------------------------------------------

  /**
   * The fan-out hot path: one serialized envelope, delivered to every local session but `skip` (with a filter, a backend
   * data_update's, only to those it accepts), then handed to the broker once with the filter, which other instances apply.
   */
  publish(kind: ChannelKind, name: string, envelope: Forwarded, skip: Session | null, filter?: Filter): void {
    this.deliver(kind, name, envelope, skip, this.broker.instanceId, filter);
    this.broker.publish(kind, name, envelope, filter);
  }

  onRelayed(kind: ChannelKind, name: string, envelope: Relayed, origin: string, filter?: Filter): void {
    if (envelope.type === 'presence_batch') this.fanout.deliver(envelope.batch, origin);
    else this.deliver(kind, name, envelope, null, origin, filter);
  }

  onTransition(group: GroupName, userId: UserId, change: PresenceChange): void {
    this.batcher.add(group, userId, change);
  }

  onReconnected(): void {
    this.fanout.forgetVersions();
  }

  /**
   * This instance's own envelope, read back from the broker while a session arrives from another instance: to the
   * arriving sessions of its audience only, which place it against their channel's cut (see ChannelCut).
   */
  onEcho(kind: ChannelKind, name: string, envelope: Relayed, filter?: Filter): void {
    if (envelope.type === 'presence_batch') return this.fanout.echo(envelope.batch, this.broker.instanceId);
    const targets = envelope.type === 'data_update' ? this.audience(kind, name) : undefined;
    if (!targets) return;
    const body = keptUtf8(envelope.frame.slice(0, -1));
    const accepts = filter === undefined ? null : compileFilter(filter);
    const channel = channelName(kind, name);
    for (const session of targets) if (session.capturing && (accepts === null || accepts(session))) session.echo(body, channel);
  }

  private audience(kind: ChannelKind, name: string): ReadonlySet<Session> | undefined {
    return kind === 'group' ? this.groups.members(name) : this.users.get(name);
  }

  private deliver(kind: ChannelKind, name: string, { type, frame }: Forwarded, skip: Session | null, origin: string, filter: Filter | undefined): void {
    const targets = this.audience(kind, name);
    if (!targets) return;
    const channel = channelName(kind, name);
    const started = process.hrtime.bigint();
    // data_updates share one encoded body, each session appending its own seq; signals are framed once for all.
    const sequenced = type === 'data_update';
    const shared = sequenced ? keptUtf8(frame.slice(0, -1)) : textFrame(frame);
    // Compiled once per delivery: a Set lookup or two per session with a filter, none without.
    const accepts = filter === undefined ? null : compileFilter(filter);
    let sent = 0;
    for (const session of targets) {
      if (session === skip || (accepts !== null && !accepts(session))) continue;
      if (sequenced) session.deliver(shared, origin, channel);
      else session.sendFrame(shared);
      sent++;
    }
    this.metrics.fannedOut(Number(process.hrtime.bigint() - started) / 1e9);
    this.metrics.sent(type, sent);
  }
}
