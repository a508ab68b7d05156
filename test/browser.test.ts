// The SDK in a real browser: Debian's Chromium, driven by playwright-core, loads a page bundling the SDK (esbuild).
// Two browser contexts identify into one group, see each other, exchange data; the gateway then cuts one socket and
// that page's client resumes with nothing lost. A screenshot goes to test-output/.
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { build } from 'esbuild';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { hasChromium, OUTPUT, useChromium } from './helpers/chromium';
import { startTestGateway, type TestGateway } from './helpers/gateway';
import { hasRedis, startRedis, stopAllRedis } from './helpers/redis';
const HTML = `<!doctype html><html><head><meta charset="utf-8"><title>gateway-strategy</title>
<style>body{font:14px system-ui;margin:24px}#status{font-weight:bold}li{font-family:monospace}</style></head>
<body><h1>gateway-strategy SDK</h1><p id="status">loading</p><ol id="log"></ol><script src="/bundle.js"></script></body></html>`;

/** Serves the page, the bundle, and tokens (standing in for the platform's HTTP API). */
async function servePage(gw: TestGateway): Promise<{ server: Server; origin: string }> {
  const bundled = await build({ entryPoints: [join(__dirname, 'browser', 'page.ts')], bundle: true, format: 'iife', platform: 'browser', target: 'es2022', write: false });
  const bundle = bundled.outputFiles[0]!.text;
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/bundle.js') return void res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle);
    if (url.pathname === '/token') {
      void gw.token({ sub: url.searchParams.get('sub') ?? 'anon', groups: ['room-*'] }).then((t) => res.writeHead(200, { 'content-type': 'text/plain' }).end(t));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html' }).end(HTML);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe.skipIf(!hasChromium)('the SDK in Chromium', () => {
  const browser = useChromium();

  it('two contexts see each other and exchange data; a socket the gateway cuts resumes with nothing lost', async () => {
    // The page's origin must be allowed, as it would be in production (GW_ALLOWED_ORIGINS).
    let page: { server: Server; origin: string } | null = null;
    const gw = await startTestGateway({ GW_ALLOWED_ORIGINS: 'http://127.0.0.1:*' });
    page = await servePage(gw);
    try {
      const open = async (sub: string): Promise<Page> => {
        const context = await browser().newContext();
        const p = await context.newPage();
        await p.goto(page!.origin);
        await p.evaluate(([url, who]) => window.page.start(url!, who!), [gw.wsUrl, sub]);
        return p;
      };
      const alice = await open('alice');
      const bob = await open('bob');
      await alice.waitForFunction(() => window.page.presence.includes('bob:UP'));
      expect(await bob.evaluate(() => window.page.client!.members('room-1').map((m) => m.userId))).toEqual(['alice', 'bob']);
      expect(await bob.evaluate(() => window.page.client!.count('room-1'))).toBe(2);

      await bob.evaluate(() => window.page.client!.publish('room-1', { n: 0 }));
      await alice.waitForFunction(() => window.page.received.length === 1);

      const aliceConnection = await alice.evaluate(() => window.page.client!.connectionId!);
      expect(gw.gateway.terminateConnection(aliceConnection)).toBe(true);
      await bob.evaluate(async () => {
        for (let n = 1; n <= 5; n++) await window.page.client!.publish('room-1', { n });
      });
      await alice.waitForFunction(() => window.page.received.length >= 6 && window.page.readies.length === 2, undefined, { timeout: 10_000 });
      expect(await alice.evaluate(() => window.page.received)).toEqual([0, 1, 2, 3, 4, 5].map((n) => ({ n })));
      expect(await alice.evaluate(() => window.page.readies)).toEqual([false, true]);
      expect(await alice.evaluate(() => window.page.client!.connectionId)).not.toBe(aliceConnection);
      expect(await bob.evaluate(() => window.page.presence)).toEqual([]);

      mkdirSync(OUTPUT, { recursive: true });
      await alice.screenshot({ path: join(OUTPUT, 'browser-resume.png'), fullPage: true });
    } finally {
      page?.server.close();
    }
  }, 60_000);

  it.skipIf(!hasRedis)('a page stays resumed across a graceful restart of the instance it was on: nothing lost, no presence change', async () => {
    const redis = await startRedis();
    const env = { GW_ALLOWED_ORIGINS: 'http://127.0.0.1:*', GW_REDIS_URL: redis.url };
    const restarting = await startTestGateway({ ...env, GW_INSTANCE_ID: 'restarting' });
    const staying = await startTestGateway({ ...env, GW_INSTANCE_ID: 'staying' });
    const served = await servePage(restarting);
    const context = await browser().newContext();
    try {
      const bob = await staying.join('bob', ['room-1']);
      const alice = await context.newPage();
      await alice.goto(served.origin);
      await alice.evaluate(([urls]) => window.page.start(urls!, 'alice'), [[restarting.wsUrl, staying.wsUrl]]);
      expect((await bob.next('presence_update')).data).toMatchObject({ userId: 'alice', status: 'UP' });
      await bob.request('data_update', { group: 'room-1', payload: { n: 0 } });
      await alice.waitForFunction(() => window.page.received.length === 1);
      // SIGTERM's path: the session moves to `staying` before the page's socket closes; the page reconnects there.
      const stopping = restarting.gateway.stop();
      for (let n = 1; n <= 3; n++) await bob.request('data_update', { group: 'room-1', payload: { n } });
      await stopping;
      for (let n = 4; n <= 5; n++) await bob.request('data_update', { group: 'room-1', payload: { n } });
      await alice.waitForFunction(() => window.page.readies.length === 2 && window.page.received.length >= 6, undefined, { timeout: 15_000 });
      expect(await alice.evaluate(() => window.page.readies)).toEqual([false, true]);
      expect(await alice.evaluate(() => window.page.received)).toEqual([0, 1, 2, 3, 4, 5].map((n) => ({ n })));
      await staying.join('sentinel', ['room-1']);
      expect((await bob.presenceBefore('sentinel')).filter(([userId]) => userId === 'alice')).toEqual([]);
    } finally {
      await context.close();
      served.server.close();
      await stopAllRedis();
    }
  }, 60_000);

  it('a page using the browser’s own WebSocket that calls socket.close() with no arguments: the other member sees DOWN within 2 s', async () => {
    const gw = await startTestGateway({ GW_ALLOWED_ORIGINS: 'http://127.0.0.1:*' });
    const served = await servePage(gw);
    const context = await browser().newContext();
    try {
      const bob = await gw.join('bob', ['room-1']);
      const page = await context.newPage();
      await page.goto(served.origin);
      // No SDK: the plain WebSocket API as any web app would use it, identify, wait for ready, then close().
      const ready = await page.evaluate(async (url) => {
        const token = await (await fetch('/token?sub=carol')).text();
        const socket = new WebSocket(url);
        const readyType = await new Promise<string>((resolve, reject) => {
          socket.onerror = () => reject(new Error('socket error'));
          socket.onmessage = (ev) => {
            const env = JSON.parse(String(ev.data)) as { type: string };
            if (env.type === 'hello') socket.send(JSON.stringify({ type: 'identify', id: '1', data: { token, groups: ['room-1'] } }));
            else resolve(env.type);
          };
        });
        (window as unknown as { rawSocket: WebSocket }).rawSocket = socket;
        return readyType;
      }, gw.wsUrl);
      expect(ready).toBe('ready');
      expect((await bob.next('presence_update')).data).toMatchObject({ userId: 'carol', status: 'UP' });
      await page.evaluate(() => (window as unknown as { rawSocket: WebSocket }).rawSocket.close());
      expect((await bob.next('presence_update', 2000)).data).toMatchObject({ userId: 'carol', status: 'DOWN' });
    } finally {
      await context.close();
      served.server.close();
    }
  }, 60_000);
});
