// Whether the gateway's Redis serves now: one server is up when its connection is ready; a Redis Cluster is up when
// its client is ready and every master it routes to answers a PING (probed every second), so a dead master shows as
// down from its first failed probe until its promoted replica answers in its place.
import { timings } from '../config/timings';
import { isCluster, isReady, type RedisClient } from './connection';

export interface RedisHealth {
  status(): 'up' | 'down';
  /** Calls `listener` each time Redis comes back after being down (a failover, a restart, a reconnect). */
  onRecovered(listener: () => void): void;
  stop(): void;
}

export function watchRedis(redis: RedisClient): RedisHealth {
  const listeners: (() => void)[] = [];
  let shardsAnswer = true;
  let wasUp = isReady(redis);
  const status = () => (isReady(redis) && shardsAnswer ? 'up' : 'down');
  const settle = () => {
    const up = status() === 'up';
    if (up && !wasUp) for (const listener of listeners) listener();
    wasUp = up;
  };
  redis.on('ready', settle);
  redis.on('close', settle);
  let timer: NodeJS.Timeout | undefined;
  if (isCluster(redis)) {
    let probing = false;
    timer = setInterval(() => {
      if (probing || !isReady(redis)) return settle();
      probing = true;
      const masters = redis.nodes('master');
      void Promise.all(masters.map((node) => node.ping()))
        .then(
          () => (shardsAnswer = masters.length > 0),
          () => (shardsAnswer = false),
        )
        .finally(() => {
          probing = false;
          settle();
        });
    }, timings.redisClusterProbeMs);
    timer.unref();
  }
  return {
    status,
    onRecovered: (listener) => void listeners.push(listener),
    stop: () => clearInterval(timer),
  };
}
