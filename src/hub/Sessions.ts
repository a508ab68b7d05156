// Sessions: this instance's sessions from identify to their end. The registry and orphan expiry; what a connection's
// close does to its session; finding the session a client resumes, here or pulled from the instance the session
// directory names; and handing every session to surviving instances when this one shuts down.
import type { Config } from '../config';
import { timings } from '../config/timings';
import type { SessionTokens } from '../auth/sessionToken';
import type { Broker } from '../broker/Broker';
import type { PresenceStore } from '../presence/PresenceStore';
import { CloseCode } from '../types/codes';
import type { PresenceMeta, Role, SessionId, UserId } from '../types/domain';
import type { Metrics } from '../metrics';
import type { Logger } from '../utils/logger';
import type { Capture } from './Capture';
import type { ConnectionContext } from './ConnectionContext';
import type { ControlReceiver } from './Control';
import { Handoff, type HandoffHost, type HandoffOffer } from './Handoff';
import type { Membership } from './Membership';
import { Session, type SessionLimits } from './Session';
import { SessionStore } from './SessionStore';

export interface SessionsOptions {
  config: Pick<Config, 'instanceId' | 'orphanSessionTtlMs' | 'resumeBufferMessages' | 'resumeBufferBytes'>;
  logger: Logger;
  membership: Membership;
  /** Presence, here for its session directory. */
  presence: PresenceStore;
  broker: Broker;
  tokens: SessionTokens;
  metrics: Metrics;
}

/** What a resume request names. */
export interface ResumeRequest {
  sessionId: SessionId;
  sessionToken: string;
  lastSeq: number;
}

/** What ws reports when a connection ended without any close frame from the peer. */
const NO_CLOSE_FRAME = 1006;

/** Sessions handed over at once on shutdown: enough to keep Redis busy, few enough not to time each other out. */
const HANDOVER_CONCURRENCY = 64;

export class Sessions implements HandoffHost {
  private readonly store = new SessionStore();
  private readonly handoff: Handoff;
  private readonly limits: SessionLimits;
  private readonly log: Logger;
  /** New sessions and the connection identifying them, until `attach` (a backend may end a session meanwhile). */
  private readonly joining = new WeakMap<Session, ConnectionContext>();
  private timer: NodeJS.Timeout | null = null;
  accepting = true;

  constructor(private readonly options: SessionsOptions) {
    const { config } = options;
    this.log = options.logger;
    this.limits = { bufferMessages: config.resumeBufferMessages, bufferBytes: config.resumeBufferBytes };
    this.handoff = new Handoff({ instanceId: config.instanceId, broker: options.broker, host: this, timeoutMs: timings.handoffTimeoutMs, logger: this.log, metrics: options.metrics });
  }

  get size(): number {
    return this.store.size;
  }

  /** Where Control routes the control messages of handoffs. */
  get control(): ControlReceiver {
    return this.handoff;
  }

  /** Starts expiring orphans. */
  start(): void {
    const ttl = this.options.config.orphanSessionTtlMs;
    this.timer = setInterval(() => this.expire(Date.now()), Math.max(10, Math.min(timings.maxSweepIntervalMs, Math.floor(ttl / 5))));
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  create(userId: UserId, role: Role, grants: readonly string[], meta: PresenceMeta): Session {
    return new Session(userId, role, grants, meta, Date.now(), null, this.limits);
  }

  /**
   * Holds a new session for `ctx`, which identified: it buffers until `attach` (at `ready`), so a client never gets a
   * numbered envelope before its `ready`.
   */
  add(session: Session, ctx: ConnectionContext): void {
    this.store.add(session);
    this.joining.set(session, ctx);
    ctx.session = session;
  }

  /**
   * The session a resume names, when its token is genuine: here, or pulled from the instance holding it. `stale` is a
   * session here that can no longer be resumed (its buffer moved past lastSeq) and has no connection: the client that
   * proved it held it has moved on, so it ends once the new session is ready.
   */
  async resumable(resume: ResumeRequest, userId: UserId): Promise<{ session: Session | null; stale: Session | null }> {
    if (this.options.tokens.verify(resume.sessionToken) !== resume.sessionId) return { session: null, stale: null };
    await this.handoff.settled(resume.sessionId);
    const local = this.candidate(resume.sessionId, userId);
    if (local) return local.covers(resume.lastSeq) ? { session: local, stale: null } : { session: null, stale: local.conn === null ? local : null };
    const pulled = await this.handoff.pull(resume.sessionId, userId, resume.lastSeq);
    return pulled?.covers(resume.lastSeq) ? { session: pulled, stale: null } : { session: null, stale: null };
  }

  /** Whether the session is here and staying: not ended, and not being moved to another instance. */
  holds(session: Session): boolean {
    return this.store.get(session.id) === session && !this.handoff.moving(session.id);
  }

  /** Attaches a session to `ctx`, taking it over from a connection that still has it (which gets 4011). */
  attach(session: Session, ctx: ConnectionContext): boolean {
    const previous = session.conn;
    if (previous && previous !== ctx) {
      previous.session = null;
      previous.close(CloseCode.SESSION_TAKEN_OVER.code, 'session resumed elsewhere');
    }
    this.joining.delete(session);
    this.store.adopt(session, ctx);
    ctx.session = session;
    return previous !== null && previous !== ctx;
  }

  /**
   * A close handshake the client starts ends the session at once, whatever its code (a browser's `close()` sends
   * none: ws reports 1005), except RESUME_LATER. The session is orphaned for a resume only when the connection
   * ended without a close frame from the client (1006: network loss, terminate, a protocol error) or when the
   * gateway started the close.
   */
  connectionClosed(ctx: ConnectionContext, code: number): void {
    const session = ctx.session;
    // Another connection took the session over: nothing to do. A session still being set up for this connection (not
    // attached until `ready`) is ended or orphaned like an attached one.
    if (!session || (session.conn !== ctx && session.conn !== null)) return;
    const clientEnded = !ctx.serverClosed && code !== NO_CLOSE_FRAME && code !== CloseCode.RESUME_LATER.code;
    if (clientEnded) this.end(session);
    else this.store.orphan(session, Date.now());
  }

  end(session: Session): void {
    this.store.remove(session);
    this.options.membership.release(session);
  }

  /** Session `sessionId` of `userId` once no handoff is moving it: here, or null (it moved on, or is not here). */
  async here(userId: UserId, sessionId: SessionId): Promise<Session | null> {
    while (this.handoff.moving(sessionId)) await this.handoff.settled(sessionId);
    return this.candidate(sessionId, userId);
  }

  /**
   * Ends session `sessionId` of `userId` here at a backend's request, whatever its state (attached, being set up,
   * orphaned). A handoff moving it settles first: the session ends where it then is, so one that moved on is not here
   * (null) and the caller follows it. Resolves with the connection it had, detached for the caller to close (its close
   * then changes nothing), or null when it had none.
   */
  async endHere(userId: UserId, sessionId: SessionId): Promise<{ conn: ConnectionContext | null } | null> {
    const session = await this.here(userId, sessionId);
    if (!session) return null;
    const conn = session.conn ?? this.joining.get(session) ?? null;
    this.joining.delete(session);
    if (conn) conn.session = null;
    this.end(session);
    return { conn };
  }

  /** Ends every session still here (the instance is going away), announcing DOWN where due. */
  endAll(): void {
    for (const session of [...this.store.values()]) this.end(session);
  }

  /**
   * Shutdown: takes no more sessions and hands each one held here to a surviving instance, spread evenly, before the
   * connections close. Sessions that could not move stay here, orphaned, as they would without survivors.
   */
  async handOverAll(): Promise<void> {
    this.accepting = false;
    // Sessions already on their way here (resumes under way when the shutdown began) arrive first, and go on too.
    await this.handoff.arrived();
    const sessions = [...this.store.values()];
    if (sessions.length === 0) return;
    const peers = await this.options.broker.peers();
    if (peers.length === 0) {
      this.log.info({ sessions: sessions.length }, 'no other instance is alive: sessions are not handed over');
      return;
    }
    const started = Date.now();
    const deadline = started + timings.handOverMaxMs;
    let moved = 0;
    let next = 0;
    const worker = async () => {
      while (next < sessions.length && Date.now() < deadline) {
        const i = next++;
        const session = sessions[i]!;
        await this.handoff.settled(session.id);
        if (this.store.get(session.id) !== session || (await this.handoff.push(session, peers[i % peers.length]!))) moved++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(HANDOVER_CONCURRENCY, sessions.length) }, worker));
    const kept = sessions.length - moved;
    this.log[kept > 0 ? 'warn' : 'info']({ handedOver: moved, kept, instances: peers.length, ms: Date.now() - started }, 'sessions handed over to surviving instances');
  }

  private expire(now: number): void {
    const expired = this.store.expire(now, this.options.config.orphanSessionTtlMs).filter((session) => {
      if (!this.handoff.moving(session.id)) return true;
      // Being handed over: the handoff decides where it lives; if it stays, it waits a TTL more.
      this.store.add(session);
      this.store.orphan(session, now);
      return false;
    });
    for (const session of expired) this.options.membership.release(session);
    if (expired.length > 0) this.log.debug({ count: expired.length }, 'orphaned sessions expired');
  }

  // --- HandoffHost ---------------------------------------------------------------------------

  candidate(sessionId: SessionId, userId: UserId): Session | null {
    const session = this.store.get(sessionId);
    return session && session.userId === userId ? session : null;
  }

  async standIn(sessionId: SessionId, userId: UserId, offer: HandoffOffer, capture: Capture): Promise<Session> {
    const session = new Session(userId, offer.role, offer.grants, offer.meta, offer.createdAt, null, this.limits, sessionId);
    session.availability = offer.availability;
    session.adoptPresenceView(offer.presence);
    session.startCapture(capture);
    await this.options.membership.attachQuietly(session, offer.groups);
    return session;
  }

  abandon(session: Session): void {
    this.options.membership.detachQuietly(session);
  }

  async adopt(session: Session, owner: string, lease: string): Promise<boolean> {
    const { presence } = this.options;
    const moved = await presence.transfer(owner, { userId: session.userId, sessionId: session.id, meta: session.meta, availability: session.availability, since: session.createdAt }, [...session.groups], lease);
    if (!moved) return false;
    this.store.add(session);
    this.store.orphan(session, Date.now());
    return true;
  }

  /** While shutting down, the connection is left for the shutdown close (1001) instead of 4011. */
  detach(session: Session): void {
    const conn = session.conn;
    if (conn) {
      conn.session = null;
      if (this.accepting) conn.close(CloseCode.SESSION_TAKEN_OVER.code, 'session resumed elsewhere');
    }
    if (session.orphanedAt === null) this.store.orphan(session, Date.now());
    this.options.presence.moving(session.userId, session.id, [...session.groups], true);
  }

  handedOver(session: Session): void {
    this.options.presence.moving(session.userId, session.id, [...session.groups], false);
    this.store.remove(session);
    this.options.membership.handOver(session);
  }

  kept(session: Session): void {
    this.options.presence.moving(session.userId, session.id, [...session.groups], false);
  }

  outdated(session: Session): void {
    if (session.conn === null) this.end(session);
  }

  owner(userId: UserId, sessionId: SessionId): Promise<string | null> {
    return this.options.presence.owner(userId, sessionId);
  }

  lease(userId: UserId, sessionId: SessionId, lease: string, ttlMs: number): Promise<boolean> {
    return this.options.presence.lease(userId, sessionId, lease, ttlMs);
  }

  release(userId: UserId, sessionId: SessionId, lease: string): Promise<void> {
    return this.options.presence.release(userId, sessionId, lease);
  }

  revoke(userId: UserId, sessionId: SessionId, lease: string): Promise<boolean | null> {
    return this.options.presence.revoke(userId, sessionId, lease);
  }
}
