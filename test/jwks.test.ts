// Verifying against a JWK set (GW_JWKS_URL) served by a real HTTP endpoint on 127.0.0.1 that rotates keys and
// misbehaves: down, resetting, slow, garbage, an endless body. Identifies with keys already held never wait on it;
// fetches are one at a time, bounded in time and size, spaced by the cooldown; the last good set is kept.
import request from 'supertest';
import { describe, expect, it, vi } from 'vitest';
import { mintToken } from '../src/auth/jwt';
import type { HealthData } from '../src/http/app';
import { createLogger, type Logger } from '../src/utils/logger';
import { sleep, startTestGateway, type TestGateway } from './helpers/gateway';
import { signingKey, startJwksServer, type Behaviour, type JwksServer, type SigningKey } from './helpers/jwks';
import type { ProbeClient, ServerEnvelope } from './helpers/ProbeClient';

/** Short enough for a test to wait past it, long enough that a burst of identifies fits well inside it. */
const COOLDOWN_MS = 1000;
const TIMEOUT_MS = 400;

/** A gateway verifying with `server`'s set; tests override the knobs they exercise. */
function gatewayFor(server: JwksServer, env: Record<string, string> = {}, logger?: Logger): Promise<TestGateway> {
  return startTestGateway({ GW_JWKS_URL: server.url, GW_JWKS_COOLDOWN_MS: String(COOLDOWN_MS), GW_JWKS_TIMEOUT_MS: String(TIMEOUT_MS), ...env }, { logger });
}

const tokenFor = (key: SigningKey, sub = 'alice', kid = key.kid) => mintToken({ sub, groups: ['g'], alg: key.alg, kid }, key.privateKey);

async function health(gw: TestGateway): Promise<HealthData> {
  const res = await request(gw.httpUrl).get('/health').expect(200);
  return res.body.data as HealthData;
}

/** Waits until the key source's health matches `expected`. */
const keysState = (gw: TestGateway, expected: Partial<HealthData['keys']>) =>
  vi.waitFor(async () => expect((await health(gw)).keys).toMatchObject(expected), { timeout: 5000, interval: 20 });

/** Waits past the cooldown that follows the last fetch, so the next unknown kid may fetch again (a precondition, not an assertion). */
const pastCooldown = () => sleep(COOLDOWN_MS + 100);

type Reply = ServerEnvelope & { client: ProbeClient };

async function identify(gw: TestGateway, token: string): Promise<Reply> {
  const client = await gw.connect();
  return { ...(await client.identify(token, ['g'])), client };
}

async function expectReady(gw: TestGateway, token: string): Promise<ProbeClient> {
  const reply = await identify(gw, token);
  expect([reply.type, reply.data?.message]).toEqual(['ready', undefined]);
  return reply.client;
}

async function expectRefused(gw: TestGateway, token: string, reason: RegExp): Promise<void> {
  const reply = await identify(gw, token);
  expect(reply.type).toBe('error');
  expect(reply.data).toMatchObject({ code: 'AUTH_FAILED', message: expect.stringMatching(reason) });
  expect(String(reply.data!.message)).not.toContain(token);
  expect((await reply.client.closed).code).toBe(4003);
}

const NO_KEY = /^no key for the token's "kid" in the key set at GW_JWKS_URL$/;
const unfetchable = (why: string, kid = true) =>
  new RegExp(`^${kid ? `no key for the token's "kid", and ` : ''}the key set at GW_JWKS_URL could not be fetched \\(${why}\\)$`);
const TIMED_OUT = `timed out after ${TIMEOUT_MS} ms \\(GW_JWKS_TIMEOUT_MS\\)`;

describe('a JWK set (GW_JWKS_URL)', () => {
  it('verifies RS256, ES256 and EdDSA tokens from one fetch, and never HS* even with an oct key in the set', async () => {
    const keys = await Promise.all([signingKey('rsa-1', 'RS256'), signingKey('ec-1', 'ES256'), signingKey('ed-1', 'EdDSA')]);
    const server = await startJwksServer(keys);
    const secret = new TextEncoder().encode('a-shared-secret-published-by-mistake!!');
    server.serve(keys, [{ kty: 'oct', kid: 'shared', k: Buffer.from(secret).toString('base64url') }]);
    const gw = await gatewayFor(server);
    for (const key of keys) await expectReady(gw, await tokenFor(key, `user-${key.kid}`));
    await expectRefused(gw, await mintToken({ sub: 'mallory', alg: 'HS256', kid: 'shared' }, secret), /^token "alg" is not accepted: this gateway's key verifies RS256, .*, EdDSA$/);
    expect(server.stats.requests).toBe(1);
    const data = await health(gw);
    expect(data).toMatchObject({ status: 'ok', keys: { source: 'jwks', state: 'ok', keys: 3, fetchedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) } });
    expect(data.keys.lastError).toBeUndefined();
  });

  it('rotation: a new kid is fetched on first sight, an old one works while the set has it and is refused once a fetch dropped it', async () => {
    const [k1, k2, k3] = await Promise.all([signingKey('k1'), signingKey('k2'), signingKey('k3')]);
    const server = await startJwksServer([k1]);
    const gw = await gatewayFor(server);
    const early = await expectReady(gw, await tokenFor(k1, 'early'));
    server.serve([k1, k2]);
    await pastCooldown();
    await expectReady(gw, await tokenFor(k2, 'bob'));
    expect(server.stats.requests).toBe(2);
    await expectReady(gw, await tokenFor(k1, 'carol'));
    expect(server.stats.requests).toBe(2);

    server.serve([k2]);
    await pastCooldown();
    // An unknown kid refetches: the new set no longer has k1.
    await expectRefused(gw, await tokenFor(k3, 'mallory'), NO_KEY);
    expect(server.stats.requests).toBe(3);
    await expectRefused(gw, await tokenFor(k1, 'dave'), NO_KEY);
    await expectReady(gw, await tokenFor(k2, 'erin'));
    // A connection identified with k1 before it was dropped keeps being served.
    expect((await early.request('heartbeat', {})).type).toBe('heartbeat_ack');
  });

  it('the background refresh (GW_JWKS_REFRESH_MS) picks up a rotation without any unknown kid', async () => {
    const [k1, k2, k3] = await Promise.all([signingKey('k1'), signingKey('k2'), signingKey('k3')]);
    const server = await startJwksServer([k1]);
    const gw = await gatewayFor(server, { GW_JWKS_REFRESH_MS: '200', GW_JWKS_COOLDOWN_MS: '600000' });
    await expectReady(gw, await tokenFor(k1));
    server.serve([k2, k3]);
    await keysState(gw, { state: 'ok', keys: 2 });
    await expectReady(gw, await tokenFor(k2, 'bob'));
    await expectRefused(gw, await tokenFor(k1, 'carol'), NO_KEY);
  });

  it('endpoint down: identified connections and held keys keep working, an unknown kid is refused saying why, /health stays ok', async () => {
    const [k1, unknown] = await Promise.all([signingKey('k1'), signingKey('k-unpublished')]);
    const server = await startJwksServer([k1]);
    const lines: string[] = [];
    const gw = await gatewayFor(server, {}, createLogger('info', { write: (line: string) => void lines.push(line) }));
    const alice = await expectReady(gw, await tokenFor(k1, 'alice'));
    const bob = await expectReady(gw, await tokenFor(k1, 'bob'));
    await server.behave({ mode: 'down' });
    await pastCooldown();

    const stranger = await tokenFor(unknown, 'mallory');
    await expectRefused(gw, stranger, unfetchable('connection refused'));
    await alice.request('data_update', { group: 'g', payload: { n: 1 } });
    expect((await bob.next('data_update')).data).toMatchObject({ group: 'g', payload: { n: 1 } });
    await expectReady(gw, await tokenFor(k1, 'carol'));
    const data = await health(gw);
    expect(data).toMatchObject({ status: 'ok', keys: { source: 'jwks', state: 'stale', keys: 1, lastError: 'connection refused' } });

    await server.behave({ mode: 'keys' });
    await pastCooldown();
    await expectRefused(gw, stranger, NO_KEY);
    await keysState(gw, { state: 'ok' });
    await gw.gateway.stop();
    const log = lines.join('');
    expect(log).toContain('JWK set fetch failed');
    expect(log).toContain(server.url);
    expect(log).not.toContain(stranger);
    expect(log).not.toContain('k-unpublished');
  });

  for (const mode of ['slowHeaders', 'slowBody'] as const) {
    it(`a ${mode === 'slowHeaders' ? 'server that sends no headers' : 'body that never ends'}: identifies fail after GW_JWKS_TIMEOUT_MS, not later`, async () => {
      const k1 = await signingKey('k1');
      const server = await startJwksServer([k1]);
      await server.behave({ mode, delayMs: 60_000 });
      const gw = await gatewayFor(server, { GW_JWKS_COOLDOWN_MS: '600000' });
      expect((await health(gw)).keys).toMatchObject({ state: 'loading', keys: 0 });
      const started = Date.now();
      await expectRefused(gw, await tokenFor(k1), unfetchable(TIMED_OUT, false));
      expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + 1500);
      expect(await health(gw)).toMatchObject({ status: 'ok', keys: { source: 'jwks', state: 'failing', keys: 0, lastError: `timed out after ${TIMEOUT_MS} ms (GW_JWKS_TIMEOUT_MS)` } });
      // The gateway gave up on the request: the server sees it closed.
      await vi.waitFor(() => expect(server.stats.open).toBe(0), { timeout: 2000, interval: 10 });
    });
  }

  it('garbage, errors and redirects: the last good set is kept and /health says stale; with no good set yet it says failing', async () => {
    const [k1, other] = await Promise.all([signingKey('k1'), signingKey('other')]);
    const server = await startJwksServer([k1]);
    const gw = await gatewayFor(server);
    await expectReady(gw, await tokenFor(k1));
    const answers: [Behaviour, string][] = [
      [{ mode: 'garbage', body: '<html>502 Bad Gateway</html>' }, 'the body is not JSON'],
      [{ mode: 'garbage', body: '{"keys":"none"}' }, 'the body is not a JWK set \\({"keys": \\[...\\]}, at most 100 keys\\)'],
      [{ mode: 'garbage', body: '{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}' }, 'the set holds no public RSA, EC or OKP key'],
      [{ mode: 'garbage', body: JSON.stringify({ keys: [k1.jwk] }), status: 503 }, 'HTTP 503'],
      [{ mode: 'garbage', body: '', status: 302, headers: { location: 'http://127.0.0.1:9/keys.json' } }, 'the server answered with a redirect \\(not followed\\)'],
    ];
    for (const [behaviour, why] of answers) {
      await server.behave(behaviour);
      await pastCooldown();
      await expectRefused(gw, await tokenFor(other, 'mallory'), unfetchable(why));
      expect(await health(gw)).toMatchObject({ status: 'ok', keys: { state: 'stale', keys: 1, lastError: expect.stringMatching(new RegExp(`^${why}$`)) } });
      await expectReady(gw, await tokenFor(k1, 'bob'));
    }

    const fresh = await startJwksServer([k1]);
    await fresh.behave({ mode: 'garbage', body: 'not json' });
    const unloaded = await gatewayFor(fresh);
    await keysState(unloaded, { state: 'failing', lastError: 'the body is not JSON' });
    expect((await health(unloaded)).status).toBe('ok');
    await expectRefused(unloaded, await tokenFor(k1), unfetchable('the body is not JSON', false));
  });

  it('a huge body is cut off at GW_JWKS_MAX_BYTES: the transfer is aborted, memory stays flat, the gateway serves on', async () => {
    const [k1, other] = await Promise.all([signingKey('k1'), signingKey('other')]);
    const server = await startJwksServer([k1]);
    const gw = await gatewayFor(server, { GW_JWKS_MAX_BYTES: '65536' });
    await expectReady(gw, await tokenFor(k1));
    const HUGE = 256 * 1024 * 1024;
    await server.behave({ mode: 'huge', bytes: HUGE });
    await pastCooldown();
    const memory = () => {
      const m = process.memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    };
    const before = memory();
    await expectRefused(gw, await tokenFor(other, 'mallory'), unfetchable('the body is over 65536 bytes \\(GW_JWKS_MAX_BYTES\\)'));
    await vi.waitFor(() => expect(server.stats.hugeCutOff).toBe(true), { timeout: 2000, interval: 10 });
    // What the server got out before the connection closed: socket buffers, nowhere near the body.
    expect(server.stats.hugeWritten).toBeLessThan(16 * 1024 * 1024);
    expect(memory() - before).toBeLessThan(32 * 1024 * 1024);
    await expectReady(gw, await tokenFor(k1, 'bob'));
  });

  it('a burst of unknown kids while the endpoint hangs: one fetch in flight, then none until the cooldown ends', async () => {
    const k1 = await signingKey('k1');
    const server = await startJwksServer([k1]);
    await server.behave({ mode: 'slowHeaders', delayMs: 60_000 });
    const gw = await gatewayFor(server, { GW_JWKS_COOLDOWN_MS: '600000' });
    const burst = async () => {
      const tokens = await Promise.all(Array.from({ length: 20 }, (_, i) => tokenFor(k1, `user-${i}`, `kid-${i}`)));
      const clients = await Promise.all(tokens.map(() => gw.connect()));
      return Promise.all(clients.map((c, i) => c.identify(tokens[i]!, ['g'])));
    };
    for (const reply of await burst()) expect(reply.data).toMatchObject({ code: 'AUTH_FAILED', message: expect.stringMatching(unfetchable(TIMED_OUT, false)) });
    expect([server.stats.requests, server.stats.maxOpen]).toEqual([1, 1]);
    // Refused at once from the failure just recorded: the replies are the proof that no fetch was started.
    for (const reply of await burst()) expect(reply.data).toMatchObject({ code: 'AUTH_FAILED', message: expect.stringMatching(unfetchable(TIMED_OUT, false)) });
    expect(server.stats.requests).toBe(1);
  });

  it('a burst of unknown kids while the endpoint resets connections: one connection attempt for the whole burst', async () => {
    const k1 = await signingKey('k1');
    const server = await startJwksServer([k1]);
    const gw = await gatewayFor(server);
    await expectReady(gw, await tokenFor(k1));
    await server.behave({ mode: 'reset' });
    const before = server.stats.connections;
    await pastCooldown();
    const tokens = await Promise.all(Array.from({ length: 20 }, (_, i) => tokenFor(k1, `user-${i}`, `kid-${i}`)));
    const clients = await Promise.all(tokens.map(() => gw.connect()));
    const replies = await Promise.all(clients.map((c, i) => c.identify(tokens[i]!, ['g'])));
    for (const reply of replies) expect(reply.data).toMatchObject({ code: 'AUTH_FAILED', message: expect.stringMatching(unfetchable('connection reset')) });
    expect(server.stats.connections - before).toBe(1);
    await expectReady(gw, await tokenFor(k1, 'bob'));
  });

  it('stop() aborts a fetch in flight and leaves no timer behind', async () => {
    const k1 = await signingKey('k1');
    const server = await startJwksServer([k1]);
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const idle = timers();
    await server.behave({ mode: 'hang' });
    const gw = await gatewayFor(server, { GW_JWKS_TIMEOUT_MS: '60000' });
    await vi.waitFor(() => expect(server.stats.open).toBe(1), { timeout: 2000, interval: 10 });
    const started = Date.now();
    await gw.gateway.stop();
    expect(Date.now() - started).toBeLessThan(5000);
    await vi.waitFor(() => expect(server.stats.open).toBe(0), { timeout: 2000, interval: 10 });
    // Neither the fetch's deadline nor the refresh timer is left.
    expect(timers()).toBeLessThanOrEqual(idle);
  });
});
