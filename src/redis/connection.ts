// Redis connections for the gateway: fail fast while down (no offline queue, so nothing grows without bound),
// reconnect forever with capped, jittered exponential backoff, and log connection trouble without flooding.
import { Redis } from 'ioredis';
import { timings } from '../config/timings';
import type { Logger } from '../utils/logger';

export type { Redis };

const ERROR_LOG_INTERVAL_MS = 10_000;

/** Connections this process is closing on purpose: their end is not a lost connection. */
const closing = new WeakSet<Redis>();

export function createRedis(url: string, name: string, logger: Logger): Redis {
  const redis = new Redis(url, {
    connectionName: name,
    enableOfflineQueue: false,
    // A command whose connection dropped before it was answered fails (its caller decides) instead of running again,
    // maybe much later, after reconnecting.
    autoResendUnfulfilledCommands: false,
    // The broker subscribes again itself on 'ready' and handles a failure; ioredis's own re-subscribe has no handler,
    // so a SUBSCRIBE that timed out after a reconnect was an unhandled rejection, which ends the process.
    autoResubscribe: false,
    maxRetriesPerRequest: 1,
    commandTimeout: timings.redisCommandTimeoutMs,
    retryStrategy: (attempt) => Math.round(Math.min(timings.redisMaxBackoffMs, 100 * 2 ** attempt) * (0.5 + Math.random() / 2)),
  });
  let lastErrorLogAt = 0;
  let wasReady = false;
  redis.on('error', (err: Error) => {
    const now = Date.now();
    if (now - lastErrorLogAt < ERROR_LOG_INTERVAL_MS) return;
    lastErrorLogAt = now;
    logger.warn({ redis: name, err: err.message }, 'redis connection error; retrying');
  });
  redis.on('ready', () => {
    logger.info({ redis: name }, wasReady ? 'redis reconnected' : 'redis connected');
    wasReady = true;
  });
  redis.on('close', () => {
    if (wasReady && !closing.has(redis)) logger.warn({ redis: name }, 'redis connection lost');
  });
  return redis;
}

export function isReady(redis: Redis): boolean {
  return redis.status === 'ready';
}

/** Stops reconnecting and closes, whatever the connection's state. */
export async function closeRedis(redis: Redis): Promise<void> {
  closing.add(redis);
  if (redis.status === 'ready') {
    await redis.quit().catch(() => redis.disconnect());
  } else {
    redis.disconnect();
  }
}
