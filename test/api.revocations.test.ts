// The server API's disconnect and unsubscribe on one real gateway, with real clients: each connection sees the
// documented error and close, sessions end (not orphaned: DOWN once, no resume), orphaned sessions end too, groups are
// left with `unsubscribed` (reason `server`). Every answer is checked against the OpenAPI document (helpers/api.ts);
// absence is asserted behind sentinels.
import { describe, expect, it } from 'vitest';
import { API_ENV, apiClient } from './helpers/api';
import { startTestGateway, type TestGateway } from './helpers/gateway';
import { member, type Ready } from './helpers/presence';
import type { ProbeClient, ServerEnvelope } from './helpers/ProbeClient';

/**
 * Presence goes out at the end of its turn, not up to GW_PRESENCE_BATCH_MS later: a DOWN that must not come would come
 * before the data_update sentinels published after it, instead of slipping past them in a later batch.
 */
const ENV = { ...API_ENV, GW_PRESENCE_BATCH_MS: '0' };
const isData = (payload: unknown) => (e: ServerEnvelope) => e.type === 'data_update' && e.data?.payload === payload;
const presenceOf = (userId: string, seen: ServerEnvelope[]) => seen.filter((e) => e.type === 'presence_update' && e.data?.userId === userId).map((e) => e.data!.status);
const up = (userId: string, group: string) => (e: ServerEnvelope) => e.type === 'presence_update' && e.data?.userId === userId && e.data.group === group && e.data.status === 'UP';

/** Publishes `payload` to `group` through the API and returns what `client` received before it. */
async function before(gw: TestGateway, client: ProbeClient, group: string, payload: string): Promise<ServerEnvelope[]> {
  const seen = client.before(isData(payload));
  await apiClient(gw).ok('publish', { group, payload });
  return seen;
}

/** A resume of `ready`'s session on a new connection: its `ready`'s data. */
async function resume(gw: TestGateway, userId: string, ready: Ready): Promise<Record<string, unknown>> {
  const back = await gw.connect();
  const reply = await back.request('identify', { token: await gw.token({ sub: userId, groups: ['g'] }), groups: ['g'], resume: { sessionId: ready.sessionId, sessionToken: ready.sessionToken, lastSeq: 0 } });
  expect(reply.type).toBe('ready');
  return reply.data!;
}

describe('server API: disconnect', () => {
  it('ends one session: its connection gets REVOKED with the reason, then 4005; the other tab stays, nobody sees DOWN; a resume starts afresh', async () => {
    const gw = await startTestGateway(ENV);
    const bob = await gw.join('bob', ['g']);
    const { client: tab1, ready } = await member(gw, 'alice', ['g']);
    const tab2 = await gw.join('alice', ['g']);
    await bob.next(up('alice', 'g'));
    expect(await apiClient(gw).ok('disconnect', { user: 'alice', session: ready.sessionId, reason: 'signed out on another device' })).toEqual({ sessions: 1 });
    const error = await tab1.next('error');
    expect([error.data, error.replyTo]).toEqual([{ code: 'REVOKED', message: 'signed out on another device' }, undefined]);
    expect(await tab1.closed).toEqual({ code: 4005, reason: 'signed out on another device' });
    // alice is still UP through tab2, which keeps receiving.
    expect(presenceOf('alice', await before(gw, bob, 'g', 'after one'))).toEqual([]);
    expect((await tab2.next(isData('after one'))).type).toBe('data_update');
    expect(gw.gateway.sessionCount).toBe(2);
    expect(await resume(gw, 'alice', ready)).toMatchObject({ resumed: false });
  });

  it('ends every session of the user, attached or orphaned: each connection closes with 4005, DOWN is announced once, no resume', async () => {
    const gw = await startTestGateway(ENV);
    const bob = await gw.join('bob', ['g']);
    const tabs = [await member(gw, 'alice', ['g']), await member(gw, 'alice', ['g']), await member(gw, 'alice', [])];
    const { client: dropped, ready: droppedReady } = await member(gw, 'alice', ['g']);
    await bob.next(up('alice', 'g'));
    // One session orphaned: its connection dropped without a close frame.
    dropped.socket.terminate();
    await gw.connections(5);
    expect(await apiClient(gw).ok('disconnect', { user: 'alice' })).toEqual({ sessions: 4 });
    for (const { client } of tabs) {
      expect((await client.next('error')).data).toEqual({ code: 'REVOKED', message: 'the platform ended your access' });
      expect(await client.closed).toEqual({ code: 4005, reason: 'revoked' });
    }
    // DOWN comes in the next presence batch, once; the sentinel is published after it went out.
    await bob.next((e) => e.type === 'presence_update' && e.data?.status === 'DOWN');
    expect(presenceOf('alice', await before(gw, bob, 'g', 'after all'))).toEqual([]);
    expect(gw.gateway.sessionCount).toBe(1);
    for (const ready of [tabs[0]!.ready, droppedReady]) expect(await resume(gw, 'alice', ready)).toMatchObject({ resumed: false });
  });

  it('reconnect: true closes with 4006 (SESSION_ENDED), the reason defaulting to the code name', async () => {
    const gw = await startTestGateway(ENV);
    const alice = await gw.join('alice', ['g']);
    expect(await apiClient(gw).ok('disconnect', { user: 'alice', reconnect: true })).toEqual({ sessions: 1 });
    expect((await alice.next('error')).data).toEqual({ code: 'SESSION_ENDED', message: 'a backend ended this session' });
    expect(await alice.closed).toEqual({ code: 4006, reason: 'session ended' });
    const bob = await gw.join('bob', ['g']);
    const explicit = await gw.join('bob', []);
    expect(await apiClient(gw).ok('disconnect', { user: 'bob', reconnect: false, reason: 'ünïcödé ✓' })).toEqual({ sessions: 2 });
    for (const c of [bob, explicit]) expect(await c.closed).toEqual({ code: 4005, reason: 'ünïcödé ✓' });
  });

  it('answers sessions: 0 for a user without sessions, or a session that is not theirs, and ends nothing', async () => {
    const gw = await startTestGateway(ENV);
    const { client: alice, ready } = await member(gw, 'alice', ['g']);
    const api = apiClient(gw);
    expect(await api.ok('disconnect', { user: 'nobody' })).toEqual({ sessions: 0 });
    expect(await api.ok('disconnect', { user: 'bob', session: ready.sessionId })).toEqual({ sessions: 0 });
    expect(await api.ok('disconnect', { user: 'alice', session: 's_unknown' })).toEqual({ sessions: 0 });
    expect(await api.ok('unsubscribe', { user: 'nobody', group: 'g' })).toEqual({ sessions: 0 });
    expect(await api.ok('unsubscribe', { user: 'alice', group: 'h' })).toEqual({ sessions: 0 });
    expect((await alice.barrier()).filter((e) => e.type === 'error' || e.type === 'unsubscribed')).toEqual([]);
    expect(gw.gateway.sessionCount).toBe(1);
  });

  it('refuses invalid parameters field by field with 400 INVALID_REQUEST, ending nothing', async () => {
    const gw = await startTestGateway(ENV);
    const alice = await gw.join('alice', ['g']);
    const api = apiClient(gw);
    const refusals: [string, unknown, string][] = [
      ['disconnect', {}, 'user'],
      ['disconnect', { user: '' }, 'user'],
      ['disconnect', { user: 'a'.repeat(257) }, 'user'],
      ['disconnect', { user: 7 }, 'user'],
      ['disconnect', { user: 'alice', session: '' }, 'session'],
      ['disconnect', { user: 'alice', session: 's'.repeat(65) }, 'session'],
      ['disconnect', { user: 'alice', session: 1 }, 'session'],
      ['disconnect', { user: 'alice', reason: '' }, 'reason'],
      ['disconnect', { user: 'alice', reason: 'r'.repeat(101) }, 'reason'],
      ['disconnect', { user: 'alice', reason: 'two\nlines' }, 'reason'],
      ['disconnect', { user: 'alice', reason: 'bell\u0007' }, 'reason'],
      ['disconnect', { user: 'alice', reason: 'zero\u200bwidth' }, 'reason'],
      // 40 characters (80 UTF-16 units) but 160 bytes of UTF-8: over a close reason's 123.
      ['disconnect', { user: 'alice', reason: '😀'.repeat(40) }, 'reason'],
      ['disconnect', { user: 'alice', reason: 5 }, 'reason'],
      ['disconnect', { user: 'alice', reconnect: 'yes' }, 'reconnect'],
      ['disconnect', { user: 'alice', groups: ['g'] }, 'groups'],
      ['unsubscribe', { group: 'g' }, 'user'],
      ['unsubscribe', { user: 'alice' }, 'group'],
      ['unsubscribe', { user: 'alice', group: 'no spaces' }, 'group'],
      ['unsubscribe', { user: 'alice', group: 'g', reason: 'x' }, 'reason'],
    ];
    for (const [method, body, field] of refusals) {
      const refused = await api.call(method, body);
      expect([refused.status, refused.body.error.code, refused.body.error.field], `${method} ${JSON.stringify(body)}`).toEqual([400, 'INVALID_REQUEST', field]);
    }
    expect((await api.call('disconnect', [])).body.error).toEqual({ code: 'INVALID_REQUEST', message: expect.any(String) });
    expect((await alice.barrier()).filter((e) => e.type === 'error' || e.type === 'unsubscribed')).toEqual([]);
    expect(gw.gateway.sessionCount).toBe(1);
  });

  it('runs inside a batch like any method', async () => {
    const gw = await startTestGateway(ENV);
    const alice = await gw.join('alice', ['g', 'h']);
    const data = await apiClient(gw).ok('batch', {
      commands: [
        { method: 'unsubscribe', params: { user: 'alice', group: 'g' } },
        { method: 'disconnect', params: { user: 'alice', reason: 'x'.repeat(101) } },
        { method: 'disconnect', params: { user: 'alice', reconnect: true } },
      ],
    });
    expect(data).toEqual({ replies: [{ result: { sessions: 1 } }, { error: { code: 'INVALID_REQUEST', message: expect.any(String), field: 'reason' } }, { result: { sessions: 1 } }] });
    expect((await alice.next('unsubscribed')).data).toEqual({ group: 'g', reason: 'server' });
    expect(await alice.closed).toMatchObject({ code: 4006 });
  });
});

describe('server API: unsubscribe', () => {
  it('takes every session of the user out of the group: each told with unsubscribed (server), no replyTo; DOWN there once; nothing more from the group', async () => {
    const gw = await startTestGateway(ENV);
    const bob = await gw.join('bob', ['g', 'h']);
    const tab1 = await gw.join('alice', ['g', 'h']);
    const tab2 = await gw.join('alice', ['g']);
    const tab3 = await gw.join('alice', ['h']);
    await bob.next(up('alice', 'g'));
    await bob.next(up('alice', 'h'));
    expect(await apiClient(gw).ok('unsubscribe', { user: 'alice', group: 'g' })).toEqual({ sessions: 2 });
    for (const tab of [tab1, tab2]) {
      const notice = await tab.next('unsubscribed');
      expect([notice.data, notice.replyTo]).toEqual([{ group: 'g', reason: 'server' }, undefined]);
    }
    // alice went DOWN in g, once, and stays UP in h.
    expect((await bob.next('presence_update')).data).toMatchObject({ group: 'g', userId: 'alice', status: 'DOWN' });
    expect(presenceOf('alice', await before(gw, bob, 'h', 'sentinel in h'))).toEqual([]);
    // Nothing from g reaches alice any more; h still does.
    await apiClient(gw).ok('publish', { group: 'g', payload: 'to g' });
    expect((await bob.next(isData('to g'))).type).toBe('data_update');
    await apiClient(gw).ok('publish', { group: 'h', payload: 'to h' });
    for (const tab of [tab1, tab3]) expect((await tab.before(isData('to h'))).filter((e) => (e.type === 'data_update' && e.data?.group === 'g') || e.type === 'unsubscribed')).toEqual([]);
    expect((await tab2.barrier()).filter((e) => e.type === 'data_update')).toEqual([]);
    expect(await apiClient(gw).ok('presence_stats', { group: 'g' })).toEqual({ group: 'g', users: 1, sessions: 1 });
    // The token still grants g: the client may join it again.
    expect((await tab2.request('subscribe', { group: 'g' })).type).toBe('subscribed');
  });
});
