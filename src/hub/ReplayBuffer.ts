// ReplayBuffer: a session's last envelopes, kept for resume. A ring of references to the bodies shared by each
// fan-out, bounded by count and bytes, with consecutive seqs. It grows by doubling up to its count limit and then
// reuses its slots, so the fan-out hot path allocates nothing here once a session has received `maxMessages`.

export interface Buffered {
  seq: number;
  /** The envelope's UTF-8 bytes without the closing brace: one Buffer shared by every recipient of a fan-out. */
  body: Buffer;
}

const INITIAL_SLOTS = 8;

export class ReplayBuffer {
  private slots: (Buffer | undefined)[] = [];
  /** Index of the oldest body in `slots`. */
  private head = 0;
  private count = 0;
  private bytes = 0;
  /** The seq of the oldest body; the rest follow it one by one. */
  private firstSeq = 1;

  constructor(
    private readonly maxMessages: number,
    private readonly maxBytes: number,
  ) {}

  get size(): number {
    return this.count;
  }

  /** The seq of the oldest body kept (the next seq to be pushed when empty). */
  get oldestSeq(): number {
    return this.firstSeq;
  }

  /** Forgets everything; the next body pushed gets `nextSeq`. */
  reset(nextSeq: number): void {
    this.slots = [];
    this.head = 0;
    this.count = 0;
    this.bytes = 0;
    this.firstSeq = nextSeq;
  }

  /** Keeps `body` as the envelope after the newest, evicting the oldest ones past either limit. */
  push(body: Buffer): void {
    if (this.maxMessages <= 0) {
      this.firstSeq++;
      return;
    }
    if (this.count === this.maxMessages) {
      // Full (the ring holds exactly maxMessages slots): the newest body takes the oldest one's slot.
      const head = this.head;
      this.bytes += body.length - this.slots[head]!.length;
      this.slots[head] = body;
      this.head = head + 1 === this.count ? 0 : head + 1;
      this.firstSeq++;
    } else {
      if (this.count === this.slots.length) this.grow();
      this.slots[(this.head + this.count) % this.slots.length] = body;
      this.count++;
      this.bytes += body.length;
    }
    while (this.bytes > this.maxBytes && this.count > 0) this.evict();
  }

  /** The bodies after `lastSeq`, oldest first, with their seqs. */
  after(lastSeq: number): Buffered[] {
    const out: Buffered[] = [];
    for (let i = Math.max(0, lastSeq + 1 - this.firstSeq); i < this.count; i++) {
      out.push({ seq: this.firstSeq + i, body: this.slots[(this.head + i) % this.slots.length]! });
    }
    return out;
  }

  private evict(): void {
    this.bytes -= this.slots[this.head]!.length;
    this.slots[this.head] = undefined;
    this.head = (this.head + 1) % this.slots.length;
    this.count--;
    this.firstSeq++;
  }

  private grow(): void {
    const next: (Buffer | undefined)[] = new Array<Buffer | undefined>(Math.min(this.maxMessages, Math.max(INITIAL_SLOTS, this.slots.length * 2)));
    for (let i = 0; i < this.count; i++) next[i] = this.slots[(this.head + i) % this.slots.length];
    this.slots = next;
    this.head = 0;
  }
}
