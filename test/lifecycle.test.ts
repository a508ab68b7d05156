// Heartbeats, dead-peer pings, and graceful shutdown.
import { describe, expect, it } from 'vitest';
import { ProbeClient } from './helpers/ProbeClient';
import { sleep, startTestGateway } from './helpers/gateway';

describe('heartbeat', () => {
  it('acknowledges heartbeat with the server time', async () => {
    const gw = await startTestGateway();
    const client = await gw.join('alice');
    const before = Date.now();
    const ack = await client.request('heartbeat', {});
    expect(ack.type).toBe('heartbeat_ack');
    expect(ack.data!.serverTs).toBeGreaterThanOrEqual(before);
  });

  it('closes an identified connection that sends nothing for heartbeatTimeoutMs with 4009', async () => {
    const gw = await startTestGateway({ GW_HEARTBEAT_INTERVAL_MS: '100', GW_HEARTBEAT_TIMEOUT_MS: '300' });
    const client = await gw.join('alice');
    const started = Date.now();
    expect((await client.closed).code).toBe(4009);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });

  it('keeps a connection that heartbeats alive past the timeout', async () => {
    const gw = await startTestGateway({ GW_HEARTBEAT_INTERVAL_MS: '100', GW_HEARTBEAT_TIMEOUT_MS: '300' });
    const client = await gw.join('alice');
    for (let i = 0; i < 8; i++) {
      await sleep(100);
      client.send('heartbeat', {});
    }
    expect(client.socket.readyState).toBe(client.socket.OPEN);
  });

  it('does not count WebSocket pongs as application heartbeats', async () => {
    const gw = await startTestGateway({ GW_HEARTBEAT_INTERVAL_MS: '50', GW_HEARTBEAT_TIMEOUT_MS: '300' });
    const client = await gw.join('alice');
    let pings = 0;
    client.socket.on('ping', () => pings++);
    expect((await client.closed).code).toBe(4009);
    expect(pings).toBeGreaterThan(0);
  });

  it('terminates a peer that stops answering WebSocket pings', async () => {
    const gw = await startTestGateway({ GW_HEARTBEAT_INTERVAL_MS: '100', GW_HEARTBEAT_TIMEOUT_MS: '5000', GW_IDENTIFY_TIMEOUT_MS: '5000' });
    const client = await ProbeClient.connect(gw.wsUrl, { autoPong: false });
    const started = Date.now();
    const { code } = await client.closed;
    expect(code).toBe(1006);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe('shutdown', () => {
  it('sends shutdown, closes with 1001, refuses new upgrades with 503 and reports draining', async () => {
    const gw = await startTestGateway({ GW_SHUTDOWN_GRACE_MS: '2000' });
    const a = await gw.join('alice', ['g']);
    const b = await gw.connect();
    const stopped = gw.gateway.stop('maintenance');
    for (const c of [a, b]) {
      const env = await c.next('shutdown');
      expect(env.data).toEqual({ reason: 'maintenance', reconnectAfterMs: expect.any(Number) });
      expect(env.data!.reconnectAfterMs as number).toBeGreaterThanOrEqual(1000);
    }
    expect((await a.closed).code).toBe(1001);
    expect((await b.closed).code).toBe(1001);
    await stopped;
    await expect(ProbeClient.connect(gw.wsUrl)).rejects.toThrow();
  });

  it('refuses upgrades with 503 while draining', async () => {
    const gw = await startTestGateway({ GW_SHUTDOWN_GRACE_MS: '1000' });
    const slow = await gw.connect();
    slow.socket.pause();
    const stopped = gw.gateway.stop();
    await expect(ProbeClient.connect(gw.wsUrl)).rejects.toThrow(/503/);
    const health = await fetch(`${gw.httpUrl}/health`).then(async (r) => ({ status: r.status, body: await r.json() }));
    expect(health).toMatchObject({ status: 503, body: { ok: false, data: { status: 'draining' } } });
    slow.socket.resume();
    await stopped;
  });

  it('terminates connections that do not close within the grace period', async () => {
    const gw = await startTestGateway({ GW_SHUTDOWN_GRACE_MS: '300' });
    const stubborn = await gw.connect();
    stubborn.socket.pause();
    const started = Date.now();
    await gw.gateway.stop();
    expect(Date.now() - started).toBeLessThan(1500);
    stubborn.socket.resume();
    expect((await stubborn.closed).code).toBeGreaterThan(0);
  });
});
