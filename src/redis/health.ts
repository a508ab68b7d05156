// Whether the gateway's Redis serves now: one server is up when its connection is ready; a Redis Cluster is up when
// its client is ready and every master it routes to answers a PING (probed every second), so a dead master shows as
// down from its first failed probe until its promoted replica answers in its place.
import { timings } from '../config/timings';
import { isCluster, isReady, type RedisClient } from './connection';

export interface RedisHealth {
  status(): 'up' | 'down';
  /**
   * A Redis Cluster only: calls `listener` each time every master answers again after one did not (a failover), which
   * the client itself does not announce ('ready' is for its own reconnects).
   */
  onRecovered(listener: () => void): void;
  stop(): void;
}

export function watchRedis(redis: RedisClient): RedisHealth {
  const listeners: (() => void)[] = [];
  let shardsAnswer = true;
  const status = () => (isReady(redis) && shardsAnswer ? 'up' : 'down');
  let timer: NodeJS.Timeout | undefined;
  if (isCluster(redis)) {
    let probing = false;
    timer = setInterval(() => {
      if (probing || !isReady(redis)) return;
      probing = true;
      const masters = redis.nodes('master');
      void Promise.all(masters.map((node) => node.ping()))
        .then(
          () => masters.length > 0,
          () => false,
        )
        .then((answer) => {
          const back = answer && !shardsAnswer;
          shardsAnswer = answer;
          probing = false;
          if (back) for (const listener of listeners) listener();
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
