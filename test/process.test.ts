// The gateway as a real process: bad configuration exits 1 with a message naming the variable; SIGTERM exits 0.
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(__dirname, '..');
const entry = join(root, 'src', 'server.ts');

function run(env: Record<string, string>, onOutput?: (text: string, kill: () => void) => void) {
  // An empty working directory, so no developer .env is picked up.
  const cwd = mkdtempSync(join(tmpdir(), 'gw-proc-'));
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', entry], {
    cwd,
    env: { PATH: process.env.PATH ?? '', TS_NODE_PROJECT: join(root, 'tsconfig.json'), NODE_PATH: join(root, 'node_modules'), ...env },
  });
  let stdout = '';
  let stderr = '';
  let killed = false;
  const kill = () => {
    if (!killed) child.kill('SIGTERM');
    killed = true;
  };
  child.stdout.on('data', (d: Buffer) => {
    stdout += String(d);
    onOutput?.(stdout, kill);
  });
  child.stderr.on('data', (d: Buffer) => (stderr += String(d)));
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => child.on('exit', (code) => done({ code, stdout, stderr })));
}

describe('gateway process', () => {
  it('exits 1 naming GW_JWT_SECRET when it is missing outside development', async () => {
    const r = await run({ NODE_ENV: 'production' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('invalid configuration: GW_JWT_SECRET');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('exits 1 naming GW_JWT_SECRET when it is weak', async () => {
    const r = await run({ GW_JWT_SECRET: 'short' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('GW_JWT_SECRET: is too weak');
    expect(r.stderr).not.toContain('short');
  });

  it('exits 1 naming a malformed variable', async () => {
    const r = await run({ GW_JWT_SECRET: 'x'.repeat(40), GW_PORT: 'abc' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('GW_PORT');
  });

  it('starts, logs JSON, and exits 0 on SIGTERM', async () => {
    const r = await run({ GW_JWT_SECRET: 'x'.repeat(40), GW_PORT: '0', GW_HOST: '127.0.0.1' }, (out, kill) => {
      if (out.includes('gateway listening')) kill();
    });
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { msg: string });
    expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['gateway listening', 'shutting down', 'gateway stopped']));
    expect(r.stdout).not.toContain('x'.repeat(40));
  });
});
