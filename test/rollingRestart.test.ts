// A rolling restart under load, with real parts: three gateway processes on one redis-server (and again on a Redis
// Cluster of six redis-servers, where handoffs cut each channel on its own), 200 SDK clients in 10 groups, a backend publishing 50 msgs/s through the emitter and clients publishing too. Each instance in turn gets
// SIGTERM and is replaced by a new process. Every client must end with every message of its group exactly once and in
// order, nobody may see a DOWN (or a second UP), and every resume after the first restart must be `resumed: true`.
import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { mintToken } from '../src/auth/jwt';
import { GatewayClient, type WebSocketConstructor } from '../src/client';
import { createEmitter, type Emitter } from '../src/emitter';
import { TEST_SECRET } from './helpers/gateway';
import { spawnGateway, type GatewayProcess } from './helpers/process';
import { hasRedis, startRedis, stopAllRedis } from './helpers/redis';
import { startRedisCluster, type RedisClusterServer } from './helpers/redisCluster';

const CLIENTS = 200;
const GROUPS = 10;
const BACKEND_INTERVAL_MS = 20; // 50 msgs/s
const PUBLISHERS_PER_GROUP = 1;
const CLIENT_INTERVAL_MS = 250;

type Payload = { by: string; n: number };

interface Tracked {
  userId: string;
  group: string;
  client: GatewayClient;
  data: Payload[];
  presence: string[];
  readies: boolean[];
}

/** The backend publishes `{ by: 'backend', n }` to every group; resolves once every client has received it. */
async function everyGroupHas(emitter: Emitter, tracked: Tracked[], n: number): Promise<void> {
  for (let g = 0; g < GROUPS; g++) await emitter.toGroup(`g${g}`).publish({ by: 'backend', n });
  await vi.waitFor(() => expect(tracked.filter((t) => !t.data.some((d) => d.by === 'backend' && d.n === n)).map((t) => t.userId)).toEqual([]), { timeout: 30_000 });
}

/** Where the instances meet: the gateway's variable and the emitter's option for it. */
interface Backend {
  env: Record<string, string>;
  emitter: { redisUrl: string } | { clusterNodes: string };
}

describe.skipIf(!hasRedis)('rolling restart', () => {
  const clients: GatewayClient[] = [];
  let cluster: RedisClusterServer | undefined;
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await stopAllRedis();
    await cluster?.stop();
    cluster = undefined;
  });

  const backends: [string, () => Promise<Backend>][] = [
    [
      'one redis-server',
      async () => {
        const { url } = await startRedis();
        return { env: { GW_REDIS_URL: url }, emitter: { redisUrl: url } };
      },
    ],
    [
      'a Redis Cluster',
      async () => {
        cluster = await startRedisCluster();
        return { env: { GW_REDIS_CLUSTER_NODES: cluster.seeds }, emitter: { clusterNodes: cluster.seeds } };
      },
    ],
  ];

  it.each(backends)('on %s: three instances restarted one by one under load: nothing lost, nothing doubled, no DOWN, every resume resumed', { timeout: 180_000 }, async (_, start) => {
    const backend = await start();
    const secret = new TextEncoder().encode(TEST_SECRET);
    const env = {
      ...backend.env,
      GW_JWT_SECRET: TEST_SECRET,
      GW_PORT: '0',
      GW_HOST: '127.0.0.1',
      GW_RATE_CONN_PER_MIN: '100000',
      LOG_LEVEL: 'info',
    };
    let next = 0;
    const launch = () => spawnGateway({ ...env, GW_INSTANCE_ID: `gw-${next++}` });
    const instances: { proc: GatewayProcess; port: number }[] = [];
    for (let i = 0; i < 3; i++) {
      const proc = launch();
      instances.push({ proc, port: await proc.port() });
    }
    // Each client cycles through the instances alive when it (re)connects, starting at its own.
    let turn = 0;
    const url = (offset: number) => () => `ws://127.0.0.1:${instances[(offset + turn++) % instances.length]!.port}/rt`;

    const tracked: Tracked[] = [];
    for (let i = 0; i < CLIENTS; i++) {
      const userId = `u${i}`;
      const group = `g${i % GROUPS}`;
      const client = new GatewayClient({ url: url(i), WebSocket: WebSocket as unknown as WebSocketConstructor, getToken: () => mintToken({ sub: userId, groups: [group] }, secret), groups: [group] });
      clients.push(client);
      const t: Tracked = { userId, group, client, data: [], presence: [], readies: [] };
      client.on('data', (d) => t.data.push(d.payload as Payload));
      client.on('presence', (p) => t.presence.push(`${p.userId} ${p.status}`));
      client.on('ready', (r) => t.readies.push(r.resumed));
      tracked.push(t);
    }
    await Promise.all(tracked.map((t) => t.client.connect()));
    const emitter = createEmitter({ ...backend.emitter, serviceName: 'backend' });
    // Every UP was published before its client's connect() resolved, so a backend message published now reaches each
    // client after all of them: from there on, no presence at all is expected.
    await everyGroupHas(emitter, tracked, -2);
    for (const t of tracked) {
      expect(t.client.members(t.group)).toHaveLength(CLIENTS / GROUPS);
      t.presence.length = 0;
      t.data.length = 0;
    }

    const sentByBackend = new Map<string, number[]>();
    let backendN = 0;
    const backendTimer = setInterval(() => {
      const group = `g${backendN % GROUPS}`;
      const n = backendN++;
      sentByBackend.set(group, [...(sentByBackend.get(group) ?? []), n]);
      void emitter.toGroup(group).publish({ by: 'backend', n });
    }, BACKEND_INTERVAL_MS);
    // Client publishers: acked messages must reach everyone; unacked ones everyone or nobody.
    const publishers = tracked.filter((_, i) => Math.floor(i / GROUPS) < PUBLISHERS_PER_GROUP);
    const acked = new Map<string, number[]>();
    const attempted = new Map<string, number>();
    const publishing = setInterval(() => {
      for (const p of publishers) {
        const n = attempted.get(p.userId) ?? 0;
        attempted.set(p.userId, n + 1);
        p.client.publish(p.group, { by: p.userId, n }).then(
          () => acked.set(p.userId, [...(acked.get(p.userId) ?? []), n]),
          () => undefined,
        );
      }
    }, CLIENT_INTERVAL_MS);

    try {
      for (let k = 0; k < 3; k++) {
        const old = instances.shift()!;
        const readiesBefore = tracked.map((t) => t.readies.length);
        old.proc.child.kill('SIGTERM');
        expect(await old.proc.exited).toBe(0);
        expect(old.proc.stdout()).toContain('sessions handed over to surviving instances');
        expect(old.proc.stdout()).toMatch(/"kept":0,/);
        const proc = launch();
        instances.push({ proc, port: await proc.port() });
        // Every client of the stopped instance is back (the others did not move).
        await vi.waitFor(() => expect(tracked.every((t, i) => t.client.state === 'ready' && t.readies.length >= readiesBefore[i]!)).toBe(true), { timeout: 30_000 });
      }
    } finally {
      clearInterval(backendTimer);
      clearInterval(publishing);
    }
    // A last message per group from the backend, after everything else: once each client has it, it has all.
    await everyGroupHas(emitter, tracked, -1);
    await emitter.close();

    for (const t of tracked) {
      const got = t.data.filter((d) => d.n >= 0);
      expect(got.filter((d) => d.by === 'backend').map((d) => d.n), `${t.userId}: backend messages`).toEqual(sentByBackend.get(t.group) ?? []);
      for (const p of publishers.filter((x) => x.group === t.group && x !== t)) {
        const fromP = got.filter((d) => d.by === p.userId).map((d) => d.n);
        expect(fromP, `${t.userId}: from ${p.userId} in order, once`).toEqual([...new Set(fromP)].sort((a, b) => a - b));
        expect(fromP.filter((n) => (acked.get(p.userId) ?? []).includes(n)), `${t.userId}: every acked message of ${p.userId}`).toEqual(acked.get(p.userId) ?? []);
      }
      expect(t.presence, `${t.userId}: presence seen during the restarts`).toEqual([]);
      expect(t.readies[0]).toBe(false);
      expect(t.readies.slice(1), `${t.userId}: resumes`).not.toContain(false);
    }
    // An unacknowledged message reached all of its group or none of it.
    for (const p of publishers) {
      const members = tracked.filter((t) => t.group === p.group && t !== p);
      const received = members.map((t) => new Set(t.data.filter((d) => d.by === p.userId).map((d) => d.n)));
      for (let n = 0; n < (attempted.get(p.userId) ?? 0); n++) {
        expect(new Set(received.map((r) => r.has(n))).size, `${p.userId} #${n}`).toBe(1);
      }
    }
    expect(tracked.reduce((sum, t) => sum + t.readies.length, 0)).toBeGreaterThan(CLIENTS);
  });
});
