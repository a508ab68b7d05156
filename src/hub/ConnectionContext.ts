// ConnectionContext: one WebSocket connection's state, and the only place that writes to its socket.
import type { TokenBucket } from 'limiter';
import { WebSocket } from 'ws';
import { CloseCode } from '../types/codes';
import type { ClientEnvelope } from '../types/envelope';
import type { ParseResult } from '../utils/json';
import type { ConnectionId, GroupName, PresenceMeta, Role, SessionId, UserId } from '../types/domain';
import { newId } from '../utils/ids';

export interface Identity {
  userId: UserId;
  role: Role;
  /** The token's `groups` claim. */
  grants: readonly string[];
  sessionId: SessionId;
  meta: PresenceMeta;
}

/** What every connection shares: its limits and what to do when one falls behind. */
export interface ConnectionPolicy {
  slowConsumerBytes: number;
  slowConsumerGraceMs: number;
  onSlowConsumer(ctx: ConnectionContext): void;
}

export interface ConnectionBuckets {
  /** Spent by every frame but heartbeats. */
  messages: TokenBucket;
  heartbeats: TokenBucket;
}

/** A frame that passed the rate limit, waiting for its turn on its connection. */
export interface QueuedFrame {
  parsed: ParseResult;
  envelope: ClientEnvelope | null;
  envelopeError: string | null;
  replyTo: string | undefined;
}

export class ConnectionContext {
  readonly id: ConnectionId = newId('c');
  readonly openedAt: number;
  /** When the last frame of any kind arrived: the application-level liveness signal. */
  lastSeenAt: number;
  /** Whether a WebSocket pong (or any frame) came since the last ping: the TCP-level liveness signal. */
  alive = true;
  identifying = false;
  identity: Identity | null = null;
  /** Groups this connection is in (the reverse of GroupRegistry's index). */
  readonly groups = new Set<GroupName>();
  /** Frames refused RATE_LIMITED since the last accepted one. */
  rejectedStreak = 0;
  /** Set once the connection was cut off for reading too slowly; nothing more is queued for it. */
  slow = false;
  /** Set when the close has been handled (registries released); late async work must not re-register it. */
  closed = false;
  /**
   * Frames waiting while an earlier one of this connection awaits a round trip (token check, Redis), so
   * envelopes are handled in order. Null when nothing is pending. Bounded by the rate limit.
   */
  queue: QueuedFrame[] | null = null;

  constructor(
    readonly socket: WebSocket,
    readonly ip: string,
    readonly buckets: ConnectionBuckets,
    private readonly policy: ConnectionPolicy,
    now: number,
  ) {
    this.openedAt = now;
    this.lastSeenAt = now;
  }

  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  /**
   * Sends an already-serialized envelope; a no-op once the socket is closing. A socket with more than
   * slowConsumerBytes already queued is cut off instead: close 4010, then terminated after the grace period.
   */
  send(frame: string): void {
    const socket = this.socket;
    if (socket.readyState !== WebSocket.OPEN) return;
    if (socket.bufferedAmount > this.policy.slowConsumerBytes) return this.cutOff();
    socket.send(frame);
  }

  private cutOff(): void {
    this.slow = true;
    this.socket.close(CloseCode.SLOW_CONSUMER.code, 'slow consumer');
    setTimeout(() => this.socket.terminate(), this.policy.slowConsumerGraceMs).unref();
    this.policy.onSlowConsumer(this);
  }

  close(code: number, reason: string): void {
    if (this.socket.readyState === WebSocket.OPEN || this.socket.readyState === WebSocket.CONNECTING) {
      this.socket.close(code, reason);
    }
  }
}
