// Router: spends rate-limit tokens, validates every envelope in the documented order, and dispatches it by type,
// one envelope at a time per connection. Owns the connection and session registries and the liveness sweep.
import type { RawData, WebSocket } from 'ws';
import type { Config } from '../config';
import { limits } from '../config/limits';
import { timings } from '../config/timings';
import { isGranted } from '../auth/grants';
import { verifyToken } from '../auth/jwt';
import { SessionTokens } from '../auth/sessionToken';
import type { Broker, ControlHandlers } from '../broker/Broker';
import type { Deduper } from '../broker/Deduper';
import { CloseCode, type ErrorCodeName } from '../types/codes';
import type { ConnectionId, GroupName, SessionId, UserId } from '../types/domain';
import { clientEnvelopeSchema, serializeEnvelope, MAX_ID_LENGTH } from '../types/envelope';
import {
  MAX_META_BYTES,
  clientSignals,
  isClientSignalType,
  type ClientSignalData,
  type ServerSignalType,
  type ServerSignals,
} from '../types/signals';
import { parseFrame } from '../utils/json';
import type { Logger } from '../utils/logger';
import type { Metrics } from '../metrics';
import { ConnectionContext, type ConnectionPolicy, type QueuedFrame } from './ConnectionContext';
import { Handoff, type HandoffHost } from './Handoff';
import type { HubHandlers } from './Hub';
import type { Membership } from './Membership';
import { createBucket } from './rateLimits';
import { Session, type SessionLimits, type SessionState } from './Session';
import { SessionStore } from './SessionStore';

export interface RouterOptions {
  config: Config;
  logger: Logger;
  membership: Membership;
  deduper: Deduper;
  metrics: Metrics;
  broker: Broker;
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

/** What ws reports when a connection ended without any close frame from the peer. */
const NO_CLOSE_FRAME = 1006;

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

export class Router implements HubHandlers, HandoffHost {
  private readonly connections = new Map<ConnectionId, ConnectionContext>();
  private readonly sessions = new SessionStore();
  private readonly config: Config;
  private readonly log: Logger;
  private readonly membership: Membership;
  private readonly deduper: Deduper;
  private readonly metrics: Metrics;
  private readonly policy: ConnectionPolicy;
  private readonly tokens: SessionTokens;
  private readonly sessionLimits: SessionLimits;
  private readonly handoff: Handoff;
  private sweepTimer: NodeJS.Timeout | null = null;
  private lastPingAt = Date.now();

  constructor(options: RouterOptions) {
    this.config = options.config;
    this.log = options.logger;
    this.membership = options.membership;
    this.deduper = options.deduper;
    this.metrics = options.metrics;
    // A session token must outlive a drop: issued at the last heartbeat, used up to the orphan TTL later.
    this.tokens = new SessionTokens(this.config.jwtSecret, this.config.orphanSessionTtlMs + this.config.heartbeatTimeoutMs);
    this.sessionLimits = { bufferMessages: this.config.resumeBufferMessages, bufferBytes: this.config.resumeBufferBytes };
    this.handoff = new Handoff(this.config.instanceId, options.broker, this, timings.handoffTimeoutMs, this.log);
    this.policy = {
      slowConsumerBytes: this.config.slowConsumerBytes,
      slowConsumerGraceMs: this.config.slowConsumerGraceMs,
      onSlowConsumer: (ctx) => {
        this.metrics.slowConsumers.inc();
        this.log.warn({ connectionId: ctx.id, userId: ctx.session?.userId, ip: ctx.ip, queuedBytes: ctx.socket.bufferedAmount }, 'slow consumer cut off');
      },
    };
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Where the broker delivers control messages (session handoffs between instances). */
  get control(): ControlHandlers {
    return this.handoff;
  }

  /** Sessions held, attached or orphaned. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Starts the single liveness sweep that replaces per-connection timers. */
  start(): void {
    const { identifyTimeoutMs, heartbeatTimeoutMs, heartbeatIntervalMs, orphanSessionTtlMs } = this.config;
    const shortest = Math.min(identifyTimeoutMs, heartbeatTimeoutMs, heartbeatIntervalMs, orphanSessionTtlMs);
    const tick = Math.max(10, Math.min(timings.maxSweepIntervalMs, Math.floor(shortest / 5)));
    this.sweepTimer = setInterval(() => {
      try {
        this.sweep(Date.now());
      } catch (err) {
        this.log.error({ err: errorText(err) }, 'liveness sweep failed');
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
      this.reply(ctx, 'shutdown', { reason, reconnectAfterMs });
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
    for (const session of this.sessions.expire(Number.POSITIVE_INFINITY, 0)) this.membership.release(session);
  }

  // --- HubHandlers -------------------------------------------------------------------------

  onOpen(socket: WebSocket, ip: string): ConnectionContext {
    const buckets = { messages: createBucket(this.config.messagesPer10s), heartbeats: createBucket(limits.heartbeatsPer10s) };
    const ctx = new ConnectionContext(socket, ip, buckets, this.policy, Date.now());
    this.connections.set(ctx.id, ctx);
    const { heartbeatIntervalMs, heartbeatTimeoutMs, identifyTimeoutMs } = this.config;
    this.reply(ctx, 'hello', { connectionId: ctx.id, heartbeatIntervalMs, heartbeatTimeoutMs, identifyTimeoutMs });
    this.log.debug({ connectionId: ctx.id, ip }, 'connection opened');
    return ctx;
  }

  /** Charges the frame to its bucket on arrival, then runs it, or queues it behind a frame still being handled. */
  onMessage(ctx: ConnectionContext, raw: RawData, isBinary: boolean): void {
    ctx.lastSeenAt = Date.now();
    ctx.alive = true;
    const parsed = parseFrame(raw, isBinary, limits.maxJsonDepth);
    const checked = parsed.ok ? clientEnvelopeSchema.safeParse(parsed.value) : null;
    const envelope = checked?.success ? checked.data : null;
    this.metrics.received(envelope?.type ?? 'invalid');
    const replyTo = envelope ? envelope.id : parsed.ok ? salvageId(parsed.value) : undefined;
    if (!this.spend(ctx, envelope?.type === 'heartbeat', replyTo)) return;
    const queued: QueuedFrame = { parsed, envelope, envelopeError: checked && !checked.success ? describeIssue(checked.error) : null, replyTo };
    if (ctx.queue) ctx.queue.push(queued);
    else this.run(ctx, queued);
  }

  /**
   * A close handshake the client starts ends the session at once, whatever its code (a browser's `close()` sends
   * none: ws reports 1005), except RESUME_LATER. The session is orphaned for a resume only when the connection
   * ended without a close frame from the client (1006: network loss, terminate, a protocol error) or when the
   * gateway started the close.
   */
  onClose(ctx: ConnectionContext, code: number): void {
    this.connections.delete(ctx.id);
    ctx.closed = true;
    ctx.queue = null;
    const session = ctx.session;
    if (session && session.conn === ctx) {
      const clientEnded = !ctx.serverClosed && code !== NO_CLOSE_FRAME && code !== CloseCode.RESUME_LATER.code;
      if (clientEnded) this.endSession(session);
      else this.sessions.orphan(session, Date.now());
    }
    this.log.debug({ connectionId: ctx.id, userId: session?.userId, ip: ctx.ip, code }, 'connection closed');
  }

  private endSession(session: Session): void {
    this.sessions.remove(session);
    this.membership.release(session);
  }

  // --- per-connection order ------------------------------------------------------------------

  /** Handles a frame; if that takes a round trip, later frames of the connection wait their turn. */
  private run(ctx: ConnectionContext, queued: QueuedFrame): void {
    const pending = this.handle(ctx, queued);
    if (!pending) return;
    ctx.queue = [];
    void pending.then(() => this.drain(ctx));
  }

  private async drain(ctx: ConnectionContext): Promise<void> {
    while (ctx.queue && ctx.queue.length > 0) {
      const next = ctx.queue.shift()!;
      await this.handle(ctx, next);
    }
    ctx.queue = null;
  }

  /** Validation order after the rate limit: BAD_JSON, INVALID_ENVELOPE, UNKNOWN_TYPE, NOT_/ALREADY_IDENTIFIED, data, permissions. */
  private handle(ctx: ConnectionContext, queued: QueuedFrame): Promise<void> | undefined {
    if (!ctx.isOpen) return undefined;
    const { parsed, envelope, replyTo } = queued;
    if (!parsed.ok) return this.sendError(ctx, parsed.code, parsed.message);
    if (!envelope) return this.sendError(ctx, 'INVALID_ENVELOPE', `envelope ${queued.envelopeError ?? 'invalid'}`, replyTo);
    const { type, id, data } = envelope;
    if (!isClientSignalType(type)) return this.sendError(ctx, 'UNKNOWN_TYPE', `unknown type "${type}"`, id);
    if (type === 'identify') {
      if (ctx.session) return this.sendError(ctx, 'ALREADY_IDENTIFIED', 'this connection is already identified', id);
    } else if (!ctx.session) {
      return this.sendError(ctx, 'NOT_IDENTIFIED', 'send identify first', id);
    }
    const body = clientSignals[type].safeParse(data ?? {});
    if (!body.success) return this.sendError(ctx, 'INVALID_ENVELOPE', `data.${describeIssue(body.error)}`, id);
    try {
      const pending = this.dispatch(ctx, type, body.data, id);
      return pending?.catch((err: unknown) => this.internalError(ctx, err, id));
    } catch (err) {
      this.internalError(ctx, err, id);
      return undefined;
    }
  }

  private dispatch(ctx: ConnectionContext, type: keyof typeof clientSignals, data: unknown, id: string | undefined): Promise<void> | undefined {
    switch (type) {
      case 'identify':
        return this.identify(ctx, data as ClientSignalData<'identify'>, id);
      case 'heartbeat':
        this.reply(ctx, 'heartbeat_ack', { serverTs: Date.now(), sessionToken: this.tokens.issue(ctx.session!.id) }, id);
        return undefined;
      case 'subscribe':
        return this.subscribe(ctx, (data as ClientSignalData<'subscribe'>).group, id);
      case 'unsubscribe':
        return this.unsubscribe(ctx, (data as ClientSignalData<'unsubscribe'>).group, id);
      case 'data_update':
        return this.dataUpdate(ctx, data as ClientSignalData<'data_update'>, id);
      case 'signal':
        return this.signal(ctx, data as ClientSignalData<'signal'>, id);
    }
  }

  // --- handlers ------------------------------------------------------------------------------

  private async identify(ctx: ConnectionContext, data: ClientSignalData<'identify'>, id: string | undefined): Promise<void> {
    const meta = data.meta ?? {};
    if (Buffer.byteLength(JSON.stringify(meta)) > MAX_META_BYTES) {
      return this.sendError(ctx, 'PAYLOAD_TOO_LARGE', `data.meta is over ${MAX_META_BYTES} bytes serialized`, id);
    }
    ctx.identifying = true;
    try {
      const verified = await verifyToken(data.token, this.config.jwtSecret);
      if (!ctx.isOpen) return;
      if (!verified.ok) {
        this.log.info({ connectionId: ctx.id, ip: ctx.ip, reason: verified.reason }, 'identify rejected');
        this.sendError(ctx, 'AUTH_FAILED', verified.reason, id);
        return ctx.close(CloseCode.AUTH_FAILED.code, 'authentication failed');
      }
      const { sub: userId, role, groups: grants } = verified.claims;
      const claimed = data.resume ? this.claimedSession(data.resume, userId) : null;
      if (claimed && claimed.covers(data.resume!.lastSeq)) {
        return await this.resume(ctx, claimed, grants, data.groups ?? [], data.resume!.lastSeq, id);
      }
      // A genuine token for a session this instance does not hold: it may be orphaned on another instance.
      if (!claimed && data.resume && this.tokens.verify(data.resume.sessionToken) === data.resume.sessionId) {
        const pulled = await this.pull(data.resume, userId, grants);
        if (pulled && !ctx.closed) return await this.resume(ctx, pulled, grants, data.groups ?? [], data.resume.lastSeq, id);
      }
      const session = new Session(userId, role, grants, meta, Date.now(), ctx, this.sessionLimits);
      if (!(await this.membership.admit(session, this.config.maxConnectionsPerUser))) {
        this.log.info({ connectionId: ctx.id, userId, ip: ctx.ip }, 'identify refused: connections per user');
        this.sendError(ctx, 'LIMIT_EXCEEDED', `user already has ${this.config.maxConnectionsPerUser} connections`, id);
        return ctx.close(CloseCode.TOO_MANY_CONNECTIONS.code, 'too many connections');
      }
      if (ctx.closed) return this.membership.release(session);
      this.sessions.add(session);
      ctx.session = session;
      const { joined, denied, cameUp } = await this.joinRequested(session, data.groups ?? []);
      const groups = await this.memberLists([...session.groups]);
      this.reply(ctx, 'ready', { sessionId: session.id, connectionId: ctx.id, userId, role, groups, denied, resumed: false, sessionToken: this.tokens.issue(session.id) }, id);
      this.announceUp(session, cameUp);
      // A client that proved it held an orphan it can no longer resume has moved on: that orphan ends now.
      if (claimed && claimed.conn === null) this.endSession(claimed);
      this.log.info({ connectionId: ctx.id, userId, ip: ctx.ip, groups: joined.length, denied: denied.length, resumeRefused: data.resume !== undefined }, 'identified');
    } finally {
      ctx.identifying = false;
    }
  }

  /** The session a resume request names, when its session token is genuine, unexpired, and it belongs to `userId`. */
  private claimedSession(resume: { sessionId: string; sessionToken: string }, userId: UserId): Session | null {
    if (this.tokens.verify(resume.sessionToken) !== resume.sessionId) return null;
    const session = this.sessions.get(resume.sessionId);
    return session && session.userId === userId ? session : null;
  }

  /** Fetches a session from the instance holding it; on success it is held here, orphaned, ready to be resumed. */
  private async pull(resume: { sessionId: SessionId; lastSeq: number }, userId: UserId, grants: readonly string[]): Promise<Session | null> {
    let arriving: { session: Session; owner: string } | null = null;
    const state = await this.handoff.claim(resume.sessionId, userId, resume.lastSeq, async (offer) => {
      const session = new Session(userId, offer.role, grants, offer.meta, offer.createdAt, null, this.sessionLimits, resume.sessionId);
      session.capture();
      arriving = { session, owner: offer.owner };
      await this.membership.attachQuietly(session, offer.groups);
    });
    const moved = arriving as { session: Session; owner: string } | null;
    if (!moved) return null;
    if (!state) {
      this.membership.detachQuietly(moved.session);
      return null;
    }
    moved.session.restore(state);
    this.sessions.add(moved.session);
    this.sessions.orphan(moved.session, Date.now());
    await this.membership.adoptPresence(moved.session, moved.owner);
    this.log.info({ sessionId: moved.session.id, userId, from: moved.owner }, 'session taken over from another instance');
    return moved.session;
  }

  // --- HandoffHost -----------------------------------------------------------------------------

  handoffCandidate(sessionId: SessionId, userId: UserId): Session | null {
    const session = this.sessions.get(sessionId);
    return session && session.userId === userId ? session : null;
  }

  surrender(session: Session, lastSeq: number): SessionState {
    const previous = session.conn;
    if (previous) {
      previous.session = null;
      previous.close(CloseCode.SESSION_TAKEN_OVER.code, 'session resumed elsewhere');
    }
    this.sessions.remove(session);
    const state = session.export(lastSeq);
    this.membership.handOver(session);
    return state;
  }

  /** Re-attaches a session: `ready` (resumed), then every buffered envelope after `lastSeq`, then live traffic. */
  private async resume(ctx: ConnectionContext, session: Session, grants: readonly string[], requested: GroupName[], lastSeq: number, id: string | undefined): Promise<void> {
    session.grants = grants;
    await Promise.all([...session.groups].filter((group) => !isGranted(grants, group)).map((group) => this.membership.leave(session, group)));
    const { denied, cameUp } = await this.joinRequested(session, requested);
    const groups = await this.memberLists([...session.groups]);
    if (ctx.closed) return;
    // From here to the replay nothing awaits, so no live envelope can slip in between.
    const previous = session.conn;
    if (previous && previous !== ctx) {
      previous.session = null;
      previous.close(CloseCode.SESSION_TAKEN_OVER.code, 'session resumed elsewhere');
    }
    this.sessions.adopt(session, ctx);
    ctx.session = session;
    this.reply(ctx, 'ready', { sessionId: session.id, connectionId: ctx.id, userId: session.userId, role: session.role, groups, denied, resumed: true, sessionToken: this.tokens.issue(session.id) }, id);
    const missed = session.replayAfter(lastSeq);
    for (const { body, seq } of missed) ctx.sendSequenced(body, seq);
    this.metrics.sent('replay', missed.length);
    this.announceUp(session, cameUp);
    this.log.info({ connectionId: ctx.id, userId: session.userId, ip: ctx.ip, sessionId: session.id, replayed: missed.length, tookOver: previous !== null }, 'session resumed');
  }

  /** Joins the requested groups the token grants, up to the per-connection cap; the rest are denied. */
  private async joinRequested(session: Session, requested: GroupName[]): Promise<{ joined: GroupName[]; denied: GroupName[]; cameUp: GroupName[] }> {
    const joined: GroupName[] = [];
    const denied: GroupName[] = [];
    for (const group of new Set(requested)) {
      if (session.groups.has(group)) continue;
      (isGranted(session.grants, group) && session.groups.size + joined.length < this.config.maxGroupsPerConnection ? joined : denied).push(group);
    }
    const up = await Promise.all(joined.map((group) => this.membership.join(session, group)));
    return { joined, denied, cameUp: joined.filter((_, i) => up[i]) };
  }

  private memberLists(groups: GroupName[]): Promise<{ group: GroupName; members: Awaited<ReturnType<Membership['members']>> }[]> {
    return Promise.all(groups.map(async (group) => ({ group, members: await this.membership.members(group) })));
  }

  private announceUp(session: Session, groups: GroupName[]): void {
    for (const group of groups) this.membership.announce(group, session.userId, 'UP', session.meta);
  }

  private async subscribe(ctx: ConnectionContext, group: GroupName, id: string | undefined): Promise<void> {
    const session = ctx.session!;
    if (!isGranted(session.grants, group)) return this.sendError(ctx, 'FORBIDDEN', `the token does not grant group "${group}"`, id);
    if (!session.groups.has(group) && session.groups.size >= this.config.maxGroupsPerConnection) {
      return this.sendError(ctx, 'LIMIT_EXCEEDED', `a connection may be in at most ${this.config.maxGroupsPerConnection} groups`, id);
    }
    const cameUp = await this.membership.join(session, group);
    this.reply(ctx, 'subscribed', { group, members: await this.membership.members(group) }, id);
    if (cameUp) this.membership.announce(group, session.userId, 'UP', session.meta);
  }

  private async unsubscribe(ctx: ConnectionContext, group: GroupName, id: string | undefined): Promise<void> {
    await this.membership.leave(ctx.session!, group);
    this.reply(ctx, 'unsubscribed', { group }, id);
  }

  private dataUpdate(ctx: ConnectionContext, data: ClientSignalData<'data_update'>, id: string | undefined): undefined {
    const session = ctx.session!;
    if (!session.groups.has(data.group)) return this.sendError(ctx, 'FORBIDDEN', `not a member of group "${data.group}"`, id);
    const out = frame('data_update', { group: data.group, from: { userId: session.userId, connectionId: ctx.id }, payload: data.payload });
    this.membership.publish('group', data.group, { type: 'data_update', frame: out }, data.echo === true ? null : session);
    if (id !== undefined) this.reply(ctx, 'ack', {}, id);
    return undefined;
  }

  private async signal(ctx: ConnectionContext, data: ClientSignalData<'signal'>, id: string | undefined): Promise<void> {
    const session = ctx.session!;
    if (!session.groups.has(data.group)) return this.sendError(ctx, 'FORBIDDEN', `not a member of group "${data.group}"`, id);
    if (await this.deduper.claim(data.group, data.kind, session.userId, this.config.signalDedupMs)) {
      const out = frame('signal', { group: data.group, from: { userId: session.userId, connectionId: ctx.id }, kind: data.kind, data: data.data ?? null });
      this.membership.publish('group', data.group, { type: 'signal', frame: out }, session);
    }
    if (id !== undefined) this.reply(ctx, 'ack', {}, id);
  }

  // --- errors and liveness -----------------------------------------------------------------

  /** Writes one envelope to one connection. */
  private reply<T extends ServerSignalType>(ctx: ConnectionContext, type: T, data: ServerSignals[T], replyTo?: string): void {
    ctx.send(frame(type, data, replyTo));
    this.metrics.sent(type);
  }

  private sendError(ctx: ConnectionContext, code: ErrorCodeName, message: string, replyTo?: string, retryAfterMs?: number): undefined {
    this.reply(ctx, 'error', { code, message, retryAfterMs }, replyTo);
    return undefined;
  }

  private internalError(ctx: ConnectionContext, err: unknown, replyTo: string | undefined): void {
    this.log.error({ connectionId: ctx.id, userId: ctx.session?.userId, ip: ctx.ip, err: errorText(err) }, 'envelope handling failed');
    this.sendError(ctx, 'INTERNAL', 'the gateway could not handle this envelope', replyTo);
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
    this.metrics.rateLimited.inc();
    this.sendError(ctx, 'RATE_LIMITED', 'too many envelopes; slow down', replyTo, Math.max(1, Math.ceil(bucket.getWaitTime(1))));
    if (++ctx.rejectedStreak >= this.config.messagesPer10s) {
      this.log.warn({ connectionId: ctx.id, userId: ctx.session?.userId, ip: ctx.ip }, 'closed for flooding');
      ctx.close(CloseCode.RATE_LIMITED.code, 'rate limit exceeded');
    }
    return false;
  }

  private sweep(now: number): void {
    const { identifyTimeoutMs, heartbeatTimeoutMs, heartbeatIntervalMs, orphanSessionTtlMs } = this.config;
    const ping = now - this.lastPingAt >= heartbeatIntervalMs;
    if (ping) this.lastPingAt = now;
    for (const ctx of this.connections.values()) {
      if (!ctx.isOpen) continue;
      if (!ctx.session) {
        if (!ctx.identifying && now - ctx.openedAt >= identifyTimeoutMs) {
          this.sendError(ctx, 'IDENTIFY_TIMEOUT', `no identify within ${identifyTimeoutMs} ms`);
          ctx.close(CloseCode.IDENTIFY_TIMEOUT.code, 'identify timeout');
          continue;
        }
      } else if (now - ctx.lastSeenAt >= heartbeatTimeoutMs) {
        ctx.close(CloseCode.HEARTBEAT_TIMEOUT.code, 'heartbeat timeout');
        continue;
      }
      // WebSocket pings are for connections silent for a whole interval: any frame already proves the peer alive.
      if (ping && now - ctx.lastSeenAt >= heartbeatIntervalMs) {
        if (!ctx.alive) {
          ctx.terminate();
          continue;
        }
        ctx.alive = false;
        ctx.socket.ping();
      }
    }
    const expired = this.sessions.expire(now, orphanSessionTtlMs);
    for (const session of expired) this.membership.release(session);
    if (expired.length > 0) this.log.debug({ count: expired.length }, 'orphaned sessions expired');
  }
}
