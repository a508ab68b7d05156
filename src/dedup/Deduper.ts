// Deduplication of `signal` envelopes: the same (group, kind, user) is let through once per window, cluster-wide with
// Redis. A protocol rule, not a transport one: the Broker never sees it.
import { isReady, type RedisClient } from '../redis/connection';
import type { GroupName, UserId } from '../types/domain';

/**
 * The window's key, in its group's hash slot on a Redis Cluster (the `{g:…}` tag the group's presence keys carry);
 * group and kind cannot contain "|", so the user id comes last.
 */
const signalKey = (group: GroupName, kind: string, userId: UserId) => `rt:{g:${group}}:sig:${kind}|${userId}`;

export interface Deduper {
  /** True when this signal is the first of its (group, kind, user) within `windowMs`. */
  claim(group: GroupName, kind: string, userId: UserId, windowMs: number): Promise<boolean>;
}

/** Purge expired claims once the map holds this many. */
const PURGE_AT = 10_000;

/** In-process windows; shared by in-process instances through the same object. */
export class MemoryDeduper implements Deduper {
  private readonly until = new Map<string, number>();

  async claim(group: GroupName, kind: string, userId: UserId, windowMs: number): Promise<boolean> {
    const key = signalKey(group, kind, userId);
    const now = Date.now();
    if ((this.until.get(key) ?? 0) > now) return false;
    if (this.until.size >= PURGE_AT) for (const [k, t] of this.until) if (t <= now) this.until.delete(k);
    this.until.set(key, now + windowMs);
    return true;
  }
}

/** SET NX PX in Redis; while Redis is down, the in-process windows stand in. */
export class RedisDeduper implements Deduper {
  private readonly fallback = new MemoryDeduper();

  constructor(private readonly redis: RedisClient) {}

  async claim(group: GroupName, kind: string, userId: UserId, windowMs: number): Promise<boolean> {
    if (!isReady(this.redis)) return this.fallback.claim(group, kind, userId, windowMs);
    try {
      return (await this.redis.set(signalKey(group, kind, userId), '1', 'PX', windowMs, 'NX')) === 'OK';
    } catch {
      return this.fallback.claim(group, kind, userId, windowMs);
    }
  }
}
