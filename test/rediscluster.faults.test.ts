// Faults of a real Redis Cluster under two gateway instances: the master owning a busy group's channel dies (delivery
// resumes by itself after its replica is promoted; /health is degraded meanwhile), a gateway is SIGKILLed (survivors
// repair presence and write `offline` once), a handoff meets a dead master (it fails, the session stays whole with its
// owner), and the whole cluster restarts (the gateways recover on their own).
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { mintToken } from '../src/auth/jwt';
import { ProbeClient, type ServerEnvelope } from './helpers/ProbeClient';
import { sleep, startTestGateway, TEST_SECRET, type TestGateway } from './helpers/gateway';
import { spawnGateway } from './helpers/process';
import { hasRedis, useRedisCluster } from './helpers/redisCluster';

/** The bound: delivery resumes within this long after the replica's promotion. */
const RESUME_BOUND_MS = 10_000;
const TTL_MS = 1000;
const ORPHAN_TTL_MS = 1000;

const health = async (gw: TestGateway) => (await request(gw.httpUrl).get('/health')).body.data as { status: string; redis?: string };
const payload = (e: ServerEnvelope) => e.data!.payload as number;

async function until(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await sleep(50);
  }
  return Date.now();
}

describe.skipIf(!hasRedis)('redis cluster faults', () => {
  const cluster = useRedisCluster();
  const env = () => ({ GW_REDIS_CLUSTER_NODES: cluster.server.seeds, GW_INSTANCE_TTL_MS: String(TTL_MS), GW_ORPHAN_SESSION_TTL_MS: String(ORPHAN_TTL_MS) });

  it('the master of a busy group’s channel dies: /health degraded, delivery back within 10 s of the promotion, in order, never twice', async () => {
    // 50 messages a second for several seconds: past the default per-connection rate limit, which would refuse some.
    const busy = { ...env(), GW_RATE_MSG_PER_10S: '100000' };
    const [a, b] = await Promise.all([startTestGateway({ ...busy, GW_INSTANCE_ID: 'fa-a' }), startTestGateway({ ...busy, GW_INSTANCE_ID: 'fa-b' })]);
    const sender = await a.join('sender', ['busy']);
    const receiver = await b.join('receiver', ['busy']);
    const got: { n: number; at: number }[] = [];
    receiver.socket.on('message', (raw) => {
      const e = JSON.parse(String(raw)) as ServerEnvelope;
      if (e.type === 'data_update') got.push({ n: payload(e), at: Date.now() });
    });
    let n = 0;
    const sending = setInterval(() => sender.send('data_update', { group: 'busy', payload: ++n }), 20);
    try {
      await until(() => got.length >= 10, 10_000, 'delivery before the fault');
      const master = await cluster.server.masterOf('rt:group:busy');
      await master.kill();
      const killedAt = Date.now();
      await until(async () => (await health(b)).status === 'degraded' || (await health(a)).status === 'degraded', 10_000, '/health degraded');
      await cluster.server.healthy(30_000);
      const promotedAt = Date.now();
      const resumedAt = await until(() => got.some((g) => g.at > promotedAt), RESUME_BOUND_MS, 'delivery after the promotion');
      const lastBefore = got.filter((g) => g.at <= killedAt + 50).at(-1)!;
      const firstAfter = got.find((g) => g.at > killedAt + 50 && g.n > lastBefore.n);
      console.log(
        `failover: promoted ${promotedAt - killedAt} ms after the kill; delivery back ${resumedAt - promotedAt} ms after the promotion; ` +
          `gap: ${firstAfter ? firstAfter.n - lastBefore.n - 1 : 'n/a'} messages lost of ${n}`,
      );
      expect(resumedAt - promotedAt).toBeLessThanOrEqual(RESUME_BOUND_MS);
      await until(async () => (await health(a)).status === 'ok' && (await health(b)).status === 'ok', 10_000, '/health ok again');
    } finally {
      clearInterval(sending);
    }
    // After the fault: nothing twice, nothing out of order (a gap is the failover's loss, reported above).
    const numbers = got.map((g) => g.n);
    expect(numbers).toEqual([...numbers].sort((x, y) => x - y));
    expect(new Set(numbers).size).toBe(numbers.length);
    // And a message sent now arrives.
    await sender.request('data_update', { group: 'busy', payload: -1 });
    await receiver.next((e) => e.type === 'data_update' && payload(e) === -1);
  }, 90_000);

  it('a SIGKILLed gateway: the survivor announces DOWN after the orphan TTL and writes exactly one offline event', async () => {
    const survivor = await startTestGateway({ ...env(), GW_INSTANCE_ID: 'fb-survivor' });
    const doomed = spawnGateway({ ...env(), GW_INSTANCE_ID: 'fb-doomed', GW_JWT_SECRET: TEST_SECRET, GW_PORT: '0', GW_HOST: '127.0.0.1' });
    const doomedPort = await doomed.port();
    const watcher = await survivor.join('bob', ['g']);
    const alice = await ProbeClient.connect(`ws://127.0.0.1:${doomedPort}/rt`);
    await alice.next('hello');
    expect((await alice.identify(await mintToken({ sub: 'alice', groups: ['g'] }, new TextEncoder().encode(TEST_SECRET)), ['g'])).type).toBe('ready');
    expect((await watcher.next('presence_update')).data).toMatchObject({ userId: 'alice', status: 'UP' });

    doomed.child.kill('SIGKILL');
    await doomed.exited;
    const down = await watcher.next('presence_update', 4 * TTL_MS + ORPHAN_TTL_MS + 2000);
    expect(down.data).toMatchObject({ group: 'g', userId: 'alice', status: 'DOWN' });

    const redis = cluster.server.client();
    const aliceEvents = async () =>
      ((await redis.xrange('rt:events', '-', '+')) as [string, string[]][]).map(([, f]) => Object.fromEntries(Array.from({ length: f.length / 2 }, (_, i) => [f[2 * i], f[2 * i + 1]]))).filter((e) => e.userId === 'alice');
    await until(async () => (await aliceEvents()).length === 2, 4 * TTL_MS, 'the offline event');
    expect((await aliceEvents()).map((e) => [e.type, e.instance, e.reason])).toEqual([
      ['online', 'fb-doomed', undefined],
      ['offline', 'fb-doomed', 'instance-lost'],
    ]);
    // The reap is over (a join after it is announced after any second DOWN it could have sent), and alice is gone.
    await survivor.join('sentinel', ['g']);
    expect(await watcher.presenceBefore('sentinel')).toEqual([]);
    expect((await aliceEvents()).length).toBe(2);
    const members = await watcher.request('subscribe', { group: 'g' });
    expect((members.data!.members as { userId: string }[]).map((m) => m.userId).sort()).toEqual(['bob', 'sentinel']);
  }, 60_000);

  it('a handoff while the master of the session’s group channel is dead fails cleanly: resumed false elsewhere, the session kept whole by its owner, resumable there after the promotion', async () => {
    for (const node of cluster.server.nodes) if (!node.alive) await node.start();
    await cluster.server.healthy(30_000);
    // A user and a group such that the group's channel lives on a master that neither the user's keys, nor the user's
    // channel, nor the control channels use: the handoff gets as far as the per-channel cut, and only its marks on the
    // group's channel are lost.
    const portOf = async (key: string) => (await cluster.server.masterOf(key)).port;
    const control = await portOf('rt:{control}:x');
    let user = '';
    for (let j = 0; !user; j++) {
      const [keys, channel] = [await portOf(`rt:{u:user-${j}}:conns`), await portOf(`rt:user:user-${j}`)];
      if (new Set([control, keys, channel]).size < 3) user = `user-${j}`;
    }
    const spared = new Set([control, await portOf(`rt:{u:${user}}:conns`), await portOf(`rt:user:${user}`)]);
    let group = '';
    for (let i = 0; !group; i++) if (!spared.has(await portOf(`rt:group:cut-${i}`))) group = `cut-${i}`;
    const slow = { ...env(), GW_ORPHAN_SESSION_TTL_MS: '60000' };
    const [a, b] = await Promise.all([startTestGateway({ ...slow, GW_INSTANCE_ID: 'fd-a' }), startTestGateway({ ...slow, GW_INSTANCE_ID: 'fd-b' })]);
    const bob = await b.join('bob', [group]);
    const alice = await a.connect();
    const credentials = (await alice.identify(await a.token({ sub: user, groups: [group] }), [group])).data as unknown as { sessionId: string; sessionToken: string };
    await bob.request('data_update', { group, payload: 'before' });
    await alice.next((e) => e.type === 'data_update' && e.data!.payload === 'before');
    alice.socket.terminate();
    await a.connections(0);

    const master = await cluster.server.masterOf(`rt:group:${group}`);
    await master.kill();
    const token = await b.token({ sub: user, groups: [group] });
    const elsewhere = await b.connect();
    const started = Date.now();
    const fresh = await elsewhere.request('identify', { token, resume: { ...credentials, lastSeq: 0 } }, 10_000);
    console.log(`handoff during a failover: answered ${Date.now() - started} ms after the resume was sent`);
    expect(fresh.type).toBe('ready');
    expect(fresh.data).toMatchObject({ resumed: false });
    // It got as far as the cut: both sides count one failed handoff.
    const handoffs = async (gw: TestGateway, direction: string) => {
      const text = await (await fetch(`http://127.0.0.1:${gw.gateway.internalPort}/metrics`)).text();
      return Number(new RegExp(`gateway_session_handoffs_total\\{direction="${direction}",result="failed"\\} (\\d+)`).exec(text)?.[1] ?? 0);
    };
    await expect.poll(async () => [await handoffs(b, 'in'), await handoffs(a, 'out')], { timeout: 10_000, interval: 100 }).toEqual([1, 1]);
    elsewhere.socket.terminate();

    await cluster.server.healthy(30_000);
    await until(async () => (await health(a)).status === 'ok' && (await health(b)).status === 'ok', 20_000, '/health ok on both');
    // The owner kept the session whole and in its group: resumed there, it replays what it had, then hears the group.
    const home = await a.connect();
    const resumed = await home.request('identify', { token: await a.token({ sub: user, groups: [group] }), resume: { ...credentials, lastSeq: 0 } });
    expect(resumed.data).toMatchObject({ resumed: true, sessionId: credentials.sessionId });
    await home.next((e) => e.type === 'data_update' && e.data!.payload === 'before');
    await expect
      .poll(
        async () => {
          await bob.request('data_update', { group, payload: 'after' });
          return home.drain().some((e) => e.type === 'data_update' && e.data!.payload === 'after');
        },
        { timeout: 10_000, interval: 250 },
      )
      .toBe(true);
  }, 120_000);

  it('the whole cluster restarts, one master dead since an earlier failover: /health degraded meanwhile, then presence is repaired and messages flow again by themselves', async () => {
    // As after the fault tests above: a former master, dead, comes back with the restart holding a stale slot map.
    const [victim] = await cluster.server.masters();
    await victim!.kill();
    await cluster.server.healthy(30_000);
    const [a, b] = await Promise.all([startTestGateway({ ...env(), GW_INSTANCE_ID: 'fc-a' }), startTestGateway({ ...env(), GW_INSTANCE_ID: 'fc-b' })]);
    const alice = await a.join('alice', ['g']);
    const bob = await b.join('bob', ['g']);
    for (const node of cluster.server.nodes) await node.kill();
    await until(async () => (await health(a)).status === 'degraded' && (await health(b)).status === 'degraded', 10_000, '/health degraded on both');
    for (const node of cluster.server.nodes) await node.start();
    await cluster.server.healthy(30_000);
    await until(async () => (await health(a)).status === 'ok' && (await health(b)).status === 'ok', 20_000, '/health ok on both');
    // Nothing survived in Redis (no persistence): each gateway wrote its own state back.
    await expect
      .poll(async () => ((await bob.request('subscribe', { group: 'g' })).data!.members as { userId: string }[]).map((m) => m.userId).sort(), { timeout: 10_000, interval: 200 })
      .toEqual(['alice', 'bob']);
    await expect
      .poll(
        async () => {
          await alice.request('data_update', { group: 'g', payload: 'after the restart' });
          return bob.drain().some((e) => e.type === 'data_update' && e.data!.payload === 'after the restart');
        },
        { timeout: 10_000, interval: 250 },
      )
      .toBe(true);
  }, 120_000);
});
