// Capture: what a session arriving from another instance keeps of the deliveries it sees while the handoff runs.
//
// Both instances are in the session's channels while it moves. The owner numbers everything it sees up to the moment
// it reads `commit` and exports that; the claimer must number exactly what comes after, and nothing twice. Deliveries
// are not compared by their bytes (two identical envelopes are two messages): each is placed against the cut by where
// it falls in its own stream. Redis gives one order of publishes, which every subscriber connection reads in, so:
//   - from a third instance or a backend (read from Redis): after the claimer's own mark, which Redis placed in the
//     claimer's stream at the point where the owner's stream has `commit` (both published in one MULTI);
//   - from the owner itself: after `state`, since the owner publishes its own envelopes and `state` on one
//     connection, in the order it delivered them and exported the session;
//   - from this instance (delivered here without Redis): after `commit` was written, since this instance's publishes
//     go on that same connection, in order.
// With the in-memory broker delivery is synchronous and the same rules hold. On a Redis Cluster no order spans the
// channels: ChannelCapture (ChannelCut.ts) cuts each channel on its own.

/** What the arriving session keeps, whichever way the cut is made. */
export interface Capture {
  /** The instance handing the session over. */
  readonly owner: string;
  /** Called in the same turn as the commit is written. */
  committed(): void;
  /** This instance read its own mark of the commit among its control messages. */
  marked(): void;
  /** This instance read the owner's `state`. */
  answered(): void;
  /** A delivery on `channel` from `origin` (an instance id, or a backend's name): kept when the owner did not number it. */
  offer(body: Buffer, origin: string, channel: string): void;
  /** This instance's own delivery on `channel`, read back from the broker (only a per-channel cut asks for these). */
  echo(body: Buffer, channel: string): void;
  /** Resolves with whether the cut is complete, once it is or after `timeoutMs`. */
  settled(timeoutMs: number): Promise<boolean>;
  /** The deliveries the owner did not number, in arrival order. */
  take(): Buffer[];
}

/** The cut against one order of every message (in memory; one redis-server). */
export class OrderedCapture implements Capture {
  private readonly kept: Buffer[] = [];
  private commitSent = false;
  private markSeen = false;
  private stateSeen = false;
  /** Whether the mark was read before the state, as Redis orders them (anything else means messages were lost between). */
  private inOrder = false;

  constructor(
    /** The instance handing the session over. */
    readonly owner: string,
    /** This instance. */
    private readonly self: string,
  ) {}

  committed(): void {
    this.commitSent = true;
  }

  marked(): void {
    this.markSeen = true;
  }

  answered(): void {
    this.stateSeen = true;
    this.inOrder = this.markSeen;
  }

  /** Whether the cut is complete: the commit went out, and the mark came before the state. */
  get complete(): boolean {
    return this.commitSent && this.stateSeen && this.inOrder;
  }

  /** Settled when the state arrived: the mark was read before it, or never will be. */
  async settled(): Promise<boolean> {
    return this.complete;
  }

  offer(body: Buffer, origin: string): void {
    const after = origin === this.self ? this.commitSent : origin === this.owner ? this.stateSeen : this.markSeen;
    if (after) this.kept.push(body);
  }

  /** Local deliveries are placed by when they were made (after `commit`), never by their echo. */
  echo(): void {}

  take(): Buffer[] {
    return this.kept.splice(0);
  }
}
