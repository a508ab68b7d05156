// The PresenceStore over a real Redis Cluster (three masters, three replicas): the shared contract, and every script
// watched on the masters (MONITOR) to show each keeps its keys in one slot, with online/offline written once.
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { connected, hasRedis, useRedisCluster } from '../../test/helpers/redisCluster';
import { closeRedis, createRedis, type RedisClient } from '../redis/connection';
import { createLogger } from '../utils/logger';
import { presenceStoreContract } from './PresenceStore.contract';
import { RedisPresenceStore } from './RedisPresenceStore';

const log = createLogger('silent');

type StreamEntry = [id: string, fields: string[]];

describe.skipIf(!hasRedis)('redis cluster', () => {
  const cluster = useRedisCluster();
  const made: { store: RedisPresenceStore; connection: RedisClient }[] = [];

  afterEach(async () => {
    for (const { store, connection } of made.splice(0)) {
      await store.stop();
      await closeRedis(connection);
    }
  });

  /** A store on its own cluster connection, started once the connection is ready (else it answers alone). */
  async function newStore(instanceId: string, timings = { instanceTtlMs: 60_000, orphanSessionTtlMs: 60_000 }) {
    const connection = createRedis(cluster.server.target, `test:${instanceId}`, log);
    const store = new RedisPresenceStore({ instanceId, redis: connection, logger: log, ...timings, eventsMaxLen: 1000 });
    made.push({ store, connection });
    await connected(connection);
    return { store, connection };
  }

  /** One assertion client for the whole block (the helper closes it at stop). */
  let reader: ReturnType<typeof cluster.server.client> | null = null;
  async function events(): Promise<Map<string, string>[]> {
    reader ??= cluster.server.client();
    const entries = (await reader.xrange('rt:events', '-', '+')) as StreamEntry[];
    return entries.map(([, fields]) => {
      const f = new Map<string, string>();
      for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i]!, fields[i + 1]!);
      return f;
    });
  }

  presenceStoreContract('redis cluster', () => ({
    async store(instanceId, handlers) {
      const { store } = await newStore(instanceId);
      await store.start(handlers);
      return store;
    },
    async events() {
      return (await events()).map((f) => [f.get('type'), f.get('userId'), f.get('instance'), ...(f.has('reason') ? [f.get('reason')] : [])].join(' '));
    },
  }));

  it('keeps every script in one slot on all three masters, writes each online and offline once, and leaves no instance behind', async () => {
    const server = cluster.server;
    const masters = await server.masters();
    expect(masters).toHaveLength(3);

    // Names whose slots land on every master: three groups and three users, one per master.
    const pick = async (prefix: string, key: (name: string) => string) => {
      const byMaster = new Map<number, string>();
      for (let i = 0; byMaster.size < 3; i++) {
        const name = `${prefix}${i}`;
        const owner = (await server.masterOf(key(name))).port;
        if (!byMaster.has(owner)) byMaster.set(owner, name);
      }
      return [...byMaster.values()];
    };
    const groups = await pick('room-', (g) => `rt:{g:${g}}:presence`);
    const users = await pick('user-', (u) => `rt:{u:${u}}:conns`);

    // Every command the masters run, from here on.
    const seen: string[][] = [];
    const monitors: Redis[] = [];
    for (const master of masters) {
      const monitor = await server.nodeClient(master.port).monitor();
      monitor.on('monitor', (_time: string, args: string[]) => seen.push(args));
      monitors.push(monitor);
    }

    const { store: a, connection } = await newStore('inst-a', { instanceTtlMs: 300, orphanSessionTtlMs: 200 });
    const b = await newStore('inst-b', { instanceTtlMs: 300, orphanSessionTtlMs: 200 });
    const handlers = { onTransition() {}, onReconnected() {} };
    await a.start(handlers);
    await b.store.start(handlers);
    const look = { meta: {}, availability: 'online' as const };

    // users[0] on A, users[1] on B, users[2] on both; each in every group.
    const sessions = [
      [a, users[0]!, 'a0'],
      [b.store, users[1]!, 'b1'],
      [a, users[2]!, 'a2'],
      [b.store, users[2]!, 'b2'],
    ] as const;
    for (const [store, userId, sessionId] of sessions) {
      expect(await store.connect(userId, sessionId, 5)).toBe(true);
      for (const [i, group] of groups.entries()) await store.join({ group, userId, sessionId, ...look, since: 100 + i });
    }
    for (const group of groups) {
      expect(await a.update(group, users[0]!, 'a0', { meta: {}, availability: 'idle' })).toMatchObject({ status: 'UPDATE' });
      expect((await b.store.members(group, undefined, 10)).count).toBe(3);
      expect(await a.stats(group)).toEqual({ users: 3, sessions: 4 });
    }
    // A handoff of a0 to B: refused under a released lease, then moved; a revoke that finds it gone.
    expect(await b.store.lease(users[0]!, 'a0', 'L1', 60_000)).toBe(true);
    await b.store.release(users[0]!, 'a0', 'L1');
    expect(await b.store.lease(users[0]!, 'a0', 'L2', 60_000)).toBe(true);
    a.moving(users[0]!, 'a0', groups, true);
    expect(await b.store.transfer('inst-a', { userId: users[0]!, sessionId: 'a0', ...look, availability: 'idle', since: 100 }, groups, 'L2')).toBe(true);
    a.handedOver(users[0]!, 'a0', groups);
    a.moving(users[0]!, 'a0', groups, false);
    expect(await a.revoke(users[0]!, 'a0', 'L2')).toBe(false);
    // A session that stays: revoked by its owner.
    expect(await a.lease(users[2]!, 'b2', 'L3', 60_000)).toBe(true);
    expect(await b.store.revoke(users[2]!, 'b2', 'L3')).toBe(true);
    // A's own session of users[2] ends cleanly: users[2] stays online through b2.
    for (const group of groups) await a.leave(group, users[2]!, 'a2');
    await a.disconnect(users[2]!, 'a2');

    // B dies: its connection closes, its timers stop, nothing of it is cleaned up. A reaps it: users[0] (moved to B),
    // users[1] and users[2] go offline with instance-lost, written by A once each.
    await closeRedis(b.connection);
    await b.store.stop();
    reader ??= server.client();
    const client = reader;
    await expect.poll(async () => (await client.smembers('rt:instances')).includes('inst-b'), { timeout: 10_000, interval: 100 }).toBe(false);
    for (const group of groups) expect(await a.members(group, undefined, 10)).toMatchObject({ members: [], count: 0 });
    expect(await client.exists('rt:{i:inst-b}:index')).toBe(0);

    // A stops holding nothing: its index is pruned and it leaves the instance set.
    await a.stop();
    expect(await client.smembers('rt:instances')).toEqual([]);
    expect(await client.exists('rt:{i:inst-a}:index')).toBe(0);

    // Barrier: each master has reported everything up to an ECHO sent after the scenario.
    for (const [i, master] of masters.entries()) {
      const marker = `barrier-${i}`;
      await server.nodeClient(master.port).echo(marker);
      await expect.poll(() => seen.some((args) => args[0]?.toLowerCase() === 'echo' && args[1] === marker), { timeout: 5_000 }).toBe(true);
    }
    for (const monitor of monitors) monitor.disconnect();

    // Every script call: its keys in one slot. EVALSHA names the script by its SHA1; EVAL (a connection's first use of
    // a script) by its text, compared without the escapes MONITOR adds.
    const defined = Object.entries((connection as unknown as { scriptsSet: Record<string, { sha: string; lua: string }> }).scriptsSet);
    const plain = (text: string) => text.replace(/\\[nrt"\\]/g, '').replace(/\s+/g, '');
    const scriptOf = (command: string, body: string) => defined.find(([, script]) => (command === 'evalsha' ? script.sha === body : plain(script.lua) === plain(body)))?.[0] ?? `unknown ${body.slice(0, 40)}`;
    const scripts = new Set<string>();
    const slotOf = new Map<string, number>();
    const admin = server.nodeClient(masters[0]!.port);
    for (const args of seen) {
      const command = args[0]?.toLowerCase();
      if (command !== 'evalsha' && command !== 'eval') continue;
      const keyCount = Number(args[2]);
      const keys = args.slice(3, 3 + keyCount);
      const slots = new Set<number>();
      for (const key of keys) {
        if (!slotOf.has(key)) slotOf.set(key, Number(await admin.call('CLUSTER', 'KEYSLOT', key)));
        slots.add(slotOf.get(key)!);
      }
      expect({ keys, slots: slots.size }).toEqual({ keys, slots: 1 });
      scripts.add(scriptOf(command, args[1]!));
    }
    expect([...scripts].sort()).toEqual(['gwConnect', 'gwDisconnect', 'gwJoin', 'gwLeave', 'gwMove', 'gwPage', 'gwRelease', 'gwRevoke', 'gwUpdate']);

    const written = (await events()).map((f) => [f.get('type'), f.get('userId'), f.get('instance'), f.get('reason')].filter(Boolean).join(' '));
    expect(written.filter((e) => e.startsWith('online')).sort()).toEqual([`online ${users[0]} inst-a`, `online ${users[1]} inst-b`, `online ${users[2]} inst-a`].sort());
    expect(written.filter((e) => e.startsWith('offline')).sort()).toEqual([`offline ${users[0]} inst-b instance-lost`, `offline ${users[1]} inst-b instance-lost`, `offline ${users[2]} inst-b instance-lost`].sort());
  }, 60_000);
});
