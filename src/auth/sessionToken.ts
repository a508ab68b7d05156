// Session tokens: short-lived proofs, signed by the gateway, that the holder was attached to a session. They only
// let a client identified by a valid JWT of the same user resume that session; on their own they authenticate nobody.
// Format: <sessionId>.<expiry ms>.<HMAC-SHA256, base64url>, keyed with a key derived from the session secret
// (config.sessionSecret: GW_SESSION_SECRET, else GW_JWT_SECRET, else a random key of this process).
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { SessionId } from '../types/domain';

export class SessionTokens {
  private readonly key: Buffer;

  constructor(
    sessionSecret: Uint8Array,
    private readonly ttlMs: number,
  ) {
    // A derived key: a session token can never pass as a platform JWT, nor the other way round.
    this.key = createHmac('sha256', sessionSecret).update('gateway-strategy session token v1').digest();
  }

  issue(sessionId: SessionId, now = Date.now()): string {
    const payload = `${sessionId}.${now + this.ttlMs}`;
    return `${payload}.${this.mac(payload)}`;
  }

  /** The session the token was issued for, when its signature holds and it has not expired. */
  verify(token: string, now = Date.now()): SessionId | null {
    const cut = token.lastIndexOf('.');
    if (cut <= 0) return null;
    const payload = token.slice(0, cut);
    const given = Buffer.from(token.slice(cut + 1));
    const expected = Buffer.from(this.mac(payload));
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    const dot = payload.lastIndexOf('.');
    const expiresAt = Number(payload.slice(dot + 1));
    if (dot <= 0 || !Number.isFinite(expiresAt) || expiresAt <= now) return null;
    return payload.slice(0, dot);
  }

  private mac(payload: string): string {
    return createHmac('sha256', this.key).update(payload).digest('base64url');
  }
}
