// ConnectionContext: one WebSocket connection's state, and the only place that writes to its socket.
import { WebSocket } from 'ws';
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

  constructor(
    readonly socket: WebSocket,
    readonly ip: string,
    now: number,
  ) {
    this.openedAt = now;
    this.lastSeenAt = now;
  }

  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  /** Sends an already-serialized envelope; a no-op once the socket is closing. */
  send(frame: string): void {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(frame);
  }

  close(code: number, reason: string): void {
    if (this.socket.readyState === WebSocket.OPEN || this.socket.readyState === WebSocket.CONNECTING) {
      this.socket.close(code, reason);
    }
  }
}
