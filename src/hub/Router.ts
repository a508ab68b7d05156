// Router: the protocol layer's composition and its connection registry. The Hub hands it connections through typed
// callbacks; it passes their frames to Inbound, their closes to Sessions, their pongs to Liveness, control messages
// from other instances through Control to Handoff, Revocations and Inquiries, and runs shutdown.
import type { RawData, WebSocket } from 'ws';
import type { Config } from '../config';
import { limits } from '../config/limits';
import { timings } from '../config/timings';
import type { TokenVerifier } from '../auth/jwt';
import { SessionTokens } from '../auth/sessionToken';
import type { Broker, ControlHandlers } from '../broker/Broker';
import type { Deduper } from '../dedup/Deduper';
import type { PresenceStore } from '../presence/PresenceStore';
import { CloseCode } from '../types/codes';
import type { ConnectionId } from '../types/domain';
import type { Logger } from '../utils/logger';
import type { Metrics } from '../metrics';
import { Commands } from './Commands';
import { ConnectionContext, type ConnectionPolicy } from './ConnectionContext';
import { Control } from './Control';
import type { HubHandlers } from './Hub';
import { Inbound } from './Inbound';
import { Inquiries, type InstanceStatus } from './Inquiries';
import { Liveness } from './Liveness';
import type { Membership } from './Membership';
import { createBucket } from './rateLimits';
import { Replies } from './Replies';
import { Revocations } from './Revocations';
import { Sessions } from './Sessions';

export interface RouterOptions {
  config: Config;
  logger: Logger;
  membership: Membership;
  presence: PresenceStore;
  deduper: Deduper;
  metrics: Metrics;
  broker: Broker;
  verifier: TokenVerifier;
  /** This instance's status, as the server API's `info` reports it. */
  status(): InstanceStatus;
}

export class Router implements HubHandlers {
  private readonly connections = new Map<ConnectionId, ConnectionContext>();
  private readonly config: Config;
  private readonly log: Logger;
  private readonly policy: ConnectionPolicy;
  private readonly replies: Replies;
  private readonly liveness: Liveness;
  private readonly sessions: Sessions;
  private readonly inbound: Inbound;
  private readonly controlMessages: Control;
  /** What a backend takes back from a user on every instance (server API `disconnect`, `unsubscribe`). */
  readonly revocations: Revocations;
  /** What a backend reads about the cluster (server API `user`, `info`, `groups`). */
  readonly inquiries: Inquiries;

  constructor(options: RouterOptions) {
    const { config, logger, metrics } = options;
    this.config = config;
    this.log = logger;
    // A session token must outlive a drop: issued at the last heartbeat, used up to the orphan TTL later.
    const tokens = new SessionTokens(config.sessionSecret, config.orphanSessionTtlMs + config.heartbeatTimeoutMs);
    this.replies = new Replies(metrics);
    this.liveness = new Liveness(config, this.connections, this.replies, logger);
    this.sessions = new Sessions({ config, logger, membership: options.membership, presence: options.presence, broker: options.broker, tokens, metrics });
    const commands = new Commands({ config, logger, sessions: this.sessions, membership: options.membership, deduper: options.deduper, replies: this.replies, metrics, tokens, verifier: options.verifier });
    this.revocations = new Revocations({
      instanceId: config.instanceId,
      broker: options.broker,
      presence: options.presence,
      sessions: this.sessions,
      membership: options.membership,
      replies: this.replies,
      timeoutMs: timings.revocationTimeoutMs,
      logger,
    });
    this.inquiries = new Inquiries({
      instanceId: config.instanceId,
      broker: options.broker,
      presence: options.presence,
      sessions: this.sessions,
      membership: options.membership,
      status: options.status,
      timeoutMs: timings.inquiryTimeoutMs,
      logger,
    });
    this.controlMessages = new Control([this.sessions.control, this.revocations, this.inquiries], logger);
    this.inbound = new Inbound({ commands, replies: this.replies, liveness: this.liveness, metrics, logger, messagesPer10s: config.messagesPer10s });
    this.policy = {
      slowConsumerBytes: config.slowConsumerBytes,
      slowConsumerGraceMs: config.slowConsumerGraceMs,
      onSlowConsumer: (ctx) => {
        metrics.slowConsumers.inc();
        logger.warn({ connectionId: ctx.id, userId: ctx.session?.userId, ip: ctx.ip, queuedBytes: ctx.socket.bufferedAmount }, 'slow consumer cut off');
      },
    };
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Sessions held, attached or orphaned. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Where the broker delivers control messages (session handoffs and revocations between instances). */
  get control(): ControlHandlers {
    return this.controlMessages;
  }

  /** Control messages from other instances that did not parse. */
  get invalidControl(): number {
    return this.controlMessages.invalid;
  }

  start(): void {
    this.liveness.start();
    this.sessions.start();
  }

  stop(): void {
    this.liveness.stop();
    this.sessions.stop();
  }

  /**
   * The first step of shutdown: connections stop being read, and every session moves to a surviving instance (when
   * there is one) before any connection closes, so its client resumes it anywhere.
   */
  async handOver(): Promise<void> {
    for (const ctx of this.connections.values()) ctx.draining = true;
    await this.sessions.handOverAll();
  }

  /** Tells every connection the gateway is going away and closes it with 1001. */
  shutdown(reason: string): void {
    for (const ctx of this.connections.values()) {
      const reconnectAfterMs = timings.shutdownReconnectBaseMs + Math.floor(Math.random() * timings.shutdownReconnectSpreadMs);
      this.replies.send(ctx, 'shutdown', { reason, reconnectAfterMs });
      ctx.close(CloseCode.GOING_AWAY.code, 'server shutting down');
    }
  }

  /** Ends connections still open after the shutdown grace period. */
  terminateAll(): void {
    for (const ctx of this.connections.values()) ctx.terminate();
  }

  /** Drops one connection without a close handshake, as a network failure would; false when there is no such connection. */
  terminateConnection(connectionId: ConnectionId): boolean {
    const ctx = this.connections.get(connectionId);
    ctx?.terminate();
    return ctx !== undefined;
  }

  /** Ends every session this instance holds (the instance is going away), announcing DOWN where due. */
  endAllSessions(): void {
    this.sessions.endAll();
  }

  // --- HubHandlers -------------------------------------------------------------------------

  onOpen(socket: WebSocket, ip: string): ConnectionContext {
    const buckets = { messages: createBucket(this.config.messagesPer10s), heartbeats: createBucket(limits.heartbeatsPer10s) };
    const ctx = new ConnectionContext(socket, ip, buckets, this.policy, Date.now());
    this.connections.set(ctx.id, ctx);
    const { heartbeatIntervalMs, heartbeatTimeoutMs, identifyTimeoutMs } = this.config;
    this.replies.send(ctx, 'hello', { connectionId: ctx.id, heartbeatIntervalMs, heartbeatTimeoutMs, identifyTimeoutMs });
    this.log.debug({ connectionId: ctx.id, ip }, 'connection opened');
    return ctx;
  }

  onMessage(ctx: ConnectionContext, raw: RawData, isBinary: boolean): void {
    this.inbound.receive(ctx, raw, isBinary);
  }

  onPong(ctx: ConnectionContext): void {
    this.liveness.ponged(ctx);
  }

  onClose(ctx: ConnectionContext, code: number): void {
    this.connections.delete(ctx.id);
    ctx.closed = true;
    ctx.queue = null;
    const userId = ctx.session?.userId;
    this.sessions.connectionClosed(ctx, code);
    this.log.debug({ connectionId: ctx.id, userId, ip: ctx.ip, code }, 'connection closed');
  }
}
