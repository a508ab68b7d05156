// End to end through a real Nginx with TLS, running the project's own config (infra/nginx/nginx.conf.template).
import { get as httpsGet } from 'node:https';
import { get as httpGet } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mintToken } from '../src/auth/jwt';
import { loadConfig } from '../src/config';
import { ProbeClient } from './helpers/ProbeClient';
import { API_ENV } from './helpers/api';
import { startTestGateway, TEST_SECRET, type TestGateway } from './helpers/gateway';
import { hasNginx, prepareNginx, startNginx, stopAllNginx, type RunningNginx } from './helpers/nginx';

function fetchText(url: string, ca?: Buffer): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const done = (res: import('node:http').IncomingMessage) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += String(d)));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    };
    const req = url.startsWith('https:') ? httpsGet(url, { ca, servername: 'localhost' }, done) : httpGet(url, done);
    req.on('error', reject);
  });
}

describe.skipIf(!hasNginx)('through Nginx', () => {
  let gw: TestGateway;
  let nginx: RunningNginx;
  // Nginx reaches the gateway from 127.0.0.1; test clients connect from other loopback addresses, as real clients would.
  beforeEach(async () => {
    // The server API on: Nginx must not reach it.
    gw = await startTestGateway({ GW_TRUSTED_PROXIES: '127.0.0.1/32', GW_RATE_CONN_PER_MIN: '3', ...API_ENV });
    nginx = await startNginx(gw.gateway.port);
  });
  afterEach(stopAllNginx);

  const wss = (localAddress?: string) => ProbeClient.connect(`wss://localhost:${nginx.httpsPort}/rt`, { ca: nginx.ca, localAddress });

  it('passes nginx -t with the project config', async () => {
    const prepared = await prepareNginx(gw.gateway.port);
    expect(prepared.check.output).toContain('syntax is ok');
    expect(prepared.check.status).toBe(0);
  });

  it('serves the health JSON over HTTPS and plain HTTP, and nothing else of the gateway', async () => {
    const https = await fetchText(`https://localhost:${nginx.httpsPort}/health`, nginx.ca);
    expect(https.status).toBe(200);
    expect(JSON.parse(https.body)).toMatchObject({ ok: true, data: { status: 'ok' } });
    expect(https.headers['strict-transport-security']).toBe('max-age=31536000');
    expect(https.headers.server).toBe('nginx');
    expect((await fetchText(`http://127.0.0.1:${nginx.httpPort}/health`)).status).toBe(200);
    for (const path of ['/metrics', '/api/publish', '/api/openapi.json', '/admin', '/admin/assets/admin.js']) {
      const refused = await fetchText(`https://localhost:${nginx.httpsPort}${path}`, nginx.ca);
      // Nginx's own page: the request never reached the gateway, whose refusals are JSON.
      expect([path, refused.status, refused.headers['content-type']]).toEqual([path, 404, 'text/html']);
    }
    expect((await fetchText(`https://localhost:${nginx.httpsPort}/`, nginx.ca)).status).toBe(404);
  });

  it('lets two wss:// clients identify, subscribe and exchange data_update', async () => {
    const secret = new TextEncoder().encode(TEST_SECRET);
    const [alice, bob] = await Promise.all([wss('127.0.0.10'), wss('127.0.0.11')]);
    for (const c of [alice, bob]) await c.next('hello');
    expect((await alice.identify(await mintToken({ sub: 'alice', groups: ['room-*'] }, secret))).type).toBe('ready');
    expect((await bob.identify(await mintToken({ sub: 'bob', groups: ['room-*'] }, secret))).type).toBe('ready');
    expect((await alice.request('subscribe', { group: 'room-1' })).type).toBe('subscribed');
    expect((await bob.request('subscribe', { group: 'room-1' })).type).toBe('subscribed');
    expect((await alice.next('presence_update')).data).toMatchObject({ userId: 'bob', status: 'UP' });
    await bob.request('data_update', { group: 'room-1', payload: { over: 'tls' } });
    expect((await alice.next('data_update')).data).toMatchObject({ from: { userId: 'bob' }, payload: { over: 'tls' } });
    for (const c of [alice, bob]) c.socket.terminate();
  });

  it('serves ws:// on the plaintext port', async () => {
    const plain = await ProbeClient.connect(`ws://127.0.0.1:${nginx.httpPort}/rt`, { localAddress: '127.0.0.12' });
    expect((await plain.next('hello')).type).toBe('hello');
    plain.socket.terminate();
  });

  it('gives the gateway the real client IP: the per-IP limit counts clients, not Nginx, and ignores spoofed X-Forwarded-For', async () => {
    const opened: ProbeClient[] = [];
    for (let i = 0; i < 3; i++) opened.push(await wss('127.0.0.20'));
    await expect(wss('127.0.0.20')).rejects.toThrow(/429/);
    const spoofing = () => ProbeClient.connect(`wss://localhost:${nginx.httpsPort}/rt`, { ca: nginx.ca, localAddress: '127.0.0.20', headers: { 'X-Forwarded-For': '203.0.113.99' } });
    await expect(spoofing()).rejects.toThrow(/429/);
    const other = await wss('127.0.0.21');
    expect((await other.next('hello')).type).toBe('hello');
    for (const c of [...opened, other]) c.socket.terminate();
  });

  it('keeps idle WebSockets longer than the gateway’s heartbeat timeout', () => {
    const readTimeoutS = Number(/proxy_read_timeout (\d+)s;/.exec(nginx.config)?.[1]);
    const sendTimeoutS = Number(/proxy_send_timeout (\d+)s;/.exec(nginx.config)?.[1]);
    const defaults = loadConfig({ GW_JWT_SECRET: TEST_SECRET });
    expect(readTimeoutS * 1000).toBeGreaterThan(defaults.heartbeatTimeoutMs);
    expect(sendTimeoutS * 1000).toBeGreaterThan(defaults.heartbeatTimeoutMs);
    expect(readTimeoutS).toBeGreaterThan(60);
    expect(nginx.config).toMatch(/proxy_http_version 1\.1;/);
    expect(nginx.config).toMatch(/ssl_protocols TLSv1\.2 TLSv1\.3;/);
  });

  describe('with HTTP_TO_HTTPS=on', () => {
    it('redirects the plaintext WebSocket path to HTTPS but still answers /health', async () => {
      const redirecting = await startNginx(gw.gateway.port, 'on');
      try {
        const rt = await fetchText(`http://127.0.0.1:${redirecting.httpPort}/rt?x=1`);
        expect(rt.status).toBe(301);
        expect(rt.headers.location).toBe('https://127.0.0.1/rt?x=1');
        expect((await fetchText(`http://127.0.0.1:${redirecting.httpPort}/health`)).status).toBe(200);
      } finally {
        await redirecting.stop();
      }
    });
  });
});
