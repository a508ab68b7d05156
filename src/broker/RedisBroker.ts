// RedisBroker: pub/sub between instances through Redis. A dedicated subscriber connection holds exactly the
// channels local connections need, re-subscribing all of them whenever the connection comes back.
import type { Logger } from '../utils/logger';
import { createRedis, closeRedis, isReady, type Redis } from '../redis/connection';
import type { Broker, BrokerHandlers, ChannelKind, ControlHandlers } from './Broker';
import type { Relayed } from '../types/signals';
import { decodeMessage, decodeRelayed, encodeMessage, keys, parseChannel } from './wire';

const LOG_INTERVAL_MS = 10_000;

export class RedisBroker implements Broker {
  private readonly sub: Redis;
  /** The channels this instance needs, with their pending SUBSCRIBE: kept across reconnects, since Redis forgets them. */
  private readonly wanted = new Map<string, Promise<void>>();
  private handlers: BrokerHandlers | null = null;
  private control: ControlHandlers | null = null;
  /** Whether this instance's own subscription to the control channel is live (Redis counts it among the listeners). */
  private controlSubscribed = false;
  private droppedCount = 0;
  private lastDropLogAt = 0;
  private invalidCount = 0;
  private lastInvalidLogAt = 0;

  constructor(
    readonly instanceId: string,
    private readonly pub: Redis,
    url: string,
    private readonly log: Logger,
  ) {
    this.sub = createRedis(url, `gateway-strategy:${instanceId}:sub`, log);
    this.sub.on('ready', () => this.resubscribe());
    this.sub.on('close', () => {
      this.controlSubscribed = false;
    });
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
    this.wanted.set(keys.control, Promise.resolve());
    if (!isReady(this.sub)) return;
    await this.sub.subscribe(keys.control).then(
      () => {
        this.controlSubscribed = true;
      },
      (err: Error) => this.log.warn({ err: err.message }, 'control subscribe failed'),
    );
  }

  async publishControl(message: string): Promise<number> {
    if (!isReady(this.pub)) {
      this.drop();
      return 0;
    }
    try {
      const heard = await this.pub.publish(keys.control, encodeMessage(this.instanceId, message));
      return Math.max(0, heard - (this.controlSubscribed ? 1 : 0));
    } catch {
      this.drop();
      return 0;
    }
  }

  publish(kind: ChannelKind, name: string, envelope: Relayed): void {
    if (!isReady(this.pub)) return this.drop();
    this.pub.publish(keys.channel(kind, name), encodeMessage(this.instanceId, envelope.frame)).catch(() => this.drop());
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
    this.sub.subscribe(...this.wanted.keys()).then(
      () => {
        this.controlSubscribed = this.wanted.has(keys.control);
      },
      (err: Error) => this.log.warn({ err: err.message }, 'resubscribe failed'),
    );
  }

  private onMessage(channel: string, message: string): void {
    const decoded = decodeMessage(message);
    if (channel === keys.control) {
      if (decoded && decoded.origin !== this.instanceId) this.control?.onControl(decoded.frame);
      return;
    }
    const target = parseChannel(channel);
    if (decoded?.origin === this.instanceId || !this.wanted.has(channel)) return;
    const envelope = target && decoded ? decodeRelayed(target.kind, target.name, decoded.frame) : null;
    if (!target || !envelope) return this.reject(channel);
    this.handlers?.onRelayed(target.kind, target.name, envelope);
  }

  /** Counts and drops a message that is not a gateway envelope for its channel; logs at most every 10 s. */
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
