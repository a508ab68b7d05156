// Redis connections for the gateway, to one redis-server (GW_REDIS_URL) or a Redis Cluster (GW_REDIS_CLUSTER_NODES):
// fail fast while down (no offline queue, so nothing grows without bound), reconnect forever with capped, jittered
// exponential backoff, and log connection trouble without flooding.
import { Cluster, Redis } from 'ioredis';
import type { RedisTarget } from '../config';
import { timings } from '../config/timings';
import type { Logger } from '../utils/logger';

export type { Cluster, Redis };

/** A connection to either: both answer the same commands (a cluster routes each to its slot's master). */
export type RedisClient = Redis | Cluster;

const ERROR_LOG_INTERVAL_MS = 10_000;

/**
 * How often a cluster client re-reads the slot map by itself. MOVED and a lost node make it re-read at once; this
 * bounds how long a client that sees neither (a subscriber only) follows a failover late.
 */
const CLUSTER_SLOTS_REFRESH_MS = 2_000;

/** Connections this process is closing on purpose: their end is not a lost connection. */
const closing = new WeakSet<RedisClient>();

const backoff = (attempt: number) => Math.round(Math.min(timings.redisMaxBackoffMs, 100 * 2 ** attempt) * (0.5 + Math.random() / 2));

/** Options shared by every connection: one redis-server's, each node's of a cluster, a shard subscriber's. */
function commonOptions(name: string) {
  return {
    connectionName: name,
    // A command whose connection dropped before it was answered fails (its caller decides) instead of running again,
    // maybe much later, after reconnecting.
    autoResendUnfulfilledCommands: false,
    // The broker's subscribers subscribe again themselves on 'ready' and handle a failure; ioredis's own re-subscribe
    // has no handler, so a SUBSCRIBE that timed out after a reconnect was an unhandled rejection, which ends the process.
    autoResubscribe: false,
    maxRetriesPerRequest: 1,
    commandTimeout: timings.redisCommandTimeoutMs,
  };
}

export function createRedis(target: RedisTarget, name: string, logger: Logger): RedisClient {
  const common = commonOptions(name);
  const redis: RedisClient =
    'url' in target
      ? new Redis(target.url, { ...common, enableOfflineQueue: false, retryStrategy: backoff })
      : new Cluster(target.nodes, {
          enableOfflineQueue: false,
          // Redirections (MOVED, ASK, TRYAGAIN during a failover) are followed this many times per command.
          maxRedirections: 8,
          clusterRetryStrategy: backoff,
          slotsRefreshInterval: CLUSTER_SLOTS_REFRESH_MS,
          redisOptions: common,
        });
  if (redis instanceof Cluster) {
    // ioredis opens a node's connection at its first command, and without an offline queue refuses the node's next
    // commands until that connection is up: a burst after start or a failover would fail. Open each node as it joins.
    redis.on('+node', (node: Redis) => void node.connect().catch(() => undefined));
  }
  return observe(redis, name, logger);
}

/** A connection to one node of a Redis Cluster (a shard subscriber's), reconnecting like the others. */
export function createNodeRedis(node: { host: string; port: number }, name: string, logger: Logger): Redis {
  return observe(new Redis({ ...commonOptions(name), host: node.host, port: node.port, enableOfflineQueue: false, retryStrategy: backoff }), name, logger);
}

function observe<T extends RedisClient>(redis: T, name: string, logger: Logger): T {
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

export function isReady(redis: RedisClient): boolean {
  return redis.status === 'ready';
}

export function isCluster(redis: RedisClient): redis is Cluster {
  return redis instanceof Cluster;
}

/** Stops reconnecting and closes, whatever the connection's state. */
export async function closeRedis(redis: RedisClient): Promise<void> {
  closing.add(redis);
  if (redis.status === 'ready') {
    await redis.quit().catch(() => redis.disconnect());
  } else {
    redis.disconnect();
  }
}
