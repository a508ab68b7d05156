// The gateway as a real process: bad configuration exits 1 naming the variable; SIGTERM exits 0; a crash exits non-zero.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { spawnGateway } from './helpers/process';

const SECRET = 'x'.repeat(40);

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

  it('starts, logs JSON, and exits 0 on SIGTERM', async () => {
    const p = spawnGateway({ GW_JWT_SECRET: SECRET, GW_PORT: '0', GW_HOST: '127.0.0.1' });
    await p.port();
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    const lines = p.stdout().trim().split('\n').map((l) => JSON.parse(l) as { msg: string });
    expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['gateway listening', 'shutting down', 'gateway stopped']));
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
