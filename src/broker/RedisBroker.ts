// RedisBroker: pub/sub between instances through Redis. A dedicated subscriber connection holds exactly the
// channels local connections need, re-subscribing all of them whenever the connection comes back.
import type { RedisTarget } from '../config';
import type { Logger } from '../utils/logger';
import { createRedis, closeRedis, isCluster, isReady, type RedisClient } from '../redis/connection';
import type { Broker, BrokerHandlers, ChannelKind, ControlHandlers } from './Broker';
import type { Filter } from '../types/filter';
import type { Relayed } from '../types/signals';
import { decodeMessage, decodeRelayed, encodeMessage, channelName, parseChannel } from './wire';

/** Each instance's control channel: messages addressed to it (session handoffs). */
const CONTROL_PREFIX = 'rt:control:';
const controlChannel = (instanceId: string) => `${CONTROL_PREFIX}${instanceId}`;

const LOG_INTERVAL_MS = 10_000;

export class RedisBroker implements Broker {
  private readonly sub: RedisClient;
  readonly singleOrder: boolean;
  /** The channels this instance needs, with their pending SUBSCRIBE: kept across reconnects, since Redis forgets them. */
  private readonly wanted = new Map<string, Promise<void>>();
  private handlers: BrokerHandlers | null = null;
  private control: ControlHandlers | null = null;
  private readonly ownControl: string;
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
    this.ownControl = controlChannel(instanceId);
    this.singleOrder = !isCluster(pub);
    this.sub = createRedis(target, `gateway-strategy:${instanceId}:sub`, log);
    this.sub.on('ready', () => this.resubscribe());
    this.sub.on('message', (channel: string, message: string) => this.onMessage(channel, message));
  }

  get dropped(): number {
    return this.droppedCount;
  }

  get invalid(): number {
    return this.invalidCount;
  }

  async start(handlers: BrokerHandlers): Promise<void> {
    this.handlers = handlers;
  }

  async listenControl(handlers: ControlHandlers): Promise<void> {
    this.control = handlers;
    this.wanted.set(this.ownControl, Promise.resolve());
    if (!isReady(this.sub)) return;
    await this.sub.subscribe(this.ownControl).catch((err: Error) => this.log.warn({ err: err.message }, 'control subscribe failed'));
  }

  /**
   * PUBLISH answers how many subscribers heard it: 0 on an instance's own channel means it is gone. A mark goes in the
   * same MULTI as the message (ioredis writes it in the call, before any later publish on this connection), so Redis
   * puts both at one point of its single order of messages, the order every subscriber connection reads in.
   */
  async sendControl(to: string, message: string, mark?: string): Promise<boolean> {
    if (!isReady(this.pub)) {
      this.drop();
      return false;
    }
    const encoded = encodeMessage(this.instanceId, message);
    try {
      if (mark === undefined) return (await this.pub.publish(controlChannel(to), encoded)) > 0;
      const [sent] = (await this.pub.multi().publish(controlChannel(to), encoded).publish(this.ownControl, encodeMessage(this.instanceId, mark)).exec()) ?? [];
      return sent?.[0] === null && Number(sent[1]) > 0;
    } catch {
      this.drop();
      return false;
    }
  }

  async peers(): Promise<string[]> {
    if (!isReady(this.pub)) return [];
    const channels = await this.pub.pubsub('CHANNELS', `${CONTROL_PREFIX}*`).catch(() => [] as unknown[]);
    return (channels as string[]).map((c) => c.slice(CONTROL_PREFIX.length)).filter((id) => id !== this.instanceId);
  }

  publish(kind: ChannelKind, name: string, envelope: Relayed, filter?: Filter): void {
    if (!isReady(this.pub)) return this.drop();
    this.pub.publish(channelName(kind, name), encodeMessage(this.instanceId, envelope.frame, filter)).catch(() => this.drop());
  }

  subscribe(kind: ChannelKind, name: string): Promise<void> {
    const channel = channelName(kind, name);
    let pending = this.wanted.get(channel);
    if (!pending) {
      pending = isReady(this.sub)
        ? this.sub.subscribe(channel).then(
            () => undefined,
            (err: Error) => this.log.warn({ channel, err: err.message }, 'subscribe failed; retried on reconnect'),
          )
        : Promise.resolve();
      this.wanted.set(channel, pending);
    }
    return pending;
  }

  unsubscribe(kind: ChannelKind, name: string): void {
    const channel = channelName(kind, name);
    if (!this.wanted.delete(channel)) return;
    if (isReady(this.sub)) this.sub.unsubscribe(channel).catch(() => undefined);
  }

  async stop(): Promise<void> {
    this.handlers = null;
    this.control = null;
    await closeRedis(this.sub);
  }

  private resubscribe(): void {
    if (this.wanted.size === 0) return;
    this.sub.subscribe(...this.wanted.keys()).catch((err: Error) => this.log.warn({ err: err.message }, 'resubscribe failed'));
  }

  private onMessage(channel: string, message: string): void {
    const decoded = decodeMessage(message);
    if (channel === this.ownControl) {
      if (decoded) this.control?.onControl(decoded.body, decoded.origin);
      return;
    }
    const target = parseChannel(channel);
    if (decoded?.origin === this.instanceId || !this.wanted.has(channel)) return;
    const arrived = target && decoded ? decodeRelayed(target.kind, target.name, decoded.body) : null;
    if (!target || !arrived) return this.reject(channel);
    this.handlers?.onRelayed(target.kind, target.name, arrived.envelope, decoded!.origin, arrived.filter);
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
