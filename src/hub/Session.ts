// Session: one identified client session, the unit of fan-out. It numbers what it receives (seq), keeps a bounded
// replay buffer, and outlives its connection for GW_ORPHAN_SESSION_TTL_MS so a reconnect can resume it.
import type { GroupName, PresenceMeta, Role, SessionId, UserId } from '../types/domain';
import { newId } from '../utils/ids';
import type { ConnectionContext } from './ConnectionContext';

export interface Buffered {
  seq: number;
  /** The envelope's UTF-8 bytes without the closing brace: one Buffer shared by every recipient of a fan-out. */
  body: Buffer;
}

export interface SessionLimits {
  bufferMessages: number;
  bufferBytes: number;
}

export class Session {
  readonly id: SessionId = newId('s');
  readonly groups = new Set<GroupName>();
  /** The attached connection, or null while orphaned. */
  conn: ConnectionContext | null;
  orphanedAt: number | null = null;
  /** The last seq assigned. */
  seq = 0;
  /** Oldest first; evicted entries leave the array at once, so their bodies can be freed. */
  private readonly buffer: Buffered[] = [];
  private bufferedBytes = 0;

  constructor(
    readonly userId: UserId,
    readonly role: Role,
    /** The token's `groups` claim (replaced by the newer token on resume). */
    public grants: readonly string[],
    readonly meta: PresenceMeta,
    readonly createdAt: number,
    conn: ConnectionContext,
    private readonly limits: SessionLimits,
  ) {
    this.conn = conn;
  }

  /** A sequenced envelope (data_update, presence_update): numbered, kept for replay, sent if attached. */
  deliver(body: Buffer): void {
    const seq = ++this.seq;
    this.buffer.push({ seq, body });
    this.bufferedBytes += body.length;
    while (this.buffer.length > this.limits.bufferMessages || this.bufferedBytes > this.limits.bufferBytes) {
      this.bufferedBytes -= this.buffer.shift()!.body.length;
    }
    this.conn?.sendSequenced(body, seq);
  }

  /** An unsequenced envelope (signal): sent if attached, never kept. */
  send(frame: string): void {
    this.conn?.send(frame);
  }

  /** Whether every envelope after `lastSeq` is still buffered. */
  covers(lastSeq: number): boolean {
    if (!Number.isInteger(lastSeq) || lastSeq < 0 || lastSeq > this.seq) return false;
    if (lastSeq === this.seq) return true;
    const oldest = this.buffer[0]?.seq;
    return oldest !== undefined && oldest <= lastSeq + 1;
  }

  /** The buffered envelopes after `lastSeq`, in order. */
  replayAfter(lastSeq: number): Buffered[] {
    return this.buffer.filter((entry) => entry.seq > lastSeq);
  }
}
