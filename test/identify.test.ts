// hello, identify (ok, bad tokens, timeout), ready groups and denied, ALREADY_IDENTIFIED.
import { describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { ProbeClient } from './helpers/ProbeClient';
import { startTestGateway, TEST_SECRET } from './helpers/gateway';

const secret = new TextEncoder().encode(TEST_SECRET);

describe('hello and identify', () => {
  it('sends hello with the connection id and timings on connect', async () => {
    const gw = await startTestGateway({ GW_HEARTBEAT_INTERVAL_MS: '7000', GW_HEARTBEAT_TIMEOUT_MS: '21000', GW_IDENTIFY_TIMEOUT_MS: '3000' });
    const client = await ProbeClient.connect(gw.wsUrl);
    const hello = await client.next('hello');
    expect(hello.data).toEqual({ connectionId: expect.stringMatching(/^c_/), heartbeatIntervalMs: 7000, heartbeatTimeoutMs: 21000, identifyTimeoutMs: 3000 });
    expect(typeof hello.ts).toBe('number');
    client.socket.terminate();
  });

  it('answers a valid identify with ready: session, role, groups with members, denied', async () => {
    const gw = await startTestGateway();
    const client = await gw.connect();
    const token = await gw.token({ sub: 'alice', groups: ['group-1', 'team-*'], role: 'service' });
    const ready = await client.identify(token, ['group-1', 'team-red', 'secret', 'group-1'], { device: 'web' });
    expect(ready.type).toBe('ready');
    expect(ready.data).toMatchObject({ userId: 'alice', role: 'service', denied: ['secret'] });
    expect(ready.data!.sessionId).toMatch(/^s_/);
    const groups = ready.data!.groups as { group: string; members: { userId: string; meta: unknown; since: number }[] }[];
    expect(groups.map((g) => g.group)).toEqual(['group-1', 'team-red']);
    expect(groups[0]!.members).toEqual([{ userId: 'alice', meta: { device: 'web' }, since: expect.any(Number), availability: 'online' }]);
  });

  it('defaults role to client and meta to {}', async () => {
    const gw = await startTestGateway();
    const client = await gw.connect();
    const token = await new SignJWT({ groups: ['g'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('bob').setExpirationTime('1h').sign(secret);
    const ready = await client.identify(token, ['g']);
    expect(ready.data).toMatchObject({ role: 'client', groups: [{ group: 'g', members: [{ userId: 'bob', meta: {} }] }] });
  });

  const rejected: [string, () => Promise<string>][] = [
    ['an expired token', () => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('a').setExpirationTime(Math.floor(Date.now() / 1000) - 60).sign(secret)],
    ['a bad signature', () => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('a').setExpirationTime('1h').sign(new TextEncoder().encode('another-secret-of-at-least-32-bytes!!!'))],
    ['a token without sub', () => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(secret)],
    ['a token without exp', () => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('a').sign(secret)],
    ['a token with an unknown role', () => new SignJWT({ role: 'root' }).setProtectedHeader({ alg: 'HS256' }).setSubject('a').setExpirationTime('1h').sign(secret)],
    ['a token that is not a JWT', async () => 'not-a-jwt'],
  ];
  for (const [name, make] of rejected) {
    it(`rejects ${name} with AUTH_FAILED and close 4003`, async () => {
      const gw = await startTestGateway();
      const client = await gw.connect();
      const token = await make();
      const reply = await client.identify(token, ['g']);
      expect(reply.type).toBe('error');
      expect(reply.data!.code).toBe('AUTH_FAILED');
      expect(JSON.stringify(reply)).not.toContain(token);
      expect((await client.closed).code).toBe(4003);
    });
  }

  it('closes with IDENTIFY_TIMEOUT and 4001 when identify does not come in time', async () => {
    const gw = await startTestGateway({ GW_IDENTIFY_TIMEOUT_MS: '200' });
    const client = await gw.connect();
    const started = Date.now();
    const error = await client.next('error');
    expect(error.data!.code).toBe('IDENTIFY_TIMEOUT');
    expect((await client.closed).code).toBe(4001);
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
  });

  it('answers other envelopes before identify with NOT_IDENTIFIED and keeps the connection open', async () => {
    const gw = await startTestGateway();
    const client = await gw.connect();
    for (const type of ['heartbeat', 'subscribe', 'unsubscribe', 'data_update']) {
      const reply = await client.request(type, { group: 'g', payload: 1 });
      expect(reply.data!.code).toBe('NOT_IDENTIFIED');
    }
    const ready = await client.identify(await gw.token({ sub: 'a', groups: ['g'] }), ['g']);
    expect(ready.type).toBe('ready');
  });

  it('handles envelopes pipelined behind identify after it, in order', async () => {
    const gw = await startTestGateway();
    const peer = await gw.join('bob', ['g']);
    const client = await gw.connect();
    client.send('identify', { token: await gw.token({ sub: 'alice', groups: ['g', 'h'] }), groups: ['g'] }, 'i');
    client.send('subscribe', { group: 'h' }, 's');
    client.send('data_update', { group: 'g', payload: 'right away' }, 'd');
    client.send('identify', { token: 'again' }, 'i2');
    const replies = [await client.next((e) => e.replyTo !== undefined), await client.next((e) => e.replyTo !== undefined), await client.next((e) => e.replyTo !== undefined), await client.next((e) => e.replyTo !== undefined)];
    expect(replies.map((e) => [e.replyTo, e.type])).toEqual([
      ['i', 'ready'],
      ['s', 'subscribed'],
      ['d', 'ack'],
      ['i2', 'error'],
    ]);
    expect(replies[3]!.data!.code).toBe('ALREADY_IDENTIFIED');
    expect((await peer.next('data_update')).data!.payload).toBe('right away');
  });

  it('answers a second identify with ALREADY_IDENTIFIED without closing', async () => {
    const gw = await startTestGateway();
    const client = await gw.join('alice', ['g']);
    const again = await client.identify(await gw.token({ sub: 'alice' }));
    expect(again.data!.code).toBe('ALREADY_IDENTIFIED');
    expect((await client.request('heartbeat')).type).toBe('heartbeat_ack');
  });

  it('answers meta over 1 KiB with PAYLOAD_TOO_LARGE and lets the client identify again', async () => {
    const gw = await startTestGateway();
    const client = await gw.connect();
    const token = await gw.token({ sub: 'alice', groups: ['g'] });
    const big = await client.identify(token, ['g'], { name: 'x'.repeat(1100) });
    expect(big.data!.code).toBe('PAYLOAD_TOO_LARGE');
    expect((await client.identify(token, ['g'], { name: 'ok' })).type).toBe('ready');
  });

  it('rejects malformed identify data with INVALID_ENVELOPE', async () => {
    const gw = await startTestGateway();
    const client = await gw.connect();
    expect((await client.request('identify', {})).data!.code).toBe('INVALID_ENVELOPE');
    expect((await client.request('identify', { token: 'x', groups: ['bad name'] })).data!.code).toBe('INVALID_ENVELOPE');
    expect((await client.request('identify', { token: 'x', meta: [1] })).data!.code).toBe('INVALID_ENVELOPE');
  });
});
