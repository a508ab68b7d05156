// Starts real gateway instances on 127.0.0.1:0 for integration tests, and mints tokens for them.
import { afterEach, expect, vi } from 'vitest';
import { mintToken, type MintOptions } from '../../src/auth/jwt';
import type { MemoryCluster } from '../../src/cluster';
import { loadConfig } from '../../src/config';
import { ProbeClient } from './ProbeClient';
import { startGateway, type Gateway } from '../../src/server';
import type { Role } from '../../src/types/domain';
import type { Logger } from '../../src/utils/logger';

export const TEST_SECRET = 'test-secret-that-is-at-least-32-bytes-long!!';

export interface JoinOptions {
  meta?: Record<string, unknown>;
  grants?: string[];
  /** The token's role (default: client). */
  role?: Role;
}

export interface TestGateway {
  gateway: Gateway;
  wsUrl: string;
  httpUrl: string;
  /** A token signed with the gateway's shared secret (the key source by default). */
  token(opts: MintOptions): Promise<string>;
  /** Connects a probe client and consumes its `hello`. */
  connect(): Promise<ProbeClient>;
  /** Connects, identifies into `groups` with a token granting `grants` (default: the groups) and consumes `ready`. */
  join(userId: string, groups?: string[], options?: JoinOptions): Promise<ProbeClient>;
  /**
   * Resolves once the gateway holds exactly `count` connections: after a client closed or dropped, its close has been
   * handled (its session ended or orphaned). Polls; never a fixed sleep.
   */
  connections(count: number): Promise<void>;
}

const running: Gateway[] = [];
const clients: ProbeClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.socket.terminate();
  await Promise.all(running.splice(0).map((g) => g.stop()));
});

export interface TestGatewayOptions {
  logger?: Logger;
  memoryCluster?: MemoryCluster;
  /** Where the admin console's bundle is (a test builds it with scripts/build-admin.ts). */
  adminAssetsDir?: string;
}

export async function startTestGateway(env: Record<string, string> = {}, options: TestGatewayOptions = {}): Promise<TestGateway> {
  // The test secret is the key source unless the test names another (a gateway takes exactly one).
  const otherSource = env.GW_JWT_PUBLIC_KEY_FILE !== undefined || env.GW_JWKS_URL !== undefined;
  const config = loadConfig({
    NODE_ENV: 'test',
    GW_PORT: '0',
    GW_HOST: '127.0.0.1',
    ...(otherSource ? {} : { GW_JWT_SECRET: TEST_SECRET }),
    LOG_LEVEL: 'silent',
    GW_SHUTDOWN_GRACE_MS: '500',
    // Every test client comes from 127.0.0.1; suites that test the per-IP limit set their own.
    GW_RATE_CONN_PER_MIN: '100000',
    GW_INTERNAL_PORT: '0',
    ...env,
  });
  const gateway = await startGateway({ config, ...options });
  running.push(gateway);
  const wsUrl = `ws://127.0.0.1:${gateway.port}/rt`;
  const tg: TestGateway = {
    gateway,
    wsUrl,
    httpUrl: `http://127.0.0.1:${gateway.port}`,
    token: (opts) => {
      const { keys } = config.auth;
      if (keys.kind !== 'secret') throw new Error(`a gateway verifying with a ${keys.kind} source: mint with the test's own private key`);
      return mintToken(opts, keys.secret);
    },
    connect: async () => {
      const client = await ProbeClient.connect(wsUrl);
      clients.push(client);
      await client.next('hello');
      return client;
    },
    join: async (userId, groups = [], options = {}) => {
      const client = await tg.connect();
      const ready = await client.identify(await tg.token({ sub: userId, groups: options.grants ?? groups, role: options.role }), groups, options.meta);
      if (ready.type !== 'ready') throw new Error(`identify failed: ${JSON.stringify(ready.data)}`);
      return client;
    },
    connections: (count) => vi.waitFor(() => expect(gateway.connectionCount).toBe(count), { timeout: 5000, interval: 10 }),
  };
  return tg;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Resolves once the clock has moved past the millisecond it is called in: a member who joins after it has a later
 * `since` than one who joined before (member lists are ordered by since, then userId). Test gateways share this clock.
 */
export async function nextMillisecond(): Promise<void> {
  const now = Date.now();
  while (Date.now() <= now) await new Promise((r) => setImmediate(r));
}
