// The gateway as a real process: bad configuration exits 1 naming the variable; SIGTERM exits 0; a crash exits non-zero;
// several instances on one host need only different GW_PORTs; one that cannot start leaves nothing in Redis.
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { spawnGateway } from './helpers/process';
import { hasRedis, startRedis, stopAllRedis } from './helpers/redis';

const SECRET = 'x'.repeat(40);

/** Holds `port` on 127.0.0.1 (as another program would), or resolves null when it is taken already. */
function occupy(port: number): Promise<Server | null> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(null));
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

/** A port below the ephemeral range whose +10 000 (the default internal port) is free too. */
async function portWithFreeInternalPort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    const held = [await occupy(port), await occupy(port + 10_000)];
    for (const h of held) h?.close();
    if (held.every(Boolean)) return port;
  }
}

describe('gateway process', () => {
  it('exits 1 naming GW_JWT_SECRET when it is missing outside development', async () => {
    const p = spawnGateway({ NODE_ENV: 'production' });
    expect(await p.exited).toBe(1);
    expect(p.stderr()).toContain('invalid configuration: GW_JWT_SECRET');
    expect(p.stderr()).not.toMatch(/\n\s+at /);
  });

  it('exits 1 naming GW_JWT_SECRET when it is weak, without echoing it', async () => {
    const p = spawnGateway({ GW_JWT_SECRET: 'short' });
    expect(await p.exited).toBe(1);
    expect(p.stderr()).toContain('GW_JWT_SECRET: is too weak');
    expect(p.stderr()).not.toContain('short');
  });

  it('exits 1 naming a malformed variable', async () => {
    const p = spawnGateway({ GW_JWT_SECRET: SECRET, GW_PORT: 'abc' });
    expect(await p.exited).toBe(1);
    expect(p.stderr()).toContain('GW_PORT');
  });

  it('starts, logs JSON (warning of an expiry grace shorter than the clock tolerance), and exits 0 on SIGTERM', async () => {
    const p = spawnGateway({ GW_JWT_SECRET: SECRET, GW_PORT: '0', GW_HOST: '127.0.0.1', GW_TOKEN_EXPIRY_GRACE_MS: '1000', GW_JWT_CLOCK_TOLERANCE_MS: '5000' });
    await p.port();
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    const lines = p.stdout().trim().split('\n').map((l) => JSON.parse(l) as { msg: string });
    expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['gateway listening', 'shutting down', 'gateway stopped']));
    expect(lines.find((l) => l.msg.startsWith('GW_TOKEN_EXPIRY_GRACE_MS is shorter than GW_JWT_CLOCK_TOLERANCE_MS'))).toMatchObject({ level: 40 });
    expect(p.stdout()).not.toContain(SECRET);
  });

  for (const [kind, message] of [
    ['throw', 'uncaught exception; exiting'],
    ['reject', 'unhandled rejection; exiting'],
  ]) {
    it(`logs "${message}" and exits 1 instead of hanging (${kind})`, async () => {
      // A preloaded module fails once the gateway runs: the process-level handlers must catch it.
      const p = spawnGateway({ GW_JWT_SECRET: SECRET, GW_PORT: '0', GW_HOST: '127.0.0.1', CRASH_KIND: kind! }, ['-r', join(__dirname, 'helpers', 'throwLater.ts')]);
      expect(await p.exited).toBe(1);
      expect(p.stdout()).toContain(message);
      expect(p.stdout()).not.toMatch(/\n\s+at /);
    });
  }
});

describe.skipIf(!hasRedis)('instances on one host', () => {
  const held: Server[] = [];
  afterEach(async () => {
    for (const h of held.splice(0)) h.close();
    await stopAllRedis();
  });

  it('start side by side with only GW_PORT changed: each serves its internal listener (/metrics) on its own default port', async () => {
    const redis = await startRedis();
    const ports = [await portWithFreeInternalPort(), await portWithFreeInternalPort()];
    // GW_INTERNAL_PORT empty: the real default, not the helper's 0.
    const gateways = ports.map((port) => spawnGateway({ NODE_ENV: 'production', GW_JWT_SECRET: SECRET, GW_REDIS_URL: redis.url, GW_HOST: '127.0.0.1', GW_PORT: String(port), GW_INTERNAL_PORT: '' }));
    for (const [i, gw] of gateways.entries()) {
      await gw.waitFor('gateway listening');
      const listening = JSON.parse(gw.stdout().split('\n').find((l) => l.includes('gateway listening'))!) as { port: number; internalPort: number };
      expect(listening).toMatchObject({ port: ports[i], internalPort: ports[i]! + 10_000 });
      await request(`http://127.0.0.1:${ports[i]! + 10_000}`).get('/metrics').expect(200);
      await request(`http://127.0.0.1:${ports[i]}`).get('/health').expect(200);
    }
    for (const gw of gateways) gw.child.kill('SIGTERM');
    expect(await Promise.all(gateways.map((gw) => gw.exited))).toEqual([0, 0]);
  });

  for (const taken of ['GW_PORT', 'GW_INTERNAL_PORT'] as const) {
    it(`exits 1 naming ${taken} when its port is taken, and leaves nothing registered in Redis`, async () => {
      const redis = await startRedis();
      const port = await portWithFreeInternalPort();
      const busy = taken === 'GW_PORT' ? port : port + 10_000;
      held.push((await occupy(busy))!);
      const p = spawnGateway({ NODE_ENV: 'production', GW_JWT_SECRET: SECRET, GW_REDIS_URL: redis.url, GW_HOST: '127.0.0.1', GW_PORT: String(port), GW_INTERNAL_PORT: '', GW_INSTANCE_ID: 'cannot-listen' });
      expect(await p.exited).toBe(1);
      expect(p.stderr()).toContain(`cannot listen on 127.0.0.1:${busy} (${taken}): address already in use`);
      expect(p.stderr()).not.toMatch(/\n\s+at /);
      expect(await redis.client().keys('*')).toEqual([]);
    });
  }
});
