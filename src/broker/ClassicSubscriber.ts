// One redis-server's subscriptions: one connection, which forgets every subscription when it drops; all of them are
// asked again on each 'ready'.
import type { RedisTarget } from '../config';
import type { Logger } from '../utils/logger';
import { closeRedis, createRedis, isReady, type RedisClient } from '../redis/connection';
import { whenReady, type MessageListener, type Subscriber } from './Subscriber';

export class ClassicSubscriber implements Subscriber {
  private readonly sub: RedisClient;
  /** The channels wanted, with their first SUBSCRIBE: kept across reconnects, since Redis forgets them. */
  private readonly wanted = new Map<string, Promise<void>>();

  constructor(
    target: RedisTarget,
    name: string,
    private readonly log: Logger,
    onMessage: MessageListener,
  ) {
    this.sub = createRedis(target, name, log);
    this.sub.on('ready', () => this.resubscribe());
    this.sub.on('message', onMessage);
  }

  add(channel: string): Promise<void> {
    let pending = this.wanted.get(channel);
    if (!pending) {
      pending = isReady(this.sub) ? this.sub.subscribe(channel).then(() => undefined, (err: Error) => this.log.warn({ channel, err: err.message }, 'subscribe failed; asked again on reconnect')) : Promise.resolve();
      this.wanted.set(channel, pending);
    }
    return pending;
  }

  remove(channel: string): void {
    if (this.wanted.delete(channel) && isReady(this.sub)) this.sub.unsubscribe(channel).catch(() => undefined);
  }

  has(channel: string): boolean {
    return this.wanted.has(channel);
  }

  async ready(timeoutMs: number): Promise<void> {
    await whenReady(this.sub, timeoutMs);
  }

  /** One server: its connection's 'ready' re-subscribes already. */
  recovered(): void {}

  stop(): Promise<void> {
    return closeRedis(this.sub);
  }

  private resubscribe(): void {
    if (this.wanted.size === 0) return;
    this.sub.subscribe(...this.wanted.keys()).catch((err: Error) => this.log.warn({ err: err.message }, 'resubscribe failed'));
  }
}
