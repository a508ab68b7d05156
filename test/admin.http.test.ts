// The admin console over plain HTTP, on real gateways: served at /admin on the internal listener only with
// GW_API_KEY, with its strict headers and no inline script or style; the sign-in (wrong key refused, the cookie's
// attributes, its own rate limit, counted on /metrics); the cookie as the server API's credential, under the CSRF
// guard (own Origin, JSON); sign-out; a sign-in held by one instance only. The browser suite is admin.test.ts.
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { ADMIN_CSP } from '../src/http/adminConsole';
import { useAdminBundle, internalOrigin, signIn } from './helpers/admin';
import { API_ENV, API_KEY, apiClient } from './helpers/api';
import { startTestGateway } from './helpers/gateway';

const COOKIE = /^gw_admin=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\/; Max-Age=43200$/;

describe('admin console: serving', () => {
  const bundle = useAdminBundle();

  it('answers 404 at /admin and every path under it without GW_API_KEY, like any unknown path', async () => {
    const gw = await startTestGateway({}, { adminAssetsDir: bundle.dir });
    const http = request(internalOrigin(gw));
    for (const path of ['/admin', '/admin/', '/admin/assets/admin.js', '/admin/assets/admin.css']) {
      const res = await http.get(path);
      expect([path, res.status, res.body]).toEqual([path, 404, { ok: false, error: { code: 'NOT_FOUND', message: 'no such endpoint' } }]);
    }
    expect((await http.post('/admin/session').send({ key: API_KEY })).status).toBe(404);
  });

  it('is not on the public port', async () => {
    const gw = await startTestGateway(API_ENV, { adminAssetsDir: bundle.dir });
    for (const path of ['/admin', '/admin/assets/admin.js']) expect((await request(gw.httpUrl).get(path)).status).toBe(404);
  });

  it('serves the shell and its bundle with the strict CSP, nosniff and no referrer; the shell has no inline script or style', async () => {
    const gw = await startTestGateway(API_ENV, { adminAssetsDir: bundle.dir });
    const http = request(internalOrigin(gw));
    for (const path of ['/admin', '/admin/']) {
      const res = await http.get(path);
      expect([res.status, res.headers['content-type']]).toEqual([200, 'text/html; charset=utf-8']);
      expect(res.headers['content-security-policy']).toBe(ADMIN_CSP);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['referrer-policy']).toBe('no-referrer');
      const html = res.text;
      expect(html.match(/<script\b[^>]*>/g)).toEqual(['<script src="/admin/assets/admin.js" defer>']);
      expect(html).not.toMatch(/<style\b|\sstyle=|\son[a-z]+=/i);
      expect(html.match(/(?:src|href)="[^"]*"/g)).toEqual(['href="data:,"', 'href="/admin/assets/admin.css"', 'src="/admin/assets/admin.js"']);
    }
    expect(ADMIN_CSP).toBe("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'");
    for (const [path, type] of [
      ['/admin/assets/admin.js', 'text/javascript; charset=utf-8'],
      ['/admin/assets/admin.css', 'text/css; charset=utf-8'],
    ] as const) {
      const res = await http.get(path);
      expect([path, res.status, res.headers['content-type'], res.headers['cache-control'], res.headers['content-security-policy']]).toEqual([path, 200, type, 'no-cache', ADMIN_CSP]);
      // no-cache means revalidate: the ETag must bring a 304 back.
      expect((await http.get(path).set('If-None-Match', res.headers.etag!)).status).toBe(304);
    }
    const missing = await http.get('/admin/assets/nope.js');
    expect([missing.status, missing.headers['content-security-policy']]).toEqual([404, ADMIN_CSP]);
    expect((await http.get('/admin/assets/../../package.json')).status).toBe(404);
  });
});

describe('admin console: sign-in and the cookie', () => {
  it('refuses a wrong key with the generic 401 and no cookie; the right key gets an HttpOnly SameSite=Strict cookie, not Secure', async () => {
    const gw = await startTestGateway(API_ENV);
    const http = request(internalOrigin(gw));
    for (const key of ['', 'wrong', `${API_KEY.slice(0, -1)}?`, `${API_KEY}x`]) {
      const res = await http.post('/admin/session').send({ key });
      expect([res.status, res.body, res.headers['set-cookie']]).toEqual([401, { ok: false, error: { code: 'UNAUTHORIZED', message: 'a valid API key is required' } }, undefined]);
    }
    const res = await http.post('/admin/session').set('Origin', internalOrigin(gw)).send({ key: API_KEY });
    expect(res.status).toBe(204);
    expect(res.headers['set-cookie']).toHaveLength(1);
    expect(res.headers['set-cookie']![0]).toMatch(COOKIE);
    expect(res.headers['content-security-policy']).toBe(ADMIN_CSP);
  });

  it('refuses a sign-in that is not JSON from the console’s own origin (403), or not { key } (400)', async () => {
    const gw = await startTestGateway(API_ENV);
    const http = request(internalOrigin(gw));
    const refused = async (res: request.Response, status: number, code: string) => expect([res.status, res.body.error?.code, res.headers['set-cookie']]).toEqual([status, code, undefined]);
    await refused(await http.post('/admin/session').type('form').send(`key=${API_KEY}`), 403, 'FORBIDDEN');
    await refused(await http.post('/admin/session').set('Content-Type', 'text/plain').send(JSON.stringify({ key: API_KEY })), 403, 'FORBIDDEN');
    await refused(await http.post('/admin/session').set('Origin', 'http://evil.example').send({ key: API_KEY }), 403, 'FORBIDDEN');
    await refused(await http.post('/admin/session').set('Origin', 'null').send({ key: API_KEY }), 403, 'FORBIDDEN');
    await refused(await http.post('/admin/session').set('Content-Type', 'application/json').send('{"key":'), 400, 'BAD_REQUEST');
    await refused(await http.post('/admin/session').send({ password: API_KEY }), 400, 'INVALID_REQUEST');
    await refused(await http.post('/admin/session').send({ key: 1 }), 400, 'INVALID_REQUEST');
  });

  it('lets the cookie call the server API in place of the key, only as JSON from the console’s own origin', async () => {
    const gw = await startTestGateway(API_ENV);
    const api = apiClient(gw);
    const cookie = await signIn(gw);
    const origin = internalOrigin(gw);
    const ok = await api.call('info', {}, { key: null, cookie, origin });
    expect([ok.status, ok.body.data.instances]).toEqual([200, [expect.objectContaining({ state: 'up' })]]);
    expect((await api.call('info', {}, { key: null, cookie })).status).toBe(200);
    expect((await api.get('/api/openapi.json', { key: null, cookie, origin })).status).toBe(200);
    const alice = await gw.join('alice', ['g']);
    for (const options of [
      { origin: 'http://evil.example' },
      { origin: 'http://127.0.0.1:1' },
      { contentType: 'text/plain', raw: '{"group":"g","payload":"no"}' },
      { contentType: 'application/x-www-form-urlencoded', raw: 'group=g' },
    ]) {
      const refused = await api.call('publish', { group: 'g', payload: 'no' }, { key: null, cookie, ...options });
      expect([refused.status, refused.body.error.code], JSON.stringify(options)).toEqual([403, 'FORBIDDEN']);
    }
    expect((await api.call('publish', { group: 'g', payload: 'yes' }, { key: null, cookie, origin })).status).toBe(200);
    expect((await alice.next('data_update')).data!.payload).toBe('yes');
    // The key needs no Origin rule: backends send none, and a browser cannot set the header on a cross-site form.
    expect((await api.call('info', {}, { origin: 'http://evil.example' })).status).toBe(200);
    for (const wrong of ['gw_admin=', 'gw_admin=forged', `gw_admin=${cookie.slice('gw_admin='.length, -1)}x`, `other=${cookie.slice('gw_admin='.length)}`]) {
      const refused = await api.call('info', {}, { key: null, cookie: wrong, origin });
      expect([refused.status, refused.body.error.code], wrong).toEqual([401, 'UNAUTHORIZED']);
    }
  });

  it('signs out: the cookie is cleared and no longer accepted', async () => {
    const gw = await startTestGateway(API_ENV);
    const cookie = await signIn(gw);
    const other = await signIn(gw);
    const out = await request(internalOrigin(gw)).delete('/admin/session').set('Cookie', cookie).set('Origin', internalOrigin(gw));
    expect([out.status, out.headers['set-cookie']]).toEqual([204, ['gw_admin=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0']]);
    expect((await apiClient(gw).call('info', {}, { key: null, cookie })).status).toBe(401);
    expect((await apiClient(gw).call('info', {}, { key: null, cookie: other })).status).toBe(200);
    expect((await request(internalOrigin(gw)).delete('/admin/session').set('Cookie', other).set('Origin', 'http://evil.example')).status).toBe(403);
  });

  it('holds a sign-in on the instance that made it only', async () => {
    const a = await startTestGateway(API_ENV);
    const b = await startTestGateway(API_ENV);
    const cookie = await signIn(a);
    expect((await apiClient(a).call('info', {}, { key: null, cookie })).status).toBe(200);
    expect((await apiClient(b).call('info', {}, { key: null, cookie })).status).toBe(401);
  });

  it('limits sign-in attempts with a bucket of their own (429, Retry-After) that the API’s callers never share; each counted on /metrics', async () => {
    const gw = await startTestGateway(API_ENV);
    const http = request(internalOrigin(gw));
    const statuses: number[] = [];
    let retryAfter: string | undefined;
    for (let i = 0; i < 8; i++) {
      const res = await http.post('/admin/session').send({ key: 'wrong' });
      statuses.push(res.status);
      if (res.status === 429) retryAfter = res.headers['retry-after'];
    }
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses).toContain(429);
    expect(retryAfter).toMatch(/^[1-9]\d*$/);
    // The API's own bucket is untouched, the key still works.
    expect((await apiClient(gw).call('info', {})).status).toBe(200);
    const metrics = (await http.get('/metrics')).text;
    expect(metrics).toContain('gateway_api_requests_total{method="admin_session",status="401"} 5');
    expect(metrics).toMatch(/gateway_api_requests_total\{method="admin_session",status="429"\} [1-3]\n/);
  });
});
