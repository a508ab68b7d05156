// Whether the gateway's Redis serves now: one server is up when its connection is ready; a Redis Cluster is up when
// its client is ready and the master of every slot answers a PING (probed every second), so a dead master shows as
// down from its first failed probe until its promoted replica answers in its place.
import { timings } from '../config/timings';
import { isCluster, isReady, type Cluster, type Redis, type RedisClient } from './connection';

export interface RedisHealth {
  status(): 'up' | 'down';
  /**
   * A Redis Cluster only: calls `listener` each time every master answers again after one did not, or after the
   * client lost the cluster (a failover, a restart of every node), and each time the slot map names another set of
   * masters while all answer (a former master back with a stale map, then demoted: what it took meanwhile is lost).
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
    /** The masters of the slot map at the last probe every master answered: host:port, sorted. */
    let answered: string | undefined;
    timer = setInterval(() => {
      if (probing) return;
      // Not ready is a loss too: the masters answering again afterwards is a recovery.
      if (!isReady(redis)) return void (shardsAnswer = false);
      probing = true;
      const masters = slotMasters(redis);
      void Promise.all((masters ?? []).map((node) => node.ping()))
        .then(
          () => masters !== null,
          () => false,
        )
        .then((answer) => {
          const set = masters?.map((node) => `${node.options.host}:${node.options.port}`).sort().join(',');
          const changed = answer && answered !== undefined && set !== answered;
          const back = answer && !shardsAnswer;
          if (answer) answered = set;
          shardsAnswer = answer;
          probing = false;
          if (back || changed) for (const listener of listeners) listener();
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

/** Every hash slot in a Redis Cluster. */
const SLOTS = 16384;

/**
 * The connections to the masters of all slots, as the client's slot map names them; null when a slot has no master or
 * its master has no connection (ioredis drops a node's connection as soon as it is lost, while the map still names it
 * until the node's replica is promoted).
 */
function slotMasters(cluster: Cluster): Redis[] | null {
  const byKey = new Map(cluster.nodes('master').map((node) => [`${node.options.host}:${node.options.port}`, node]));
  const masters = new Set<Redis>();
  for (let slot = 0; slot < SLOTS; slot++) {
    const node = byKey.get(cluster.slots[slot]?.[0] ?? '');
    if (!node) return null;
    masters.add(node);
  }
  return [...masters];
}
