// RedisBroker: pub/sub between instances through Redis. A dedicated subscriber connection holds exactly the
// channels local connections need, re-subscribing all of them whenever the connection comes back.
import type { Logger } from '../utils/logger';
import { createRedis, closeRedis, isReady, type Redis } from '../redis/connection';
import type { Broker, BrokerHandlers, ChannelKind, ControlHandlers } from './Broker';
import { decodeMessage, encodeMessage, keys, parseChannel } from './wire';

const DROP_LOG_INTERVAL_MS = 10_000;

export class RedisBroker implements Broker {
  private readonly sub: Redis;
  /** The channels this instance needs, with their pending SUBSCRIBE: kept across reconnects, since Redis forgets them. */
  private readonly wanted = new Map<string, Promise<void>>();
  private handlers: BrokerHandlers | null = null;
  private control: ControlHandlers | null = null;
  private droppedCount = 0;
  private lastDropLogAt = 0;

  constructor(
    readonly instanceId: string,
    private readonly pub: Redis,
    url: string,
    private readonly log: Logger,
  ) {
    this.sub = createRedis(url, `gateway-strategy:${instanceId}:sub`, log);
    this.sub.on('ready', () => this.resubscribe());
    this.sub.on('message', (channel: string, message: string) => this.onMessage(channel, message));
  }

  get dropped(): number {
    return this.droppedCount;
  }

  async start(handlers: BrokerHandlers): Promise<void> {
    this.handlers = handlers;
  }

  async listenControl(handlers: ControlHandlers): Promise<void> {
    this.control = handlers;
    this.wanted.set(keys.control, Promise.resolve());
    if (isReady(this.sub)) await this.sub.subscribe(keys.control).catch((err: Error) => this.log.warn({ err: err.message }, 'control subscribe failed'));
  }

  publishControl(message: string): void {
    if (!isReady(this.pub)) return this.drop();
    this.pub.publish(keys.control, encodeMessage(this.instanceId, message)).catch(() => this.drop());
  }

  publish(kind: ChannelKind, name: string, frame: string): void {
    if (!isReady(this.pub)) return this.drop();
    this.pub.publish(keys.channel(kind, name), encodeMessage(this.instanceId, frame)).catch(() => this.drop());
  }

  subscribe(kind: ChannelKind, name: string): Promise<void> {
    const channel = keys.channel(kind, name);
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
    const channel = keys.channel(kind, name);
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
    if (channel === keys.control) {
      if (decoded && decoded.origin !== this.instanceId) this.control?.onControl(decoded.frame);
      return;
    }
    const target = parseChannel(channel);
    if (!target || !decoded) {
      this.log.warn({ channel }, 'malformed message from redis ignored');
      return;
    }
    if (decoded.origin === this.instanceId || !this.wanted.has(channel)) return;
    this.handlers?.onFrame(target.kind, target.name, decoded.frame);
  }

  private drop(): void {
    this.droppedCount++;
    const now = Date.now();
    if (now - this.lastDropLogAt >= DROP_LOG_INTERVAL_MS) {
      this.lastDropLogAt = now;
      this.log.warn({ dropped: this.droppedCount }, 'redis down: cross-instance messages dropped');
    }
  }
}
