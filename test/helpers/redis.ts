// A real redis-server on a free loopback port for the scale-out suites. Without the binary the suites skip
// locally (with a message) but fail under CI=true, where .ci/run must have installed it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { freePort } from '../../bench/proc';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach } from 'vitest';

export const REDIS_BINARY = 'redis-server';
export const hasRedis = spawnSync(REDIS_BINARY, ['--version']).status === 0;

if (!hasRedis) {
  if (process.env.CI === 'true') throw new Error(`${REDIS_BINARY} is not installed: CI must install it (scripts/setup.sh --test)`);
  console.warn(`skipping Redis suites: ${REDIS_BINARY} is not installed (bash scripts/setup.sh --test installs it)`);
}

export { freePort };

/** True when a Redis answers PING on the port. */
function pong(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.setTimeout(500);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (d) => {
      socket.destroy();
      resolve(d.toString().startsWith('+PONG'));
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

export interface RedisServer {
  url: string;
  port: number;
  /** Stops the server (SIGKILL: like a crash, nothing is saved). */
  kill(): Promise<void>;
  /** Starts it again on the same port. */
  restart(): Promise<void>;
  /** A client for assertions. */
  client(): Redis;
}

export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  let proc: ChildProcess | null = null;
  const clients: Redis[] = [];
  const launch = async () => {
    proc = spawn(REDIS_BINARY, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    while (!(await pong(port))) {
      if (Date.now() > deadline) throw new Error('redis-server did not start');
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const kill = async () => {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  };
  await launch();
  servers.push({ kill, clients });
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    kill,
    restart: launch,
    client() {
      const c = new Redis({ port, host: '127.0.0.1' });
      clients.push(c);
      return c;
    },
  };
}

const servers: { kill: () => Promise<void>; clients: Redis[] }[] = [];

/** Stops every server and client started by this file. */
export async function stopAllRedis(): Promise<void> {
  for (const s of servers.splice(0)) {
    for (const c of s.clients) c.disconnect();
    await s.kill();
  }
}

/**
 * One redis-server for the enclosing describe block: started before its tests, flushed before each one, stopped after
 * them all. The fields are set once the block's beforeAll ran.
 */
export function useRedis(): { readonly server: RedisServer; readonly admin: Redis } {
  const shared = {} as { server: RedisServer; admin: Redis };
  beforeAll(async () => {
    shared.server = await startRedis();
    shared.admin = shared.server.client();
  });
  beforeEach(async () => {
    await shared.admin.flushall();
  });
  afterAll(stopAllRedis);
  return shared;
}
