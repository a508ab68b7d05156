// Rate limits: upgrade attempts per client IP (rate-limiter-flexible) and per-connection token buckets (limiter).
import { TokenBucket } from 'limiter';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { limits } from '../config/limits';

export type Admission = { ok: true } | { ok: false; retryAfterMs: number };

/** Counts WebSocket upgrade attempts per client IP over a 60 s window that starts with the IP's first attempt. */
export interface ConnectionRateLimiter {
  admit(ip: string): Promise<Admission>;
}

export function createConnectionRateLimiter(perMinute: number): ConnectionRateLimiter {
  const limiter = new RateLimiterMemory({ points: perMinute, duration: 60, keyPrefix: 'conn' });
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

/** A bucket holding `size` tokens that refills continuously at `size` per `limits.rateWindowMs`, starting full. */
export function createBucket(size: number): TokenBucket {
  const bucket = new TokenBucket({ bucketSize: size, tokensPerInterval: size, interval: limits.rateWindowMs });
  bucket.content = size;
  return bucket;
}
