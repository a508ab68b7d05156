// Who may connect: Origin allowlist (403), CORS on HTTP, and the client IP behind trusted proxies.
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { startTestGateway } from './helpers/gateway';
import { rawExchange, upgradeRequest } from './helpers/raw';

const status = async (port: number, headers: Record<string, string>) => (await rawExchange(port, upgradeRequest(headers), 200)).slice(9, 12);

describe('Origin check', () => {
  it('refuses a browser origin not on GW_ALLOWED_ORIGINS with 403, allows listed ones and clients without Origin', async () => {
    const gw = await startTestGateway({ GW_ALLOWED_ORIGINS: 'https://app.example.com,http://localhost:*' });
    expect(await status(gw.gateway.port, { Origin: 'https://evil.example' })).toBe('403');
    expect(await status(gw.gateway.port, { Origin: 'https://app.example.com.evil.example' })).toBe('403');
    expect(await status(gw.gateway.port, { Origin: 'null' })).toBe('403');
    expect(await status(gw.gateway.port, { Origin: 'https://app.example.com' })).toBe('101');
    expect(await status(gw.gateway.port, { Origin: 'http://localhost:5173' })).toBe('101');
    expect(await status(gw.gateway.port, {})).toBe('101');
  });

  it('allows no browser origin by default outside development', async () => {
    const gw = await startTestGateway();
    expect(await status(gw.gateway.port, { Origin: 'http://localhost:3000' })).toBe('403');
    expect(await status(gw.gateway.port, {})).toBe('101');
  });

  it('allows local origins by default in development', async () => {
    const gw = await startTestGateway({ NODE_ENV: 'development' });
    expect(await status(gw.gateway.port, { Origin: 'http://localhost:3000' })).toBe('101');
    expect(await status(gw.gateway.port, { Origin: 'https://evil.example' })).toBe('403');
  });

  it('allows every origin only when * is set explicitly', async () => {
    const gw = await startTestGateway({ GW_ALLOWED_ORIGINS: '*' });
    expect(await status(gw.gateway.port, { Origin: 'https://anything.example' })).toBe('101');
  });
});

describe('CORS', () => {
  it('sends CORS headers to allowed origins only', async () => {
    const gw = await startTestGateway({ GW_ALLOWED_ORIGINS: 'https://app.example.com' });
    const allowed = await request(gw.httpUrl).get('/health').set('Origin', 'https://app.example.com').expect(200);
    expect(allowed.headers['access-control-allow-origin']).toBe('https://app.example.com');
    const other = await request(gw.httpUrl).get('/health').set('Origin', 'https://evil.example').expect(200);
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
    const preflight = await request(gw.httpUrl).options('/health').set('Origin', 'https://app.example.com').set('Access-Control-Request-Method', 'GET');
    expect(preflight.status).toBe(204);
    expect(preflight.headers['access-control-allow-methods']).toBe('GET,HEAD');
  });

  it('is strict by default: no CORS headers for any origin', async () => {
    const gw = await startTestGateway();
    const res = await request(gw.httpUrl).get('/health').set('Origin', 'https://app.example.com').expect(200);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('trusted proxies', () => {
  const xff = (value: string) => ({ 'X-Forwarded-For': value });

  it('ignores X-Forwarded-For from an untrusted peer: spoofed addresses share the peer’s limit', async () => {
    const gw = await startTestGateway({ GW_RATE_CONN_PER_MIN: '2', GW_TRUSTED_PROXIES: '10.0.0.0/8' });
    expect(await status(gw.gateway.port, xff('1.1.1.1'))).toBe('101');
    expect(await status(gw.gateway.port, xff('2.2.2.2'))).toBe('101');
    expect(await status(gw.gateway.port, xff('3.3.3.3'))).toBe('429');
  });

  it('honours X-Forwarded-For from a trusted peer: each real client has its own limit', async () => {
    const gw = await startTestGateway({ GW_RATE_CONN_PER_MIN: '2' });
    for (const ip of ['1.1.1.1', '2.2.2.2', '3.3.3.3']) expect(await status(gw.gateway.port, xff(ip))).toBe('101');
    expect(await status(gw.gateway.port, xff('1.1.1.1'))).toBe('101');
    expect(await status(gw.gateway.port, xff('1.1.1.1'))).toBe('429');
  });

  it('takes the rightmost address that is not itself a trusted proxy', async () => {
    const gw = await startTestGateway({ GW_RATE_CONN_PER_MIN: '2' });
    expect(await status(gw.gateway.port, xff('9.9.9.9, 1.1.1.1, 127.0.0.5'))).toBe('101');
    expect(await status(gw.gateway.port, xff('8.8.8.8, 1.1.1.1'))).toBe('101');
    expect(await status(gw.gateway.port, xff('1.1.1.1'))).toBe('429');
    expect(await status(gw.gateway.port, xff('9.9.9.9'))).toBe('101');
  });

  it('trusts nobody with GW_TRUSTED_PROXIES=none', async () => {
    const gw = await startTestGateway({ GW_RATE_CONN_PER_MIN: '1', GW_TRUSTED_PROXIES: 'none' });
    expect(await status(gw.gateway.port, xff('1.1.1.1'))).toBe('101');
    expect(await status(gw.gateway.port, xff('2.2.2.2'))).toBe('429');
  });
});
