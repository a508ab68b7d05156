// The PresenceStore contract over a real redis-server: each store has its own connection, as in cluster.ts.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { hasRedis, startRedis, stopAllRedis, type RedisServer } from '../../test/helpers/redis';
import { closeRedis, createRedis, type RedisClient } from '../redis/connection';
import { createLogger } from '../utils/logger';
import { presenceStoreContract } from './PresenceStore.contract';
import { RedisPresenceStore } from './RedisPresenceStore';

const log = createLogger('silent');

type StreamEntry = [id: string, fields: string[]];

describe.skipIf(!hasRedis)('redis', () => {
  let redis: RedisServer;
  let admin: RedisClient;
  const made: { store: RedisPresenceStore; connection: RedisClient }[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    admin = redis.client();
  });
  beforeEach(async () => {
    await admin.flushall();
  });
  afterEach(async () => {
    for (const { store, connection } of made.splice(0)) {
      await store.stop();
      await closeRedis(connection);
    }
  });
  afterAll(stopAllRedis);

  presenceStoreContract('redis', () => ({
    async store(instanceId, handlers) {
      const connection = createRedis({ url: redis.url }, `test:${instanceId}`, log);
      // Long liveness: no instance of a test is ever taken for dead and reaped.
      const store = new RedisPresenceStore({ instanceId, redis: connection, logger: log, instanceTtlMs: 60_000, orphanSessionTtlMs: 60_000, eventsMaxLen: 1000 });
      made.push({ store, connection });
      // A store whose connection is not ready answers from its own state alone: wait, or it is not a cluster.
      await new Promise((ready) => connection.once('ready', ready));
      await store.start(handlers);
      return store;
    },
    async events() {
      const entries = (await admin.xrange('rt:events', '-', '+')) as StreamEntry[];
      return entries.map(([, fields]) => {
        const f = new Map<string, string>();
        for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i]!, fields[i + 1]!);
        return [f.get('type'), f.get('userId'), f.get('instance'), ...(f.has('reason') ? [f.get('reason')] : [])].join(' ');
      });
    },
  }));

  /** A store of its own, started with no handlers, its liveness lasting `instanceTtlMs` (maintenance every half of it). */
  async function started(instanceId: string, instanceTtlMs: number): Promise<{ store: RedisPresenceStore; connection: RedisClient }> {
    const connection = createRedis({ url: redis.url }, `test:${instanceId}`, log);
    const store = new RedisPresenceStore({ instanceId, redis: connection, logger: log, instanceTtlMs, orphanSessionTtlMs: 60_000, eventsMaxLen: 1000 });
    made.push({ store, connection });
    await new Promise((ready) => connection.once('ready', ready));
    await store.start({ onTransition() {}, onReconnected() {} });
    return { store, connection };
  }

  // Regression: the reconcile a start (or a Redis reconnect) runs compares Redis with the local state; a connect whose
  // Redis call it overtook was removed as stale (12 of 150 sessions here), leaving the session out of the directory.
  it('keeps every session counted while the start-up reconcile runs', async () => {
    const { store, connection } = await started('racing', 60_000);
    const sessions = Array.from({ length: 150 }, (_, i) => [`user-${i % 30}`, `s${i}`] as const);
    for (let round = 0; round < 30; round++) {
      await Promise.all(sessions.slice(round * 5, round * 5 + 5).map(([userId, sessionId]) => store.connect(userId, sessionId, 100)));
    }
    // The reconcile of a start is over once the store's own liveness key is written and one more command has answered.
    await vi.waitFor(async () => expect(await admin.exists('rt:{i:racing}')).toBe(1));
    await connection.ping();
    const owners = await Promise.all(sessions.map(([userId, sessionId]) => store.owner(userId, sessionId)));
    expect(owners.filter((o) => o !== 'racing')).toEqual([]);
  });

  // Regression (CI, the whole Redis Cluster restarted): the reconcile a recovery runs was cut short by a refused read
  // (masters answer PING before the cluster serves), and marked nothing to do: the instance's presence stayed lost.
  it('runs a reconcile cut short by a failed read again, until Redis holds its presence', async () => {
    const { store } = await started('retrying', 400);
    await store.connect('alice', 's1', 5);
    await store.join({ group: 'g', userId: 'alice', sessionId: 's1', meta: {}, availability: 'online', since: 1 });
    // Read from Redis itself: the store answers from its own state while Redis does not.
    const listed = () => admin.hkeys('rt:{g:g}:users');
    expect(await listed()).toEqual(['alice']);
    // Redis loses everything, then refuses every read and write for a moment: the recovery's reconcile fails on its
    // first read (the index) and writes nothing.
    await admin.flushall();
    await admin.call('CLIENT', 'PAUSE', '2500', 'ALL');
    store.recovered();
    await vi.waitFor(async () => expect(await listed()).toEqual(['alice']), { timeout: 10_000, interval: 100 });
    expect((await admin.smembers('rt:{i:retrying}:index')).sort()).toEqual(['g:g', 'u:alice']);
    expect(await admin.smembers('rt:{u:alice}:conns')).toEqual(['retrying|s1']);
  }, 20_000);

  // The index names where an instance may hold entries (docs/scaling.md, "Redis Cluster: keys and slots"): the periodic
  // maintenance drops the tags it no longer needs, and keeps those it still holds something under.
  it('prunes its index of tags it no longer holds anything under, and keeps the others', async () => {
    const { store } = await started('pruning', 200);
    const look = { meta: {}, availability: 'online' as const };
    await store.connect('alice', 's1', 5);
    await store.connect('bob', 's2', 5);
    await store.join({ group: 'g', userId: 'alice', sessionId: 's1', ...look, since: 1 });
    await store.join({ group: 'h', userId: 'alice', sessionId: 's1', ...look, since: 1 });
    await store.join({ group: 'h', userId: 'bob', sessionId: 's2', ...look, since: 2 });
    const index = async () => (await admin.smembers('rt:{i:pruning}:index')).sort();
    expect(await index()).toEqual(['g:g', 'g:h', 'u:alice', 'u:bob']);
    // alice leaves g and ends; bob stays in h.
    await store.leave('g', 'alice', 's1');
    await store.leave('h', 'alice', 's1');
    await store.disconnect('alice', 's1');
    await vi.waitFor(async () => expect(await index()).toEqual(['g:h', 'u:bob']), { timeout: 3_000 });
    expect(await admin.smembers('rt:{g:h}:held:pruning')).toEqual([JSON.stringify(['g', 'h', 's2', 'bob'])]);
    // A tag dropped comes back with the next entry under it.
    await store.join({ group: 'g', userId: 'bob', sessionId: 's2', ...look, since: 2 });
    expect(await index()).toEqual(['g:g', 'g:h', 'u:bob']);
  });
});
