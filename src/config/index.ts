// The one configuration module: every GW_* variable is parsed and validated here, once, at start.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import dotenv from 'dotenv';
import proxyaddr from 'proxy-addr';
import { z } from 'zod';
import { authConfig, type AuthConfig } from './auth';
import { ConfigError } from './errors';
import { limits } from './limits';
import { timings } from './timings';

export { ConfigError } from './errors';
export { DEV_JWT_SECRET, MIN_JWT_SECRET_BYTES, MIN_SESSION_SECRET_BYTES, type AuthConfig, type KeySource } from './auth';

/** Browser origins allowed by default in development (any port on the local host). */
export const DEV_ALLOWED_ORIGINS = ['http://localhost:*', 'http://127.0.0.1:*', 'http://[::1]:*', 'https://localhost:*', 'https://127.0.0.1:*'];

/** The server API's key is a shared secret: long enough that guessing it is out of reach. */
export const MIN_API_KEY_LENGTH = 32;

/**
 * Unless GW_INTERNAL_PORT is set, the internal listener (/metrics, the server API) is on GW_PORT plus this, so
 * instances that differ only in GW_PORT never collide (4100 → 14100, 4101 → 14101; GW_PORT=0 → any free port).
 */
export const INTERNAL_PORT_OFFSET = 10_000;

/** Former names of variables, still read; set alongside its new name to another value, the new one wins (a notice). */
const CONFIG_ALIASES = { GW_METRICS_PORT: 'GW_INTERNAL_PORT', GW_METRICS_HOST: 'GW_INTERNAL_HOST' } as const;

const ms = (fallback: number) => z.coerce.number().int().min(1).max(24 * 3600_000).default(fallback);
const count = (fallback: number, max = 1_000_000) => z.coerce.number().int().min(1).max(max).default(fallback);
const port = z.coerce.number().int().min(0).max(65535);
const list = z.string().transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean));

const envSchema = z.object({
  NODE_ENV: z.string().default('production'),
  GW_PORT: port.default(4100),
  GW_HOST: z.string().min(1).default('0.0.0.0'),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  GW_JWT_SECRET: z.string().optional(),
  GW_JWT_PUBLIC_KEY_FILE: z.string().optional(),
  GW_JWKS_URL: z.string().optional(),
  GW_JWT_ISSUER: z.string().optional(),
  GW_JWT_AUDIENCE: list.optional(),
  GW_JWT_CLOCK_TOLERANCE_MS: z.coerce.number().int().min(0).max(300_000).default(timings.jwtClockToleranceMs),
  GW_JWKS_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(timings.jwksTimeoutMs),
  GW_JWKS_MAX_BYTES: z.coerce.number().int().min(1024).max(16 * 1024 * 1024).default(limits.jwksMaxBytes),
  GW_JWKS_REFRESH_MS: z.coerce.number().int().min(100).max(24 * 3600_000).default(timings.jwksRefreshMs),
  GW_JWKS_COOLDOWN_MS: z.coerce.number().int().min(100).max(3600_000).default(timings.jwksCooldownMs),
  GW_SESSION_SECRET: z.string().optional(),
  GW_TOKEN_EXPIRY_GRACE_MS: z.coerce.number().int().min(0).max(300_000).default(timings.tokenExpiryGraceMs),
  GW_HEARTBEAT_INTERVAL_MS: ms(timings.heartbeatIntervalMs),
  GW_HEARTBEAT_TIMEOUT_MS: ms(timings.heartbeatTimeoutMs),
  GW_IDENTIFY_TIMEOUT_MS: ms(timings.identifyTimeoutMs),
  GW_ORPHAN_SESSION_TTL_MS: ms(timings.orphanSessionTtlMs),
  GW_SHUTDOWN_GRACE_MS: ms(timings.shutdownGraceMs),
  GW_MAX_PAYLOAD_BYTES: z.coerce.number().int().min(1024).max(16 * 1024 * 1024).default(limits.maxPayloadBytes),
  GW_RATE_CONN_PER_MIN: count(limits.connectionsPerMinutePerIp),
  GW_RATE_MSG_PER_10S: count(limits.messagesPer10s),
  GW_MAX_CONNECTIONS_PER_USER: count(limits.connectionsPerUser),
  GW_MAX_GROUPS_PER_CONNECTION: count(limits.groupsPerConnection),
  GW_SLOW_CONSUMER_BYTES: count(limits.slowConsumerBytes, 1024 * 1024 * 1024),
  GW_SLOW_CONSUMER_GRACE_MS: ms(limits.slowConsumerGraceMs),
  GW_ALLOWED_ORIGINS: list.optional(),
  GW_TRUSTED_PROXIES: list.default(['loopback']),
  GW_REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL').optional(),
  GW_REDIS_CLUSTER_NODES: z.string().optional(),
  GW_INSTANCE_ID: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, ".", "_" and "-" only, at most 64').optional(),
  GW_INSTANCE_TTL_MS: ms(timings.instanceTtlMs),
  GW_SIGNAL_DEDUP_MS: ms(timings.signalDedupMs),
  GW_EVENTS_MAXLEN: count(limits.eventsMaxLen, 100_000_000),
  GW_RESUME_BUFFER_MESSAGES: count(limits.resumeBufferMessages, 100_000),
  GW_RESUME_BUFFER_BYTES: count(limits.resumeBufferBytes, 256 * 1024 * 1024),
  GW_PRESENCE_BATCH_MS: z.coerce.number().int().min(0).max(60_000).default(timings.presenceBatchMs),
  GW_PRESENCE_LARGE_GROUP: count(limits.presenceLargeGroup, 100_000_000),
  GW_PRESENCE_COUNT_INTERVAL_MS: ms(timings.presenceCountIntervalMs),
  GW_INTERNAL_PORT: port.optional(),
  GW_INTERNAL_HOST: z.string().min(1).optional(),
  GW_METRICS_PORT: port.optional(),
  GW_METRICS_HOST: z.string().min(1).optional(),
  GW_METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  GW_API_KEY: z
    .string()
    .min(MIN_API_KEY_LENGTH, `must be at least ${MIN_API_KEY_LENGTH} characters`)
    .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces (a request header carries it)')
    .optional(),
  GW_API_MAX_BODY_BYTES: z.coerce.number().int().min(1024).max(64 * 1024 * 1024).default(limits.apiMaxBodyBytes),
  GW_API_RATE_PER_SEC: count(limits.apiRatePerSec),
});

/** Every variable the gateway reads (README and .env.example document each one). */
export const CONFIG_VARIABLES = Object.keys(envSchema.shape);

export interface Config {
  /** Things worth a warning at start that do not stop it (a former variable name overridden by its new one). */
  notices: string[];
  env: string;
  port: number;
  host: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  /** How tokens are verified: the key source, and the issuer, audience and clock tolerance every token is held to. */
  auth: AuthConfig;
  /** Signs session tokens (resume); instances that resume each other's sessions share it. */
  sessionSecret: Uint8Array;
  /** True when the documented development secret is in use. */
  usingDevSecret: boolean;
  /** How long a connection is served past its token's `exp` before it is closed with 4004 (a refresh in time keeps it). */
  tokenExpiryGraceMs: number;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  identifyTimeoutMs: number;
  orphanSessionTtlMs: number;
  shutdownGraceMs: number;
  /** Largest frame accepted; a larger one closes the connection with 1009. */
  maxPayloadBytes: number;
  connectionsPerMinutePerIp: number;
  messagesPer10s: number;
  maxConnectionsPerUser: number;
  maxGroupsPerConnection: number;
  slowConsumerBytes: number;
  slowConsumerGraceMs: number;
  /** Browser origins allowed to open WebSockets and make CORS requests: exact origins, `scheme://host:*`, or `*`. */
  allowedOrigins: string[];
  /** Peers whose X-Forwarded-For is believed (proxy-addr's trust function, shared with Express's `trust proxy`). */
  trustProxy: (address: string, hop: number) => boolean;
  /** Redis for several instances acting as one; undefined runs the embedded single-instance broker. */
  /** The shared Redis: one server (GW_REDIS_URL) or a Redis Cluster (GW_REDIS_CLUSTER_NODES); none for one instance. */
  redis: RedisTarget | undefined;
  /** This instance's id in the cluster (default: hostname plus a random suffix, new at every start). */
  instanceId: string;
  /** Lifetime of this instance's liveness key; survivors reap an instance whose key expired. */
  instanceTtlMs: number;
  /** Window in which the same (group, user, kind) signal is delivered once. */
  signalDedupMs: number;
  /** Approximate cap of the rt:events stream (XADD MAXLEN ~). */
  eventsMaxLen: number;
  /** Replay buffer bounds per session (envelopes, and bytes of their bodies). */
  resumeBufferMessages: number;
  resumeBufferBytes: number;
  /** How long presence changes in a group are gathered before they go out as one batch (0: at the end of the current turn). */
  presenceBatchMs: number;
  /** Above this many users a group's presence is counts only, unless a session watches it. */
  presenceLargeGroup: number;
  /** The shortest gap between two `presence_count`s of one large group. */
  presenceCountIntervalMs: number;
  /** The internal listener (Prometheus /metrics, the server API): never the public port, never behind Nginx. */
  internalPort: number;
  internalHost: string;
  /** When set, /metrics requires `Authorization: Bearer <token>`. */
  metricsToken: string | undefined;
  /** The server API (`POST /api/<method>` on the internal listener), enabled by its key; undefined: `/api/*` answers 404. */
  api: ApiConfig | undefined;
}

export interface ApiConfig {
  /** Requests carry it as `Authorization: Bearer <key>`. */
  key: string;
  /** Largest request body read; a larger one is refused with 413. */
  maxBodyBytes: number;
  /** Requests per second this instance serves (a token bucket of one second's worth); more are refused with 429. */
  ratePerSec: number;
}

type Env = Record<string, string | undefined>;

/** Parses `env` (process.env after dotenv) into a Config, or throws a ConfigError naming the variable. */
export function loadConfig(env: Env): Config {
  // An empty value means "unset", as in most .env files.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(String(issue?.path[0] ?? 'environment'), issue?.message ?? 'invalid value');
  }
  const e = parsed.data;
  const development = e.NODE_ENV === 'development';
  const { auth, sessionSecret, usingDevSecret } = authConfig({ ...e, development, redis: e.GW_REDIS_URL !== undefined || e.GW_REDIS_CLUSTER_NODES !== undefined });
  let trustProxy: Config['trustProxy'];
  try {
    trustProxy = proxyaddr.compile(e.GW_TRUSTED_PROXIES.filter((p) => p !== 'none'));
  } catch (err) {
    throw new ConfigError('GW_TRUSTED_PROXIES', err instanceof Error ? err.message : 'invalid address list');
  }
  const allowedOrigins = e.GW_ALLOWED_ORIGINS ?? (development ? DEV_ALLOWED_ORIGINS : []);
  const badOrigin = allowedOrigins.find((o) => o !== '*' && !/^https?:\/\/[^/\s]+$/.test(o));
  if (badOrigin !== undefined) {
    throw new ConfigError('GW_ALLOWED_ORIGINS', `"${badOrigin}" is not an origin (scheme://host[:port], scheme://host:*, or *)`);
  }
  if (e.GW_HEARTBEAT_INTERVAL_MS >= e.GW_HEARTBEAT_TIMEOUT_MS) {
    throw new ConfigError('GW_HEARTBEAT_INTERVAL_MS', 'must be shorter than GW_HEARTBEAT_TIMEOUT_MS');
  }
  const notices: string[] = [];
  // A token presented within the tolerance after its exp is accepted, then its connection closed (4004) at once.
  if (e.GW_TOKEN_EXPIRY_GRACE_MS < auth.clockToleranceMs) {
    notices.push(`GW_TOKEN_EXPIRY_GRACE_MS is shorter than GW_JWT_CLOCK_TOLERANCE_MS (${e.GW_TOKEN_EXPIRY_GRACE_MS} < ${auth.clockToleranceMs} ms): a token accepted just after its exp gets a connection that closes with 4004 at once`);
  }
  const internalPort = aliased('GW_METRICS_PORT', e.GW_INTERNAL_PORT, e.GW_METRICS_PORT, notices) ?? (e.GW_PORT === 0 ? 0 : e.GW_PORT + INTERNAL_PORT_OFFSET);
  const internalHost = aliased('GW_METRICS_HOST', e.GW_INTERNAL_HOST, e.GW_METRICS_HOST, notices) ?? '127.0.0.1';
  if (internalPort > 65535) {
    throw new ConfigError('GW_INTERNAL_PORT', `is unset and its default, GW_PORT + ${INTERNAL_PORT_OFFSET}, is above 65535: set it`);
  }
  return {
    notices,
    env: e.NODE_ENV,
    port: e.GW_PORT,
    host: e.GW_HOST,
    logLevel: e.LOG_LEVEL,
    auth,
    sessionSecret,
    usingDevSecret,
    tokenExpiryGraceMs: e.GW_TOKEN_EXPIRY_GRACE_MS,
    heartbeatIntervalMs: e.GW_HEARTBEAT_INTERVAL_MS,
    heartbeatTimeoutMs: e.GW_HEARTBEAT_TIMEOUT_MS,
    identifyTimeoutMs: e.GW_IDENTIFY_TIMEOUT_MS,
    orphanSessionTtlMs: e.GW_ORPHAN_SESSION_TTL_MS,
    shutdownGraceMs: e.GW_SHUTDOWN_GRACE_MS,
    maxPayloadBytes: e.GW_MAX_PAYLOAD_BYTES,
    connectionsPerMinutePerIp: e.GW_RATE_CONN_PER_MIN,
    messagesPer10s: e.GW_RATE_MSG_PER_10S,
    maxConnectionsPerUser: e.GW_MAX_CONNECTIONS_PER_USER,
    maxGroupsPerConnection: e.GW_MAX_GROUPS_PER_CONNECTION,
    slowConsumerBytes: e.GW_SLOW_CONSUMER_BYTES,
    slowConsumerGraceMs: e.GW_SLOW_CONSUMER_GRACE_MS,
    allowedOrigins,
    trustProxy,
    redis: redisTarget(e.GW_REDIS_URL, e.GW_REDIS_CLUSTER_NODES),
    instanceId: e.GW_INSTANCE_ID ?? `${hostname().replace(/[^A-Za-z0-9._-]/g, '').slice(0, 40) || 'gw'}-${randomBytes(4).toString('hex')}`,
    instanceTtlMs: e.GW_INSTANCE_TTL_MS,
    signalDedupMs: e.GW_SIGNAL_DEDUP_MS,
    eventsMaxLen: e.GW_EVENTS_MAXLEN,
    resumeBufferMessages: e.GW_RESUME_BUFFER_MESSAGES,
    resumeBufferBytes: e.GW_RESUME_BUFFER_BYTES,
    presenceBatchMs: e.GW_PRESENCE_BATCH_MS,
    presenceLargeGroup: e.GW_PRESENCE_LARGE_GROUP,
    presenceCountIntervalMs: e.GW_PRESENCE_COUNT_INTERVAL_MS,
    internalPort,
    internalHost,
    metricsToken: e.GW_METRICS_TOKEN,
    api: e.GW_API_KEY === undefined ? undefined : { key: e.GW_API_KEY, maxBodyBytes: e.GW_API_MAX_BODY_BYTES, ratePerSec: e.GW_API_RATE_PER_SEC },
  };
}

/**
 * The value of a variable (`value`), else of its former name `alias` (`aliasValue`). When both are set and differ the
 * new name wins, with a notice: an `.env` from before the rename (GW_METRICS_HOST=127.0.0.1) next to the compose file's
 * GW_INTERNAL_HOST=0.0.0.0 must not stop an upgraded gateway, and the compose file is the one that knows the network.
 */
function aliased<T>(alias: keyof typeof CONFIG_ALIASES, value: T | undefined, aliasValue: T | undefined, notices: string[]): T | undefined {
  const name = CONFIG_ALIASES[alias];
  if (value !== undefined && aliasValue !== undefined && value !== aliasValue) {
    notices.push(`${alias} (the former name of ${name}) is ignored: ${name} is set as well, to another value; remove ${alias}`);
  }
  return value ?? aliasValue;
}

/** process.env with `.env` (if any) filled in underneath; real environment variables win. */
export function readEnvironment(): Env {
  dotenv.config({ quiet: true });
  return process.env;
}

/** The process environment alone, without `.env` (`yarn token` says which of the two its secret comes from). */
export function processEnvironment(): Env {
  return { ...process.env };
}

/** Where the gateway's Redis is: one server by URL, or a cluster by its seed nodes. */
export type RedisTarget = { url: string } | { nodes: { host: string; port: number }[] };

function redisTarget(url: string | undefined, clusterNodes: string | undefined): RedisTarget | undefined {
  if (url !== undefined && clusterNodes !== undefined) {
    throw new ConfigError('GW_REDIS_CLUSTER_NODES', 'is set together with GW_REDIS_URL: set GW_REDIS_URL for one Redis, or GW_REDIS_CLUSTER_NODES for a Redis Cluster, not both');
  }
  if (url !== undefined) return { url };
  if (clusterNodes === undefined) return undefined;
  const nodes = clusterNodes.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (nodes.length === 0) throw new ConfigError('GW_REDIS_CLUSTER_NODES', 'must list the seed nodes as host:port,host:port,…');
  return {
    nodes: nodes.map((node) => {
      const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(node);
      const port = Number(m?.[2]);
      if (!m || port < 1 || port > 65535) throw new ConfigError('GW_REDIS_CLUSTER_NODES', `"${node}" is not host:port`);
      return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
    }),
  };
}
