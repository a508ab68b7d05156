// SessionStore: the sessions this instance holds, attached or orphaned; orphans expire after GW_ORPHAN_SESSION_TTL_MS.
import type { SessionId } from '../types/domain';
import type { ConnectionContext } from './ConnectionContext';
import type { Session } from './Session';

export class SessionStore {
  private readonly sessions = new Map<SessionId, Session>();
  /** Orphaned sessions in the order they were orphaned, so expiry stops at the first one still young. */
  private readonly orphans = new Map<SessionId, Session>();

  add(session: Session): void {
    this.sessions.set(session.id, session);
  }

  get(sessionId: SessionId): Session | undefined {
    return this.sessions.get(sessionId);
  }

  /** Detaches the session from its connection; it waits for a resume until it expires. */
  orphan(session: Session, now: number): void {
    session.conn = null;
    session.orphanedAt = now;
    this.orphans.set(session.id, session);
  }

  /** Attaches a session (orphaned, or taken over from another connection) to `conn`. */
  adopt(session: Session, conn: ConnectionContext): void {
    this.orphans.delete(session.id);
    session.orphanedAt = null;
    session.conn = conn;
  }

  remove(session: Session): void {
    this.sessions.delete(session.id);
    this.orphans.delete(session.id);
  }

  /** Removes and returns the sessions orphaned for `ttlMs` or longer. */
  expire(now: number, ttlMs: number): Session[] {
    const expired: Session[] = [];
    for (const session of this.orphans.values()) {
      if (now - (session.orphanedAt ?? now) < ttlMs) break;
      this.remove(session);
      expired.push(session);
    }
    return expired;
  }

  values(): IterableIterator<Session> {
    return this.sessions.values();
  }

  get size(): number {
    return this.sessions.size;
  }
}
