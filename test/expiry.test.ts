// Connections expire with their token: `ready.expiresAt`, the close 4004 after the grace (the session kept for a
// resume), in-band `refresh` and its refusals, and groups left when a refreshed token no longer grants them.
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { mintToken } from '../src/auth/jwt';
import { startTestGateway, type TestGateway } from './helpers/gateway';
import type { ProbeClient, ServerEnvelope } from './helpers/ProbeClient';

const GRACE_MS = 300;
/** A short grace, and a heartbeat interval that makes the liveness sweep run every 100 ms. */
const EXPIRING = { GW_TOKEN_EXPIRY_GRACE_MS: String(GRACE_MS), GW_HEARTBEAT_INTERVAL_MS: '500' };
/** JWT `exp` is in whole seconds: a token minted with this ttl expires 1–2 s from now. */
const SHORT_TTL = 2;
/** Waits for the close of a connection whose token expires in up to SHORT_TTL seconds (plus grace and a sweep). */
const EXPIRY_WAIT_MS = 6_000;

interface Ready {
  sessionId: string;
  sessionToken: string;
  resumed: boolean;
  expiresAt: number;
}

async function identified(gw: TestGateway, userId: string, groups: string[], ttl: number, grants = groups) {
  const client = await gw.connect();
  const token = await gw.token({ sub: userId, groups: grants, ttl });
  const reply = await client.identify(token, groups);
  expect(reply.type).toBe('ready');
  return { client, token, ready: reply.data as unknown as Ready };
}

/** The close of `client` after its `error`, or a failure naming what came instead. */
async function expiredClose(client: ProbeClient): Promise<{ error: ServerEnvelope; code: number; at: number }> {
  const error = await client.next('error', EXPIRY_WAIT_MS);
  const { code } = await client.closed;
  return { error, code, at: Date.now() };
}

describe('connections expire with their token', () => {
  it('closes with TOKEN_EXPIRED and 4004 after exp + the grace, however lively; the session is kept: a resume with a fresh token replays what was missed, and nobody saw the user go DOWN', async () => {
    const gw = await startTestGateway(EXPIRING);
    const { client: watcher } = await identified(gw, 'watcher', ['g'], 600);
    const { client: alice, token, ready } = await identified(gw, 'alice', ['g'], SHORT_TTL);
    expect(ready.expiresAt).toBe(decodeJwt(token).exp! * 1000);
    // Heartbeats prove the client alive; they do not extend its token.
    const beating = setInterval(() => alice.send('heartbeat', {}), 100);
    const { error, code, at } = await expiredClose(alice).finally(() => clearInterval(beating));
    expect(error.data).toEqual({ code: 'TOKEN_EXPIRED', message: expect.stringContaining('get a fresh token, then reconnect and resume') });
    expect(JSON.stringify(error)).not.toContain(token);
    expect(code).toBe(4004);
    expect(at).toBeGreaterThanOrEqual(ready.expiresAt + GRACE_MS);

    const lastSeq = Math.max(0, ...alice.drain().map((env) => (env as { seq?: number }).seq ?? 0));
    await watcher.request('data_update', { group: 'g', payload: 'while away' });
    const again = await gw.connect();
    const fresh = await gw.token({ sub: 'alice', groups: ['g'], ttl: 600 });
    const resumed = await again.request('identify', { token: fresh, groups: ['g'], resume: { sessionId: ready.sessionId, sessionToken: ready.sessionToken, lastSeq } });
    expect(resumed.data).toMatchObject({ sessionId: ready.sessionId, resumed: true, expiresAt: decodeJwt(fresh).exp! * 1000 });
    expect(await again.next('data_update')).toMatchObject({ data: { payload: 'while away' }, seq: lastSeq + 1 });

    // The sentinel joins after all of it: before its UP, the watcher heard alice come UP once and nothing since.
    await gw.join('sentinel', ['g']);
    expect(await watcher.presenceBefore('sentinel')).toEqual([['alice', 'UP']]);
  });

  it('a refresh for the same user answers refreshed with the new expiry, and the connection outlives its old deadline', async () => {
    const gw = await startTestGateway(EXPIRING);
    const { client: alice, ready } = await identified(gw, 'alice', ['g'], SHORT_TTL);
    // Minted after alice's: its deadline is no earlier than alice's old one.
    const { client: control, ready: controlReady } = await identified(gw, 'control', ['h'], SHORT_TTL);
    expect(controlReady.expiresAt).toBeGreaterThanOrEqual(ready.expiresAt);

    const fresh = await gw.token({ sub: 'alice', groups: ['g'], ttl: 600 });
    const reply = await alice.request('refresh', { token: fresh });
    expect(reply).toMatchObject({ type: 'refreshed', data: { expiresAt: decodeJwt(fresh).exp! * 1000 } });

    expect((await expiredClose(control)).code).toBe(4004);
    // Past alice's old deadline (the control's is no earlier, and the sweep closed it): alice is still served.
    expect(await alice.barrier()).toEqual([]);
  });

  it('refuses a refresh with a bad, expired or other user’s token with AUTH_FAILED and keeps the connection and its expiry', async () => {
    const gw = await startTestGateway(EXPIRING);
    const { client: alice, ready } = await identified(gw, 'alice', ['g'], SHORT_TTL + 1);
    const refused: [string, string, string][] = [
      ['garbage', 'not-a-jwt', 'malformed'],
      ['another key', await mintToken({ sub: 'alice', groups: ['g'], ttl: 600 }, new TextEncoder().encode('another-secret-that-is-at-least-32-bytes')), 'signature'],
      ['expired', await gw.token({ sub: 'alice', groups: ['g'], ttl: -60 }), 'expired'],
      ['another user', await gw.token({ sub: 'bob', groups: ['g'], ttl: 600 }), 'another user'],
    ];
    for (const [label, token, why] of refused) {
      const reply = await alice.request('refresh', { token });
      expect(reply.type, label).toBe('error');
      expect(reply.data, label).toEqual({ code: 'AUTH_FAILED', message: expect.stringContaining(why) });
      expect(JSON.stringify(reply), label).not.toContain(token);
    }
    expect(await alice.barrier()).toEqual([]);
    // Its own deadline still holds: neither shortened (bob's token is valid, and his) nor lost.
    const { error, code, at } = await expiredClose(alice);
    expect([error.data!.code, code]).toEqual(['TOKEN_EXPIRED', 4004]);
    expect(at).toBeGreaterThanOrEqual(ready.expiresAt + GRACE_MS);
  });

  it('a refreshed token that no longer grants a group leaves it: unsubscribed (not_granted) before refreshed, DOWN for the others, no more of its messages, and subscribing again is FORBIDDEN', async () => {
    const gw = await startTestGateway();
    const { client: alice } = await identified(gw, 'alice', ['a', 'b'], 600);
    const { client: bob } = await identified(gw, 'bob', ['a', 'b'], 600);

    alice.send('refresh', { token: await gw.token({ sub: 'alice', groups: ['a'], ttl: 600 }) }, 'rf');
    const earlier = await alice.before((env) => env.replyTo === 'rf' && env.type === 'refreshed');
    expect(earlier.filter((env) => env.type === 'unsubscribed').map((env) => env.data)).toEqual([{ group: 'b', reason: 'not_granted' }]);

    expect(await bob.next((env) => env.type === 'presence_update' && env.data?.group === 'b' && env.data.status === 'DOWN')).toMatchObject({ data: { userId: 'alice' } });
    await bob.request('data_update', { group: 'b', payload: 'to b' });
    await bob.request('data_update', { group: 'a', payload: 'to a' });
    const beforeA = await alice.before((env) => env.type === 'data_update' && env.data?.group === 'a');
    expect(beforeA.filter((env) => env.type === 'data_update')).toEqual([]);
    expect((await alice.request('subscribe', { group: 'b' })).data).toMatchObject({ code: 'FORBIDDEN' });
  });

  it('refresh is NOT_IDENTIFIED before ready, and INVALID_ENVELOPE without a token', async () => {
    const gw = await startTestGateway();
    const early = await gw.connect();
    expect((await early.request('refresh', { token: await gw.token({ sub: 'alice' }) })).data).toMatchObject({ code: 'NOT_IDENTIFIED' });
    const { client } = await identified(gw, 'alice', [], 600);
    expect((await client.request('refresh', {})).data).toMatchObject({ code: 'INVALID_ENVELOPE' });
    expect((await client.request('refresh', { token: '' })).data).toMatchObject({ code: 'INVALID_ENVELOPE' });
  });
});
