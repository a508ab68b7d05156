// The token side of the configuration: the one source of verification keys (a shared secret, a public key file or a
// JWK set URL), the claims every token is checked against, and the key session tokens are signed with.
import { randomBytes, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ASYMMETRIC_ALGORITHMS, HMAC_ALGORITHMS, MAX_KEY_FILE_BYTES, parsePublicKeyPem, type Algorithm } from '../auth/keys';
import { ConfigError } from './errors';

/** Used only when NODE_ENV=development and no key source is set (`yarn dev`, `yarn dev:echo`, `yarn token`). */
export const DEV_JWT_SECRET = 'gateway-strategy-development-secret-not-for-production';
export const MIN_JWT_SECRET_BYTES = 32;
export const MIN_SESSION_SECRET_BYTES = 32;

/** Where verification keys come from; exactly one is configured. `algorithms` are the only ones a token may use. */
export type KeySource =
  | { kind: 'secret'; secret: Uint8Array; algorithms: Algorithm[] }
  | { kind: 'public-key'; file: string; key: KeyObject; algorithms: Algorithm[] }
  | { kind: 'jwks'; url: URL; algorithms: Algorithm[]; timeoutMs: number; maxBytes: number; refreshMs: number; cooldownMs: number };

export interface AuthConfig {
  keys: KeySource;
  /** When set, a token's `iss` must be exactly this. */
  issuer: string | undefined;
  /** When set, a token's `aud` must contain one of these. */
  audience: string[] | undefined;
  /** Leeway for `exp`, `nbf` and the `iat`-in-the-future check. */
  clockToleranceMs: number;
}

/** The variables below, as the config schema parsed them (types and ranges checked; empty values removed). */
export interface AuthVariables {
  development: boolean;
  redis: boolean;
  GW_JWT_SECRET?: string;
  GW_JWT_PUBLIC_KEY_FILE?: string;
  GW_JWKS_URL?: string;
  GW_JWT_ISSUER?: string;
  GW_JWT_AUDIENCE?: string[];
  GW_JWT_CLOCK_TOLERANCE_MS: number;
  GW_JWKS_TIMEOUT_MS: number;
  GW_JWKS_MAX_BYTES: number;
  GW_JWKS_REFRESH_MS: number;
  GW_JWKS_COOLDOWN_MS: number;
  GW_SESSION_SECRET?: string;
}

const SOURCES = ['GW_JWT_SECRET', 'GW_JWT_PUBLIC_KEY_FILE', 'GW_JWKS_URL'] as const;

export function authConfig(v: AuthVariables): { auth: AuthConfig; sessionSecret: Uint8Array; usingDevSecret: boolean } {
  const set = SOURCES.filter((name) => v[name] !== undefined);
  if (set.length > 1) throw new ConfigError(set[1]!, `is set together with ${set[0]}: set exactly one key source`);
  const usingDevSecret = set.length === 0 && v.development;
  if (set.length === 0 && !usingDevSecret) {
    throw new ConfigError('GW_JWT_SECRET', 'no key source: set one of GW_JWT_SECRET, GW_JWT_PUBLIC_KEY_FILE or GW_JWKS_URL (NODE_ENV=development uses the development secret)');
  }
  const keys = keySource(v, usingDevSecret);
  if (v.GW_JWT_AUDIENCE !== undefined && v.GW_JWT_AUDIENCE.length === 0) throw new ConfigError('GW_JWT_AUDIENCE', 'lists no audience');
  return {
    auth: { keys, issuer: v.GW_JWT_ISSUER, audience: v.GW_JWT_AUDIENCE, clockToleranceMs: v.GW_JWT_CLOCK_TOLERANCE_MS },
    sessionSecret: sessionSecret(v, keys),
    usingDevSecret,
  };
}

function keySource(v: AuthVariables, usingDevSecret: boolean): KeySource {
  if (v.GW_JWT_PUBLIC_KEY_FILE !== undefined) {
    const file = v.GW_JWT_PUBLIC_KEY_FILE;
    const parsed = parsePublicKeyPem(readKeyFile(file));
    if ('problem' in parsed) throw new ConfigError('GW_JWT_PUBLIC_KEY_FILE', `${file} ${parsed.problem}`);
    return { kind: 'public-key', file, key: parsed.key, algorithms: parsed.algorithms };
  }
  if (v.GW_JWKS_URL !== undefined) {
    return {
      kind: 'jwks',
      url: jwksUrl(v.GW_JWKS_URL),
      algorithms: [...ASYMMETRIC_ALGORITHMS],
      timeoutMs: v.GW_JWKS_TIMEOUT_MS,
      maxBytes: v.GW_JWKS_MAX_BYTES,
      refreshMs: v.GW_JWKS_REFRESH_MS,
      cooldownMs: v.GW_JWKS_COOLDOWN_MS,
    };
  }
  const secret = usingDevSecret ? DEV_JWT_SECRET : v.GW_JWT_SECRET!;
  if (Buffer.byteLength(secret) < MIN_JWT_SECRET_BYTES) {
    throw new ConfigError('GW_JWT_SECRET', `is too weak: it must be at least ${MIN_JWT_SECRET_BYTES} bytes`);
  }
  return { kind: 'secret', secret: new TextEncoder().encode(secret), algorithms: [...HMAC_ALGORITHMS] };
}

function readKeyFile(file: string): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (code ?? 'unreadable');
    throw new ConfigError('GW_JWT_PUBLIC_KEY_FILE', `cannot read ${file}: ${why}`);
  }
  if (bytes.length > MAX_KEY_FILE_BYTES) throw new ConfigError('GW_JWT_PUBLIC_KEY_FILE', `${file} is over ${MAX_KEY_FILE_BYTES} bytes: not a public key`);
  return bytes.toString('utf8');
}

function jwksUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfigError('GW_JWKS_URL', 'is not a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConfigError('GW_JWKS_URL', 'must be an http:// or https:// URL');
  // The URL is named in logs, /health and error messages: it must not carry a password.
  if (url.username !== '' || url.password !== '') throw new ConfigError('GW_JWKS_URL', 'must not carry credentials (user:password@)');
  return url;
}

/**
 * GW_SESSION_SECRET when set; else the JWT secret when that is the key source (deployments from before the other
 * sources keep their session tokens valid); else, with one instance (no Redis), a random key of this process; with
 * Redis and no shared secret, instances could not resume each other's sessions, so that is refused.
 */
function sessionSecret(v: AuthVariables, keys: KeySource): Uint8Array {
  if (v.GW_SESSION_SECRET !== undefined) {
    if (Buffer.byteLength(v.GW_SESSION_SECRET) < MIN_SESSION_SECRET_BYTES) {
      throw new ConfigError('GW_SESSION_SECRET', `is too weak: it must be at least ${MIN_SESSION_SECRET_BYTES} bytes`);
    }
    return new TextEncoder().encode(v.GW_SESSION_SECRET);
  }
  if (keys.kind === 'secret') return keys.secret;
  if (!v.redis) return new Uint8Array(randomBytes(MIN_SESSION_SECRET_BYTES));
  throw new ConfigError('GW_SESSION_SECRET', `is required with GW_REDIS_URL and ${keys.kind === 'jwks' ? 'GW_JWKS_URL' : 'GW_JWT_PUBLIC_KEY_FILE'}: instances must share GW_SESSION_SECRET to resume each other's sessions`);
}
