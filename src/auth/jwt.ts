// Verifies the platform's JWTs against the configured key source (a shared secret, a public key, or a JWK set) with
// the algorithms pinned to that key, and mints them for the `yarn token` CLI and tests.
import type { KeyObject } from 'node:crypto';
import { SignJWT, decodeProtectedHeader, errors, jwtVerify, type JWSHeaderParameters, type JWTVerifyGetKey, type KeyLike } from 'jose';
import type { AuthConfig } from '../config';
import { limits } from '../config/limits';
import { timings } from '../config/timings';
import { tokenClaimsSchema, type Role, type TokenClaims } from '../types/domain';
import { createLogger, type Logger } from '../utils/logger';
import { HMAC_ALGORITHMS, KID_PATTERN, algorithmsForKey, type Algorithm } from './keys';
import { JwksSource, KeyLookupError, type KeysHealth } from './JwksSource';

export type VerifyResult = { ok: true; claims: TokenClaims } | { ok: false; reason: string };

/** Checks the platform's JWTs against the configured key source. */
export interface TokenVerifier {
  /** Never throws; `reason` is safe to show to the client (it never echoes the token). */
  verify(token: string): Promise<VerifyResult>;
}

/** The gateway's verifier: also reports its key source's state and stops its background work. */
export interface KeyVerifier extends TokenVerifier {
  health(): KeysHealth;
  /** Clears timers and aborts a key set fetch in flight. */
  close(): void;
}

/**
 * A verifier for `auth`, or for a bare shared secret (HS256/384/512, no issuer or audience, the default clock
 * tolerance: what tests and tools use). A JWK set source starts fetching at once.
 */
export function createVerifier(auth: AuthConfig | Uint8Array, logger?: Logger): KeyVerifier {
  const config: AuthConfig =
    auth instanceof Uint8Array
      ? { keys: { kind: 'secret', secret: auth, algorithms: [...HMAC_ALGORITHMS] }, issuer: undefined, audience: undefined, clockToleranceMs: timings.jwtClockToleranceMs }
      : auth;
  const { keys } = config;
  if (keys.kind !== 'jwks') {
    const material = keys.kind === 'secret' ? keys.secret : keys.key;
    return { verify: (token) => verifyToken(token, material, config), health: () => ({ source: keys.kind, state: 'ok', keys: 1 }), close: () => undefined };
  }
  const source = new JwksSource(keys, logger ?? createLogger('silent'));
  source.start();
  const getKey: JWTVerifyGetKey = (header) => source.key(header);
  return { verify: (token) => verifyToken(token, getKey, config), health: () => source.health(), close: () => source.close() };
}

async function verifyToken(token: string, key: Uint8Array | KeyObject | JWTVerifyGetKey, config: AuthConfig): Promise<VerifyResult> {
  const { algorithms } = config.keys;
  const refused = checkHeader(token, algorithms);
  if (refused !== null) return { ok: false, reason: refused };
  const toleranceSec = config.clockToleranceMs / 1000;
  try {
    const options = { algorithms, requiredClaims: ['sub', 'exp'], issuer: config.issuer, audience: config.audience, clockTolerance: toleranceSec };
    const { payload } = typeof key === 'function' ? await jwtVerify(token, key, options) : await jwtVerify(token, key, options);
    // jose checks `iat` only against a maxTokenAge; a token issued in the future comes from a wrong clock or a forger.
    if (typeof payload.iat === 'number' && payload.iat > Date.now() / 1000 + toleranceSec) return { ok: false, reason: 'token "iat" is in the future' };
    const claims = tokenClaimsSchema.safeParse(payload);
    if (!claims.success) return { ok: false, reason: `token claim "${String(claims.error.issues[0]?.path[0] ?? 'sub')}" is invalid` };
    return { ok: true, claims: claims.data };
  } catch (err) {
    return { ok: false, reason: refusalReason(err, algorithms) };
  }
}

/** Refuses, before any parsing or key lookup, a header that is too large, not JSON, of another algorithm, or with a strange kid. */
function checkHeader(token: string, algorithms: readonly Algorithm[]): string | null {
  const end = token.indexOf('.');
  if (end > limits.jwtMaxHeaderChars || (end < 0 && token.length > limits.jwtMaxHeaderChars)) return `token header is over ${limits.jwtMaxHeaderChars} characters`;
  let header: JWSHeaderParameters;
  try {
    header = decodeProtectedHeader(token) as JWSHeaderParameters;
  } catch {
    return 'token is malformed or its signature is invalid';
  }
  if (typeof header.alg !== 'string' || !(algorithms as readonly string[]).includes(header.alg)) return algorithmReason(algorithms);
  if (header.kid !== undefined && (typeof header.kid !== 'string' || !KID_PATTERN.test(header.kid))) return 'token "kid" is malformed: it must match [A-Za-z0-9._~-]{1,128}';
  return null;
}

const algorithmReason = (algorithms: readonly Algorithm[]) => `token "alg" is not accepted: this gateway's key verifies ${algorithms.join(', ')}`;

/** The client-facing reason for a failed verification: which check failed, never the token or its header values. */
function refusalReason(err: unknown, algorithms: readonly Algorithm[]): string {
  if (err instanceof KeyLookupError) return err.message;
  if (err instanceof errors.JWTExpired) return 'token expired';
  if (err instanceof errors.JOSEAlgNotAllowed) return algorithmReason(algorithms);
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.reason === 'check_failed') {
      if (err.claim === 'nbf') return 'token is not valid yet ("nbf" is in the future)';
      if (err.claim === 'iss') return 'token issuer ("iss") is not accepted';
      if (err.claim === 'aud') return 'token audience ("aud") is not accepted';
    }
    return `token claim "${err.claim}" is missing or invalid`;
  }
  return 'token is malformed or its signature is invalid';
}

export interface MintOptions {
  sub: string;
  groups?: string[];
  role?: Role;
  /** A jose time span such as "1h" or "30m", or seconds from now; null mints a token without `exp`. */
  ttl?: string | number | null;
  /** Default: HS256 with a secret, else the key type's first algorithm (RS256, PS256, ES256…, EdDSA). */
  alg?: Algorithm;
  kid?: string;
  iss?: string;
  aud?: string | string[];
  /** `nbf`, in seconds from now. */
  nbf?: number;
  /** `iat`, in seconds from now (default: now). */
  iat?: number;
  /** More protected header parameters. */
  header?: Record<string, unknown>;
}

/** Signs with a shared secret, or with a private key (a KeyObject, or a jose KeyLike). */
export async function mintToken(opts: MintOptions, key: Uint8Array | KeyObject | KeyLike): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const alg = opts.alg ?? defaultAlgorithm(key);
  const jwt = new SignJWT({ role: opts.role ?? 'client', groups: opts.groups ?? [] })
    .setProtectedHeader({ ...opts.header, alg, typ: 'JWT', ...(opts.kid !== undefined ? { kid: opts.kid } : {}) })
    .setSubject(opts.sub)
    .setIssuedAt(now + (opts.iat ?? 0));
  const ttl = opts.ttl === undefined ? '1h' : opts.ttl;
  if (ttl !== null) jwt.setExpirationTime(typeof ttl === 'number' ? now + ttl : ttl);
  if (opts.nbf !== undefined) jwt.setNotBefore(now + opts.nbf);
  if (opts.iss !== undefined) jwt.setIssuer(opts.iss);
  if (opts.aud !== undefined) jwt.setAudience(opts.aud);
  return jwt.sign(key);
}

function defaultAlgorithm(key: Uint8Array | KeyObject | KeyLike): Algorithm {
  if (key instanceof Uint8Array) return 'HS256';
  const pinned = algorithmsForKey(key as KeyObject);
  if ('problem' in pinned) throw new Error(`the signing key ${pinned.problem}`);
  return pinned.algorithms[0]!;
}
