// Rate limits: upgrade attempts per client IP (rate-limiter-flexible) and token buckets (limiter): per connection, and the server API's.
import { TokenBucket } from 'limiter';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { limits } from '../config/limits';
import type { RedisClient } from '../redis/connection';

export type Admission = { ok: true } | { ok: false; retryAfterMs: number };

/** Counts WebSocket upgrade attempts per client IP over a 60 s window that starts with the IP's first attempt. */
export interface ConnectionRateLimiter {
  admit(ip: string): Promise<Admission>;
}

/** With Redis the count is cluster-wide; while Redis is unreachable each instance counts on its own. */
export function createConnectionRateLimiter(perMinute: number, redis?: RedisClient): ConnectionRateLimiter {
  const options = { points: perMinute, duration: 60 };
  const memory = new RateLimiterMemory({ ...options, keyPrefix: 'conn' });
  const limiter: RateLimiterAbstract = redis
    ? new RateLimiterRedis({ ...options, storeClient: redis, keyPrefix: 'rt:rl:conn', insuranceLimiter: memory })
    : memory;
  return {
    async admit(ip) {
      try {
        await limiter.consume(ip);
        return { ok: true };
      } catch (res) {
        return { ok: false, retryAfterMs: res instanceof RateLimiterRes ? res.msBeforeNext : 60_000 };
      }
    },
  };
}

/** A bucket holding `size` tokens that refills continuously at `size` per `intervalMs`, starting full. */
export function createBucket(size: number, intervalMs: number = limits.rateWindowMs): TokenBucket {
  const bucket = new TokenBucket({ bucketSize: size, tokensPerInterval: size, interval: intervalMs });
  bucket.content = size;
  return bucket;
}
