// The server API on one real gateway: its methods reach real WebSocket clients (numbered data_updates that a resume
// replays) and read real presence; its refusals (key, body, schema, size, rate, method) come with the documented
// codes. Every answer is checked against the OpenAPI document (helpers/api.ts). Absence is asserted behind barriers.
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { apiMethods } from '../src/api/schemas';
import { API_ENV, API_KEY, apiClient, document } from './helpers/api';
import { nextMillisecond, startTestGateway } from './helpers/gateway';
import { member } from './helpers/presence';
import type { ProbeClient, ServerEnvelope } from './helpers/ProbeClient';

const seqOf = (e: ServerEnvelope) => (e as unknown as { seq: number }).seq;
const dataUpdates = (seen: ServerEnvelope[]) => seen.filter((e) => e.type === 'data_update');

/** A value nested `depth` levels deep (arrays in arrays). */
const nested = (depth: number): unknown => (depth === 0 ? 1 : [nested(depth - 1)]);

describe('server API: switched off, and never public', () => {
  it('answers 404 under /api without GW_API_KEY, whatever the key sent, while /metrics is served', async () => {
    const gw = await startTestGateway();
    const api = apiClient(gw);
    expect((await api.call('publish', { group: 'g', payload: 1 })).body.error.code).toBe('NOT_FOUND');
    expect((await api.get('/api/openapi.json')).status).toBe(404);
    await request(`http://127.0.0.1:${gw.gateway.internalPort}`).get('/metrics').expect(200);
  });

  it('is not served on the public port, the key notwithstanding', async () => {
    const gw = await startTestGateway(API_ENV);
    const api = apiClient(gw, { publicPort: true });
    const refused = await api.call('publish', { group: 'g', payload: 1 });
    expect(refused.status).toBe(404);
    expect(refused.body).toEqual({ ok: false, error: { code: 'NOT_FOUND', message: 'no such endpoint' } });
    expect((await api.get('/api/openapi.json')).status).toBe(404);
  });
});

describe('server API: the key', () => {
  it('refuses a missing or wrong key with 401, the same answer for each, and runs nothing', async () => {
    const gw = await startTestGateway(API_ENV);
    const api = apiClient(gw);
    const alice = await gw.join('alice', ['g']);
    const attempts = [
      { key: null },
      { key: `${API_KEY.slice(0, -1)}?` },
      { key: 'short' },
      { authorization: `Basic ${Buffer.from(`api:${API_KEY}`).toString('base64')}` },
      { authorization: API_KEY },
      { authorization: `Bearer  ${API_KEY}` },
    ];
    for (const options of attempts) {
      const refused = await api.call('publish', { group: 'g', payload: 'no' }, options);
      expect([refused.status, refused.headers['www-authenticate'], refused.body]).toEqual([401, 'Bearer', { ok: false, error: { code: 'UNAUTHORIZED', message: 'a valid API key is required' } }]);
    }
    expect((await api.get('/api/openapi.json', { key: null })).status).toBe(401);
    expect(dataUpdates(await alice.barrier())).toEqual([]);
    // The scheme's name is case-insensitive in HTTP.
    expect((await api.call('publish', { group: 'g', payload: 'yes' }, { authorization: `bearer ${API_KEY}` })).status).toBe(200);
  });

  it('is refused before the rate limit: calls without the key do not spend the bucket', async () => {
    const gw = await startTestGateway({ ...API_ENV, GW_API_RATE_PER_SEC: '1' });
    const api = apiClient(gw);
    for (let i = 0; i < 5; i++) expect((await api.call('presence_stats', { group: 'g' }, { key: null })).status).toBe(401);
    expect((await api.call('presence_stats', { group: 'g' })).status).toBe(200);
  });
});

describe('server API: the OpenAPI document', () => {
  it('is served with the key, as generated, and lists exactly the methods the API answers', async () => {
    const gw = await startTestGateway(API_ENV);
    const api = apiClient(gw);
    const served = await api.get('/api/openapi.json');
    expect(served.body).toEqual(JSON.parse(JSON.stringify(document)));
    expect(served.body.openapi).toBe('3.1.0');
    const methods = Object.keys(apiMethods).sort();
    expect(methods).toEqual(['batch', 'broadcast', 'disconnect', 'groups', 'info', 'presence', 'presence_stats', 'publish', 'unsubscribe', 'user']);
    expect(Object.keys(served.body.paths).sort()).toEqual(['/api/openapi.json', ...methods.map((m) => `/api/${m}`)].sort());
    // Each listed method is there (an unknown field breaks its schema rather than finding no method); others are not.
    for (const method of methods) expect((await api.call(method, { nope: 1 })).body.error.code, method).toBe('INVALID_REQUEST');
    for (const method of ['users', 'Info', 'openapi.json', 'Publish', 'Disconnect']) expect((await api.call(method, {})).status, method).toBe(404);
  });
});

describe('server API: methods', () => {
  it('publish to a group: each member gets a numbered data_update from the service, replayed by a resume; other groups get nothing', async () => {
    // Presence goes out at the end of each turn: bob's UP is alice's seq 1, before anything published below.
    const gw = await startTestGateway({ ...API_ENV, GW_PRESENCE_BATCH_MS: '0' });
    const api = apiClient(gw);
    const { client: alice, ready } = await member(gw, 'alice', ['g']);
    const bob = await gw.join('bob', ['g']);
    const carol = await gw.join('carol', ['h']);
    expect(seqOf(await alice.next('presence_update'))).toBe(1);
    expect(await api.ok('publish', { group: 'g', payload: { text: 'invoice paid' }, from: 'billing' })).toEqual({});
    for (const [c, seq] of [[alice, 2], [bob, 1]] as const) {
      const got = await c.next('data_update');
      expect(got.data).toEqual({ group: 'g', from: { userId: 'billing', connectionId: null }, payload: { text: 'invoice paid' } });
      expect(seqOf(got)).toBe(seq);
    }
    expect(dataUpdates(await carol.barrier())).toEqual([]);

    // alice drops; what is published meanwhile is replayed, numbered on, when she resumes.
    await api.ok('publish', { group: 'g', payload: 2 });
    const first = seqOf(await alice.next('data_update'));
    expect(first).toBe(3);
    alice.socket.terminate();
    await gw.connections(2);
    await api.ok('publish', { group: 'g', payload: 3 });
    const back = await gw.connect();
    const resumed = await back.request('identify', { token: await gw.token({ sub: 'alice', groups: ['g'] }), resume: { sessionId: ready.sessionId, sessionToken: ready.sessionToken, lastSeq: first } });
    expect(resumed.data).toMatchObject({ resumed: true });
    const replayed = await back.next('data_update');
    expect([replayed.data!.payload, replayed.data!.from, seqOf(replayed)]).toEqual([3, { userId: 'api', connectionId: null }, first + 1]);
  });

  it('publish to a user: every session of theirs, in any group or none, with group null; nobody else', async () => {
    const gw = await startTestGateway(API_ENV);
    const api = apiClient(gw);
    const tabs = [await gw.join('alice', ['g']), await gw.join('alice', [])];
    const bob = await gw.join('bob', ['h']);
    // Any Content-Type is read as JSON: curl -d sends a form type.
    const answer = await api.call('publish', undefined, { raw: JSON.stringify({ user: 'alice', payload: 'your export is ready' }), contentType: 'application/x-www-form-urlencoded' });
    expect(answer.body).toEqual({ ok: true, data: {} });
    for (const tab of tabs) {
      const got = await tab.next('data_update');
      expect(got.data).toEqual({ group: null, from: { userId: 'api', connectionId: null }, payload: 'your export is ready' });
      expect(seqOf(got)).toBe(1);
    }
    expect(dataUpdates(await bob.barrier())).toEqual([]);
  });

  it('broadcast: the payload once to each listed group, its own group in each', async () => {
    const gw = await startTestGateway(API_ENV);
    const api = apiClient(gw);
    const alice = await gw.join('alice', ['g1']);
    const bob = await gw.join('bob', ['g2']);
    const carol = await gw.join('carol', ['g1', 'g2']);
    const dave = await gw.join('dave', ['g3']);
    expect(await api.ok('broadcast', { groups: ['g1', 'g2', 'empty'], payload: null, from: 'ops' })).toEqual({});
    const from = { userId: 'ops', connectionId: null };
    expect((await alice.next('data_update')).data).toEqual({ group: 'g1', from, payload: null });
    expect((await bob.next('data_update')).data).toEqual({ group: 'g2', from, payload: null });
    const both = [await carol.next('data_update'), await carol.next('data_update')];
    expect(both.map((e) => e.data!.group)).toEqual(['g1', 'g2']);
    expect(both.map(seqOf)).toEqual([seqOf(both[0]!), seqOf(both[0]!) + 1]);
    for (const c of [alice, bob, carol, dave]) expect(dataUpdates(await c.barrier())).toEqual([]);
  });

  it('presence: the member list in pages, with the count and cursor a `members` request gives', async () => {
    const gw = await startTestGateway(API_ENV);
    const api = apiClient(gw);
    const clients: ProbeClient[] = [];
    for (const userId of ['ann', 'bob', 'cid']) {
      await nextMillisecond();
      clients.push(await gw.join(userId, ['g'], { meta: { name: userId.toUpperCase() } }));
    }
    const first = (await api.ok('presence', { group: 'g', limit: 2 })) as { members: { userId: string; meta: unknown }[]; count: number; next: string };
    const viaSocket = await clients[0]!.request('members', { group: 'g', limit: 2 });
    expect(first).toEqual({ ...viaSocket.data, group: 'g' });
    expect([first.members.map((m) => m.userId), first.members[0]!.meta, first.count]).toEqual([['ann', 'bob'], { name: 'ANN' }, 3]);
    const rest = await api.ok('presence', { group: 'g', after: first.next });
    expect(rest).toMatchObject({ group: 'g', members: [{ userId: 'cid' }], count: 3, next: null });
    expect(await api.ok('presence', { group: 'nobody-here' })).toEqual({ group: 'nobody-here', members: [], count: 0, next: null });
  });

  it('presence_stats: users and sessions of a group, a user with two tabs once among users', async () => {
    const gw = await startTestGateway(API_ENV);
    const api = apiClient(gw);
    await gw.join('alice', ['g']);
    await gw.join('alice', ['g', 'h']);
    await gw.join('bob', ['g']);
    expect(await api.ok('presence_stats', { group: 'g' })).toEqual({ group: 'g', users: 2, sessions: 3 });
    expect(await api.ok('presence_stats', { group: 'h' })).toEqual({ group: 'h', users: 1, sessions: 1 });
    expect(await api.ok('presence_stats', { group: 'none' })).toEqual({ group: 'none', users: 0, sessions: 0 });
  });

  it('batch: replies in order, each its result or its error; a failing command in the middle stops nothing', async () => {
    const gw = await startTestGateway(API_ENV);
    const api = apiClient(gw);
    const alice = await gw.join('alice', ['g']);
    const data = await api.ok('batch', {
      commands: [
        { method: 'publish', params: { group: 'g', payload: 1 } },
        { method: 'presence_stats', params: { group: 'not a group' } },
        { method: 'publish', params: { group: 'g', payload: 2, extra: true } },
        { method: 'publish', params: { group: 'g', payload: 3 } },
        { method: 'presence', params: { group: 'g' } },
      ],
    });
    expect(data).toEqual({
      replies: [
        { result: {} },
        { error: { code: 'INVALID_REQUEST', message: expect.any(String), field: 'group' } },
        { error: { code: 'INVALID_REQUEST', message: 'Unrecognized key: "extra"', field: 'extra' } },
        { result: {} },
        { result: { group: 'g', members: [expect.objectContaining({ userId: 'alice' })], count: 1, next: null } },
      ],
    });
    const got = dataUpdates(await alice.barrier());
    expect(got.map((e) => e.data!.payload)).toEqual([1, 3]);
    expect(seqOf(got[1]!)).toBe(seqOf(got[0]!) + 1);
  });
});

describe('server API: filters', () => {
  /** The payloads of the data_updates `client` received before the one carrying `sentinel`, which is consumed. */
  const payloadsBefore = async (client: ProbeClient, sentinel: unknown) =>
    dataUpdates(await client.before((e) => e.type === 'data_update' && e.data!.payload === sentinel)).map((e) => e.data!.payload);
  /** The seqs of the numbered envelopes among `seen` (data_updates and presence). */
  const seqs = (seen: ServerEnvelope[]) => seen.filter((e) => 'seq' in e).map(seqOf);

  it('publish to a group: only the members a filter accepts get it (roles, users, exceptUsers, combined), numbered without holes', async () => {
    const gw = await startTestGateway(API_ENV);
    const api = apiClient(gw);
    const alice = await gw.join('alice', ['g']);
    const bob = await gw.join('bob', ['g'], { role: 'admin' });
    const carol = await gw.join('carol', ['g'], { role: 'service' });
    const dave = await gw.join('dave', ['g']);
    const erin = await gw.join('erin', ['h'], { role: 'admin' });
    await api.ok('publish', { group: 'g', payload: 'roles', filter: { roles: ['admin', 'service'] } });
    await api.ok('publish', { group: 'g', payload: 'users', filter: { users: ['alice', 'carol', 'nobody'] } });
    await api.ok('publish', { group: 'g', payload: 'except', filter: { exceptUsers: ['alice', 'bob'] } });
    await api.ok('publish', { group: 'g', payload: 'combined', filter: { roles: ['client'], exceptUsers: ['dave'] } });
    await api.ok('publish', { group: 'g', payload: 'nobody', filter: { roles: ['admin'], users: ['alice'] } });
    await api.ok('publish', { group: 'g', payload: 'sentinel' });
    const expected: [ProbeClient, string[]][] = [
      [alice, ['users', 'combined']],
      [bob, ['roles']],
      [carol, ['roles', 'users', 'except']],
      [dave, ['except']],
    ];
    for (const [client, payloads] of expected) {
      const seen = await client.before((e) => e.type === 'data_update' && e.data!.payload === 'sentinel');
      expect(dataUpdates(seen).map((e) => e.data!.payload)).toEqual(payloads);
      expect(dataUpdates(seen)[0]!.data).toMatchObject({ group: 'g', from: { userId: 'api', connectionId: null } });
      // A message a filter kept from the session took no number of its own: what it got (presence included) is 1, 2, 3…
      const numbered = seqs(seen);
      expect(numbered).toEqual(numbered.map((_, i) => i + 1));
    }
    expect(dataUpdates(await erin.barrier())).toEqual([]);
  });

  it("publish to a user: only the user's sessions a filter accepts, each judged by its own token's role, a refreshed one by its new role", async () => {
    const gw = await startTestGateway(API_ENV);
    const api = apiClient(gw);
    const asClient = await gw.join('alice', ['g']);
    const asAdmin = await gw.join('alice', [], { role: 'admin' });
    const bob = await gw.join('bob', ['g'], { role: 'admin' });
    await api.ok('publish', { user: 'alice', payload: 'admins', filter: { roles: ['admin'] } });
    await api.ok('publish', { user: 'alice', payload: 'not alice', filter: { exceptUsers: ['alice'] } });
    await api.ok('publish', { user: 'alice', payload: 'only alice', filter: { users: ['alice'] } });
    await api.ok('publish', { user: 'alice', payload: 'only bob', filter: { users: ['bob'] } });
    await api.ok('publish', { user: 'alice', payload: 'sentinel' });
    expect(await payloadsBefore(asClient, 'sentinel')).toEqual(['only alice']);
    expect(await payloadsBefore(asAdmin, 'sentinel')).toEqual(['admins', 'only alice']);
    expect(dataUpdates(await bob.barrier())).toEqual([]);

    // The client session's token is refreshed with the admin role: from then on it is an admin's.
    expect((await asClient.request('refresh', { token: await gw.token({ sub: 'alice', groups: ['g'], role: 'admin' }) })).type).toBe('refreshed');
    await api.ok('publish', { user: 'alice', payload: 'admins again', filter: { roles: ['admin'] } });
    await api.ok('publish', { user: 'alice', payload: 'clients', filter: { roles: ['client'] } });
    await api.ok('publish', { user: 'alice', payload: 'end' });
    for (const tab of [asClient, asAdmin]) expect(await payloadsBefore(tab, 'end')).toEqual(['admins again']);
  });

  it("broadcast: the filter applies in every listed group, each group's message to its accepted members", async () => {
    const gw = await startTestGateway(API_ENV);
    const api = apiClient(gw);
    const alice = await gw.join('alice', ['g1']);
    const bob = await gw.join('bob', ['g1'], { role: 'admin' });
    const carol = await gw.join('carol', ['g2'], { role: 'admin' });
    const dave = await gw.join('dave', ['g2']);
    const both = await gw.join('erin', ['g1', 'g2'], { role: 'admin' });
    await api.ok('broadcast', { groups: ['g1', 'g2'], payload: 'admins', filter: { roles: ['admin'], exceptUsers: ['erin'] } });
    await api.ok('broadcast', { groups: ['g1', 'g2'], payload: 'sentinel' });
    expect(await payloadsBefore(alice, 'sentinel')).toEqual([]);
    expect(await payloadsBefore(dave, 'sentinel')).toEqual([]);
    for (const [client, group] of [[bob, 'g1'], [carol, 'g2']] as const) {
      const seen = dataUpdates(await client.before((e) => e.type === 'data_update' && e.data!.payload === 'sentinel'));
      expect(seen.map((e) => [e.data!.group, e.data!.payload])).toEqual([[group, 'admins']]);
    }
    // erin is in both groups and excepted: the sentinel of g1, then of g2, and nothing else.
    expect(dataUpdates(await both.barrier()).map((e) => [e.data!.group, e.data!.payload])).toEqual([
      ['g1', 'sentinel'],
      ['g2', 'sentinel'],
    ]);
  });

  it('a resume replays what the filters let through while the session was away, numbered on without holes', async () => {
    const gw = await startTestGateway(API_ENV);
    const api = apiClient(gw);
    const { client: alice, ready } = await member(gw, 'alice', ['g']);
    await api.ok('publish', { group: 'g', payload: 'before' });
    const last = seqOf(await alice.next('data_update'));
    alice.socket.terminate();
    await gw.connections(0);
    await api.ok('publish', { group: 'g', payload: 'admins', filter: { roles: ['admin'] } });
    await api.ok('publish', { group: 'g', payload: 'clients', filter: { roles: ['client'] } });
    await api.ok('publish', { group: 'g', payload: 'not alice', filter: { exceptUsers: ['alice'] } });
    await api.ok('publish', { user: 'alice', payload: 'alice', filter: { users: ['alice'] } });
    await api.ok('publish', { group: 'g', payload: 'sentinel' });
    const back = await gw.connect();
    const resumed = await back.request('identify', { token: await gw.token({ sub: 'alice', groups: ['g'] }), resume: { sessionId: ready.sessionId, sessionToken: ready.sessionToken, lastSeq: last } });
    expect(resumed.data).toMatchObject({ resumed: true });
    const replayed = await back.before((e) => e.type === 'data_update' && e.data!.payload === 'sentinel');
    expect(dataUpdates(replayed).map((e) => [e.data!.payload, seqOf(e)])).toEqual([
      ['clients', last + 1],
      ['alice', last + 2],
    ]);
  });
});

describe('server API: refusals', () => {
  it('refuses each field that breaks its method’s schema with 400 INVALID_REQUEST naming it, and delivers nothing', async () => {
    const gw = await startTestGateway(API_ENV);
    const api = apiClient(gw);
    const alice = await gw.join('alice', ['g']);
    const cases: [string, unknown, string | undefined][] = [
      ['publish', { payload: 1 }, 'group'],
      ['publish', { group: 'g', user: 'alice', payload: 1 }, 'user'],
      ['publish', { group: 'no spaces', payload: 1 }, 'group'],
      ['publish', { group: 7, payload: 1 }, 'group'],
      ['publish', { user: '', payload: 1 }, 'user'],
      ['publish', { user: 'u'.repeat(257), payload: 1 }, 'user'],
      ['publish', { group: 'g' }, 'payload'],
      ['publish', { group: 'g', payload: nested(63) }, 'payload'],
      ['publish', { group: 'g', payload: 1, from: '' }, 'from'],
      ['publish', { group: 'g', payload: 1, from: 5 }, 'from'],
      ['publish', { group: 'g', payload: 1, only_users: ['alice'] }, 'only_users'],
      ['publish', { group: 'g', payload: 1, filter: {} }, 'filter'],
      ['publish', { group: 'g', payload: 1, filter: null }, 'filter'],
      ['publish', { group: 'g', payload: 1, filter: { roles: [] } }, 'filter.roles'],
      ['publish', { user: 'alice', payload: 1, filter: { roles: ['client', 'root'] } }, 'filter.roles.1'],
      ['publish', { group: 'g', payload: 1, filter: { users: ['alice', 'bob', 'alice'] } }, 'filter.users.2'],
      ['publish', { group: 'g', payload: 1, filter: { users: [''] } }, 'filter.users.0'],
      ['publish', { group: 'g', payload: 1, filter: { exceptUsers: Array.from({ length: 1001 }, (_, i) => `u${i}`) } }, 'filter.exceptUsers'],
      ['publish', { group: 'g', payload: 1, filter: { roles: ['admin'], onlyUsers: ['alice'] } }, 'filter.onlyUsers'],
      ['publish', { group: 'g', payload: 1, filter: { users: 'alice' } }, 'filter.users'],
      ['publish', [{ group: 'g', payload: 1 }], undefined],
      ['broadcast', { payload: 1 }, 'groups'],
      ['broadcast', { groups: [], payload: 1 }, 'groups'],
      ['broadcast', { groups: Array.from({ length: 101 }, (_, i) => `g${i}`), payload: 1 }, 'groups'],
      ['broadcast', { groups: ['g', 'h', 'g'], payload: 1 }, 'groups.2'],
      ['broadcast', { groups: ['g', 'no spaces'], payload: 1 }, 'groups.1'],
      ['broadcast', { groups: 'g', payload: 1 }, 'groups'],
      ['broadcast', { groups: ['g'] }, 'payload'],
      ['broadcast', { groups: ['g'], payload: 1, group: 'g' }, 'group'],
      ['broadcast', { groups: ['g'], payload: 1, filter: { exceptUsers: [] } }, 'filter.exceptUsers'],
      ['broadcast', { groups: ['g'], payload: 1, filter: { roles: ['admin', 'admin'] } }, 'filter.roles.1'],
      ['presence', {}, 'group'],
      ['presence', { group: 'g', after: 'not-a-cursor' }, 'after'],
      ['presence', { group: 'g', after: `1:${'u'.repeat(300)}` }, 'after'],
      ['presence', { group: 'g', limit: 0 }, 'limit'],
      ['presence', { group: 'g', limit: 1001 }, 'limit'],
      ['presence', { group: 'g', limit: 1.5 }, 'limit'],
      ['presence', { group: 'g', limit: '10' }, 'limit'],
      ['presence_stats', { group: null }, 'group'],
      ['presence_stats', { group: 'g', user: 'alice' }, 'user'],
      ['batch', {}, 'commands'],
      ['batch', { commands: [] }, 'commands'],
      ['batch', { commands: Array.from({ length: 101 }, () => ({ method: 'presence_stats', params: { group: 'g' } })) }, 'commands'],
      ['batch', { commands: [{ method: 'presence_stats', params: { group: 'g' } }, { method: 'batch', params: { commands: [] } }] }, 'commands.1.method'],
      ['batch', { commands: [{ method: 'nope', params: {} }] }, 'commands.0.method'],
      ['batch', { commands: [{ method: 'publish' }] }, 'commands.0.params'],
      ['batch', { commands: [{ method: 'publish', params: [] }] }, 'commands.0.params'],
      ['batch', { commands: [{ method: 'publish', params: { group: 'g', payload: 1 }, id: 1 }] }, 'commands.0.id'],
    ];
    for (const [method, body, field] of cases) {
      const refused = await api.call(method, body);
      expect([refused.status, refused.body.error.code, refused.body.error.field], `${method} ${JSON.stringify(body).slice(0, 80)}`).toEqual([400, 'INVALID_REQUEST', field]);
      expect(refused.body.error.message).toEqual(expect.any(String));
    }
    for (const raw of ['"g"', 'null', '42']) {
      const refused = await api.call('publish', undefined, { raw, contentType: 'application/json' });
      expect([refused.status, refused.body.error.code, refused.body.error.field], raw).toEqual([400, 'INVALID_REQUEST', undefined]);
    }
    // A payload at the nesting limit goes through: the limit is the protocol's, not stricter.
    await api.ok('publish', { group: 'g', payload: nested(62) });
    const seen = dataUpdates(await alice.barrier());
    expect(seen).toHaveLength(1);
    expect(JSON.stringify(seen[0]!.data!.payload)).toBe(JSON.stringify(nested(62)));
  });

  it('answers 400 BAD_REQUEST to a body that is not JSON; an empty body is an empty object', async () => {
    const gw = await startTestGateway(API_ENV);
    const api = apiClient(gw);
    for (const raw of ['{"group":"g",', '{oops}', "{'group':'g'}", 'group=g&payload=1']) {
      const refused = await api.call('publish', undefined, { raw, contentType: 'application/json' });
      expect([refused.status, refused.body.error]).toEqual([400, { code: 'BAD_REQUEST', message: 'the body is not valid JSON' }]);
    }
    const empty = await api.call('publish');
    expect([empty.status, empty.body.error.code, empty.body.error.field]).toEqual([400, 'INVALID_REQUEST', 'payload']);
  });

  it('answers 404 to an unknown method or another verb, before reading the body', async () => {
    const gw = await startTestGateway(API_ENV);
    const api = apiClient(gw);
    const unknown = await api.call('publsh', undefined, { raw: 'x'.repeat(2_000_000), contentType: 'application/json' });
    expect([unknown.status, unknown.body.error]).toEqual([404, { code: 'NOT_FOUND', message: 'no such method "publsh"' }]);
    expect((await api.get('/api/publish')).status).toBe(404);
    expect((await api.call('publish/extra', { group: 'g', payload: 1 })).status).toBe(404);
  });

  it('answers 413 to a body over GW_API_MAX_BODY_BYTES, then serves the next request', async () => {
    const gw = await startTestGateway({ ...API_ENV, GW_API_MAX_BODY_BYTES: '2048' });
    const api = apiClient(gw);
    const alice = await gw.join('alice', ['g']);
    const big = await api.call('publish', { group: 'g', payload: 'x'.repeat(2048) });
    expect([big.status, big.body.error]).toEqual([413, { code: 'PAYLOAD_TOO_LARGE', message: 'the body is over 2048 bytes' }]);
    await api.ok('publish', { group: 'g', payload: 'x'.repeat(1900) });
    expect(dataUpdates(await alice.barrier()).map((e) => (e.data!.payload as string).length)).toEqual([1900]);
  });

  it('answers 429 RATE_LIMITED with Retry-After past GW_API_RATE_PER_SEC; a batch is one request', async () => {
    const gw = await startTestGateway({ ...API_ENV, GW_API_RATE_PER_SEC: '1' });
    const api = apiClient(gw);
    const alice = await gw.join('alice', ['g']);
    const commands = Array.from({ length: 100 }, (_, i) => ({ method: 'publish', params: { group: 'g', payload: i } }));
    // Sent together: the bucket holds one request, and refills one a second.
    const answers = await Promise.all([api.call('batch', { commands }), api.call('batch', { commands })]);
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses).toEqual([200, 429]);
    const limited = answers.find((a) => a.status === 429)!;
    expect([limited.headers['retry-after'], limited.body.error.code]).toEqual(['1', 'RATE_LIMITED']);
    expect(dataUpdates(await alice.barrier()).map((e) => e.data!.payload)).toEqual(commands.map((_, i) => i));
  });

  it('counts every request on /metrics by method and status, refusals included', async () => {
    // The bucket holds one request: of two sent together, one is refused 429; a call without the key spends nothing.
    const gw = await startTestGateway({ ...API_ENV, GW_API_RATE_PER_SEC: '1' });
    const api = apiClient(gw);
    const answers = await Promise.all([api.call('presence_stats', { group: 'g' }), api.call('presence_stats', { group: 'g' })]);
    expect(answers.map((a) => a.status).sort()).toEqual([200, 429]);
    expect((await api.call('presence_stats', { group: 'g' }, { key: null })).status).toBe(401);
    const metrics = (await request(`http://127.0.0.1:${gw.gateway.internalPort}`).get('/metrics')).text;
    const series = metrics.split('\n').filter((line) => line.startsWith('gateway_api_requests_total{'));
    expect(series.sort()).toEqual([
      'gateway_api_requests_total{method="presence_stats",status="200"} 1',
      'gateway_api_requests_total{method="presence_stats",status="401"} 1',
      'gateway_api_requests_total{method="presence_stats",status="429"} 1',
    ]);
  });
});
