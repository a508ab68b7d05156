// The server API's user, info and groups on one real gateway, with real clients: a user's sessions as they are
// (attached, or orphaned and resumable after an abrupt drop), this instance's counts and message totals, the busiest
// groups. Every answer is checked against the OpenAPI document (helpers/api.ts).
import { describe, expect, it } from 'vitest';
import { version } from '../src/utils/version';
import { API_ENV, apiClient } from './helpers/api';
import { startTestGateway } from './helpers/gateway';
import { member } from './helpers/presence';

const connectionOf = (ready: object) => (ready as { connectionId: string }).connectionId;

interface Traffic {
  at: number;
  messagesIn: number;
  messagesOut: number;
  fanouts: number;
  fanoutSeconds: number;
}
const trafficOf = async (api: ReturnType<typeof apiClient>): Promise<Traffic> => ((await api.ok('info', {})) as { instances: [{ traffic: Traffic }] }).instances[0].traffic;

describe('server API: user', () => {
  it('lists a user’s sessions: one attached, one orphaned by an abrupt drop (resumable), with their groups and creation time', async () => {
    const gw = await startTestGateway({ ...API_ENV, GW_INSTANCE_ID: 'solo' });
    const api = apiClient(gw);
    const before = Date.now();
    const tab1 = await member(gw, 'alice', ['g', 'h']);
    const tab2 = await member(gw, 'alice', []);
    await gw.join('bob', ['g']);
    const after = Date.now();
    expect(gw.gateway.terminateConnection(connectionOf(tab2.ready))).toBe(true);
    await gw.connections(2);

    const { user, sessions } = (await api.ok('user', { user: 'alice' })) as { user: string; sessions: { sessionId: string; connectedSince: number }[] };
    expect(user).toBe('alice');
    expect(sessions.map((s) => s.sessionId).sort()).toEqual([tab1.ready.sessionId, tab2.ready.sessionId].sort());
    const byId = new Map(sessions.map((s) => [s.sessionId, s]));
    expect(byId.get(tab1.ready.sessionId)).toEqual({ sessionId: tab1.ready.sessionId, instance: 'solo', groups: ['g', 'h'], availability: 'online', connectedSince: expect.any(Number), state: 'attached' });
    expect(byId.get(tab2.ready.sessionId)).toEqual({ sessionId: tab2.ready.sessionId, instance: 'solo', groups: [], availability: 'online', connectedSince: expect.any(Number), state: 'resumable' });
    for (const s of sessions) expect(s.connectedSince >= before && s.connectedSince <= after, String(s.connectedSince)).toBe(true);
    expect(sessions.map((s) => s.connectedSince)).toEqual(sessions.map((s) => s.connectedSince).sort((a, b) => a - b));

    // Resumed, the session is attached again and keeps its creation time.
    const back = await gw.connect();
    const resumed = await back.request('identify', { token: await gw.token({ sub: 'alice', groups: [] }), resume: { sessionId: tab2.ready.sessionId, sessionToken: tab2.ready.sessionToken, lastSeq: 0 } });
    expect(resumed.data).toMatchObject({ resumed: true });
    const again = (await api.ok('user', { user: 'alice' })) as { sessions: { sessionId: string; state: string; connectedSince: number }[] };
    expect(again.sessions.find((s) => s.sessionId === tab2.ready.sessionId)).toMatchObject({ state: 'attached', connectedSince: byId.get(tab2.ready.sessionId)!.connectedSince });
  });

  it('answers an empty list for a user with no session, or whose sessions ended', async () => {
    const gw = await startTestGateway(API_ENV);
    const api = apiClient(gw);
    expect(await api.ok('user', { user: 'nobody' })).toEqual({ user: 'nobody', sessions: [] });
    const carol = await gw.join('carol', ['g']);
    carol.socket.close(1000);
    await gw.connections(0);
    expect(await api.ok('user', { user: 'carol' })).toEqual({ user: 'carol', sessions: [] });
  });

  it('refuses invalid parameters with 400 INVALID_REQUEST naming the field', async () => {
    const gw = await startTestGateway(API_ENV);
    const api = apiClient(gw);
    const cases: [string, unknown, string | undefined][] = [
      ['user', {}, 'user'],
      ['user', { user: '' }, 'user'],
      ['user', { user: 'u'.repeat(257) }, 'user'],
      ['user', { user: 7 }, 'user'],
      ['user', { user: 'alice', session: 's' }, 'session'],
      ['user', ['alice'], undefined],
      ['info', { verbose: true }, 'verbose'],
      ['info', [], undefined],
    ];
    for (const [method, body, field] of cases) {
      const answer = await api.call(method, body);
      expect([answer.status, answer.body.error.code, answer.body.error.field], `${method} ${JSON.stringify(body)}`).toEqual([400, 'INVALID_REQUEST', field]);
    }
  });
});

describe('server API: info', () => {
  it('lists this instance: its version, uptime, connection and session counts, state up, no redis without Redis', async () => {
    const gw = await startTestGateway({ ...API_ENV, GW_INSTANCE_ID: 'solo' });
    const api = apiClient(gw);
    expect(await api.ok('info', {})).toEqual({ instances: [{ id: 'solo', version, uptimeSec: expect.any(Number), connections: 0, sessions: 0, state: 'up', traffic: expect.any(Object) }] });
    await gw.join('alice', ['g']);
    await gw.join('alice', []);
    const dropping = await member(gw, 'bob', ['g']);
    gw.gateway.terminateConnection(connectionOf(dropping.ready));
    await gw.connections(2);
    // The orphaned session still counts among sessions, not among connections.
    expect(await api.ok('info', {})).toEqual({ instances: [{ id: 'solo', version, uptimeSec: expect.any(Number), connections: 2, sessions: 3, state: 'up', traffic: expect.any(Object) }] });
  });

  it('reports message totals since start that grow by exactly what passed between two readings, with the clock of each', async () => {
    const gw = await startTestGateway({ ...API_ENV, GW_INSTANCE_ID: 'solo' });
    const api = apiClient(gw);
    const bob = await gw.join('bob', ['g']);
    const alice = await gw.join('alice', ['g']);
    await bob.next((e) => e.type === 'presence_update' && e.data?.userId === 'alice');
    const before = await trafficOf(api);
    // One frame in (alice's data_update); two envelopes out (alice's ack, bob's copy); one fan-out to the group.
    expect((await alice.request('data_update', { group: 'g', payload: 1 })).type).toBe('ack');
    await bob.next('data_update');
    const after = await trafficOf(api);
    expect([after.messagesIn - before.messagesIn, after.messagesOut - before.messagesOut, after.fanouts - before.fanouts]).toEqual([1, 2, 1]);
    expect(after.fanoutSeconds).toBeGreaterThan(before.fanoutSeconds);
    expect(after.at).toBeGreaterThanOrEqual(before.at);
    expect(Math.abs(after.at - Date.now())).toBeLessThan(5_000);
  });

  it('both methods run inside a batch', async () => {
    const gw = await startTestGateway({ ...API_ENV, GW_INSTANCE_ID: 'solo' });
    const { ready } = await member(gw, 'alice', ['g']);
    const data = await apiClient(gw).ok('batch', {
      commands: [
        { method: 'user', params: { user: 'alice' } },
        { method: 'info', params: {} },
        { method: 'user', params: {} },
      ],
    });
    expect(data).toEqual({
      replies: [
        { result: { user: 'alice', sessions: [{ sessionId: ready.sessionId, instance: 'solo', groups: ['g'], availability: 'online', connectedSince: expect.any(Number), state: 'attached' }] } },
        { result: { instances: [{ id: 'solo', version, uptimeSec: expect.any(Number), connections: 1, sessions: 1, state: 'up', traffic: expect.any(Object) }] } },
        { error: { code: 'INVALID_REQUEST', message: expect.any(String), field: 'user' } },
      ],
    });
  });
});

describe('server API: groups', () => {
  it('lists the busiest groups by sessions, with users and sessions, within limit and prefix; an empty cluster has none', async () => {
    const gw = await startTestGateway(API_ENV);
    const api = apiClient(gw);
    expect(await api.ok('groups', {})).toEqual({ groups: [] });
    await gw.join('alice', ['room-a', 'room-b', 'lobby']);
    await gw.join('alice', ['room-a', 'lobby']);
    await gw.join('bob', ['room-a', 'lobby']);
    await gw.join('carol', ['room-b']);
    const lobby = { group: 'lobby', users: 2, sessions: 3 };
    const roomA = { group: 'room-a', users: 2, sessions: 3 };
    const roomB = { group: 'room-b', users: 2, sessions: 2 };
    // Equal sessions rank by name.
    expect(await api.ok('groups', {})).toEqual({ groups: [lobby, roomA, roomB] });
    expect(await api.ok('groups', { limit: 2 })).toEqual({ groups: [lobby, roomA] });
    expect(await api.ok('groups', { prefix: 'room-' })).toEqual({ groups: [roomA, roomB] });
    expect(await api.ok('groups', { prefix: 'room-b' })).toEqual({ groups: [roomB] });
    expect(await api.ok('groups', { prefix: 'none' })).toEqual({ groups: [] });
  });

  it('counts a dropped session that can still resume, and no longer a group everyone left', async () => {
    const gw = await startTestGateway(API_ENV);
    const api = apiClient(gw);
    const dropping = await member(gw, 'alice', ['g']);
    const leaving = await gw.join('bob', ['h']);
    gw.gateway.terminateConnection(connectionOf(dropping.ready));
    await gw.connections(1);
    expect(await api.ok('groups', {})).toEqual({ groups: [{ group: 'g', users: 1, sessions: 1 }, { group: 'h', users: 1, sessions: 1 }] });
    await leaving.close();
    await gw.connections(0);
    expect(await api.ok('groups', {})).toEqual({ groups: [{ group: 'g', users: 1, sessions: 1 }] });
  });

  it('refuses invalid parameters with 400 INVALID_REQUEST naming the field, and runs inside a batch', async () => {
    const gw = await startTestGateway(API_ENV);
    const api = apiClient(gw);
    for (const [params, field] of [
      [{ limit: 0 }, 'limit'],
      [{ limit: 101 }, 'limit'],
      [{ limit: 1.5 }, 'limit'],
      [{ prefix: '' }, 'prefix'],
      [{ prefix: 'with space' }, 'prefix'],
      [{ prefix: 'x'.repeat(129) }, 'prefix'],
      [{ group: 'g' }, 'group'],
    ] as const) {
      const refused = await api.call('groups', params);
      expect([refused.status, refused.body.error.code, refused.body.error.field], JSON.stringify(params)).toEqual([400, 'INVALID_REQUEST', field]);
    }
    await gw.join('alice', ['g']);
    expect(await api.ok('batch', { commands: [{ method: 'groups', params: { limit: 1 } }] })).toEqual({ replies: [{ result: { groups: [{ group: 'g', users: 1, sessions: 1 }] } }] });
  });
});
