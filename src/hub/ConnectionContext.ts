// ConnectionContext: one WebSocket connection's state, and the only place that writes to its socket.
import type { Duplex } from 'node:stream';
import type { TokenBucket } from 'limiter';
import { WebSocket } from 'ws';
import { CloseCode } from '../types/codes';
import type { ClientEnvelope } from '../types/envelope';
import type { ParseResult } from '../utils/json';
import { SequencedFramer, textFrame } from './frames';
import type { ConnectionId } from '../types/domain';
import { newId } from '../utils/ids';
import type { Session } from './Session';

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

/** One framer for every connection: a fan-out frames its recipients one after the other, never two at once. */
const framer = new SequencedFramer();

export class ConnectionContext {
  readonly id: ConnectionId = newId('c');
  readonly openedAt: number;
  /** When the last frame of any kind arrived: the application-level liveness signal. */
  lastSeenAt: number;
  /** Whether a WebSocket pong (or any frame) came since the last ping, which only silent connections get. */
  alive = true;
  identifying = false;
  /** The session this connection carries, once identified. */
  session: Session | null = null;
  /**
   * Set when the gateway started the close or terminated the socket: the session is then orphaned, not ended, whatever
   * code the client answers with. (When ws itself closes for a protocol error, 1007 or 1009, it stops reading, so the
   * close is reported as 1006 and orphans the session too.)
   */
  serverClosed = false;
  /** Frames refused RATE_LIMITED since the last accepted one. */
  rejectedStreak = 0;
  /** Set when this instance shuts down: frames from the connection are no longer handled. */
  draining = false;
  /** Set when the close has been handled (registries released); late async work must not re-register it. */
  closed = false;
  /**
   * Frames waiting while an earlier one of this connection awaits a round trip (token check, Redis), so
   * envelopes are handled in order. Null when nothing is pending. Bounded by the rate limit.
   */
  queue: QueuedFrame[] | null = null;

  /**
   * The TCP socket under the WebSocket, for pre-framed writes. ws queues nothing of its own without
   * permessage-deflate (which the gateway never enables), so complete frames written here keep their order.
   */
  private readonly raw: Duplex;

  constructor(
    readonly socket: WebSocket,
    readonly ip: string,
    readonly buckets: ConnectionBuckets,
    private readonly policy: ConnectionPolicy,
    now: number,
  ) {
    this.openedAt = now;
    this.lastSeenAt = now;
    const raw = (socket as unknown as { _socket?: Duplex })._socket;
    // ws has kept the socket there through every major version; fail loudly rather than degrade if that changes.
    if (!raw) throw new Error('ws no longer exposes the connection socket (_socket): pre-framed writes need it');
    this.raw = raw;
  }

  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  /**
   * Sends an already-serialized envelope, framed here and written in one piece; a no-op once the socket is closing.
   * A socket with more than slowConsumerBytes already queued is cut off instead: close 4010, then terminated after
   * the grace period.
   */
  send(envelope: string): void {
    if (this.writable()) this.raw.write(textFrame(envelope));
  }

  /** Writes a complete frame (see frames.ts), the same bytes for every recipient of a fan-out. */
  sendFrame(frame: Buffer): void {
    if (this.writable()) this.raw.write(frame);
  }

  /**
   * Sends `body` + `,"seq":<seq>}` as one text message, written straight to the socket. The frame's bytes are reused
   * for the next recipient unless the socket could not write them at once and holds on to them.
   */
  sendSequenced(body: Buffer, seq: number): void {
    if (!this.writable()) return;
    this.raw.write(framer.frame(body, seq));
    if (this.raw.writableLength > 0) framer.keep();
  }

  private writable(): boolean {
    if (this.socket.readyState !== WebSocket.OPEN) return false;
    if (this.socket.bufferedAmount <= this.policy.slowConsumerBytes) return true;
    this.cutOff();
    return false;
  }

  private cutOff(): void {
    this.close(CloseCode.SLOW_CONSUMER.code, 'slow consumer');
    setTimeout(() => this.socket.terminate(), this.policy.slowConsumerGraceMs).unref();
    this.policy.onSlowConsumer(this);
  }

  close(code: number, reason: string): void {
    this.serverClosed = true;
    if (this.socket.readyState === WebSocket.OPEN || this.socket.readyState === WebSocket.CONNECTING) {
      this.socket.close(code, reason);
    }
  }

  /** Drops the socket without a close handshake. */
  terminate(): void {
    this.serverClosed = true;
    this.socket.terminate();
  }
}
