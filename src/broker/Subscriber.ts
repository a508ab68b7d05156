// The subscriber side of RedisBroker: holds the channels this instance needs, subscribed again whenever Redis forgot
// them, and hands every message on them to the broker. `ClassicSubscriber` for one redis-server, `ShardSubscriber`
// for a Redis Cluster.

export type MessageListener = (channel: string, message: string) => void;

export interface Subscriber {
  /** Wants `channel`; resolves once Redis confirmed the subscription or it failed (then it is asked again by itself). */
  add(channel: string): Promise<void>;
  remove(channel: string): void;
  has(channel: string): boolean;
  /** Resolves once a subscription can be made, or after `timeoutMs`. */
  ready(timeoutMs: number): Promise<void>;
  /** Every master answers again after one did not (the composition root's probe): every channel is asked again. */
  recovered(): void;
  /** Leaves every channel and closes: once it resolved, no one sees this instance subscribed. */
  stop(): Promise<void>;
}

/** Resolves true once `redis` is ready, false when it ends or `timeoutMs` passed first. */
export function whenReady(redis: { status: string; once(event: string, f: () => void): unknown; off(event: string, f: () => void): unknown }, timeoutMs: number): Promise<boolean> {
  if (redis.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const settle = (ready: boolean) => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      redis.off('end', onEnd);
      resolve(ready);
    };
    const onReady = () => settle(true);
    const onEnd = () => settle(false);
    const timer = setTimeout(onEnd, timeoutMs);
    redis.once('ready', onReady);
    redis.once('end', onEnd);
  });
}
