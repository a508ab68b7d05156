// RedisBroker: pub/sub between instances through Redis. Its subscriber holds exactly the channels local connections
// need, subscribed again whenever Redis forgot them (./ClassicSubscriber, ./ShardSubscriber). On a Redis Cluster the
// same channels are sharded (SPUBLISH/SSUBSCRIBE): a message costs work only on the shard that owns its channel.
import type { RedisTarget } from '../config';
import calculateSlot from 'cluster-key-slot';
import { timings } from '../config/timings';
import type { Logger } from '../utils/logger';
import { isCluster, isReady, type Cluster, type RedisClient } from '../redis/connection';
import { ClassicSubscriber } from './ClassicSubscriber';
import { ShardSubscriber } from './ShardSubscriber';
import type { Subscriber } from './Subscriber';
import type { Broker, BrokerHandlers, ChannelKind, ControlHandlers } from './Broker';
import type { Filter } from '../types/filter';
import type { Relayed } from '../types/signals';
import { decodeMessage, decodeRelayed, encodeMark, encodeMessage, channelName, markOf, parseChannel } from './wire';

/**
 * Each instance's control channel: messages addressed to it (session handoffs). On a cluster the `{control}` hash tag
 * puts all of them in one slot, so one shard orders a message and its mark (one MULTI) and one master lists the peers;
 * one redis-server keeps the former name, which the instances of a rolling upgrade share.
 */
const CONTROL_PREFIX = 'rt:control:';
const SHARDED_CONTROL_PREFIX = 'rt:{control}:';

const LOG_INTERVAL_MS = 10_000;

export class RedisBroker implements Broker {
  private readonly subscriptions: Subscriber;
  readonly singleOrder: boolean;
  private handlers: BrokerHandlers | null = null;
  private control: ControlHandlers | null = null;
  private readonly ownControl: string;
  /** On a cluster: SPUBLISH/SSUBSCRIBE, `smessage`, control channels in the `{control}` slot. */
  private readonly sharded: boolean;
  private readonly controlPrefix: string;
  /** How many callers want this instance's own envelopes read back (wantEchoes). */
  private echoes = 0;
  private droppedCount = 0;
  private lastDropLogAt = 0;
  private invalidCount = 0;
  private lastInvalidLogAt = 0;

  constructor(
    readonly instanceId: string,
    private readonly pub: RedisClient,
    target: RedisTarget,
    private readonly log: Logger,
  ) {
    this.sharded = isCluster(pub);
    this.singleOrder = !this.sharded;
    this.controlPrefix = this.sharded ? SHARDED_CONTROL_PREFIX : CONTROL_PREFIX;
    this.ownControl = this.controlChannel(instanceId);
    const name = `gateway-strategy:${instanceId}:sub`;
    const onMessage = (channel: string, message: string) => this.onMessage(channel, message);
    this.subscriptions = this.sharded ? new ShardSubscriber(pub as Cluster, name, log, onMessage) : new ClassicSubscriber(target, name, log, onMessage);
  }

  private controlChannel(instanceId: string): string {
    return `${this.controlPrefix}${instanceId}`;
  }

  /** PUBLISH, or SPUBLISH on a cluster (routed to the master of the channel's slot). */
  private send(channel: string, message: string): Promise<unknown> {
    return this.sharded ? this.pub.spublish(channel, message) : this.pub.publish(channel, message);
  }

  /**
   * An envelope on its channel: PUBLISH, or on a cluster SPUBLISH straight to the master of the channel's slot, on that
   * master's one connection. Not through the cluster client's routing: after a failover or a slot move it resends a
   * failed command later, behind newer ones, and a sender's messages would arrive out of order. Here a message that
   * cannot go to the master it should is dropped (counted), and the slot map is read again.
   */
  private sendEnvelope(channel: string, message: string): Promise<unknown> {
    if (!this.sharded) return this.pub.publish(channel, message);
    const cluster = this.pub as Cluster;
    const owner = cluster.slots[calculateSlot(channel)]?.[0];
    const node = owner === undefined ? undefined : cluster.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === owner);
    if (!node) {
      cluster.refreshSlotsCache();
      return Promise.reject(new Error(`no master known for ${channel}`));
    }
    return node.spublish(channel, message).catch((err: Error) => {
      cluster.refreshSlotsCache();
      throw err;
    });
  }

  get dropped(): number {
    return this.droppedCount;
  }

  get invalid(): number {
    return this.invalidCount;
  }

  /**
   * Waits (at most the startup wait) for the subscriber's connections too (on a cluster, one to every master): a join right after start subscribes for real,
   * instead of being told "down, nothing delivered" while a cluster client is still reading the slots. Not when Redis
   * is down (the command connection is not ready): the gateway then starts degraded at once.
   */
  async start(handlers: BrokerHandlers): Promise<void> {
    this.handlers = handlers;
    if (isReady(this.pub)) await this.subscriptions.ready(timings.redisStartupWaitMs);
  }

  async listenControl(handlers: ControlHandlers): Promise<void> {
    this.control = handlers;
    await this.subscriptions.add(this.ownControl);
  }

  /**
   * PUBLISH answers how many subscribers heard it: 0 on an instance's own channel means it is gone. A mark goes in the
   * same MULTI as the message (ioredis writes it in the call, before any later publish on this connection), so Redis
   * puts both at one point of its single order of messages, the order every subscriber connection reads in. On a
   * cluster both are in the `{control}` slot: that shard orders them among control messages, but envelopes travel on
   * other shards, and no order holds across shards.
   */
  async sendControl(to: string, message: string, mark?: string): Promise<boolean> {
    if (!isReady(this.pub)) {
      this.drop();
      return false;
    }
    const encoded = encodeMessage(this.instanceId, message);
    const channel = this.controlChannel(to);
    try {
      if (mark === undefined) return Number(await this.send(channel, encoded)) > 0;
      const markEncoded = encodeMessage(this.instanceId, mark);
      const multi = this.sharded ? this.pub.multi().spublish(channel, encoded).spublish(this.ownControl, markEncoded) : this.pub.multi().publish(channel, encoded).publish(this.ownControl, markEncoded);
      const [sent] = (await multi.exec()) ?? [];
      return sent?.[0] === null && Number(sent[1]) > 0;
    } catch {
      this.drop();
      return false;
    }
  }

  async peers(): Promise<string[]> {
    if (!isReady(this.pub)) return [];
    const channels = this.sharded ? await shardChannels(this.pub as Cluster, `${SHARDED_CONTROL_PREFIX}*`) : ((await this.pub.pubsub('CHANNELS', `${CONTROL_PREFIX}*`).catch(() => [])) as string[]);
    return channels.map((c) => c.slice(this.controlPrefix.length)).filter((id) => id !== this.instanceId);
  }

  publish(kind: ChannelKind, name: string, envelope: Relayed, filter?: Filter): void {
    if (!isReady(this.pub)) return this.drop();
    this.sendEnvelope(channelName(kind, name), encodeMessage(this.instanceId, envelope.frame, filter)).catch(() => this.drop());
  }

  /** On the envelopes' path (on a cluster, straight to the slot's master): the mark falls in order with them. */
  markChannel(kind: ChannelKind, name: string, mark: string): void {
    if (!isReady(this.pub)) return this.drop();
    this.sendEnvelope(channelName(kind, name), encodeMark(this.instanceId, mark)).catch(() => this.drop());
  }

  wantEchoes(on: boolean): void {
    this.echoes = Math.max(0, this.echoes + (on ? 1 : -1));
  }

  subscribe(kind: ChannelKind, name: string): Promise<void> {
    return this.subscriptions.add(channelName(kind, name));
  }

  unsubscribe(kind: ChannelKind, name: string): void {
    this.subscriptions.remove(channelName(kind, name));
  }

  /** Every master of a cluster answers again after one did not (the composition root's probe). */
  recovered(): void {
    this.subscriptions.recovered();
  }

  async stop(): Promise<void> {
    this.handlers = null;
    this.control = null;
    await this.subscriptions.stop();
  }

  private onMessage(channel: string, message: string): void {
    const decoded = decodeMessage(message);
    if (channel === this.ownControl) {
      if (decoded) this.control?.onControl(decoded.body, decoded.origin);
      return;
    }
    if (!this.subscriptions.has(channel)) return;
    const mark = decoded && markOf(decoded.body);
    if (mark) return this.control?.onMark?.(channel, mark, decoded.origin);
    const own = decoded?.origin === this.instanceId;
    if (own && this.echoes === 0) return;
    const target = parseChannel(channel);
    const arrived = target && decoded ? decodeRelayed(target.kind, target.name, decoded.body) : null;
    if (!target || !arrived) return this.reject(channel);
    if (own) this.handlers?.onEcho?.(target.kind, target.name, arrived.envelope, arrived.filter);
    else this.handlers?.onRelayed(target.kind, target.name, arrived.envelope, decoded!.origin, arrived.filter);
  }

  /** Counts and drops a message that is not a gateway envelope for its channel (or whose filter does not parse); logs at most every 10 s. */
  private reject(channel: string): void {
    this.invalidCount++;
    const now = Date.now();
    if (now - this.lastInvalidLogAt >= LOG_INTERVAL_MS) {
      this.lastInvalidLogAt = now;
      this.log.warn({ channel, invalid: this.invalidCount }, 'malformed message from redis dropped');
    }
  }

  private drop(): void {
    this.droppedCount++;
    const now = Date.now();
    if (now - this.lastDropLogAt >= LOG_INTERVAL_MS) {
      this.lastDropLogAt = now;
      this.log.warn({ dropped: this.droppedCount }, 'redis down: cross-instance messages dropped');
    }
  }
}

/**
 * The shard channels matching `pattern` on every node, unioned (each lists only its own clients' subscriptions). Every
 * node, not only the masters this client knows: its slot map may be seconds behind a failover (a connection that only
 * asks this learns of none), and the promoted replica is in the pool already.
 */
async function shardChannels(cluster: Cluster, pattern: string): Promise<string[]> {
  const lists = await Promise.all(cluster.nodes('all').map((node) => node.pubsub('SHARDCHANNELS', pattern).catch(() => [])));
  return [...new Set((lists as string[][]).flat())];
}
