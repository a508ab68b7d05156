// Router: validates every envelope, dispatches it by type, and keeps the connection, group, presence and session registries.
import type { RawData, WebSocket } from 'ws';
import type { Config } from '../config';
import { limits } from '../config/limits';
import { timings } from '../config/timings';
import { isGranted } from '../auth/grants';
import { verifyToken } from '../auth/jwt';
import { CloseCode, type ErrorCodeName } from '../types/codes';
import type { ConnectionId, GroupName, UserId } from '../types/domain';
import { clientEnvelopeSchema, serializeEnvelope, MAX_ID_LENGTH } from '../types/envelope';
import {
  MAX_META_BYTES,
  clientSignals,
  isClientSignalType,
  type ClientSignalData,
  type ClientSignalType,
  type GroupMembers,
  type ServerSignalType,
  type ServerSignals,
} from '../types/signals';
import { parseFrame } from '../utils/json';
import type { Logger } from '../utils/logger';
import { ConnectionContext, type ConnectionPolicy } from './ConnectionContext';
import { GroupRegistry } from './Groups';
import type { HubHandlers } from './Hub';
import { PresenceRegistry } from './Presence';
import { createBucket } from './rateLimits';
import { SessionStore } from './SessionStore';

export interface RouterOptions {
  config: Config;
  logger: Logger;
}

function frame<T extends ServerSignalType>(type: T, data: ServerSignals[T], replyTo?: string): string {
  return serializeEnvelope(type, data, replyTo);
}

/** The `id` of a frame that failed envelope validation, when it is itself well-formed (so the error can still reply to it). */
function salvageId(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const id: unknown = (value as { id?: unknown }).id;
  return typeof id === 'string' && id.length > 0 && id.length <= MAX_ID_LENGTH ? id : undefined;
}

function describeIssue(error: { issues: { path: PropertyKey[]; message: string }[] }): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid data';
  const path = issue.path.map(String).join('.');
  return path ? `${path}: ${issue.message}` : issue.message;
}

export class Router implements HubHandlers {
  private readonly connections = new Map<ConnectionId, ConnectionContext>();
  /** user → their identified connections, for the per-user connection cap. */
  private readonly users = new Map<UserId, Set<ConnectionContext>>();
  private readonly groups = new GroupRegistry();
  private readonly presence = new PresenceRegistry();
  private readonly sessions = new SessionStore();
  private readonly config: Config;
  private readonly log: Logger;
  private readonly policy: ConnectionPolicy;
  private sweepTimer: NodeJS.Timeout | null = null;
  private lastPingAt = Date.now();

  constructor(options: RouterOptions) {
    this.config = options.config;
    this.log = options.logger;
    this.policy = {
      slowConsumerBytes: this.config.slowConsumerBytes,
      slowConsumerGraceMs: this.config.slowConsumerGraceMs,
      onSlowConsumer: (ctx) =>
        this.log.warn({ connectionId: ctx.id, userId: ctx.identity?.userId, ip: ctx.ip, queuedBytes: ctx.socket.bufferedAmount }, 'slow consumer cut off'),
    };
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Starts the single liveness sweep that replaces per-connection timers. */
  start(): void {
    const { identifyTimeoutMs, heartbeatTimeoutMs, heartbeatIntervalMs } = this.config;
    const tick = Math.max(10, Math.min(timings.maxSweepIntervalMs, Math.floor(Math.min(identifyTimeoutMs, heartbeatTimeoutMs, heartbeatIntervalMs) / 5)));
    this.sweepTimer = setInterval(() => {
      try {
        this.sweep(Date.now());
      } catch (err) {
        this.log.error({ err: err instanceof Error ? err.message : String(err) }, 'liveness sweep failed');
      }
    }, tick);
    this.sweepTimer.unref();
  }

  stop(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
  }

  /** Tells every connection the gateway is going away and closes it with 1001. */
  shutdown(reason: string): void {
    for (const ctx of this.connections.values()) {
      const reconnectAfterMs = timings.shutdownReconnectBaseMs + Math.floor(Math.random() * timings.shutdownReconnectSpreadMs);
      ctx.send(frame('shutdown', { reason, reconnectAfterMs }));
      ctx.close(CloseCode.GOING_AWAY.code, 'server shutting down');
    }
  }

  /** Ends connections still open after the shutdown grace period. */
  terminateAll(): void {
    for (const ctx of this.connections.values()) ctx.socket.terminate();
  }

  // --- HubHandlers -------------------------------------------------------------------------

  onOpen(socket: WebSocket, ip: string): ConnectionContext {
    const buckets = { messages: createBucket(this.config.messagesPer10s), heartbeats: createBucket(limits.heartbeatsPer10s) };
    const ctx = new ConnectionContext(socket, ip, buckets, this.policy, Date.now());
    this.connections.set(ctx.id, ctx);
    const { heartbeatIntervalMs, heartbeatTimeoutMs, identifyTimeoutMs } = this.config;
    ctx.send(frame('hello', { connectionId: ctx.id, heartbeatIntervalMs, heartbeatTimeoutMs, identifyTimeoutMs }));
    this.log.debug({ connectionId: ctx.id, ip }, 'connection opened');
    return ctx;
  }

  onMessage(ctx: ConnectionContext, raw: RawData, isBinary: boolean): void {
    ctx.lastSeenAt = Date.now();
    ctx.alive = true;
    const parsed = parseFrame(raw, isBinary, limits.maxJsonDepth);
    const envelope = parsed.ok ? clientEnvelopeSchema.safeParse(parsed.value) : null;
    const replyTo = envelope?.success ? envelope.data.id : parsed.ok ? salvageId(parsed.value) : undefined;
    if (!this.spend(ctx, envelope?.success === true && envelope.data.type === 'heartbeat', replyTo)) return;
    if (!parsed.ok) return this.sendError(ctx, parsed.code, parsed.message);
    if (!envelope?.success) return this.sendError(ctx, 'INVALID_ENVELOPE', `envelope ${describeIssue(envelope!.error)}`, replyTo);
    const { type, id, data } = envelope.data;
    if (!isClientSignalType(type)) return this.sendError(ctx, 'UNKNOWN_TYPE', `unknown type "${type.slice(0, 64)}"`, id);
    if (type === 'identify') {
      if (ctx.identity || ctx.identifying) return this.sendError(ctx, 'ALREADY_IDENTIFIED', 'this connection is already identified', id);
    } else if (!ctx.identity) {
      return this.sendError(ctx, 'NOT_IDENTIFIED', 'send identify first', id);
    }
    const body = clientSignals[type].safeParse(data ?? {});
    if (!body.success) return this.sendError(ctx, 'INVALID_ENVELOPE', `data.${describeIssue(body.error)}`, id);
    try {
      this.dispatch(ctx, type, body.data, id);
    } catch (err) {
      this.internalError(ctx, err, id);
    }
  }

  onClose(ctx: ConnectionContext, code: number): void {
    this.connections.delete(ctx.id);
    const identity = ctx.identity;
    if (identity) {
      const own = this.users.get(identity.userId);
      own?.delete(ctx);
      if (own?.size === 0) this.users.delete(identity.userId);
      const held = [...ctx.groups];
      for (const group of held) this.leaveGroup(ctx, group);
      this.sessions.orphan(identity.sessionId, held, Date.now());
    }
    this.log.debug({ connectionId: ctx.id, userId: identity?.userId, ip: ctx.ip, code }, 'connection closed');
  }

  // --- dispatch ----------------------------------------------------------------------------

  private dispatch(ctx: ConnectionContext, type: ClientSignalType, data: unknown, id: string | undefined): void {
    switch (type) {
      case 'identify':
        ctx.identifying = true;
        this.identify(ctx, data as ClientSignalData<'identify'>, id)
          .catch((err: unknown) => this.internalError(ctx, err, id))
          .finally(() => {
            ctx.identifying = false;
          });
        return;
      case 'heartbeat':
        return ctx.send(frame('heartbeat_ack', { serverTs: Date.now() }, id));
      case 'subscribe':
        return this.subscribe(ctx, (data as ClientSignalData<'subscribe'>).group, id);
      case 'unsubscribe':
        return this.unsubscribe(ctx, (data as ClientSignalData<'unsubscribe'>).group, id);
      case 'data_update':
        return this.dataUpdate(ctx, data as ClientSignalData<'data_update'>, id);
    }
  }

  private async identify(ctx: ConnectionContext, data: ClientSignalData<'identify'>, id: string | undefined): Promise<void> {
    const meta = data.meta ?? {};
    if (Buffer.byteLength(JSON.stringify(meta)) > MAX_META_BYTES) {
      return this.sendError(ctx, 'PAYLOAD_TOO_LARGE', `data.meta is over ${MAX_META_BYTES} bytes serialized`, id);
    }
    const verified = await verifyToken(data.token, this.config.jwtSecret);
    if (!ctx.isOpen) return;
    if (!verified.ok) {
      this.log.info({ connectionId: ctx.id, ip: ctx.ip, reason: verified.reason }, 'identify rejected');
      this.sendError(ctx, 'AUTH_FAILED', verified.reason, id);
      return ctx.close(CloseCode.AUTH_FAILED.code, 'authentication failed');
    }
    const { sub: userId, role, groups: grants } = verified.claims;
    let own = this.users.get(userId);
    if (own && own.size >= this.config.maxConnectionsPerUser) {
      this.log.info({ connectionId: ctx.id, userId, ip: ctx.ip }, 'identify refused: connections per user');
      this.sendError(ctx, 'LIMIT_EXCEEDED', `user already has ${this.config.maxConnectionsPerUser} connections`, id);
      return ctx.close(CloseCode.TOO_MANY_CONNECTIONS.code, 'too many connections');
    }
    if (!own) {
      own = new Set();
      this.users.set(userId, own);
    }
    own.add(ctx);
    const session = this.sessions.create(userId, ctx.id, Date.now());
    ctx.identity = { userId, role, grants, sessionId: session.sessionId, meta };

    const joined: GroupName[] = [];
    const denied: GroupName[] = [];
    for (const group of new Set(data.groups ?? [])) {
      (isGranted(grants, group) && joined.length < this.config.maxGroupsPerConnection ? joined : denied).push(group);
    }
    const cameUp = joined.filter((group) => this.joinGroup(ctx, group));
    const groups: GroupMembers[] = joined.map((group) => ({ group, members: this.presence.members(group) }));
    ctx.send(frame('ready', { sessionId: session.sessionId, connectionId: ctx.id, userId, role, groups, denied }, id));
    for (const group of cameUp) this.announce(ctx, group, userId, 'UP', meta);
    this.log.info({ connectionId: ctx.id, userId, ip: ctx.ip, groups: joined.length, denied: denied.length }, 'identified');
  }

  private subscribe(ctx: ConnectionContext, group: GroupName, id: string | undefined): void {
    const identity = ctx.identity!;
    if (!isGranted(identity.grants, group)) return this.sendError(ctx, 'FORBIDDEN', `the token does not grant group "${group}"`, id);
    if (!ctx.groups.has(group) && ctx.groups.size >= this.config.maxGroupsPerConnection) {
      return this.sendError(ctx, 'LIMIT_EXCEEDED', `a connection may be in at most ${this.config.maxGroupsPerConnection} groups`, id);
    }
    const cameUp = this.joinGroup(ctx, group);
    ctx.send(frame('subscribed', { group, members: this.presence.members(group) }, id));
    if (cameUp) this.announce(ctx, group, identity.userId, 'UP', identity.meta);
  }

  private unsubscribe(ctx: ConnectionContext, group: GroupName, id: string | undefined): void {
    this.leaveGroup(ctx, group);
    ctx.send(frame('unsubscribed', { group }, id));
  }

  private dataUpdate(ctx: ConnectionContext, data: ClientSignalData<'data_update'>, id: string | undefined): void {
    const identity = ctx.identity!;
    const members = this.groups.connections(data.group);
    if (!members || !ctx.groups.has(data.group)) {
      return this.sendError(ctx, 'FORBIDDEN', `not a member of group "${data.group}"`, id);
    }
    const out = frame('data_update', { group: data.group, from: { userId: identity.userId, connectionId: ctx.id }, payload: data.payload });
    const skip = data.echo === true ? null : ctx;
    for (const member of members) if (member !== skip) member.send(out);
    if (id !== undefined) ctx.send(frame('ack', {}, id));
  }

  // --- membership --------------------------------------------------------------------------

  /** Joins the group; true when the user came UP in it (their first connection there). */
  private joinGroup(ctx: ConnectionContext, group: GroupName): boolean {
    const identity = ctx.identity!;
    if (!this.groups.join(ctx, group)) return false;
    return this.presence.join(group, identity.userId, ctx.id, identity.meta, Date.now());
  }

  /** Leaves the group and announces DOWN when it was the user's last connection in it. */
  private leaveGroup(ctx: ConnectionContext, group: GroupName): void {
    const identity = ctx.identity!;
    if (!this.groups.leave(ctx, group)) return;
    if (this.presence.leave(group, identity.userId, ctx.id)) this.announce(ctx, group, identity.userId, 'DOWN', identity.meta);
  }

  /** Sends presence_update to every connection in the group except `origin`. */
  private announce(origin: ConnectionContext, group: GroupName, userId: UserId, status: 'UP' | 'DOWN', meta: Record<string, unknown>): void {
    const members = this.groups.connections(group);
    if (!members) return;
    const out = frame('presence_update', { group, userId, status, meta });
    for (const member of members) if (member !== origin) member.send(out);
  }

  // --- errors and liveness -----------------------------------------------------------------

  private sendError(ctx: ConnectionContext, code: ErrorCodeName, message: string, replyTo?: string, retryAfterMs?: number): void {
    ctx.send(frame('error', { code, message, retryAfterMs }, replyTo));
  }

  /**
   * Takes one token from the frame's bucket (heartbeats have their own). Without one the frame is refused
   * RATE_LIMITED; as many refusals in a row as the message bucket holds close the connection with 4008.
   */
  private spend(ctx: ConnectionContext, heartbeat: boolean, replyTo: string | undefined): boolean {
    const bucket = heartbeat ? ctx.buckets.heartbeats : ctx.buckets.messages;
    if (bucket.tryRemoveTokens(1)) {
      ctx.rejectedStreak = 0;
      return true;
    }
    this.sendError(ctx, 'RATE_LIMITED', 'too many envelopes; slow down', replyTo, Math.max(1, Math.ceil(bucket.getWaitTime(1))));
    if (++ctx.rejectedStreak >= this.config.messagesPer10s) {
      this.log.warn({ connectionId: ctx.id, userId: ctx.identity?.userId, ip: ctx.ip }, 'closed for flooding');
      ctx.close(CloseCode.RATE_LIMITED.code, 'rate limit exceeded');
    }
    return false;
  }

  private internalError(ctx: ConnectionContext, err: unknown, replyTo: string | undefined): void {
    this.log.error({ connectionId: ctx.id, userId: ctx.identity?.userId, ip: ctx.ip, err: err instanceof Error ? err.message : String(err) }, 'envelope handling failed');
    this.sendError(ctx, 'INTERNAL', 'the gateway could not handle this envelope', replyTo);
  }

  private sweep(now: number): void {
    const { identifyTimeoutMs, heartbeatTimeoutMs, heartbeatIntervalMs, orphanSessionTtlMs } = this.config;
    const ping = now - this.lastPingAt >= heartbeatIntervalMs;
    if (ping) this.lastPingAt = now;
    for (const ctx of this.connections.values()) {
      if (!ctx.isOpen) continue;
      if (!ctx.identity) {
        if (!ctx.identifying && now - ctx.openedAt >= identifyTimeoutMs) {
          this.sendError(ctx, 'IDENTIFY_TIMEOUT', `no identify within ${identifyTimeoutMs} ms`);
          ctx.close(CloseCode.IDENTIFY_TIMEOUT.code, 'identify timeout');
          continue;
        }
      } else if (now - ctx.lastSeenAt >= heartbeatTimeoutMs) {
        ctx.close(CloseCode.HEARTBEAT_TIMEOUT.code, 'heartbeat timeout');
        continue;
      }
      if (ping) {
        if (!ctx.alive) {
          ctx.socket.terminate();
          continue;
        }
        ctx.alive = false;
        ctx.socket.ping();
      }
    }
    const expired = this.sessions.expire(now, orphanSessionTtlMs);
    if (expired.length > 0) this.log.debug({ count: expired.length }, 'orphaned sessions expired');
  }
}
