// A Redis Cluster's sharded subscriptions (SSUBSCRIBE): one connection per master that owns the slot of a wanted
// channel, each channel subscribed on the master the cluster client's slot map names for it, and subscribed again
// wherever it belongs whenever that could have changed: the map was read again (every 2 s, and at once after MOVED or a
// lost node), a connection came back, a master said a slot left it, or every master answers again after a loss.
//
// Hand-written instead of ioredis's sharded subscriber group (`shardedSubscribers: true`), which was seen, across a
// restart of every node, to keep a connection per master that held none of the channels it listed (delivery came back
// 10 s late, or not at all, while /health said ok), or to lose its subscriber for a slot for good ("No sharded
// subscriber for slot"), with nothing to tell from outside. Here the state is ours and one rule repairs it: every channel
// is confirmed on its slot's master, or asked there again within a second.
import calculateSlot from 'cluster-key-slot';
import { timings } from '../config/timings';
import type { Logger } from '../utils/logger';
import { closeRedis, createNodeRedis, isReady, type Cluster, type Redis } from '../redis/connection';
import { whenReady, type MessageListener, type Subscriber } from './Subscriber';

/** How often every channel is checked against the slot map, and a failed SSUBSCRIBE asked again. */
const RECONCILE_MS = 1_000;
const LOG_INTERVAL_MS = 10_000;

/** A wanted channel: the master (host:port) it is subscribed on, and whether that master confirmed it. */
interface Placement {
  readonly slot: number;
  node: string;
  state: 'asked' | 'confirmed' | 'lost';
  /** add() callers waiting for the first answer. */
  waiters: (() => void)[];
  /** Resolves at the first answer (or when the channel is left): what add() returns, however often it is called. */
  answered: Promise<void>;
}

/** One subscriber connection to a master and the channels placed on it. */
interface Link {
  readonly redis: Redis;
  readonly channels: Set<string>;
}

export class ShardSubscriber implements Subscriber {
  private readonly placements = new Map<string, Placement>();
  private readonly links = new Map<string, Link>();
  private readonly timer: NodeJS.Timeout;
  private readonly onRefresh = () => this.reconcile();
  private stopped = false;
  private lastFailLogAt = 0;

  constructor(
    private readonly cluster: Cluster,
    private readonly name: string,
    private readonly log: Logger,
    private readonly onMessage: MessageListener,
  ) {
    cluster.on('refresh', this.onRefresh);
    // A channel not confirmed after a pass also has the slot map read again: after a failover the map read when the
    // master was lost still names it, and the next periodic read is up to 2 s away.
    this.timer = setInterval(() => this.reconcile() || this.cluster.refreshSlotsCache(), RECONCILE_MS);
    this.timer.unref();
  }

  add(channel: string): Promise<void> {
    const existing = this.placements.get(channel);
    if (existing) return existing.answered;
    const waiters: (() => void)[] = [];
    const answered = new Promise<void>((resolve) => waiters.push(resolve));
    const placement: Placement = { slot: calculateSlot(channel), node: '', state: 'lost', waiters, answered };
    this.placements.set(channel, placement);
    const owner = this.ownerOf(placement.slot);
    if (owner === undefined) {
      // No slot map yet: the first reconcile after it is read asks.
      this.answer(placement);
      return answered;
    }
    const link = this.place(channel, placement, owner);
    if (isReady(link.redis)) this.ask(channel, placement, link);
    // Not connected yet: its 'ready' asks; a master that does not answer is not waited for longer than a command.
    else void whenReady(link.redis, timings.redisCommandTimeoutMs).then((ready) => ready || this.answer(placement));
    return answered;
  }

  remove(channel: string): void {
    const placement = this.placements.get(channel);
    if (!placement) return;
    this.placements.delete(channel);
    this.answer(placement);
    this.leave(channel, placement.node);
  }

  has(channel: string): boolean {
    return this.placements.has(channel);
  }

  /** Opens a connection to every master and waits for them (a join right after start then subscribes at once). */
  async ready(timeoutMs: number): Promise<void> {
    await Promise.all([...this.masters()].map((node) => whenReady(this.linkTo(node).redis, timeoutMs)));
  }

  /**
   * Every channel is asked again, and a connection still waiting out its reconnect backoff (up to
   * `timings.redisMaxBackoffMs`) is replaced by one that connects now.
   */
  recovered(): void {
    for (const [node, link] of this.links) {
      if (isReady(link.redis)) continue;
      this.links.delete(node);
      void closeRedis(link.redis);
      for (const channel of link.channels) {
        const placement = this.placements.get(channel);
        if (placement) placement.node = '';
      }
    }
    for (const placement of this.placements.values()) placement.state = 'lost';
    this.reconcile();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.cluster.off('refresh', this.onRefresh);
    for (const placement of this.placements.values()) this.answer(placement);
    this.placements.clear();
    const links = [...this.links.values()];
    this.links.clear();
    // Leave every channel before quitting, so that once stop() resolved no master lists this instance as a peer.
    await Promise.all(
      links.map(async ({ redis, channels }) => {
        if (isReady(redis) && channels.size > 0) await redis.sunsubscribe().catch(() => undefined);
        await closeRedis(redis);
      }),
    );
  }

  /** The masters the cluster client's slot map names (host:port). */
  private masters(): Set<string> {
    return new Set(this.cluster.slots.map((nodes) => nodes?.[0]).filter((node) => node !== undefined));
  }

  /** The master of `slot` by the cluster client's slot map (host:port), if it knows one. */
  private ownerOf(slot: number): string | undefined {
    return this.cluster.slots[slot]?.[0];
  }

  /**
   * Every wanted channel on its slot's master now, confirmed there or asked: a channel whose master changed moves
   * (left where it was), one that is lost is asked again. Connections no master's channels need are closed. Returns
   * whether every channel was confirmed already.
   */
  private reconcile(): boolean {
    if (this.stopped) return true;
    let settled = true;
    for (const [channel, placement] of this.placements) {
      const owner = this.ownerOf(placement.slot);
      if (owner === undefined) {
        settled = false;
        continue;
      }
      if (owner !== placement.node) {
        this.leave(channel, placement.node);
        placement.state = 'lost';
        this.place(channel, placement, owner);
      }
      if (placement.state !== 'confirmed') settled = false;
      const link = this.links.get(owner)!;
      if (placement.state === 'lost' && isReady(link.redis)) this.ask(channel, placement, link);
    }
    const owners = this.masters();
    for (const [node, link] of this.links) {
      if (link.channels.size > 0 || owners.has(node)) continue;
      this.links.delete(node);
      void closeRedis(link.redis);
    }
    return settled;
  }

  private place(channel: string, placement: Placement, node: string): Link {
    placement.node = node;
    const link = this.linkTo(node);
    link.channels.add(channel);
    return link;
  }

  private leave(channel: string, node: string): void {
    const link = this.links.get(node);
    if (!link?.channels.delete(channel)) return;
    if (isReady(link.redis)) link.redis.sunsubscribe(channel).catch(() => undefined);
  }

  /** SSUBSCRIBE on the link; a failure leaves the channel lost (asked again by the next reconcile). */
  private ask(channel: string, placement: Placement, link: Link): void {
    placement.state = 'asked';
    link.redis.ssubscribe(channel).then(
      () => {
        if (this.placements.get(channel) !== placement || !link.channels.has(channel)) return;
        if (placement.state === 'asked') placement.state = 'confirmed';
        this.answer(placement);
      },
      (err: Error) => {
        if (this.placements.get(channel) !== placement || !link.channels.has(channel)) return;
        if (placement.state === 'asked') placement.state = 'lost';
        // MOVED: the slot map is behind; read it again (its 'refresh' reconciles).
        if (err.message.startsWith('MOVED')) this.cluster.refreshSlotsCache();
        this.answer(placement);
        this.logFailure(channel, err);
      },
    );
  }

  private answer(placement: Placement): void {
    for (const resolve of placement.waiters.splice(0)) resolve();
  }

  /** The connection to `node` (host:port), opened on first use. */
  private linkTo(node: string): Link {
    const existing = this.links.get(node);
    if (existing) return existing;
    const at = node.lastIndexOf(':');
    const redis = createNodeRedis({ host: node.slice(0, at), port: Number(node.slice(at + 1)) }, this.name, this.log);
    const link: Link = { redis, channels: new Set() };
    this.links.set(node, link);
    // Events of a connection given up (recovered() replaces those still down) change nothing.
    const current = () => this.links.get(node) === link;
    // A new connection holds no subscription: everything placed here is asked again.
    redis.on('ready', () => {
      if (current()) for (const [channel, placement] of this.placedOn(link)) this.ask(channel, placement, link);
    });
    redis.on('close', () => {
      if (current()) for (const [, placement] of this.placedOn(link)) placement.state = 'lost';
    });
    // A slot left this master (an unsolicited sunsubscribe, or MOVED to an SSUBSCRIBE): read the map again, and ask
    // everything placed here again at its next reconcile.
    redis.on('moved', () => {
      if (!current()) return;
      for (const [, placement] of this.placedOn(link)) if (placement.state === 'confirmed') placement.state = 'lost';
      this.cluster.refreshSlotsCache();
    });
    // Only from where the channel is placed now: a master it left (now a replica of its shard, say) may still send.
    redis.on('smessage', (channel: string, message: string) => {
      if (current() && this.placements.get(channel)?.node === node) this.onMessage(channel, message);
    });
    return link;
  }

  /** Each channel placed on `link`, with its placement. */
  private placedOn(link: Link): [string, Placement][] {
    const placed: [string, Placement][] = [];
    for (const channel of link.channels) {
      const placement = this.placements.get(channel);
      if (placement) placed.push([channel, placement]);
    }
    return placed;
  }

  private logFailure(channel: string, err: Error): void {
    const now = Date.now();
    if (now - this.lastFailLogAt < LOG_INTERVAL_MS) return;
    this.lastFailLogAt = now;
    this.log.warn({ channel, err: err.message }, 'subscribe failed; asked again');
  }
}
