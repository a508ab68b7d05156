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
// With the in-memory broker delivery is synchronous and the same rules hold.


export class Capture {
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

  /** Called in the same turn as the commit is written. */
  committed(): void {
    this.commitSent = true;
  }

  /** This instance read its own mark. */
  marked(): void {
    this.markSeen = true;
  }

  /** This instance read the owner's `state`. */
  answered(): void {
    this.stateSeen = true;
    this.inOrder = this.markSeen;
  }

  /** Whether the cut is complete: the commit went out, and the mark came before the state. */
  get complete(): boolean {
    return this.commitSent && this.stateSeen && this.inOrder;
  }

  /** A delivery from `origin` (an instance id, or a backend's name): kept when the owner did not number it. */
  offer(body: Buffer, origin: string): void {
    const after = origin === this.self ? this.commitSent : origin === this.owner ? this.stateSeen : this.markSeen;
    if (after) this.kept.push(body);
  }

  /** The deliveries the owner did not number, in arrival order. */
  take(): Buffer[] {
    return this.kept.splice(0);
  }
}
