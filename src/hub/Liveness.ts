// Liveness: one sweep timer for every connection (not one timer each): the identify timeout, the heartbeat timeout,
// token expiry, and WebSocket pings for silent connections. The only writer of a connection's liveness state.
import type { Config } from '../config';
import { timings } from '../config/timings';
import { CloseCode } from '../types/codes';
import type { Logger } from '../utils/logger';
import type { ConnectionContext } from './ConnectionContext';
import type { Replies } from './Replies';

export class Liveness {
  private timer: NodeJS.Timeout | null = null;
  private lastPingAt = 0;

  constructor(
    private readonly config: Pick<Config, 'identifyTimeoutMs' | 'heartbeatTimeoutMs' | 'heartbeatIntervalMs' | 'tokenExpiryGraceMs'>,
    private readonly connections: ReadonlyMap<string, ConnectionContext>,
    private readonly replies: Replies,
    private readonly log: Logger,
  ) {}

  start(): void {
    const { identifyTimeoutMs, heartbeatTimeoutMs, heartbeatIntervalMs } = this.config;
    const shortest = Math.min(identifyTimeoutMs, heartbeatTimeoutMs, heartbeatIntervalMs);
    const tick = Math.max(10, Math.min(timings.maxSweepIntervalMs, Math.floor(shortest / 5)));
    this.lastPingAt = Date.now();
    this.timer = setInterval(() => this.sweep(Date.now()), tick);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Any frame proves the peer alive. */
  seen(ctx: ConnectionContext, now: number): void {
    ctx.lastSeenAt = now;
    ctx.alive = true;
  }

  ponged(ctx: ConnectionContext): void {
    ctx.alive = true;
  }

  private sweep(now: number): void {
    const ping = now - this.lastPingAt >= this.config.heartbeatIntervalMs;
    if (ping) this.lastPingAt = now;
    for (const ctx of this.connections.values()) {
      try {
        this.check(ctx, now, ping);
      } catch (err) {
        this.log.error({ connectionId: ctx.id, err: err instanceof Error ? err.message : String(err) }, 'liveness check failed');
      }
    }
  }

  private check(ctx: ConnectionContext, now: number, ping: boolean): void {
    const { identifyTimeoutMs, heartbeatTimeoutMs, heartbeatIntervalMs } = this.config;
    // A draining connection is closed by the shutdown; its session may already live on another instance.
    if (!ctx.isOpen || ctx.draining) return;
    if (!ctx.session) {
      if (!ctx.identifying && now - ctx.openedAt >= identifyTimeoutMs) return this.replies.refuse(ctx, 'IDENTIFY_TIMEOUT', `no identify within ${identifyTimeoutMs} ms`);
    } else if (now - ctx.lastSeenAt >= heartbeatTimeoutMs) {
      return ctx.close(CloseCode.HEARTBEAT_TIMEOUT.code, 'heartbeat timeout');
    } else if (now >= ctx.session.expiresAt + this.config.tokenExpiryGraceMs) {
      const expired = new Date(ctx.session.expiresAt).toISOString();
      return this.replies.refuse(ctx, 'TOKEN_EXPIRED', `the token expired at ${expired} and no refresh came: get a fresh token, then reconnect and resume`);
    }
    // WebSocket pings are for connections silent for a whole interval: any frame already proves the peer alive.
    if (ping && now - ctx.lastSeenAt >= heartbeatIntervalMs) {
      if (!ctx.alive) return ctx.terminate();
      ctx.alive = false;
      ctx.socket.ping();
    }
  }
}
