// Scale-out faults and backend features against a real redis-server: instance crash, Redis outages,
// the emitter and its CLI, cluster-wide connection limits, and the rt:events stream.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import request from 'supertest';
import { afterEach, describe, expect, it, vi, onTestFinished } from 'vitest';
import { mintToken } from '../src/auth/jwt';
import { ProbeClient, type ServerEnvelope } from './helpers/ProbeClient';
import { createEmitter } from '../src/emitter';
import type { Role } from '../src/types/domain';
import { createLogger } from '../src/utils/logger';
import { childEnv } from './helpers/children';
import { sleep, startTestGateway, TEST_SECRET, type TestGateway } from './helpers/gateway';
import { spawnGateway } from './helpers/process';
import { freePort, hasRedis, startRedis, stopAllRedis, type RedisServer } from './helpers/redis';
import { rawExchange, upgradeRequest } from './helpers/raw';

const TTL_MS = 1000;
const ORPHAN_TTL_MS = 1000;

type StreamEntry = [string, string[]];
const events = async (redis: RedisServer) =>
  ((await redis.client().xrange('rt:events', '-', '+')) as StreamEntry[]).map(([, fields]) => Object.fromEntries(fields.reduce<string[][]>((acc, v, i) => (i % 2 ? acc : [...acc, [v, fields[i + 1]!]]), [])));

async function until(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await sleep(50);
  }
  return Date.now() - started;
}

const health = async (gw: TestGateway) => (await request(gw.httpUrl).get('/health')).body.data as { status: string; redis?: string };

/** Resolves with `child`'s exit code; when the test ends, however it ends, the child is killed if need be and awaited. */
function reapWhenDone(child: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>((done) => {
    child.once('exit', done);
    child.once('error', () => done(null));
  });
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  return exited;
}

const seqOf = (e: ServerEnvelope) => (e as unknown as { seq: number }).seq;

/** Resolves once no survivor has anything left to reap of `instance`: its DOWNs are announced, its events written. */
const reaped = (redis: RedisServer, instance: string) => {
  const store = redis.client();
  return until(async () => (await store.keys(`rt:*${instance}*`)).length === 0, 4 * TTL_MS, `reaping ${instance}`);
};

/** The payloads of the data_updates `client` received before the one carrying `sentinel`, which is consumed. */
const payloadsBefore = async (client: ProbeClient, sentinel: unknown) =>
  (await client.before((e) => e.type === 'data_update' && e.data!.payload === sentinel)).filter((e) => e.type === 'data_update').map((e) => e.data!.payload);

/** Runs `yarn emit` with `args` against `redis`: its exit code and stdout. */
async function yarnEmit(redis: RedisServer, args: string[]): Promise<{ code: number | null; out: string }> {
  const root = join(__dirname, '..');
  const cli = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', join(root, 'src/cli/emit.ts'), ...args], {
    cwd: root,
    env: childEnv({ NODE_ENV: 'development', GW_REDIS_URL: redis.url, TS_NODE_PROJECT: join(root, 'tsconfig.json') }),
  });
  const exited = reapWhenDone(cli);
  let out = '';
  cli.stdout.on('data', (d: Buffer) => (out += String(d)));
  return { code: await exited, out };
}

describe.skipIf(!hasRedis)('redis scale-out', () => {
  afterEach(stopAllRedis);

  it('a SIGKILLed instance: its users stay UP through the orphan TTL, then the survivor broadcasts DOWN and writes exactly one offline event', async () => {
    const redis = await startRedis();
    const env = { GW_REDIS_URL: redis.url, GW_INSTANCE_TTL_MS: String(TTL_MS), GW_ORPHAN_SESSION_TTL_MS: String(ORPHAN_TTL_MS) };
    const survivor = await startTestGateway({ ...env, GW_INSTANCE_ID: 'survivor' });
    const doomed = spawnGateway({ ...env, GW_INSTANCE_ID: 'doomed', GW_JWT_SECRET: TEST_SECRET, GW_PORT: '0', GW_HOST: '127.0.0.1' });
    const doomedPort = await doomed.port();
    const watcher = await survivor.join('bob', ['g']);
    const alice = await ProbeClient.connect(`ws://127.0.0.1:${doomedPort}/rt`);
    await alice.next('hello');
    expect((await alice.identify(await mintToken({ sub: 'alice', groups: ['g'] }, new TextEncoder().encode(TEST_SECRET)), ['g'])).type).toBe('ready');
    expect((await watcher.next('presence_update')).data).toMatchObject({ userId: 'alice', status: 'UP' });

    doomed.child.kill('SIGKILL');
    await doomed.exited;
    const killedAt = Date.now();
    const down = await watcher.next('presence_update', 4 * TTL_MS + ORPHAN_TTL_MS);
    const elapsed = Date.now() - killedAt;
    expect(down.data).toMatchObject({ group: 'g', userId: 'alice', status: 'DOWN' });
    expect(elapsed).toBeGreaterThanOrEqual(ORPHAN_TTL_MS);
    expect(elapsed).toBeLessThanOrEqual(2 * TTL_MS + ORPHAN_TTL_MS + 250);

    await reaped(redis, 'doomed');
    const aliceEvents = (await events(redis)).filter((e) => e.userId === 'alice');
    expect(aliceEvents.map((e) => e.type)).toEqual(['online', 'offline']);
    expect(aliceEvents[1]).toMatchObject({ instance: 'doomed', reason: 'instance-lost' });
    const members = await watcher.request('subscribe', { group: 'g' });
    expect((members.data!.members as { userId: string }[]).map((m) => m.userId)).toEqual(['bob']);
    // The reap is over: a user joining the survivor now is announced after any second DOWN it could have sent.
    await survivor.join('sentinel', ['g']);
    expect(await watcher.presenceBefore('sentinel')).toEqual([]);
  });

  it('a SIGKILLed owner: a client resuming elsewhere at once gets resumed:false at once, long before its liveness key expires', async () => {
    const redis = await startRedis();
    const env = { GW_REDIS_URL: redis.url };
    const survivor = await startTestGateway({ ...env, GW_INSTANCE_ID: 'survivor' });
    const doomed = spawnGateway({ ...env, GW_INSTANCE_ID: 'crashes', GW_JWT_SECRET: TEST_SECRET, GW_PORT: '0', GW_HOST: '127.0.0.1' });
    const alice = await ProbeClient.connect(`ws://127.0.0.1:${await doomed.port()}/rt`);
    onTestFinished(() => alice.socket.terminate());
    await alice.next('hello');
    const token = await mintToken({ sub: 'alice', groups: ['g'] }, new TextEncoder().encode(TEST_SECRET));
    const ready = (await alice.identify(token, ['g'])).data as { sessionId: string; sessionToken: string };
    doomed.child.kill('SIGKILL');
    await doomed.exited;
    const back = await survivor.connect();
    const started = Date.now();
    const reply = await back.request('identify', { token, resume: { sessionId: ready.sessionId, sessionToken: ready.sessionToken, lastSeq: 0 } });
    const elapsed = Date.now() - started;
    expect(reply.data).toMatchObject({ resumed: false });
    expect(elapsed).toBeLessThan(500);
    // The dead instance is still in the directory and its liveness key (15 s by default) has not expired.
    expect(await redis.client().exists('rt:{i:crashes}')).toBe(1);
    expect(await redis.client().smembers('rt:{u:alice}:conns')).toContain(`crashes|${ready.sessionId}`);
  });

  it('a graceful stop hands its sessions to a survivor: users stay UP until the orphan TTL there, then DOWN once, and nothing is left of the stopped instance', async () => {
    const redis = await startRedis();
    const env = { GW_REDIS_URL: redis.url, GW_INSTANCE_TTL_MS: String(TTL_MS), GW_ORPHAN_SESSION_TTL_MS: String(ORPHAN_TTL_MS) };
    const a = await startTestGateway({ ...env, GW_INSTANCE_ID: 'stays' });
    const b = await startTestGateway({ ...env, GW_INSTANCE_ID: 'leaves' });
    const watcher = await a.join('bob', ['g']);
    await b.join('alice', ['g']);
    await watcher.next('presence_update');
    // The survivor holds the session orphaned from the hand-over on, so it cannot expire sooner than the TTL after this.
    const stoppingAt = Date.now();
    await b.gateway.stop();
    expect(await redis.client().keys('rt:*leaves*')).toEqual([]);
    expect((await watcher.next('presence_update', 4 * TTL_MS + ORPHAN_TTL_MS)).data).toMatchObject({ userId: 'alice', status: 'DOWN' });
    expect(Date.now() - stoppingAt).toBeGreaterThanOrEqual(ORPHAN_TTL_MS);
    expect((await events(redis)).filter((e) => e.userId === 'alice').map((e) => [e.type, e.instance, e.reason])).toEqual([
      ['online', 'leaves', undefined],
      ['offline', 'stays', 'closed'],
    ]);
    await a.join('sentinel', ['g']);
    expect(await watcher.presenceBefore('sentinel')).toEqual([]);
  });

  it('the last instance stops: it says that no instance takes its sessions; a resume on the next instance is answered at once, resumed: false', async () => {
    const redis = await startRedis();
    const lines: string[] = [];
    const env = { GW_REDIS_URL: redis.url, GW_INSTANCE_TTL_MS: String(TTL_MS), GW_ORPHAN_SESSION_TTL_MS: String(ORPHAN_TTL_MS) };
    const last = await startTestGateway({ ...env, GW_INSTANCE_ID: 'last' }, { logger: createLogger('info', { write: (l: string) => void lines.push(l) }) });
    const alice = await last.connect();
    const ready = (await alice.identify(await last.token({ sub: 'alice', groups: ['g'] }), ['g'])).data as { sessionId: string; sessionToken: string };
    await last.gateway.stop();
    expect(lines.filter((l) => l.includes('no other instance is alive: sessions are not handed over')).map((l) => (JSON.parse(l) as { sessions: number }).sessions)).toEqual([1]);
    expect(lines.some((l) => l.includes('sessions handed over to surviving instances'))).toBe(false);
    const next = await startTestGateway({ ...env, GW_INSTANCE_ID: 'next' });
    const back = await next.connect();
    const started = Date.now();
    const reply = await back.request('identify', { token: await next.token({ sub: 'alice', groups: ['g'] }), resume: { ...ready, lastSeq: 0 } });
    expect(reply.data).toMatchObject({ resumed: false });
    expect(Date.now() - started).toBeLessThan(500);
  });

  it('writes online once for a user’s first connection anywhere and offline once for the last', async () => {
    const redis = await startRedis();
    const [a, b] = await Promise.all(['x', 'y'].map((id) => startTestGateway({ GW_REDIS_URL: redis.url, GW_INSTANCE_ID: id })));
    const t1 = await a!.join('alice');
    const t2 = await b!.join('alice');
    // After each close is handled, a user connecting to the same instance appends its online event after anything
    // the close appended: both go through that instance's one Redis connection, in order.
    await t1.close();
    await a!.connections(0);
    await a!.join('sentinel-a');
    expect((await events(redis)).map((e) => [e.type, e.userId])).toEqual([
      ['online', 'alice'],
      ['online', 'sentinel-a'],
    ]);
    await t2.close();
    await b!.connections(0);
    await b!.join('sentinel-b');
    expect((await events(redis)).map((e) => [e.type, e.userId])).toEqual([
      ['online', 'alice'],
      ['online', 'sentinel-a'],
      ['offline', 'alice'],
      ['online', 'sentinel-b'],
    ]);
  });

  it('Redis lost mid-run: local fan-out goes on, /health says degraded; when Redis is back, cross-instance delivery and presence resume by themselves', async () => {
    const redis = await startRedis();
    const env = { GW_REDIS_URL: redis.url, GW_INSTANCE_TTL_MS: String(TTL_MS) };
    const logs: string[] = [];
    const a = await startTestGateway({ ...env, GW_INSTANCE_ID: 'a' }, { logger: createLogger('warn', { write: (l: string) => void logs.push(l) }) });
    const b = await startTestGateway({ ...env, GW_INSTANCE_ID: 'b' });
    const aliceA = await a.join('alice', ['g']);
    const carolA = await a.join('carol', ['g']);
    const bobB = await b.join('bob', ['g']);
    // A's presence batches (alice's and carol's UP) went to Redis before it goes: they would be dropped and counted too.
    await aliceA.next((e) => e.type === 'presence_update' && e.data!.userId === 'carol');
    expect(await health(a)).toMatchObject({ status: 'ok', redis: 'up' });

    await redis.kill();
    await until(async () => (await health(a)).redis === 'down', 5000, 'redis down in /health');
    expect(await health(a)).toMatchObject({ status: 'degraded', redis: 'down' });
    await request(a.httpUrl).get('/health').expect(200);
    bobB.drain();
    await aliceA.request('data_update', { group: 'g', payload: 'during outage' });
    expect((await carolA.next('data_update')).data!.payload).toBe('during outage');
    // Dropped, counted and logged, never queued: that message is the only one A has had to send since Redis went.
    expect(logs.map((l) => JSON.parse(l) as { msg: string; dropped?: number }).find((l) => l.msg.startsWith('redis down: cross-instance messages dropped'))?.dropped).toBe(1);
    const scraped = (await request(`http://127.0.0.1:${a.gateway.internalPort}`).get('/metrics')).text;
    expect(scraped).toMatch(/^gateway_redis_up 0$/m);
    expect(scraped).toMatch(/^gateway_cluster_dropped_total 1$/m);
    const daveA = await a.join('dave', ['g']);
    expect((await carolA.next((e) => e.type === 'presence_update' && e.data!.userId === 'dave')).data!.status).toBe('UP');

    await redis.restart();
    await until(async () => (await health(a)).redis === 'up' && (await health(b)).redis === 'up', 10_000, 'redis back in /health');
    // Presence re-published from local state: B's clients learn of the users A holds.
    await until(async () => {
      const sub = await bobB.request('subscribe', { group: 'g' });
      return (sub.data!.members as { userId: string }[]).length === 4;
    }, 5000, 'presence re-published');
    // Publish until one gets through (B re-subscribes on its own schedule).
    await until(() => {
      aliceA.send('data_update', { group: 'g', payload: 'after outage' });
      return bobB.pending('data_update').some((e) => e.data!.payload === 'after outage');
    }, 5000, 'cross-instance delivery after the outage');
    expect(daveA.socket.readyState).toBe(daveA.socket.OPEN);
    // Each instance listens on its own control channel again (handoffs): the gateway subscribes again itself,
    // ioredis's own re-subscribe is off (it had no error handler).
    const admin = redis.client();
    try {
      await vi.waitFor(async () => expect(((await admin.pubsub('CHANNELS', 'rt:control:*')) as string[]).sort()).toEqual(['rt:control:a', 'rt:control:b']), { timeout: 5000 });
    } finally {
      admin.disconnect();
    }
  });

  it('a stop closes the Redis connections without reporting them lost; losing Redis does report it', async () => {
    const redis = await startRedis();
    const lines: string[] = [];
    const logger = createLogger('info', { write: (l: string) => void lines.push(l) });
    const said = (msg: string) => [...new Set(lines.map((l) => JSON.parse(l) as { msg: string; redis?: string }).filter((l) => l.msg === msg).map((l) => l.redis))].sort();
    const names = (instance: string) => [`gateway-strategy:${instance}`, `gateway-strategy:${instance}:sub`];
    // Both connections (commands and subscriber) must have been up, or neither could be reported lost at all.
    const connected = (instance: string) => vi.waitFor(() => expect(said('redis connected')).toEqual(expect.arrayContaining(names(instance))), { timeout: 5000 });
    const stopping = await startTestGateway({ GW_REDIS_URL: redis.url, GW_INSTANCE_ID: 'quiet' }, { logger });
    await connected('quiet');
    await stopping.gateway.stop();
    await startTestGateway({ GW_REDIS_URL: redis.url, GW_INSTANCE_ID: 'loud' }, { logger });
    await connected('loud');
    await redis.kill();
    // Exactly the lost instance's two: a line for the stopped one would have come long before these (its closes
    // follow its stop by a loop turn), so they are the sentinel for it.
    await vi.waitFor(() => expect(said('redis connection lost')).toEqual(names('loud')), { timeout: 5000 });
  });

  it('Redis back without its data: users are announced UP again to the others, never to themselves', async () => {
    const redis = await startRedis();
    // alice's UP goes out at the end of its turn, before bob reads his list (a batch crossing it would repeat it to him).
    const a = await startTestGateway({ GW_REDIS_URL: redis.url, GW_INSTANCE_ID: 'again', GW_PRESENCE_BATCH_MS: '0' });
    const alice = await a.join('alice', ['g']);
    const bob = await a.join('bob', ['g']);
    expect((await alice.next('presence_update')).data).toMatchObject({ userId: 'bob', status: 'UP' });
    await redis.kill();
    await until(async () => (await health(a)).redis === 'down', 5000, 'redis down in /health');
    await redis.restart();
    // The instance re-publishes what it holds: each user UP again, to the other, in one pass over the group.
    expect((await alice.next((e) => e.type === 'presence_update', 10_000)).data).toMatchObject({ userId: 'bob', status: 'UP' });
    expect((await bob.next((e) => e.type === 'presence_update', 10_000)).data).toMatchObject({ userId: 'alice', status: 'UP' });
    // A copy to its own subject would have been written before the UP of a sentinel that joins after both arrived.
    await a.join('sentinel', ['g']);
    for (const c of [alice, bob]) expect(await c.presenceBefore('sentinel')).toEqual([]);
  });

  it('Redis down at start: the gateway starts degraded, serves local connections, and connects when Redis appears', async () => {
    const port = await freePort();
    const gw = await startTestGateway({ GW_REDIS_URL: `redis://127.0.0.1:${port}`, GW_INSTANCE_ID: 'early' });
    expect(await health(gw)).toMatchObject({ status: 'degraded', redis: 'down' });
    const alice = await gw.join('alice', ['g']);
    const bob = await gw.join('bob', ['g']);
    await alice.request('data_update', { group: 'g', payload: 'local' });
    expect((await bob.next('data_update')).data!.payload).toBe('local');
    reapWhenDone(spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' }));
    await until(async () => (await health(gw)).redis === 'up', 10_000, 'redis connected');
    expect((await health(gw)).status).toBe('ok');
  });

  it('the emitter publishes to a group and to a user on every instance, from the service', async () => {
    const redis = await startRedis();
    // Presence goes out at the end of its turn: alice's UP is out before bob joins, so bob's first seq is the emitter's.
    const [a, b] = await Promise.all(['e1', 'e2'].map((id) => startTestGateway({ GW_REDIS_URL: redis.url, GW_INSTANCE_ID: id, GW_PRESENCE_BATCH_MS: '0' })));
    const onA = await a!.join('alice', ['g']);
    const onB = await b!.join('bob', ['g']);
    const aliceOnB = await b!.join('alice', ['other']);
    // bob's UP is onA's seq 1.
    expect((await onA.next('presence_update')).data).toMatchObject({ userId: 'bob', status: 'UP' });
    const emitter = createEmitter({ redisUrl: redis.url, serviceName: 'ai-worker' });
    try {
      expect(await emitter.toGroup('g').publish({ summary: 'done' })).toBe(2);
      const done = [await onA.next('data_update'), await onB.next('data_update')];
      for (const got of done) expect(got.data).toEqual({ group: 'g', from: { userId: 'ai-worker', connectionId: null }, payload: { summary: 'done' } });
      // Numbered in each session's own sequence, like any other data_update.
      expect(done.map(seqOf)).toEqual([2, 1]);
      await emitter.toUser('alice').publish('just you');
      const justYou = [await onA.next('data_update'), await aliceOnB.next('data_update')];
      for (const got of justYou) expect(got.data).toEqual({ group: null, from: { userId: 'ai-worker', connectionId: null }, payload: 'just you' });
      expect(justYou.map(seqOf)).toEqual([3, 1]);
      // The emitter's next message reaches B after 'just you' would have.
      await emitter.toGroup('g').publish('end');
      const beforeEnd = await onB.before((e) => e.type === 'data_update' && e.data!.payload === 'end');
      expect(beforeEnd.filter((e) => e.type === 'data_update')).toEqual([]);
      expect(() => emitter.toGroup('bad name')).toThrow(TypeError);
      await expect(emitter.toGroup('g').publish(undefined)).rejects.toThrow(TypeError);
    } finally {
      await emitter.close();
    }
  });

  it('the emitter with a filter reaches only the sessions it accepts, and refuses a bad filter', async () => {
    const redis = await startRedis();
    const gw = await startTestGateway({ GW_REDIS_URL: redis.url, GW_INSTANCE_ID: 'filtered' });
    const alice = await gw.join('alice', ['g']);
    const aliceAdmin = await gw.join('alice', [], { role: 'admin' });
    const bob = await gw.join('bob', ['g'], { role: 'admin' });
    const carol = await gw.join('carol', ['g'], { role: 'service' });
    const emitter = createEmitter({ redisUrl: redis.url, serviceName: 'ai-worker' });
    try {
      await emitter.toGroup('g', { roles: ['admin', 'service'], exceptUsers: ['carol'] }).publish('staff but carol');
      await emitter.toGroup('g', { users: ['alice', 'carol'] }).publish('alice and carol');
      await emitter.toUser('alice', { roles: ['admin'] }).publish('alice as admin');
      await emitter.toGroup('g').publish('sentinel');
      await emitter.toUser('alice').publish('user sentinel');
      expect(await payloadsBefore(alice, 'sentinel')).toEqual(['alice and carol']);
      expect(await payloadsBefore(bob, 'sentinel')).toEqual(['staff but carol']);
      expect(await payloadsBefore(carol, 'sentinel')).toEqual(['alice and carol']);
      expect(await payloadsBefore(aliceAdmin, 'user sentinel')).toEqual(['alice as admin']);
      expect(() => emitter.toGroup('g', {})).toThrow(new TypeError('invalid filter: a filter names at least one of roles, users and exceptUsers'));
      expect(() => emitter.toUser('alice', { roles: ['root' as Role] })).toThrow(/^invalid filter\.roles\.0: /);
      expect(() => emitter.toGroup('g', { exceptUsers: ['bob', 'bob'] })).toThrow(new TypeError('invalid filter.exceptUsers.1: "bob" is listed twice'));
    } finally {
      await emitter.close();
    }
  });

  it('yarn emit publishes from the command line, filtered by --role, --only-user and --except-user', async () => {
    const redis = await startRedis();
    const gw = await startTestGateway({ GW_REDIS_URL: redis.url });
    const alice = await gw.join('alice', ['g']);
    const bob = await gw.join('bob', ['g'], { role: 'admin' });
    const carol = await gw.join('carol', ['g'], { role: 'service' });
    const dave = await gw.join('dave', ['g'], { role: 'admin' });
    const plain = await yarnEmit(redis, ['--group', 'g', '--payload', '{"x":1}', '--service', 'ops']);
    expect(plain).toEqual({ code: 0, out: 'published to group g: 1 gateway instance(s) listening\n' });
    expect((await alice.next('data_update')).data).toEqual({ group: 'g', from: { userId: 'ops', connectionId: null }, payload: { x: 1 } });
    expect((await yarnEmit(redis, ['--group', 'g', '--payload', '"clients and admins but bob"', '--role', 'client', '--role', 'admin', '--except-user', 'bob'])).code).toBe(0);
    expect((await yarnEmit(redis, ['--group', 'g', '--payload', '"carol"', '--only-user', 'carol', '--only-user', 'bob', '--except-user', 'bob'])).code).toBe(0);
    // Published after the CLI's messages were taken by Redis: it arrives after them.
    const emitter = createEmitter({ redisUrl: redis.url });
    try {
      await emitter.toGroup('g').publish('sentinel');
    } finally {
      await emitter.close();
    }
    expect(await payloadsBefore(alice, 'sentinel')).toEqual(['clients and admins but bob']);
    expect(await payloadsBefore(bob, 'sentinel')).toEqual([{ x: 1 }]);
    expect(await payloadsBefore(carol, 'sentinel')).toEqual([{ x: 1 }, 'carol']);
    expect(await payloadsBefore(dave, 'sentinel')).toEqual([{ x: 1 }, 'clients and admins but bob']);
  });

  it('counts upgrade attempts per client IP across instances', async () => {
    const redis = await startRedis();
    const env = { GW_REDIS_URL: redis.url, GW_RATE_CONN_PER_MIN: '3' };
    const [a, b] = await Promise.all(['r1', 'r2'].map((id) => startTestGateway({ ...env, GW_INSTANCE_ID: id })));
    const attempt = async (gw: TestGateway) => (await rawExchange(gw.gateway.port, upgradeRequest({ 'X-Forwarded-For': '198.51.100.7' }), 200)).slice(9, 12);
    expect([await attempt(a!), await attempt(b!), await attempt(a!)]).toEqual(['101', '101', '101']);
    expect(await attempt(b!)).toBe('429');
    expect(await attempt(a!)).toBe('429');
  });
});
