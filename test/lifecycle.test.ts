// Heartbeats, dead-peer pings, and graceful shutdown.
import { describe, expect, it } from 'vitest';
import { MemoryCluster } from '../src/cluster';
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
    // Taken before identify, the client's last frame: the close cannot come sooner than 300 ms after this.
    const started = Date.now();
    const client = await gw.join('alice');
    expect((await client.closed).code).toBe(4009);
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
  });

  it('keeps a connection that heartbeats alive past the timeout', async () => {
    const gw = await startTestGateway({ GW_HEARTBEAT_INTERVAL_MS: '100', GW_HEARTBEAT_TIMEOUT_MS: '300' });
    const client = await gw.join('alice');
    // Time passing is the point: a heartbeat every interval, for well over the timeout.
    for (let i = 0; i < 8; i++) {
      await sleep(100);
      expect((await client.request('heartbeat', {})).type).toBe('heartbeat_ack');
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
  it('sends shutdown with a reconnect delay, closes with 1001, and stops listening', async () => {
    const gw = await startTestGateway({ GW_SHUTDOWN_GRACE_MS: '2000' });
    const a = await gw.join('alice', ['g']);
    const b = await gw.connect();
    const stopped = gw.gateway.stop('maintenance');
    for (const c of [a, b]) {
      const env = await c.next('shutdown');
      expect(env.data).toEqual({ reason: 'maintenance', reconnectAfterMs: expect.any(Number) });
      // 1000 ms plus a spread of up to 4000 ms.
      expect(env.data!.reconnectAfterMs as number).toBeGreaterThanOrEqual(1000);
      expect(env.data!.reconnectAfterMs as number).toBeLessThan(5000);
    }
    expect((await a.closed).code).toBe(1001);
    expect((await b.closed).code).toBe(1001);
    await stopped;
    await expect(ProbeClient.connect(gw.wsUrl)).rejects.toThrow(/ECONNREFUSED/);
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
    // Not reading, it never answers the close handshake.
    stubborn.socket.pause();
    const started = Date.now();
    await gw.gateway.stop();
    const elapsedMs = Date.now() - started;
    expect(elapsedMs).toBeGreaterThanOrEqual(300);
    expect(elapsedMs).toBeLessThan(1500);
    // The gateway let go of it, and handled its close, before stop() resolved.
    expect(gw.gateway.connectionCount).toBe(0);
    stubborn.socket.resume();
    // What the gateway wrote before terminating is still delivered: the shutdown notice and its close frame.
    expect((await stubborn.closed).code).toBe(1001);
    expect(stubborn.drain().map((e) => e.type)).toEqual(['shutdown']);
  });

  it('ends the sessions of connections it had to terminate before stop() resolves when no instance takes them: the other sees DOWN', async () => {
    const memoryCluster = new MemoryCluster();
    // The other instance never hears of the hand-over, so alice's session stays with the stopping one.
    memoryCluster.bus.fault = ({ body }) => (body.includes('"take"') ? 'drop' : 'deliver');
    const a = await startTestGateway({ GW_SHUTDOWN_GRACE_MS: '300', GW_INSTANCE_ID: 'stops' }, { memoryCluster });
    const b = await startTestGateway({ GW_INSTANCE_ID: 'stays' }, { memoryCluster });
    const watcher = await b.join('bob', ['g']);
    const stubborn = await a.join('alice', ['g']);
    expect((await watcher.next('presence_update')).data).toMatchObject({ userId: 'alice', status: 'UP' });
    stubborn.socket.pause();
    await a.gateway.stop();
    expect((await watcher.next('presence_update')).data).toMatchObject({ userId: 'alice', status: 'DOWN' });
    const members = await watcher.request('subscribe', { group: 'g' });
    expect((members.data!.members as { userId: string }[]).map((m) => m.userId)).toEqual(['bob']);
  });
});
