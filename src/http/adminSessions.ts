// The admin console's sign-ins on this instance: each a random 32-byte token (the `gw_admin` cookie) that lasts a fixed
// time, held in memory. Only a hash of each token is kept, so neither a heap dump nor the timing of a lookup gives a
// usable token away. Each instance serves its own console, so sign-ins are not shared across the cluster.
import { createHash, randomBytes } from 'node:crypto';

export class AdminSessions {
  /** Token hash → expiry (ms); a Map keeps creation order, which with one lifetime is also expiry order. */
  private readonly expiries = new Map<string, number>();

  constructor(
    private readonly lifetimeMs: number,
    private readonly max: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** A new sign-in: its token. Past `max` sign-ins, the oldest ends. */
  create(): string {
    this.prune();
    if (this.expiries.size >= this.max) this.expiries.delete(this.expiries.keys().next().value!);
    const token = randomBytes(32).toString('base64url');
    this.expiries.set(hash(token), this.now() + this.lifetimeMs);
    return token;
  }

  /** True while `token` names a sign-in that has not expired or ended. */
  valid(token: string | undefined): boolean {
    if (token === undefined) return false;
    const expiry = this.expiries.get(hash(token));
    return expiry !== undefined && expiry > this.now();
  }

  /** Signs `token` out (nothing when it names no sign-in). */
  end(token: string | undefined): void {
    if (token !== undefined) this.expiries.delete(hash(token));
  }

  /** Sign-ins held, expired ones not yet dropped included. */
  get size(): number {
    return this.expiries.size;
  }

  /** Drops expired sign-ins, oldest first, stopping at the first one still valid. */
  private prune(): void {
    const now = this.now();
    for (const [key, expiry] of this.expiries) {
      if (expiry > now) return;
      this.expiries.delete(key);
    }
  }
}

function hash(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}
