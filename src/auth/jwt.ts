// Verifies the platform's JWTs (HS256, GW_JWT_SECRET) and mints them for the `yarn token` CLI and tests.
import { SignJWT, jwtVerify, errors } from 'jose';
import { tokenClaimsSchema, type Role, type TokenClaims } from '../types/domain';

export type VerifyResult = { ok: true; claims: TokenClaims } | { ok: false; reason: string };

/** Checks the platform's JWTs against the configured key source. */
export interface TokenVerifier {
  /** Never throws; `reason` is safe to show to the client (it never echoes the token). */
  verify(token: string): Promise<VerifyResult>;
}

export function createVerifier(secret: Uint8Array): TokenVerifier {
  return { verify: (token) => verifyToken(token, secret) };
}

/** Never throws; `reason` is safe to show to the client (it never echoes the token). */
export async function verifyToken(token: string, secret: Uint8Array): Promise<VerifyResult> {
  try {
    const { payload } = await jwtVerify(token, secret, { algorithms: ['HS256'], requiredClaims: ['sub', 'exp'] });
    const claims = tokenClaimsSchema.safeParse(payload);
    if (!claims.success) return { ok: false, reason: 'token claims are invalid (sub, exp, role, groups)' };
    return { ok: true, claims: claims.data };
  } catch (err) {
    if (err instanceof errors.JWTExpired) return { ok: false, reason: 'token expired' };
    if (err instanceof errors.JWTClaimValidationFailed) return { ok: false, reason: `token claim "${err.claim}" is missing or invalid` };
    return { ok: false, reason: 'token is malformed or its signature is invalid' };
  }
}

export interface MintOptions {
  sub: string;
  groups?: string[];
  role?: Role;
  /** A jose time span such as "1h" or "30m", or seconds from now. */
  ttl?: string | number;
}

export async function mintToken(opts: MintOptions, secret: Uint8Array): Promise<string> {
  const ttl = opts.ttl ?? '1h';
  return new SignJWT({ role: opts.role ?? 'client', groups: opts.groups ?? [] })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(opts.sub)
    .setIssuedAt()
    .setExpirationTime(typeof ttl === 'number' ? Math.floor(Date.now() / 1000) + ttl : ttl)
    .sign(secret);
}
