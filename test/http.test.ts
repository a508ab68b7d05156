// HTTP surface: /health, 426 on a plain GET of /rt, upgrades to other paths refused.
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { ProbeClient } from './helpers/ProbeClient';
import { version } from '../src/utils/version';
import { startTestGateway } from './helpers/gateway';

describe('HTTP', () => {
  it('GET /health answers 200 with status, version, uptime and the connection count', async () => {
    const gw = await startTestGateway();
    await gw.join('alice');
    await gw.connect();
    const res = await request(gw.httpUrl).get('/health').expect(200).expect('content-type', /json/);
    expect(res.body).toEqual({ ok: true, data: { status: 'ok', version, uptimeSec: expect.any(Number), connections: 2 } });
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
});
