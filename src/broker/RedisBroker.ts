// RedisBroker: pub/sub between instances through Redis. A dedicated subscriber connection holds exactly the
// channels local connections need, re-subscribing all of them whenever the connection comes back. On a Redis Cluster
// the same channels are sharded (SPUBLISH/SSUBSCRIBE): a message costs work only on the shard that owns its channel.
import type { RedisTarget } from '../config';
import calculateSlot from 'cluster-key-slot';
import { timings } from '../config/timings';
import type { Logger } from '../utils/logger';
import { createRedis, closeRedis, isCluster, isReady, type Cluster, type RedisClient } from '../redis/connection';
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
/** Cluster only: how long until a failed SSUBSCRIBE is asked again. */
const SUBSCRIBE_RETRY_MS = 1_000;

export class RedisBroker implements Broker {
  private sub: RedisClient;
  readonly singleOrder: boolean;
  /** The channels this instance needs, with their pending SUBSCRIBE: kept across reconnects, since Redis forgets them. */
  private readonly wanted = new Map<string, Promise<void>>();
  private handlers: BrokerHandlers | null = null;
  private control: ControlHandlers | null = null;
  private readonly ownControl: string;
  /** On a cluster: SPUBLISH/SSUBSCRIBE, `smessage`, control channels in the `{control}` slot. */
  private readonly sharded: boolean;
  private readonly controlPrefix: string;
  /**
   * Cluster only: wanted channels no SSUBSCRIBE has reached ioredis's subscriber group for (asked while down, or failed).
   * The group re-subscribes what it holds by itself after a failover or slot move; these are ours to ask again on 'ready'.
   */
  private readonly unconfirmed = new Set<string>();
  private retryTimer: NodeJS.Timeout | undefined;
  private renewal: NodeJS.Timeout | undefined;
  /** Cluster only: whether the subscriber connection was ready once (a later 'ready' follows the loss of every node). */
  private subReadyBefore = false;
  /** How many callers want this instance's own envelopes read back (wantEchoes). */
  private echoes = 0;
  private droppedCount = 0;
  private lastDropLogAt = 0;
  private invalidCount = 0;
  private lastInvalidLogAt = 0;

  constructor(
    readonly instanceId: string,
    private readonly pub: RedisClient,
    private readonly target: RedisTarget,
    private readonly log: Logger,
  ) {
    this.sharded = isCluster(pub);
    this.singleOrder = !this.sharded;
    this.controlPrefix = this.sharded ? SHARDED_CONTROL_PREFIX : CONTROL_PREFIX;
    this.ownControl = this.controlChannel(instanceId);
    this.sub = this.subscriber();
  }

  /** The subscriber connection: re-subscribes on 'ready', hands every message to onMessage. */
  private subscriber(): RedisClient {
    const sub = createRedis(this.target, `gateway-strategy:${this.instanceId}:sub`, this.log, { shardedSubscribers: this.sharded });
    sub.on('ready', () => this.resubscribe());
    sub.on(this.sharded ? 'smessage' : 'message', (channel: string, message: string) => this.onMessage(channel, message));
    return sub;
  }

  /**
   * Cluster only: replaces the subscriber connection by a new one, which subscribes every wanted channel once ready.
   * ioredis's subscriber group can end up with no subscriber for a master while its client says ready (seen after a
   * restart of every node: each SSUBSCRIBE then fails with "No sharded subscriber for slot"), and never recovers.
   */
  private renewSubscriber(): void {
    if (this.renewal || this.handlers === null) return;
    this.renewal = setTimeout(() => {
      this.renewal = undefined;
      if (this.handlers === null) return;
      this.log.warn('redis cluster subscriber lost its shards; connecting a new one');
      void closeRedis(this.sub);
      this.subReadyBefore = true;
      this.sub = this.subscriber();
    }, SUBSCRIBE_RETRY_MS);
    this.renewal.unref();
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

  /** SUBSCRIBE, or SSUBSCRIBE on a cluster; resolves once Redis confirmed it. */
  private listen(channel: string): Promise<void> {
    const confirmed = this.sharded ? this.sub.ssubscribe(channel) : this.sub.subscribe(channel);
    return confirmed.then(
      () => void this.unconfirmed.delete(channel),
      (err: Error) => {
        if (this.sharded && this.wanted.has(channel)) {
          this.unconfirmed.add(channel);
          if (err.message.startsWith('No sharded subscriber')) this.renewSubscriber();
          else this.retrySoon();
        }
        this.log.warn({ channel, err: err.message }, 'subscribe failed; retried');
      },
    );
  }

  /**
   * Cluster only: asks the unconfirmed channels again in a second. A cluster client can be ready while a node it must
   * subscribe on is not yet (its nodes coming back one by one), and no later 'ready' comes to retry on.
   */
  private retrySoon(): void {
    if (this.retryTimer || this.handlers === null) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (isReady(this.sub)) for (const channel of this.unconfirmed) void this.listen(channel);
      else if (this.unconfirmed.size > 0) this.retrySoon();
    }, SUBSCRIBE_RETRY_MS);
    this.retryTimer.unref();
  }

  get dropped(): number {
    return this.droppedCount;
  }

  get invalid(): number {
    return this.invalidCount;
  }

  /**
   * Waits (at most the startup wait) for the subscriber connection too: a join right after start subscribes for real,
   * instead of being told "down, nothing delivered" while a cluster client is still reading the slots. Not when Redis
   * is down (the command connection is not ready): the gateway then starts degraded at once.
   */
  async start(handlers: BrokerHandlers): Promise<void> {
    this.handlers = handlers;
    if (isReady(this.sub) || !isReady(this.pub)) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.sub.off('ready', done);
        resolve();
      };
      const timer = setTimeout(done, timings.redisStartupWaitMs);
      this.sub.once('ready', done);
    });
  }

  async listenControl(handlers: ControlHandlers): Promise<void> {
    this.control = handlers;
    this.wanted.set(this.ownControl, Promise.resolve());
    if (!isReady(this.sub)) return void (this.sharded && this.unconfirmed.add(this.ownControl));
    await this.listen(this.ownControl);
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
    const channel = channelName(kind, name);
    let pending = this.wanted.get(channel);
    if (!pending) {
      // Set before listen() runs: a failure it reports finds the channel wanted.
      this.wanted.set(channel, Promise.resolve());
      if (isReady(this.sub)) pending = this.listen(channel);
      else {
        pending = Promise.resolve();
        if (this.sharded) this.unconfirmed.add(channel);
      }
      this.wanted.set(channel, pending);
    }
    return pending;
  }

  unsubscribe(kind: ChannelKind, name: string): void {
    const channel = channelName(kind, name);
    if (!this.wanted.delete(channel)) return;
    this.unconfirmed.delete(channel);
    if (isReady(this.sub)) (this.sharded ? this.sub.sunsubscribe(channel) : this.sub.unsubscribe(channel)).catch(() => undefined);
  }

  async stop(): Promise<void> {
    this.handlers = null;
    clearTimeout(this.retryTimer);
    clearTimeout(this.renewal);
    this.control = null;
    // A cluster's quit drops its sharded subscriber connections without waiting for them to close: leave the control
    // channel first, so that once stop() resolved this instance is nobody's peer and its sendControl answers false.
    if (this.sharded && this.wanted.has(this.ownControl) && isReady(this.sub)) {
      await this.sub.sunsubscribe(this.ownControl).catch(() => undefined);
    }
    await closeRedis(this.sub);
  }

  /**
   * One redis-server forgets every subscription with the connection: all of them again. On a cluster, ioredis's
   * subscriber group (one connection per master) keeps the channels it was given and SSUBSCRIBEs them again itself on
   * a new master and after a slot move (explicitly, so `autoResubscribe: false` does not stop it), without a 'ready'
   * here. A 'ready' comes after the whole cluster was lost, and there the group was seen to miss channels (one gateway of
   * two lost every subscription across a restart of every node): every channel is asked again. The group then lists a
   * channel it kept twice (it appends), which costs a repeated SSUBSCRIBE at its next re-subscription and nothing else;
   * whole-cluster losses are rare. The first 'ready' asks only what never reached the group.
   */
  /**
   * Cluster only: every master answers again after one did not (told by the composition root's probe). ioredis's group
   * re-subscribes by itself on a new master, but its own SSUBSCRIBE can fail while nodes come back one by one, and it
   * does not retry (seen across a restart of every node): every channel is asked again now that all masters answer.
   */
  recovered(): void {
    if (!this.sharded || !isReady(this.sub)) return;
    for (const channel of this.wanted.keys()) void this.listen(channel);
  }

  private resubscribe(): void {
    if (this.sharded) {
      const again = this.subReadyBefore ? [...this.wanted.keys()] : [...this.unconfirmed];
      this.subReadyBefore = true;
      for (const channel of again) void this.listen(channel);
      return;
    }
    if (this.wanted.size === 0) return;
    this.sub.subscribe(...this.wanted.keys()).catch((err: Error) => this.log.warn({ err: err.message }, 'resubscribe failed'));
  }

  private onMessage(channel: string, message: string): void {
    const decoded = decodeMessage(message);
    if (channel === this.ownControl) {
      if (decoded) this.control?.onControl(decoded.body, decoded.origin);
      return;
    }
    if (!this.wanted.has(channel)) return;
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
