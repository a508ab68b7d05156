// A real Redis Cluster for the scale-out suites: six Debian redis-server processes on loopback ports
// (`cluster-enabled yes`), joined with `redis-cli --cluster create … --cluster-replicas 1`: three masters, each with one
// replica. Its files live in a temporary folder removed at the end; nothing is left running.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { clusterPort } from '../../bench/redisCluster';
import { isCluster, type RedisClient } from '../../src/redis/connection';
import { hasRedis, REDIS_BINARY } from './redis';

export { hasRedis };

/** How long a node may be silent before its replica takes over: short, so failover tests run in seconds. */
export const CLUSTER_NODE_TIMEOUT_MS = 1_000;

export interface ClusterNodeProcess {
  port: number;
  /** Whether the process runs now. */
  readonly alive: boolean;
  kill(): Promise<void>;
  start(): Promise<void>;
}

export interface RedisClusterServer {
  /** `host:port,…` of every node: GW_REDIS_CLUSTER_NODES. */
  readonly seeds: string;
  /** The same as a target for the gateway's `createRedis`. */
  readonly target: { nodes: { host: string; port: number }[] };
  readonly nodes: ClusterNodeProcess[];
  /** A cluster client for assertions (closed at stop). */
  client(): Cluster;
  /** A plain client to one node. */
  nodeClient(port: number): Redis;
  /** The node process that is the master of `key`'s slot now. */
  masterOf(key: string): Promise<ClusterNodeProcess>;
  /** The masters now. */
  masters(): Promise<ClusterNodeProcess[]>;
  /** Empties every master. */
  flushall(): Promise<void>;
  /** Resolves once every live node reports cluster_state:ok, every live replica has synced, and there are three masters. */
  healthy(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

async function pingable(port: number): Promise<boolean> {
  const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  c.on('error', () => undefined);
  try {
    await c.connect();
    return (await c.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    c.disconnect();
  }
}

const until = async (what: string, check: () => Promise<boolean>, timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`redis cluster: ${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

export async function startRedisCluster(): Promise<RedisClusterServer> {
  const dir = mkdtempSync(join(tmpdir(), 'gw-redis-cluster-'));
  const taken = new Set<number>();
  const ports: number[] = [];
  for (let i = 0; i < 6; i++) {
    const port = await clusterPort(taken);
    taken.add(port);
    ports.push(port);
  }
  const clients: (Redis | Cluster)[] = [];
  const nodes: ClusterNodeProcess[] = ports.map((port) => {
    let proc: ChildProcess | null = null;
    const node: ClusterNodeProcess = {
      port,
      get alive() {
        return proc !== null && proc.exitCode === null && proc.signalCode === null;
      },
      async start() {
        if (node.alive) return;
        proc = spawn(
          REDIS_BINARY,
          ['--port', String(port), '--bind', '127.0.0.1', '--protected-mode', 'no', '--save', '', '--appendonly', 'no', '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', String(CLUSTER_NODE_TIMEOUT_MS), '--repl-diskless-sync-delay', '0', '--dir', dir],
          { stdio: 'ignore' },
        );
        await until(`node ${port} did not start`, () => pingable(port), 10_000);
      },
      async kill() {
        const p = proc;
        if (!p || p.exitCode !== null || p.signalCode !== null) return;
        const exited = new Promise((r) => p.once('exit', r));
        p.kill('SIGKILL');
        await exited;
      },
    };
    return node;
  });
  const admin = (port: number) => {
    const c = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, retryStrategy: () => null });
    c.on('error', () => undefined);
    return c;
  };
  const roles = async (): Promise<Map<number, 'master' | 'slave'>> => {
    const live = nodes.find((n) => n.alive)!;
    const c = admin(live.port);
    try {
      const text = (await c.call('CLUSTER', 'NODES')) as string;
      const out = new Map<number, 'master' | 'slave'>();
      for (const line of text.trim().split('\n')) {
        const [, addr, flags] = line.split(' ');
        const port = Number(addr!.split('@')[0]!.split(':')[1]);
        if (flags!.includes('fail')) continue;
        out.set(port, flags!.includes('master') ? 'master' : 'slave');
      }
      return out;
    } finally {
      c.disconnect();
    }
  };
  const cluster: RedisClusterServer = {
    seeds: ports.map((p) => `127.0.0.1:${p}`).join(','),
    target: { nodes: ports.map((port) => ({ host: '127.0.0.1', port })) },
    nodes,
    client() {
      const c = new Cluster(ports.map((port) => ({ host: '127.0.0.1', port })), { slotsRefreshInterval: 500 });
      c.on('error', () => undefined);
      clients.push(c);
      return c;
    },
    nodeClient(port) {
      const c = admin(port);
      clients.push(c);
      return c;
    },
    async masterOf(key) {
      const slot = Number(await admin(nodes.find((n) => n.alive)!.port).call('CLUSTER', 'KEYSLOT', key).finally(() => undefined));
      for (const node of nodes.filter((n) => n.alive)) {
        const c = admin(node.port);
        try {
          const [role] = (await c.call('ROLE')) as [string];
          if (role !== 'master') continue;
          const slots = (await c.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
          const owner = slots.find(([from, to]) => slot >= from && slot <= to);
          if (owner && owner[2][1] === node.port) return node;
        } finally {
          c.disconnect();
        }
      }
      throw new Error(`no live master holds the slot of "${key}"`);
    },
    async masters() {
      const r = await roles();
      return nodes.filter((n) => n.alive && r.get(n.port) === 'master');
    },
    async flushall() {
      for (const node of await cluster.masters()) {
        const c = admin(node.port);
        await c.flushall().finally(() => c.disconnect());
      }
    },
    async healthy(timeoutMs = 20_000) {
      await until(
        'cluster_state:ok on every live node',
        async () => {
          for (const node of nodes.filter((n) => n.alive)) {
            const c = admin(node.port);
            try {
              const info = (await c.call('CLUSTER', 'INFO')) as string;
              if (!info.includes('cluster_state:ok')) return false;
              // A replica that never synced is not eligible to take over: wait for its link.
              const replication = (await c.call('INFO', 'replication')) as string;
              if (replication.includes('role:slave') && !replication.includes('master_link_status:up')) return false;
            } catch {
              return false;
            } finally {
              c.disconnect();
            }
          }
          return (await cluster.masters()).length === 3;
        },
        timeoutMs,
      );
    },
    async stop() {
      for (const c of clients.splice(0)) c.disconnect();
      for (const node of nodes) await node.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    for (const node of nodes) await node.start();
    const created = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '1', '--cluster-yes'], { encoding: 'utf8', timeout: 30_000 });
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
    await cluster.healthy(30_000);
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

/**
 * One Redis Cluster for the enclosing describe block: started before its tests, emptied before each one, stopped
 * after them all. `server` is set once the block's beforeAll ran.
 */
export function useRedisCluster(): { readonly server: RedisClusterServer } {
  const shared = {} as { server: RedisClusterServer };
  beforeAll(async () => {
    shared.server = await startRedisCluster();
  }, 60_000);
  beforeEach(async () => {
    await shared.server.healthy();
    await shared.server.flushall();
  });
  afterAll(async () => {
    await shared.server?.stop();
  });
  return shared;
}

/**
 * Resolves once a gateway connection (`createRedis`) is ready and, on a cluster, connected to every master: ioredis
 * opens a node's connection at its first command and refuses the node's next ones (no offline queue) until it is up.
 */
export async function connected(connection: RedisClient): Promise<RedisClient> {
  if (connection.status !== 'ready') await new Promise((ready) => connection.once('ready', ready));
  if (isCluster(connection)) await Promise.all(connection.nodes('master').map((node) => node.ping()));
  return connection;
}
