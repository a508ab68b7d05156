// The server API across two real gateways on one real redis-server: a call to either instance publishes to clients
// of both, reads presence of both, ends or unsubscribes a user's sessions on both, lists a user's sessions and the
// instances of both (and what is known of an instance that is gone or silent), ranks the groups of both. Every answer is checked against the OpenAPI document (helpers/api.ts).
import { describe, expect, it } from 'vitest';
import { version } from '../src/utils/version';
import { API_ENV, apiClient } from './helpers/api';
import { nextMillisecond, startTestGateway } from './helpers/gateway';
import { member } from './helpers/presence';
import type { ServerEnvelope } from './helpers/ProbeClient';
import { hasRedis, useRedis } from './helpers/redis';

const seqOf = (e: ServerEnvelope) => (e as unknown as { seq: number }).seq;
const dataUpdates = (seen: ServerEnvelope[]) => seen.filter((e) => e.type === 'data_update');
const up = (userId: string) => (e: ServerEnvelope) => e.type === 'presence_update' && e.data?.userId === userId && e.data.status === 'UP';

describe.skipIf(!hasRedis)('server API across instances on Redis', () => {
  const redis = useRedis();

  const pair = () =>
    Promise.all([startTestGateway({ ...API_ENV, GW_REDIS_URL: redis.server.url, GW_INSTANCE_ID: 'api-a' }), startTestGateway({ ...API_ENV, GW_REDIS_URL: redis.server.url, GW_INSTANCE_ID: 'api-b' })]);

  it('publish through either instance reaches a group’s members and a user’s sessions on both, numbered', async () => {
    const [a, b] = await pair();
    const aliceOnA = await a.join('alice', ['g']);
    const aliceOnB = await b.join('alice', []);
    const bobOnB = await b.join('bob', ['g']);
    const carolOnA = await a.join('carol', ['h']);

    await apiClient(a).ok('publish', { group: 'g', payload: 'to the group', from: 'billing' });
    const groupSeqs: number[] = [];
    for (const c of [aliceOnA, bobOnB]) {
      const got = await c.next('data_update');
      expect(got.data).toEqual({ group: 'g', from: { userId: 'billing', connectionId: null }, payload: 'to the group' });
      groupSeqs.push(seqOf(got));
    }
    await apiClient(b).ok('publish', { user: 'alice', payload: 'to alice' });
    const userSeqs: number[] = [];
    for (const c of [aliceOnA, aliceOnB]) {
      const got = await c.next('data_update');
      expect(got.data).toEqual({ group: null, from: { userId: 'api', connectionId: null }, payload: 'to alice' });
      userSeqs.push(seqOf(got));
    }
    // Numbered in each session's own sequence: after the group message on A, first of all on B (in no group).
    expect(userSeqs[0]).toBeGreaterThan(groupSeqs[0]!);
    expect(userSeqs[1]).toBe(1);
    // An instance hands what reaches it to all its recipients at once: alice on A had both, so carol on A would have too.
    for (const c of [carolOnA, aliceOnA, aliceOnB, bobOnB]) expect(dataUpdates(await c.barrier())).toEqual([]);
  });

  it('a filtered publish through one instance reaches only the sessions it accepts, on both', async () => {
    const [a, b] = await pair();
    const aliceOnA = await a.join('alice', ['g']);
    const bobOnA = await a.join('bob', ['g'], { role: 'admin' });
    const aliceOnB = await b.join('alice', ['g'], { role: 'admin' });
    const carolOnB = await b.join('carol', ['g'], { role: 'admin' });
    const daveOnB = await b.join('dave', ['g']);
    await apiClient(a).ok('publish', { group: 'g', payload: 'admins but carol', filter: { roles: ['admin'], exceptUsers: ['carol'] } });
    await apiClient(a).ok('publish', { group: 'g', payload: 'dave', filter: { users: ['dave'] } });
    await apiClient(a).ok('publish', { user: 'alice', payload: 'alice as client', filter: { roles: ['client'] } });
    await apiClient(a).ok('broadcast', { groups: ['g'], payload: 'sentinel' });
    // One connection to Redis carries A's publishes, in order: on B, what came before the sentinel is all there is.
    const received: unknown[][] = [];
    for (const c of [aliceOnA, bobOnA, aliceOnB, carolOnB, daveOnB]) received.push(dataUpdates(await c.before((e) => e.type === 'data_update' && e.data!.payload === 'sentinel')).map((e) => e.data!.payload));
    expect(received).toEqual([['alice as client'], ['admins but carol'], ['admins but carol'], [], ['dave']]);
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

  it('disconnect through one instance ends the user’s sessions on both: each closed with 4005, DOWN once, no resume on either', async () => {
    const [a, b] = await pair();
    const bob = await b.join('bob', ['g']);
    const onA = await member(a, 'alice', ['g']);
    const onB = await member(b, 'alice', ['g']);
    await bob.next(up('alice'));
    expect(await apiClient(a).ok('disconnect', { user: 'alice', reason: 'fraud check' })).toEqual({ sessions: 2 });
    for (const { client } of [onA, onB]) {
      expect((await client.next('error')).data).toEqual({ code: 'REVOKED', message: 'fraud check' });
      expect(await client.closed).toEqual({ code: 4005, reason: 'fraud check' });
    }
    expect((await bob.next('presence_update')).data).toMatchObject({ userId: 'alice', status: 'DOWN' });
    const sentinel = bob.before((e) => e.type === 'data_update');
    await apiClient(b).ok('publish', { group: 'g', payload: 'sentinel' });
    expect((await sentinel).filter((e) => e.type === 'presence_update')).toEqual([]);
    expect(await redis.admin.smembers('rt:{u:alice}:conns')).toEqual([]);
    for (const gw of [a, b]) {
      for (const { ready } of [onA, onB]) {
        const back = await gw.connect();
        const reply = await back.request('identify', { token: await gw.token({ sub: 'alice', groups: ['g'] }), resume: { sessionId: ready.sessionId, sessionToken: ready.sessionToken, lastSeq: 0 } });
        expect(reply.data).toMatchObject({ resumed: false });
        back.socket.terminate();
      }
    }
  });

  it('disconnect of one session held by the other instance, reconnect: true: only that session ends, with 4006', async () => {
    const [a, b] = await pair();
    const onA = await a.join('alice', ['g']);
    const onB = await member(b, 'alice', ['g']);
    expect(await apiClient(a).ok('disconnect', { user: 'alice', session: onB.ready.sessionId, reconnect: true })).toEqual({ sessions: 1 });
    expect(await onB.client.closed).toEqual({ code: 4006, reason: 'session ended' });
    expect((await onA.barrier()).filter((e) => e.type === 'error')).toEqual([]);
    expect(await apiClient(b).ok('presence_stats', { group: 'g' })).toEqual({ group: 'g', users: 1, sessions: 1 });
  });

  it('unsubscribe through one instance takes the user’s sessions on both out of the group', async () => {
    const [a, b] = await pair();
    const bob = await a.join('bob', ['g', 'h']);
    const onA = await a.join('alice', ['g', 'h']);
    const onB = await b.join('alice', ['g']);
    await bob.next(up('alice'));
    expect(await apiClient(b).ok('unsubscribe', { user: 'alice', group: 'g' })).toEqual({ sessions: 2 });
    for (const c of [onA, onB]) {
      const notice = await c.next('unsubscribed');
      expect([notice.data, notice.replyTo]).toEqual([{ group: 'g', reason: 'server' }, undefined]);
    }
    expect((await bob.next((e) => e.type === 'presence_update' && e.data?.status === 'DOWN')).data).toMatchObject({ group: 'g', userId: 'alice' });
    await apiClient(b).ok('publish', { group: 'g', payload: 'to g' });
    await apiClient(b).ok('publish', { group: 'h', payload: 'to h' });
    expect((await bob.next((e) => e.type === 'data_update' && e.data?.payload === 'to h')).type).toBe('data_update');
    expect((await onA.before((e) => e.type === 'data_update' && e.data?.payload === 'to h')).filter((e) => e.type === 'data_update')).toEqual([]);
    expect((await onB.barrier()).filter((e) => e.type === 'data_update')).toEqual([]);
    expect(await apiClient(a).ok('presence_stats', { group: 'g' })).toEqual({ group: 'g', users: 1, sessions: 1 });
  });

  it('user through either instance lists the user’s sessions on both, attached or resumable, each with its instance', async () => {
    const [a, b] = await pair();
    const onA = await member(a, 'alice', ['g']);
    await nextMillisecond();
    const onB = await member(b, 'alice', ['h']);
    await nextMillisecond();
    const dropped = await member(b, 'alice', []);
    await b.join('bob', ['g']);
    expect(b.gateway.terminateConnection((dropped.ready as unknown as { connectionId: string }).connectionId)).toBe(true);
    await b.connections(2);
    const expected = {
      user: 'alice',
      sessions: [
        { sessionId: onA.ready.sessionId, instance: 'api-a', groups: ['g'], availability: 'online', connectedSince: expect.any(Number), state: 'attached' },
        { sessionId: onB.ready.sessionId, instance: 'api-b', groups: ['h'], availability: 'online', connectedSince: expect.any(Number), state: 'attached' },
        { sessionId: dropped.ready.sessionId, instance: 'api-b', groups: [], availability: 'online', connectedSince: expect.any(Number), state: 'resumable' },
      ],
    };
    for (const gw of [a, b]) expect(await apiClient(gw).ok('user', { user: 'alice' })).toEqual(expected);
    expect(await apiClient(a).ok('user', { user: 'bob' })).toMatchObject({ sessions: [{ instance: 'api-b', groups: ['g'], state: 'attached' }] });
  });

  it('user lists a session whose instance is gone or silent as unknown, with what the directory knows', async () => {
    const [a] = await pair();
    const onA = await member(a, 'alice', []);
    // Directory entries of an instance nobody listens for (gone) and of one that listens but never answers (silent).
    const silent = redis.server.client();
    await silent.subscribe('rt:control:api-silent');
    await redis.admin.sadd('rt:{u:alice}:conns', 'api-gone|s-gone', 'api-silent|s-silent');
    const started = Date.now();
    const data = (await apiClient(a).ok('user', { user: 'alice' })) as { sessions: unknown[] };
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_900);
    expect(data.sessions[0]).toMatchObject({ sessionId: onA.ready.sessionId, instance: 'api-a', state: 'attached' });
    expect(data.sessions.slice(1).sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)))).toEqual([
      { sessionId: 's-gone', instance: 'api-gone', state: 'unknown' },
      { sessionId: 's-silent', instance: 'api-silent', state: 'unknown' },
    ]);
    await silent.quit();
  });

  it('info through either instance lists both with their counts; a silent one as unknown; a stopped one no more', async () => {
    const [a, b] = await pair();
    await a.join('alice', ['g']);
    await b.join('bob', ['g']);
    const dropped = await member(b, 'bob', []);
    b.gateway.terminateConnection((dropped.ready as unknown as { connectionId: string }).connectionId);
    await b.connections(1);
    const instance = (id: string, connections: number, sessions: number) => ({ id, version, uptimeSec: expect.any(Number), connections, sessions, state: 'up', redis: 'up', traffic: expect.any(Object) });
    expect(await apiClient(a).ok('info', {})).toEqual({ instances: [instance('api-a', 1, 1), instance('api-b', 1, 2)], redis: 'up' });
    expect(await apiClient(b).ok('info', {})).toEqual({ instances: [instance('api-b', 1, 2), instance('api-a', 1, 1)], redis: 'up' });

    const silent = redis.server.client();
    await silent.subscribe('rt:control:api-silent');
    expect(await apiClient(a).ok('info', {})).toEqual({ instances: [instance('api-a', 1, 1), instance('api-b', 1, 2), { id: 'api-silent', state: 'unknown' }], redis: 'up' });
    await silent.quit();

    await b.gateway.stop();
    const after = (await apiClient(a).ok('info', {})) as { instances: { id: string }[] };
    expect(after.instances.map((i) => i.id)).toEqual(['api-a']);
  });

  it('info through one instance gives each instance’s own message totals, read on its own clock', async () => {
    const [a, b] = await pair();
    const alice = await a.join('alice', ['g']);
    const bob = await b.join('bob', ['g']);
    await alice.next(up('bob'));
    type Described = { id: string; traffic: { at: number; messagesIn: number; messagesOut: number; fanouts: number } };
    const read = async () => ((await apiClient(a).ok('info', {})) as { instances: Described[] }).instances;
    const [aBefore, bBefore] = await read();
    // bob's frame comes in on B; B writes the ack and delivers nothing locally, A delivers it to alice.
    expect((await bob.request('data_update', { group: 'g', payload: 1 })).type).toBe('ack');
    await alice.next('data_update');
    const [aAfter, bAfter] = await read();
    expect([aAfter!.id, bAfter!.id]).toEqual(['api-a', 'api-b']);
    expect([aAfter!.traffic.messagesIn - aBefore!.traffic.messagesIn, aAfter!.traffic.messagesOut - aBefore!.traffic.messagesOut]).toEqual([0, 1]);
    expect([bAfter!.traffic.messagesIn - bBefore!.traffic.messagesIn, bAfter!.traffic.messagesOut - bBefore!.traffic.messagesOut]).toEqual([1, 1]);
    expect(bAfter!.traffic.at).toBeGreaterThanOrEqual(bBefore!.traffic.at);
  });

  it('groups through either instance ranks the groups of both by their cluster-wide sessions, with exact counts', async () => {
    const [a, b] = await pair();
    // A holds x ×3 and y ×2; B holds y ×2 and z ×1: y is the busiest cluster-wide though neither instance ranks it first.
    for (const user of ['u1', 'u2', 'u3']) await a.join(user, ['x']);
    for (const user of ['u1', 'u2']) await a.join(user, ['y']);
    for (const user of ['u3', 'u4']) await b.join(user, ['y']);
    await b.join('u5', ['z']);
    const expected = { groups: [{ group: 'y', users: 4, sessions: 4 }, { group: 'x', users: 3, sessions: 3 }] };
    for (const gw of [a, b]) expect(await apiClient(gw).ok('groups', { limit: 2 })).toEqual(expected);
    expect(await apiClient(b).ok('groups', { prefix: 'z' })).toEqual({ groups: [{ group: 'z', users: 1, sessions: 1 }] });
  });
});
