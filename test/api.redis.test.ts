// The server API across two real gateways on one real redis-server: a call to either instance publishes to clients
// of both, and reads presence of both. Every answer is checked against the OpenAPI document (helpers/api.ts).
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { API_ENV, apiClient } from './helpers/api';
import { nextMillisecond, startTestGateway } from './helpers/gateway';
import type { ServerEnvelope } from './helpers/ProbeClient';
import { hasRedis, startRedis, stopAllRedis, type RedisServer } from './helpers/redis';

const seqOf = (e: ServerEnvelope) => (e as unknown as { seq: number }).seq;
const dataUpdates = (seen: ServerEnvelope[]) => seen.filter((e) => e.type === 'data_update');

describe.skipIf(!hasRedis)('server API across instances on Redis', () => {
  let redis: RedisServer;
  let admin: Redis;

  beforeAll(async () => {
    redis = await startRedis();
    admin = redis.client();
  });
  beforeEach(async () => {
    await admin.flushall();
  });
  afterAll(stopAllRedis);

  const pair = () =>
    Promise.all([startTestGateway({ ...API_ENV, GW_REDIS_URL: redis.url, GW_INSTANCE_ID: 'api-a' }), startTestGateway({ ...API_ENV, GW_REDIS_URL: redis.url, GW_INSTANCE_ID: 'api-b' })]);

  it('publish through either instance reaches a group’s members and a user’s sessions on both, numbered', async () => {
    const [a, b] = await pair();
    const aliceOnA = await a.join('alice', ['g']);
    const aliceOnB = await b.join('alice', []);
    const bobOnB = await b.join('bob', ['g']);
    const carolOnA = await a.join('carol', ['h']);

    await apiClient(a).ok('publish', { group: 'g', payload: 'to the group', from: 'billing' });
    for (const c of [aliceOnA, bobOnB]) {
      expect((await c.next('data_update')).data).toEqual({ group: 'g', from: { userId: 'billing', connectionId: null }, payload: 'to the group' });
    }
    await apiClient(b).ok('publish', { user: 'alice', payload: 'to alice' });
    for (const c of [aliceOnA, aliceOnB]) {
      const got = await c.next('data_update');
      expect(got.data).toEqual({ group: null, from: { userId: 'api', connectionId: null }, payload: 'to alice' });
      expect(seqOf(got)).toBeGreaterThan(0);
    }
    // An instance hands what reaches it to all its recipients at once: alice on A had both, so carol on A would have too.
    for (const c of [carolOnA, aliceOnA, aliceOnB, bobOnB]) expect(dataUpdates(await c.barrier())).toEqual([]);
  });

  it('broadcast through one instance reaches every listed group on both', async () => {
    const [a, b] = await pair();
    const onA = await a.join('alice', ['g1']);
    const onB = await b.join('bob', ['g2']);
    const both = await b.join('carol', ['g1', 'g2']);
    await apiClient(a).ok('broadcast', { groups: ['g1', 'g2'], payload: { v: 1 } });
    expect((await onA.next('data_update')).data!.group).toBe('g1');
    expect((await onB.next('data_update')).data!.group).toBe('g2');
    const twice = [await both.next('data_update'), await both.next('data_update')];
    expect(twice.map((e) => e.data!.group).sort()).toEqual(['g1', 'g2']);
    expect(twice.map(seqOf)[1]).toBe(seqOf(twice[0]!) + 1);
  });

  it('presence and presence_stats through either instance count and list the users of both', async () => {
    const [a, b] = await pair();
    await a.join('alice', ['g']);
    await nextMillisecond();
    await b.join('alice', ['g']);
    await nextMillisecond();
    await b.join('bob', ['g']);
    for (const gw of [a, b]) {
      const api = apiClient(gw);
      expect(await api.ok('presence_stats', { group: 'g' })).toEqual({ group: 'g', users: 2, sessions: 3 });
      const page = (await api.ok('presence', { group: 'g', limit: 1 })) as { members: { userId: string }[]; count: number; next: string };
      expect([page.members.map((m) => m.userId), page.count]).toEqual([['alice'], 2]);
      expect(await api.ok('presence', { group: 'g', after: page.next })).toMatchObject({ members: [{ userId: 'bob' }], count: 2, next: null });
    }
    const data = await apiClient(b).ok('batch', {
      commands: [
        { method: 'presence_stats', params: { group: 'g' } },
        { method: 'publish', params: { group: 'g' } },
        { method: 'presence_stats', params: { group: 'nobody' } },
      ],
    });
    expect(data).toEqual({
      replies: [
        { result: { group: 'g', users: 2, sessions: 3 } },
        { error: { code: 'INVALID_REQUEST', message: expect.any(String), field: 'payload' } },
        { result: { group: 'nobody', users: 0, sessions: 0 } },
      ],
    });
  });
});
