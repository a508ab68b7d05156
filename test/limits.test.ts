// Rate and size limits: upgrades per IP (429), messages per connection (RATE_LIMITED, 4008), connections per user (4029), groups per connection.
import { describe, expect, it } from 'vitest';
import { sleep, startTestGateway } from './helpers/gateway';
import { rawExchange, upgradeRequest } from './helpers/raw';

describe('connection rate per client IP', () => {
  it('refuses upgrades past GW_RATE_CONN_PER_MIN with 429 and Retry-After, before any WebSocket exists', async () => {
    const gw = await startTestGateway({ GW_RATE_CONN_PER_MIN: '3' });
    const windowFrom = Date.now();
    for (let i = 0; i < 3; i++) expect(await rawExchange(gw.gateway.port, upgradeRequest(), 200)).toMatch(/^HTTP\/1\.1 101/);
    const refused = await rawExchange(gw.gateway.port, upgradeRequest());
    const elapsedMs = Date.now() - windowFrom;
    expect(refused).toMatch(/^HTTP\/1\.1 429/);
    // The 60 s window opened with the first attempt, somewhere in the last `elapsedMs`.
    const retryAfter = Number(/Retry-After: (\d+)/i.exec(refused)?.[1]);
    expect(retryAfter).toBeGreaterThanOrEqual(Math.ceil((60_000 - elapsedMs) / 1000));
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(refused).not.toContain('hello');
  });

  it('does not count attempts refused for their path or Origin', async () => {
    const gw = await startTestGateway({ GW_RATE_CONN_PER_MIN: '2', GW_ALLOWED_ORIGINS: 'https://app.example.com' });
    for (let i = 0; i < 5; i++) {
      expect(await rawExchange(gw.gateway.port, upgradeRequest({ Origin: 'https://evil.example' }))).toMatch(/^HTTP\/1\.1 403/);
      expect(await rawExchange(gw.gateway.port, upgradeRequest().replace('GET /rt', 'GET /nope'))).toMatch(/^HTTP\/1\.1 404/);
    }
    for (let i = 0; i < 2; i++) expect(await rawExchange(gw.gateway.port, upgradeRequest(), 200)).toMatch(/^HTTP\/1\.1 101/);
  });
});

describe('message rate per connection', () => {
  it('refuses envelopes past the bucket with RATE_LIMITED and retryAfterMs, and does not deliver them', async () => {
    const gw = await startTestGateway({ GW_RATE_MSG_PER_10S: '5' });
    const receiver = await gw.join('bob', ['g']);
    const sender = await gw.join('alice', ['g']);
    // identify spent one token; four are left.
    for (let i = 0; i < 4; i++) expect((await sender.request('data_update', { group: 'g', payload: i })).type).toBe('ack');
    const refused = await sender.request('data_update', { group: 'g', payload: 'over' });
    expect(refused.data).toMatchObject({ code: 'RATE_LIMITED' });
    const retryAfterMs = refused.data!.retryAfterMs as number;
    expect(retryAfterMs).toBeGreaterThan(1000);
    expect(retryAfterMs).toBeLessThanOrEqual(2000);
    // The bucket must refill: wait the retryAfterMs the gateway gave (+1: a timer may fire up to 1 ms early), then resend.
    await sleep(retryAfterMs + 1);
    expect((await sender.request('data_update', { group: 'g', payload: 'later' })).type).toBe('ack');
    // 'later' comes from the same sender after the refused one: whatever the receiver got before it is all it got.
    const received = (await receiver.before((e) => e.type === 'data_update' && e.data!.payload === 'later')).filter((e) => e.type === 'data_update');
    expect(received.map((e) => e.data!.payload)).toEqual([0, 1, 2, 3]);
  });

  it('charges bad frames too, and gives heartbeats their own bucket', async () => {
    const gw = await startTestGateway({ GW_RATE_MSG_PER_10S: '5' });
    const client = await gw.join('alice');
    for (let i = 0; i < 4; i++) client.sendRaw('{bad');
    for (let i = 0; i < 4; i++) expect((await client.next('error')).data!.code).toBe('BAD_JSON');
    expect((await client.request('subscribe', { group: 'x' })).data!.code).toBe('RATE_LIMITED');
    for (let i = 0; i < 20; i++) expect((await client.request('heartbeat', {})).type).toBe('heartbeat_ack');
    expect((await client.request('heartbeat', {})).data!.code).toBe('RATE_LIMITED');
  });

  it('closes with 4008 after as many refusals in a row as the bucket holds', async () => {
    const gw = await startTestGateway({ GW_RATE_MSG_PER_10S: '20' });
    const client = await gw.join('alice', ['g']);
    for (let i = 0; i < 19; i++) client.send('data_update', { group: 'g', payload: i });
    for (let i = 0; i < 20; i++) client.send('data_update', { group: 'g', payload: i });
    expect((await client.closed).code).toBe(4008);
    expect(client.pending('error').filter((e) => e.data!.code === 'RATE_LIMITED')).toHaveLength(20);
  });

  it('starts the count of refusals again after an accepted envelope', async () => {
    const gw = await startTestGateway({ GW_RATE_MSG_PER_10S: '20' });
    const client = await gw.join('alice', ['g']);
    const refusals = async (count: number) => {
      const errors = [];
      for (let i = 0; i < count; i++) errors.push(await client.next('error'));
      expect(errors.map((e) => e.data!.code)).toEqual(Array(count).fill('RATE_LIMITED'));
      return errors.at(-1)!.data!.retryAfterMs as number;
    };
    // identify spent one token: 19 go through, 19 are refused, one short of the close.
    for (let i = 0; i < 19 + 19; i++) client.send('data_update', { group: 'g', payload: i });
    const retryAfterMs = await refusals(19);
    // A token must drip in. Waited for, not polled: a polled heartbeat would itself start the count again, and a
    // polled data_update would be the 20th refusal.
    await sleep(retryAfterMs + 1);
    expect((await client.request('data_update', { group: 'g', payload: 'ok' })).type).toBe('ack');
    for (let i = 0; i < 19; i++) client.send('data_update', { group: 'g', payload: i });
    await refusals(19);
    // 38 refusals, but not 20 in a row: the connection still answers.
    expect((await client.request('heartbeat', {})).type).toBe('heartbeat_ack');
    expect(client.socket.readyState).toBe(client.socket.OPEN);
  });
});

describe('per-user and per-connection caps', () => {
  it('refuses a user’s connection past GW_MAX_CONNECTIONS_PER_USER with LIMIT_EXCEEDED and 4029', async () => {
    const gw = await startTestGateway({ GW_MAX_CONNECTIONS_PER_USER: '2' });
    const first = await gw.join('alice');
    await gw.join('alice');
    const third = await gw.connect();
    const refused = await third.identify(await gw.token({ sub: 'alice' }));
    expect(refused.data!.code).toBe('LIMIT_EXCEEDED');
    expect((await third.closed).code).toBe(4029);
    await gw.join('bob');
    await first.close();
    await gw.connections(2); // the second tab and bob
    await gw.join('alice');
  });

  it('caps groups per connection: extra identify groups are denied, an extra subscribe is LIMIT_EXCEEDED', async () => {
    const gw = await startTestGateway({ GW_MAX_GROUPS_PER_CONNECTION: '2' });
    const client = await gw.connect();
    const ready = await client.identify(await gw.token({ sub: 'alice', groups: ['*'] }), ['a', 'b', 'c']);
    expect(ready.data).toMatchObject({ denied: ['c'] });
    expect((ready.data!.groups as unknown[]).length).toBe(2);
    expect((await client.request('subscribe', { group: 'c' })).data!.code).toBe('LIMIT_EXCEEDED');
    expect((await client.request('subscribe', { group: 'a' })).type).toBe('subscribed');
    await client.request('unsubscribe', { group: 'a' });
    expect((await client.request('subscribe', { group: 'c' })).type).toBe('subscribed');
  });
});
