// SessionStore: one session per successful identify; a closed connection leaves its session orphaned until the TTL.
import type { ConnectionId, GroupName, SessionId, UserId } from '../types/domain';
import { newId } from '../utils/ids';

export interface Session {
  readonly sessionId: SessionId;
  readonly userId: UserId;
  readonly createdAt: number;
  /** The attached connection, or null while orphaned. */
  connectionId: ConnectionId | null;
  /** Groups held when the session was orphaned (a live session's groups are its connection's). */
  groups: GroupName[];
  orphanedAt: number | null;
}

export class SessionStore {
  private readonly sessions = new Map<SessionId, Session>();
  /** Orphaned sessions in the order they were orphaned, so expiry stops at the first one still young. */
  private readonly orphans = new Map<SessionId, Session>();

  create(userId: UserId, connectionId: ConnectionId, now: number): Session {
    const session: Session = { sessionId: newId('s'), userId, createdAt: now, connectionId, groups: [], orphanedAt: null };
    this.sessions.set(session.sessionId, session);
    return session;
  }

  get(sessionId: SessionId): Session | undefined {
    return this.sessions.get(sessionId);
  }

  orphan(sessionId: SessionId, groups: GroupName[], now: number): void {
    const session = this.sessions.get(sessionId);
    if (!session) return;
    session.connectionId = null;
    session.groups = groups;
    session.orphanedAt = now;
    this.orphans.set(sessionId, session);
  }

  /** Drops sessions orphaned for `ttlMs` or longer and returns them. */
  expire(now: number, ttlMs: number): Session[] {
    const expired: Session[] = [];
    for (const session of this.orphans.values()) {
      if (now - (session.orphanedAt ?? now) < ttlMs) break;
      this.orphans.delete(session.sessionId);
      this.sessions.delete(session.sessionId);
      expired.push(session);
    }
    return expired;
  }

  get size(): number {
    return this.sessions.size;
  }
}
