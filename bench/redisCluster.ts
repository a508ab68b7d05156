// A throwaway Redis Cluster for the benchmarks: six redis-server processes on loopback ports (`cluster-enabled yes`),
// joined by `redis-cli --cluster create … --cluster-replicas 1` into three masters with a replica each. Knows every
// node's pid (for /proc CPU readings) and which shard it serves. Files live in a temporary folder removed at stop.
// (The test suites have their own, with failover controls: test/helpers/redisCluster.ts.)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './proc';

/** Cluster bus port = client port + this (Redis's rule). */
const BUS_OFFSET = 10_000;

export interface BenchClusterNode {
  port: number;
  pid: number;
  role: 'master' | 'replica';
  /** The port of the master of this node's shard (its own port for a master). */
  shard: number;
}

export interface BenchCluster {
  /** Every node, masters first, each master's replica after the masters, in the masters' order. */
  nodes: BenchClusterNode[];
  stop(): Promise<void>;
}

/** Whether redis-server and redis-cli are installed: without them the cluster modes are skipped. */
export function redisBinariesMissing(): string | null {
  for (const binary of ['redis-server', 'redis-cli']) {
    if (spawnSync(binary, ['--version']).status !== 0) return `${binary} is not installed`;
  }
  return null;
}

/** A loopback port whose bus port (port + 10000) is free too (the test helper's cluster uses it as well). */
export async function clusterPort(taken: Set<number>): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (port + BUS_OFFSET > 65535 || taken.has(port)) continue;
    const bus = await new Promise<boolean>((resolve) => {
      const srv = createServer().once('error', () => resolve(false));
      srv.listen(port + BUS_OFFSET, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (bus) return port;
  }
}

function admin(port: number): Redis {
  const c = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, retryStrategy: () => null, lazyConnect: true });
  c.on('error', () => undefined);
  return c;
}

async function ask<T>(port: number, ...args: [string, ...string[]]): Promise<T | null> {
  const c = admin(port);
  try {
    await c.connect();
    return (await c.call(...args)) as T;
  } catch {
    return null;
  } finally {
    c.disconnect();
  }
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`redis cluster: ${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A single redis-server with the cluster nodes' persistence settings (none), for the single-node mode. */
export async function startRedisServer(): Promise<{ port: number; pid: number; stop(): Promise<void> }> {
  const port = await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  await new Promise((resolve, reject) => proc.once('spawn', resolve).once('error', reject));
  const stop = () => kill(proc);
  try {
    await until(`redis-server on ${port} did not answer`, async () => (await ask<string>(port, 'PING')) === 'PONG', 10_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, pid: proc.pid!, stop };
}

async function kill(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGKILL');
  await exited;
}

export async function startRedisCluster(): Promise<BenchCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'gw-bench-cluster-'));
  const taken = new Set<number>();
  for (let i = 0; i < 6; i++) taken.add(await clusterPort(taken));
  const ports = [...taken];
  const procs = ports.map((port) =>
    spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--repl-diskless-sync-delay', '0', '--dir', dir],
      { stdio: 'ignore' },
    ),
  );
  const stop = async () => {
    for (const p of procs) await kill(p);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) await until(`node ${port} did not start`, async () => (await ask<string>(port, 'PING')) === 'PONG', 10_000);
    const created = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '1', '--cluster-yes'], { encoding: 'utf8', timeout: 30_000 });
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
    await until(
      'cluster_state:ok and every replica in sync',
      async () => {
        for (const port of ports) {
          const info = await ask<string>(port, 'CLUSTER', 'INFO');
          const replication = await ask<string>(port, 'INFO', 'replication');
          if (!info?.includes('cluster_state:ok') || !replication) return false;
          // Every node's view has the three replicas (right after create, some still list six masters).
          const view = (await ask<string>(port, 'CLUSTER', 'NODES')) ?? '';
          if (view.split('\n').filter((line) => / (myself,)?slave /.test(line)).length !== 3) return false;
          if (replication.includes('role:slave') && !replication.includes('master_link_status:up')) return false;
        }
        return true;
      },
      30_000,
    );
    const text = (await ask<string>(ports[0]!, 'CLUSTER', 'NODES'))!;
    const byId = new Map<string, { port: number; master: string | null }>();
    for (const line of text.trim().split('\n')) {
      const [id, addr, flags, master] = line.split(' ');
      byId.set(id!, { port: Number(addr!.split('@')[0]!.split(':')[1]), master: flags!.split(',').includes('slave') ? master! : null });
    }
    const nodes: BenchClusterNode[] = ports.map((port, i) => {
      const me = [...byId.values()].find((n) => n.port === port)!;
      return { port, pid: procs[i]!.pid!, role: me.master === null ? 'master' : 'replica', shard: me.master === null ? port : byId.get(me.master)!.port };
    });
    const masters = nodes.filter((n) => n.role === 'master');
    const order = (n: BenchClusterNode) => (n.role === 'master' ? 0 : 3) + masters.findIndex((m) => m.port === n.shard);
    return { nodes: nodes.sort((a, b) => order(a) - order(b)), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
