// SharedBodies: the bodies of replay buffers arriving from another instance, shared again. On the owner every recipient
// of a fan-out shares one body; a handoff sends each session's buffer as text, so the sessions of one group would come
// back holding one copy of every message each (a hand-over of 10 000 sessions in groups of 100: a million copies).
// Bounded by bytes, and forgotten once handoffs stop arriving.
import { keptUtf8 } from './frames';

export class SharedBodies {
  private readonly bodies = new Map<string, Buffer>();
  private bytes = 0;
  private idle: NodeJS.Timeout | null = null;

  constructor(
    private readonly maxBytes: number,
    private readonly idleMs: number,
  ) {}

  /** The body for `text`: the one restored before when there is one, else a new exactly-sized buffer. */
  get(text: string): Buffer {
    const known = this.bodies.get(text);
    if (known) return known;
    const body = keptUtf8(text);
    if (this.bytes + body.length > this.maxBytes) this.clear();
    this.bodies.set(text, body);
    this.bytes += body.length;
    if (this.idle) this.idle.refresh();
    else {
      this.idle = setTimeout(() => this.clear(), this.idleMs);
      this.idle.unref();
    }
    return body;
  }

  get size(): number {
    return this.bodies.size;
  }

  clear(): void {
    this.bodies.clear();
    this.bytes = 0;
    if (this.idle) clearTimeout(this.idle);
    this.idle = null;
  }
}
