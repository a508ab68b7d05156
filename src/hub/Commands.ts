// Commands: what each client envelope does, once Inbound has validated it: identify (a new session, or a resumed
// one), heartbeat, refresh, subscribe, unsubscribe, members, presence_watch, presence, data_update and signal.
import type { Config } from '../config';
import { isGranted } from '../auth/grants';
import type { TokenVerifier } from '../auth/jwt';
import type { SessionTokens } from '../auth/sessionToken';
import type { Deduper } from '../dedup/Deduper';
import type { Metrics } from '../metrics';
import { limits } from '../config/limits';
import type { GroupName, MemberCursor, TokenClaims } from '../types/domain';
import { serializeEnvelope } from '../types/envelope';
import { MAX_META_BYTES, type ClientSignalData, type ClientSignalType, type MemberList } from '../types/signals';
import type { Logger } from '../utils/logger';
import type { ConnectionContext } from './ConnectionContext';
import type { Membership } from './Membership';
import type { Replies } from './Replies';
import type { Session } from './Session';
import type { Sessions } from './Sessions';

export interface CommandsOptions {
  config: Pick<Config, 'maxConnectionsPerUser' | 'maxGroupsPerConnection' | 'signalDedupMs'>;
  logger: Logger;
  sessions: Sessions;
  membership: Membership;
  deduper: Deduper;
  replies: Replies;
  metrics: Metrics;
  tokens: SessionTokens;
  verifier: TokenVerifier;
}

export class Commands {
  private readonly config: CommandsOptions['config'];
  private readonly log: Logger;
  private readonly sessions: Sessions;
  private readonly membership: Membership;
  private readonly replies: Replies;

  constructor(private readonly options: CommandsOptions) {
    this.config = options.config;
    this.log = options.logger;
    this.sessions = options.sessions;
    this.membership = options.membership;
    this.replies = options.replies;
  }

  dispatch(ctx: ConnectionContext, type: ClientSignalType, data: unknown, id: string | undefined): Promise<void> | undefined {
    switch (type) {
      case 'identify':
        return this.identify(ctx, data as ClientSignalData<'identify'>, id);
      case 'heartbeat':
        this.replies.send(ctx, 'heartbeat_ack', { serverTs: Date.now(), sessionToken: this.options.tokens.issue(ctx.session!.id) }, id);
        return undefined;
      case 'refresh':
        return this.refresh(ctx, (data as ClientSignalData<'refresh'>).token, id);
      case 'subscribe':
        return this.subscribe(ctx, (data as ClientSignalData<'subscribe'>).group, id);
      case 'unsubscribe':
        return this.unsubscribe(ctx, (data as ClientSignalData<'unsubscribe'>).group, id);
      case 'members':
        return this.members(ctx, data as ClientSignalData<'members'>, id);
      case 'presence_watch':
        return this.watch(ctx, data as ClientSignalData<'presence_watch'>, id);
      case 'presence':
        return this.presence(ctx, data as ClientSignalData<'presence'>, id);
      case 'data_update':
        return this.dataUpdate(ctx, data as ClientSignalData<'data_update'>, id);
      case 'signal':
        return this.signal(ctx, data as ClientSignalData<'signal'>, id);
    }
  }

  private async identify(ctx: ConnectionContext, data: ClientSignalData<'identify'>, id: string | undefined): Promise<void> {
    const meta = data.meta ?? {};
    const refusal = { replyTo: id, refused: 'identify' } as const;
    if (metaTooLarge(meta)) return this.replies.refuse(ctx, 'PAYLOAD_TOO_LARGE', META_TOO_LARGE, refusal);
    ctx.identifying = true;
    try {
      const verified = await this.options.verifier.verify(data.token);
      if (!ctx.isOpen) return;
      if (!verified.ok) {
        this.log.info({ connectionId: ctx.id, ip: ctx.ip, reason: verified.reason }, 'identify rejected');
        return this.replies.refuse(ctx, 'AUTH_FAILED', verified.reason, refusal);
      }
      const { sub: userId, role, groups: grants } = verified.claims;
      const found = data.resume ? await this.sessions.resumable(data.resume, userId) : { session: null, stale: null };
      if (found.session && (await this.resume(ctx, found.session, verified.claims, data.groups ?? [], data.resume!.lastSeq, id))) return;
      const session = this.sessions.create(userId, role, grants, meta);
      session.expiresAt = verified.claims.exp * 1000;
      session.presenceMode = data.presence ?? 'updates';
      session.availability = data.availability ?? 'online';
      if (!(await this.membership.admit(session, this.config.maxConnectionsPerUser))) {
        this.log.info({ connectionId: ctx.id, userId, ip: ctx.ip }, 'identify refused: connections per user');
        return this.replies.refuse(ctx, 'LIMIT_EXCEEDED', `user already has ${this.config.maxConnectionsPerUser} connections`, refusal);
      }
      // Closed meanwhile, or this instance began shutting down: no session starts here (the shutdown close follows).
      if (ctx.closed || ctx.draining) return this.membership.release(session);
      this.sessions.add(session, ctx);
      const { joined, denied } = await this.joinRequested(session, data.groups ?? []);
      const groups = await this.memberLists(session);
      // Closed, draining, or ended by a backend meanwhile (which closes the connection itself).
      if (ctx.closed || ctx.draining || !this.sessions.holds(session)) return;
      // From here to the replay nothing awaits: what reached the session while it joined follows `ready`, numbered.
      this.sessions.attach(session, ctx);
      this.replies.send(ctx, 'ready', { sessionId: session.id, connectionId: ctx.id, userId, role, groups, denied, resumed: false, sessionToken: this.options.tokens.issue(session.id), expiresAt: session.expiresAt }, id);
      for (const { body, seq } of session.replayAfter(0)) ctx.sendSequenced(body, seq);
      if (found.stale) this.sessions.end(found.stale);
      this.log.info({ connectionId: ctx.id, userId, ip: ctx.ip, groups: joined.length, denied: denied.length, resumeRefused: data.resume !== undefined }, 'identified');
    } finally {
      ctx.identifying = false;
    }
  }

  /**
   * Re-attaches a session: `ready` (resumed), then every buffered envelope after `lastSeq`, then live traffic. False
   * when the session left this instance meanwhile (another instance pulled it): the client gets a fresh session.
   */
  private async resume(ctx: ConnectionContext, session: Session, claims: TokenClaims, requested: GroupName[], lastSeq: number, id: string | undefined): Promise<boolean> {
    // A session another instance is taking must not change groups under it (its stand-in captures the offered ones).
    if (!this.sessions.holds(session)) return false;
    this.adoptToken(session, claims);
    await Promise.all(this.ungranted(session).map((group) => this.membership.leave(session, group)));
    const { denied } = await this.joinRequested(session, requested);
    const groups = await this.memberLists(session);
    if (ctx.closed || ctx.draining) return true;
    if (!this.sessions.holds(session)) return false;
    // From here to the replay nothing awaits, so no live envelope can slip in between.
    const tookOver = this.sessions.attach(session, ctx);
    this.replies.send(ctx, 'ready', { sessionId: session.id, connectionId: ctx.id, userId: session.userId, role: session.role, groups, denied, resumed: true, sessionToken: this.options.tokens.issue(session.id), expiresAt: session.expiresAt }, id);
    const missed = session.replayAfter(lastSeq);
    for (const { body, seq } of missed) ctx.sendSequenced(body, seq);
    this.options.metrics.sent('replay', missed.length);
    this.log.info({ connectionId: ctx.id, userId: session.userId, ip: ctx.ip, sessionId: session.id, replayed: missed.length, tookOver }, 'session resumed');
    return true;
  }

  /**
   * A fresh token for the connection's own user: its expiry and grants replace the current ones, groups it no longer
   * grants are left (each told with `unsubscribed`, reason `not_granted`), then `refreshed`. A token that fails, or is
   * another user's, is refused with AUTH_FAILED and changes nothing: the connection keeps its current expiry.
   */
  private async refresh(ctx: ConnectionContext, token: string, id: string | undefined): Promise<void> {
    const session = ctx.session!;
    const verified = await this.options.verifier.verify(token);
    if (!ctx.isOpen) return;
    if (!verified.ok || verified.claims.sub !== session.userId) {
      const reason = verified.ok ? 'the token is for another user' : verified.reason;
      this.log.info({ connectionId: ctx.id, userId: session.userId, ip: ctx.ip, reason }, 'refresh refused');
      return this.replies.refuse(ctx, 'AUTH_FAILED', `refresh refused: ${reason}; the connection keeps its current expiry`, { replyTo: id, refused: 'refresh' });
    }
    this.adoptToken(session, verified.claims);
    // While another instance takes the session over its groups stay as offered; the resume there applies the token.
    const left = this.sessions.holds(session) ? this.ungranted(session) : [];
    await Promise.all(left.map((group) => this.membership.leave(session, group)));
    if (!ctx.isOpen) return;
    for (const group of left) this.replies.send(ctx, 'unsubscribed', { group, reason: 'not_granted' });
    this.replies.send(ctx, 'refreshed', { expiresAt: session.expiresAt }, id);
    this.log.info({ connectionId: ctx.id, userId: session.userId, expiresAt: session.expiresAt, left: left.length }, 'token refreshed');
  }

  private adoptToken(session: Session, claims: TokenClaims): void {
    session.expiresAt = claims.exp * 1000;
    session.role = claims.role;
    session.grants = claims.groups;
  }

  /** The session's groups its current grants no longer cover. */
  private ungranted(session: Session): GroupName[] {
    return [...session.groups].filter((group) => !isGranted(session.grants, group));
  }

  /** Joins the requested groups the token grants, up to the per-connection cap; the rest are denied. */
  private async joinRequested(session: Session, requested: GroupName[]): Promise<{ joined: GroupName[]; denied: GroupName[] }> {
    const joined: GroupName[] = [];
    const denied: GroupName[] = [];
    for (const group of new Set(requested)) {
      if (session.groups.has(group)) continue;
      (isGranted(session.grants, group) && session.groups.size + joined.length < this.config.maxGroupsPerConnection ? joined : denied).push(group);
    }
    await Promise.all(joined.map((group) => this.membership.join(session, group)));
    return { joined, denied };
  }

  /** The first page of each of the session's groups, as `ready` carries them. */
  private memberLists(session: Session): Promise<MemberList[]> {
    return Promise.all([...session.groups].map((group) => this.memberList(session, group, undefined, limits.memberPage)));
  }

  private async memberList(session: Session, group: GroupName, after: MemberCursor | undefined, limit: number): Promise<MemberList> {
    const { members, count, next } = await this.membership.members(session, group, after, limit);
    return { group, members, count, next };
  }

  private async subscribe(ctx: ConnectionContext, group: GroupName, id: string | undefined): Promise<void> {
    const session = ctx.session!;
    if (!isGranted(session.grants, group)) return this.replies.refuse(ctx, 'FORBIDDEN', `the token does not grant group "${group}"`, { replyTo: id });
    if (!session.groups.has(group) && session.groups.size >= this.config.maxGroupsPerConnection) {
      return this.replies.refuse(ctx, 'LIMIT_EXCEEDED', `a connection may be in at most ${this.config.maxGroupsPerConnection} groups`, { replyTo: id, refused: 'subscribe' });
    }
    await this.membership.join(session, group);
    this.replies.send(ctx, 'subscribed', await this.memberList(session, group, undefined, limits.memberPage), id);
  }

  private async unsubscribe(ctx: ConnectionContext, group: GroupName, id: string | undefined): Promise<void> {
    await this.membership.leave(ctx.session!, group);
    this.replies.send(ctx, 'unsubscribed', { group }, id);
  }

  /** True when the connection is in `group`; otherwise refuses the envelope (FORBIDDEN) and is false. */
  private isMember(ctx: ConnectionContext, group: GroupName, id: string | undefined): boolean {
    if (ctx.session!.groups.has(group)) return true;
    this.replies.refuse(ctx, 'FORBIDDEN', `not a member of group "${group}"`, { replyTo: id });
    return false;
  }

  private async members(ctx: ConnectionContext, data: ClientSignalData<'members'>, id: string | undefined): Promise<void> {
    const session = ctx.session!;
    if (!this.isMember(ctx, data.group, id)) return undefined;
    this.replies.send(ctx, 'members', await this.memberList(session, data.group, data.after, data.limit ?? limits.memberPage), id);
  }

  private watch(ctx: ConnectionContext, data: ClientSignalData<'presence_watch'>, id: string | undefined): undefined {
    const session = ctx.session!;
    if (!this.isMember(ctx, data.group, id)) return undefined;
    if (data.watch) session.watching.add(data.group);
    else session.watching.delete(data.group);
    this.replies.send(ctx, 'ack', {}, id);
    return undefined;
  }

  /** The session's availability, and its meta when one comes: its user is listed anew in each of its groups, then `ack`. */
  private async presence(ctx: ConnectionContext, data: ClientSignalData<'presence'>, id: string | undefined): Promise<void> {
    const session = ctx.session!;
    if (data.meta && metaTooLarge(data.meta)) return this.replies.refuse(ctx, 'PAYLOAD_TOO_LARGE', META_TOO_LARGE, { replyTo: id });
    await this.membership.setPresence(session, { availability: data.availability, meta: data.meta ?? session.meta });
    if (id !== undefined && ctx.isOpen) this.replies.send(ctx, 'ack', {}, id);
  }

  private dataUpdate(ctx: ConnectionContext, data: ClientSignalData<'data_update'>, id: string | undefined): undefined {
    const session = ctx.session!;
    if (!this.isMember(ctx, data.group, id)) return undefined;
    const out = serializeEnvelope('data_update', { group: data.group, from: { userId: session.userId, connectionId: ctx.id }, payload: data.payload });
    this.membership.publish('group', data.group, { type: 'data_update', frame: out }, data.echo === true ? null : session);
    if (id !== undefined) this.replies.send(ctx, 'ack', {}, id);
    return undefined;
  }

  private async signal(ctx: ConnectionContext, data: ClientSignalData<'signal'>, id: string | undefined): Promise<void> {
    const session = ctx.session!;
    if (!this.isMember(ctx, data.group, id)) return undefined;
    if (await this.options.deduper.claim(data.group, data.kind, session.userId, this.config.signalDedupMs)) {
      const out = serializeEnvelope('signal', { group: data.group, from: { userId: session.userId, connectionId: ctx.id }, kind: data.kind, data: data.data ?? null });
      this.membership.publish('group', data.group, { type: 'signal', frame: out }, session);
    }
    if (id !== undefined) this.replies.send(ctx, 'ack', {}, id);
  }
}

const META_TOO_LARGE = `data.meta is over ${MAX_META_BYTES} bytes serialized`;

function metaTooLarge(meta: Record<string, unknown>): boolean {
  return Buffer.byteLength(JSON.stringify(meta)) > MAX_META_BYTES;
}
