// The one configuration module: every GW_* variable is parsed and validated here, once, at start.
import dotenv from 'dotenv';
import { z } from 'zod';
import { timings } from './timings';

/** Used only when NODE_ENV=development and GW_JWT_SECRET is unset (`yarn dev`, `yarn dev:echo`, `yarn token`). */
export const DEV_JWT_SECRET = 'gateway-strategy-development-secret-not-for-production';
export const MIN_JWT_SECRET_BYTES = 32;

export class ConfigError extends Error {
  constructor(readonly variable: string, message: string) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

const ms = (fallback: number) => z.coerce.number().int().min(1).max(24 * 3600_000).default(fallback);

const envSchema = z.object({
  NODE_ENV: z.string().default('production'),
  GW_PORT: z.coerce.number().int().min(0).max(65535).default(4100),
  GW_HOST: z.string().min(1).default('0.0.0.0'),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  GW_JWT_SECRET: z.string().optional(),
  GW_HEARTBEAT_INTERVAL_MS: ms(timings.heartbeatIntervalMs),
  GW_HEARTBEAT_TIMEOUT_MS: ms(timings.heartbeatTimeoutMs),
  GW_IDENTIFY_TIMEOUT_MS: ms(timings.identifyTimeoutMs),
  GW_ORPHAN_SESSION_TTL_MS: ms(timings.orphanSessionTtlMs),
  GW_SHUTDOWN_GRACE_MS: ms(timings.shutdownGraceMs),
  GW_MAX_PAYLOAD_BYTES: z.coerce.number().int().min(1024).max(16 * 1024 * 1024).default(65_536),
});

export interface Config {
  env: string;
  port: number;
  host: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  jwtSecret: Uint8Array;
  /** True when the documented development secret is in use. */
  usingDevSecret: boolean;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  identifyTimeoutMs: number;
  orphanSessionTtlMs: number;
  shutdownGraceMs: number;
  /** Largest frame accepted; a larger one closes the connection with 1009. */
  maxPayloadBytes: number;
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
  let secret = e.GW_JWT_SECRET;
  if (secret === undefined && development) secret = DEV_JWT_SECRET;
  if (secret === undefined) {
    throw new ConfigError('GW_JWT_SECRET', 'is required (set NODE_ENV=development to use the development secret)');
  }
  if (Buffer.byteLength(secret) < MIN_JWT_SECRET_BYTES) {
    throw new ConfigError('GW_JWT_SECRET', `is too weak: it must be at least ${MIN_JWT_SECRET_BYTES} bytes`);
  }
  if (e.GW_HEARTBEAT_INTERVAL_MS >= e.GW_HEARTBEAT_TIMEOUT_MS) {
    throw new ConfigError('GW_HEARTBEAT_INTERVAL_MS', 'must be shorter than GW_HEARTBEAT_TIMEOUT_MS');
  }
  return {
    env: e.NODE_ENV,
    port: e.GW_PORT,
    host: e.GW_HOST,
    logLevel: e.LOG_LEVEL,
    jwtSecret: new TextEncoder().encode(secret),
    usingDevSecret: secret === DEV_JWT_SECRET,
    heartbeatIntervalMs: e.GW_HEARTBEAT_INTERVAL_MS,
    heartbeatTimeoutMs: e.GW_HEARTBEAT_TIMEOUT_MS,
    identifyTimeoutMs: e.GW_IDENTIFY_TIMEOUT_MS,
    orphanSessionTtlMs: e.GW_ORPHAN_SESSION_TTL_MS,
    shutdownGraceMs: e.GW_SHUTDOWN_GRACE_MS,
    maxPayloadBytes: e.GW_MAX_PAYLOAD_BYTES,
  };
}

/** process.env with `.env` (if any) filled in underneath; real environment variables win. */
export function readEnvironment(): Env {
  dotenv.config({ quiet: true });
  return process.env;
}
