// HTTP surface: /health, 426 on a plain GET of /rt, upgrades to other paths refused.
import request from 'supertest';
import { describe, expect, it, vi } from 'vitest';
import { ProbeClient } from './helpers/ProbeClient';
import { version } from '../src/utils/version';
import { loadConfig } from '../src/config';
import { startGateway } from '../src/server';
import { startTestGateway, TEST_SECRET } from './helpers/gateway';
import { freePort } from './helpers/redis';

describe('HTTP', () => {
  it('GET /health answers 200 with status, version, uptime, the connection count and the key source', async () => {
    const gw = await startTestGateway();
    await gw.join('alice');
    await gw.connect();
    const res = await request(gw.httpUrl).get('/health').expect(200).expect('content-type', /json/);
    expect(res.body).toEqual({ ok: true, data: { status: 'ok', version, uptimeSec: expect.any(Number), connections: 2, keys: { source: 'secret', state: 'ok', keys: 1 } } });
    expect(version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('answers a plain GET /rt with 426 Upgrade Required', async () => {
    const gw = await startTestGateway();
    const res = await request(gw.httpUrl).get('/rt').expect(426);
    expect(res.headers.upgrade).toBe('websocket');
    expect(res.body.error.code).toBe('UPGRADE_REQUIRED');
  });

  it('refuses a WebSocket upgrade on any other path', async () => {
    const gw = await startTestGateway();
    await expect(ProbeClient.connect(gw.wsUrl.replace('/rt', '/other'))).rejects.toThrow(/404/);
    await expect(ProbeClient.connect(gw.wsUrl.replace('/rt', '/rt/x'))).rejects.toThrow(/404/);
    const withQuery = await ProbeClient.connect(`${gw.wsUrl}?v=1`);
    expect((await withQuery.next('hello')).type).toBe('hello');
    withQuery.socket.terminate();
  });

  it('answers unknown HTTP paths with a JSON 404 and no framework banner', async () => {
    const gw = await startTestGateway();
    const res = await request(gw.httpUrl).get('/nope').expect(404);
    expect(res.body).toEqual({ ok: false, error: { code: 'NOT_FOUND', message: 'no such endpoint' } });
    expect(res.headers['x-powered-by']).toBeUndefined();
  });

  it('answers 503 "starting" on /health and to upgrades until start-up is complete, then serves', async () => {
    // Redis that never answers: start-up waits for it (up to 3 s) with both ports already bound.
    const [port, deadRedis] = [await freePort(), await freePort()];
    const config = loadConfig({ GW_JWT_SECRET: TEST_SECRET, GW_HOST: '127.0.0.1', GW_PORT: String(port), GW_INTERNAL_PORT: '0', LOG_LEVEL: 'silent', GW_REDIS_URL: `redis://127.0.0.1:${deadRedis}` });
    const starting = startGateway({ config });
    const url = `http://127.0.0.1:${port}`;
    try {
      const early = await vi.waitFor(() => request(url).get('/health'), { timeout: 2000, interval: 10 });
      expect([early.status, early.body.data.status]).toEqual([503, 'starting']);
      await expect(ProbeClient.connect(`ws://127.0.0.1:${port}/rt`)).rejects.toThrow(/503/);
      await starting;
      const ready = await request(url).get('/health');
      expect([ready.status, ready.body.data.status]).toEqual([200, 'degraded']);
    } finally {
      await (await starting).stop();
    }
  });
});
