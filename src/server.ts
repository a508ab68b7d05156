// Composition root: config → logger → Express app → Router + Hub, the internal listener (metrics, server API, admin console) → listen. Run directly, it is the gateway process.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ApiMethods } from './api/methods';
import { openApiDocument } from './api/openapi';
import { createApiRouter } from './api/router';
import { createVerifier } from './auth/jwt';
import { createCluster, type MemoryCluster } from './cluster';
import { ConfigError, loadConfig, readEnvironment, type Config } from './config';
import { limits } from './config/limits';
import { timings } from './config/timings';
import { createAdminRouter } from './http/adminConsole';
import { AdminSessions } from './http/adminSessions';
import { createApp } from './http/app';
import { createInternalApp } from './http/internalApp';
import { createOriginPolicy } from './http/origins';
import { Hub } from './hub/Hub';
import { Membership } from './hub/Membership';
import { Router } from './hub/Router';
import { Metrics } from './metrics';
import { createLogger, type Logger } from './utils/logger';
import { version } from './utils/version';

export interface GatewayOptions {
  config: Config;
  /** Defaults to a pino logger at config.logLevel writing to stdout. */
  logger?: Logger;
  /** Without Redis: in-process state to share with other gateways in this process so they act as one. */
  memoryCluster?: MemoryCluster;
  /** Where the admin console's bundle is; default: dist/admin of this package, where `yarn build` writes it. */
  adminAssetsDir?: string;
}

/** dist/admin from src/ (ts-node, tests) and from dist/ (the build) alike. */
const ADMIN_ASSETS_DIR = join(__dirname, '..', 'dist', 'admin');

export interface Gateway {
  readonly config: Config;
  /** The port actually bound (useful with GW_PORT=0). */
  readonly port: number;
  /** The port of the internal listener (/metrics, the server API). */
  readonly internalPort: number;
  readonly connectionCount: number;
  /** Sessions held here, attached or orphaned. */
  readonly sessionCount: number;
  /** Drops a connection abruptly (its session is orphaned and can be resumed): for operators and failure drills. */
  terminateConnection(connectionId: string): boolean;
  /** Drains and closes every connection, then the HTTP server; resolves within config.shutdownGraceMs. */
  stop(reason?: string): Promise<void>;
}

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const { config } = options;
  const logger = options.logger ?? createLogger(config.logLevel);
  const startedAt = Date.now();
  const cluster = createCluster(config, logger, options.memoryCluster);
  // Gauges read the registries at scrape time, after everything below exists.
  const metrics: Metrics = new Metrics({
    connections: () => router.connectionCount,
    sessions: () => router.sessionCount,
    groups: () => membership.groupCount,
    redis: () => cluster.redisStatus(),
    dropped: () => cluster.broker.dropped,
    invalid: () => cluster.broker.invalid + router.invalidControl,
  });
  const membership: Membership = new Membership(cluster.broker, cluster.presence, logger, metrics, config);
  // A JWK set source fetches in the background from here on; start-up does not wait for it (docs/auth.md).
  const verifier = createVerifier(config.auth, logger);
  const uptimeSec = () => Math.floor((Date.now() - startedAt) / 1000);
  const router: Router = new Router({
    config,
    logger,
    membership,
    presence: cluster.presence,
    deduper: cluster.deduper,
    metrics,
    broker: cluster.broker,
    verifier,
    status: () => {
      const redis = cluster.redisStatus();
      const state = hub.state === 'open' ? 'up' : hub.state;
      const traffic = { at: Date.now(), ...metrics.traffic() };
      return { version, uptimeSec: uptimeSec(), connections: router.connectionCount, sessions: router.sessionCount, state, ...(redis ? { redis } : {}), traffic };
    },
  });
  const isOriginAllowed = createOriginPolicy(config.allowedOrigins);

  const app = createApp({
    isOriginAllowed,
    trustProxy: config.trustProxy,
    health: () => {
      const redis = cluster.redisStatus();
      return {
        status: hub.state !== 'open' ? hub.state : redis === 'down' ? 'degraded' : 'ok',
        version,
        uptimeSec: uptimeSec(),
        connections: router.connectionCount,
        ...(redis ? { redis } : {}),
        keys: verifier.health(),
      };
    },
  });
  const server = createServer(app);
  const hub = new Hub(server, router, {
    logger,
    maxPayloadBytes: config.maxPayloadBytes,
    isOriginAllowed,
    connectionLimiter: cluster.connectionLimiter,
    trustProxy: config.trustProxy,
  });
  // The server API only with its key (GW_API_KEY); it publishes and reads presence through the same parts as clients
  // do. The admin console comes with it, signed in with the same key, and calls the same API.
  const sessions = new AdminSessions(timings.adminSessionMs, limits.adminSessionsMax);
  const api = config.api && createApiRouter({ config: config.api, methods: new ApiMethods({ membership, presence: cluster.presence, revocations: router.revocations, inquiries: router.inquiries, logger }), document: openApiDocument(), metrics, logger, sessions });
  const admin =
    config.api &&
    createAdminRouter({ key: config.api.key, sessions, lifetimeMs: timings.adminSessionMs, assetsDir: options.adminAssetsDir ?? ADMIN_ASSETS_DIR, signInsPerSec: limits.adminSignInsPerSec, metrics, logger });
  const internalServer = createServer(createInternalApp({ registry: metrics.registry, metricsToken: config.metricsToken, api, admin }));
  const closeServers = async () => {
    hub.close();
    for (const s of [server, internalServer]) {
      s.closeAllConnections();
      if (s.listening) await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  };
  try {
    // Both ports are bound before the cluster is touched: an instance that cannot listen leaves nothing in Redis.
    // Until the cluster is ready, upgrades and /health answer 503 (starting).
    await listen(server, config.port, config.host, 'GW_PORT');
    await listen(internalServer, config.internalPort, config.internalHost, 'GW_INTERNAL_PORT');
    await cluster.ready(timings.redisStartupWaitMs);
    if (cluster.redisStatus() === 'down') logger.warn('redis unreachable at start: serving local connections, retrying in the background');
    await cluster.broker.start(membership);
    await cluster.broker.listenControl(router.control);
    await cluster.presence.start(membership);
  } catch (err) {
    verifier.close();
    await cluster.presence.stop();
    await cluster.broker.stop();
    await cluster.close();
    await closeServers();
    throw err;
  }
  router.start();
  hub.open();
  const port = (server.address() as AddressInfo).port;
  const internalPort = (internalServer.address() as AddressInfo).port;
  logger.info({ port, internalPort, host: config.host, version, instanceId: config.instanceId, redis: config.redis === undefined ? false : 'url' in config.redis ? 'single' : 'cluster', keys: config.auth.keys.kind, api: config.api !== undefined }, 'gateway listening');

  let stopping: Promise<void> | null = null;
  const stop = (reason = 'server shutting down'): Promise<void> => {
    stopping ??= (async () => {
      hub.drain();
      await router.handOver();
      router.shutdown(reason);
      await waitFor(() => router.connectionCount === 0, config.shutdownGraceMs);
      router.terminateAll();
      // ws reports a terminated socket's close a turn later: wait for it, so every session is released or kept below.
      await waitFor(() => router.connectionCount === 0, TERMINATED_CLOSE_WAIT_MS);
      router.stop();
      if (!cluster.keepsSessionsOnStop) router.endAllSessions();
      await membership.idle();
      membership.stop();
      await cluster.presence.stop();
      await cluster.broker.stop();
      await cluster.close();
      verifier.close();
      await closeServers();
      logger.info('gateway stopped');
    })();
    return stopping;
  };

  return {
    config,
    port,
    internalPort,
    get connectionCount() {
      return router.connectionCount;
    },
    get sessionCount() {
      return router.sessionCount;
    },
    terminateConnection: (connectionId) => router.terminateConnection(connectionId),
    stop,
  };
}

export function stopGateway(gateway: Gateway, reason?: string): Promise<void> {
  return gateway.stop(reason);
}

/** Listens, or fails with a message naming the address and the variable that chose it. */
function listen(server: Server, port: number, host: string, variable: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'address already in use' : err.code === 'EACCES' ? 'permission denied' : err.message;
      reject(new Error(`cannot listen on ${host}:${port} (${variable}): ${why}`));
    };
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      resolve();
    });
  });
}

/** How long stop() waits for the close events of the sockets it terminated (they come within a loop turn or two). */
const TERMINATED_CLOSE_WAIT_MS = 1_000;

/** Polls `done` until it holds or `timeoutMs` passes. */
async function waitFor(done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(readEnvironment());
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`gateway-strategy: invalid configuration: ${err.message}`);
      process.exit(1);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  process.on('uncaughtException', (err) => {
    logger.fatal({ err: err.message }, 'uncaught exception; exiting');
    process.exit(1);
  });
  process.on('unhandledRejection', (reason) => {
    logger.fatal({ err: reason instanceof Error ? reason.message : String(reason) }, 'unhandled rejection; exiting');
    process.exit(1);
  });
  for (const notice of config.notices) logger.warn(notice);
  if (config.usingDevSecret) logger.warn('using the documented development JWT secret (NODE_ENV=development); set GW_JWT_SECRET in production');
  // Handlers go in before start, so a signal during start-up still ends in an orderly exit.
  // A second signal while draining forces an immediate exit (code 1).
  let starting: Promise<Gateway> | null = null;
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      logger.warn({ signal }, 'second signal while shutting down; exiting now');
      process.exit(1);
    }
    signalled = true;
    logger.info({ signal }, 'shutting down');
    void starting?.then((gateway) => gateway.stop()).then(() => process.exit(0));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  starting = startGateway({ config, logger });
  await starting;
}

if (require.main === module) {
  void main().catch((err: unknown) => {
    console.error(`gateway-strategy: failed to start: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
