// The cluster layer, chosen once: in-memory parts by default, Redis parts when GW_REDIS_URL (one Redis) or GW_REDIS_CLUSTER_NODES (a Redis Cluster) is set.
import { MemoryBroker, MemoryBus } from './broker/MemoryBroker';
import { MemoryDeduper, RedisDeduper, type Deduper } from './dedup/Deduper';
import { RedisBroker } from './broker/RedisBroker';
import type { Broker } from './broker/Broker';
import type { Config } from './config';
import { createConnectionRateLimiter, type ConnectionRateLimiter } from './hub/rateLimits';
import { MemoryPresenceState, MemoryPresenceStore } from './presence/MemoryPresenceStore';
import { RedisPresenceStore } from './presence/RedisPresenceStore';
import type { PresenceStore } from './presence/PresenceStore';
import { closeRedis, createRedis, isCluster, isReady, type RedisClient } from './redis/connection';
import { watchRedis } from './redis/health';
import type { Logger } from './utils/logger';

export interface Cluster {
  broker: Broker;
  presence: PresenceStore;
  deduper: Deduper;
  connectionLimiter: ConnectionRateLimiter;
  /**
   * True when sessions orphaned by this instance's shutdown stay in the shared store (their users UP) until
   * survivors expire them; false when they end with the instance.
   */
  keepsSessionsOnStop: boolean;
  /** 'up' or 'down' with Redis configured (a Redis Cluster is down while any master does not answer); undefined without. */
  redisStatus(): 'up' | 'down' | undefined;
  /** Resolves when Redis is ready, or after `timeoutMs` (the gateway then starts degraded). */
  ready(timeoutMs: number): Promise<void>;
  /** Closes what the cluster layer opened (after the broker and presence store have stopped). */
  close(): Promise<void>;
}

/** In-process state that several gateways in one process share to act as one (tests, simulations). */
export class MemoryCluster {
  constructor(
    /** False: the brokers act as on a Redis Cluster, with no order across channels (MemoryBrokerOptions; tests). */
    readonly singleOrder = true,
  ) {}

  readonly bus = new MemoryBus();
  readonly presence = new MemoryPresenceState();
  readonly deduper = new MemoryDeduper();
}

export function createCluster(config: Config, logger: Logger, memory = new MemoryCluster()): Cluster {
  if (!config.redis) {
    return {
      broker: new MemoryBroker(config.instanceId, memory.bus, { singleOrder: memory.singleOrder }),
      presence: new MemoryPresenceStore(config.instanceId, (event) => logger.info({ event }, 'presence event'), memory.presence),
      deduper: memory.deduper,
      connectionLimiter: createConnectionRateLimiter(config.connectionsPerMinutePerIp),
      keepsSessionsOnStop: false,
      redisStatus: () => undefined,
      ready: async () => undefined,
      close: async () => undefined,
    };
  }
  const redis = createRedis(config.redis, `gateway-strategy:${config.instanceId}`, logger);
  const health = watchRedis(redis);
  const presence = new RedisPresenceStore({
    instanceId: config.instanceId,
    redis,
    logger,
    instanceTtlMs: config.instanceTtlMs,
    orphanSessionTtlMs: config.orphanSessionTtlMs,
    eventsMaxLen: config.eventsMaxLen,
  });
  const broker = new RedisBroker(config.instanceId, redis, config.redis, logger);
  // After a failover the new master may miss what the old one had not yet copied: write this instance's state back,
  // and make sure every channel is subscribed again.
  health.onRecovered(() => {
    presence.recovered();
    broker.recovered();
  });
  return {
    broker,
    presence,
    keepsSessionsOnStop: true,
    deduper: new RedisDeduper(redis),
    connectionLimiter: createConnectionRateLimiter(config.connectionsPerMinutePerIp, redis),
    redisStatus: () => health.status(),
    ready: (timeoutMs) => {
      const deadline = Date.now() + timeoutMs;
      return new Promise<void>((resolve) => {
        if (isReady(redis)) return resolve();
        const timer = setTimeout(done, timeoutMs);
        function done() {
          clearTimeout(timer);
          redis.off('ready', done);
          resolve();
        }
        redis.once('ready', done);
      }).then(() => mastersConnected(redis, deadline - Date.now()));
    },
    close: () => {
      health.stop();
      return closeRedis(redis);
    },
  };
}

/**
 * On a Redis Cluster, resolves once the connection to every master is up (or after `timeoutMs`): a cluster client is
 * ready once it knows the slots, but refuses a node's commands until that node's own connection is up.
 */
async function mastersConnected(redis: RedisClient, timeoutMs: number): Promise<void> {
  if (!isCluster(redis) || !isReady(redis) || timeoutMs <= 0) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.allSettled(redis.nodes('master').map((node) => node.ping())),
    new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs))),
  ]);
  clearTimeout(timer);
}
