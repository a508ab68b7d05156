// ChannelCut: the cut of a session handoff made channel by channel, for brokers with no order across channels (a Redis
// Cluster: each channel is ordered by its own shard). Both instances are in the session's channels while it moves, and
// every instance reads a channel's messages in the one order its shard gives them. On reading `commit` the owner
// publishes a mark (the handoff id) on each channel of the session, on the path its envelopes take, so:
//   - the owner numbers what it read on a channel before its own mark came back, and what it delivered itself before it
//     published the mark; what comes after is held aside (OwnerCut) until the state is exported, then numbered too,
//     so a handoff that fails leaves the owner's session whole;
//   - the claimer keeps what it reads on a channel after the owner's mark (ChannelCapture). Its own deliveries it places
//     by their echo, read back from the channel: until the owner's mark, an echo is the owner's; after it, the
//     claimer's. On reading the owner's mark it publishes its own (the same id); its local deliveries made after that
//     follow on the channel the echoes of its earlier ones still on their way, so they wait until its own mark is read
//     back and are kept then, and from then on as they are made; their echoes, which come after its own mark, are not
//     kept twice.
// The claimer's cut is complete when the state arrived and its own mark came back on every channel; the owner's when
// its marks came back on every channel. A mark lost (a failover between) leaves a cut incomplete: the handoff fails and
// the owner keeps the session.
import type { Capture } from './Capture';

/** Resolves true once `done()` holds (checked at each `check()`), false after `timeoutMs`. */
class Completion {
  private resolve: ((whole: boolean) => void) | null = null;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly done: () => boolean) {}

  wait(timeoutMs: number): Promise<boolean> {
    if (this.done()) return Promise.resolve(true);
    return new Promise((resolve) => {
      this.resolve = resolve;
      this.timer = setTimeout(() => this.finish(false), timeoutMs);
    });
  }

  check(): void {
    if (this.done()) this.finish(true);
  }

  private finish(whole: boolean): void {
    clearTimeout(this.timer);
    const resolve = this.resolve;
    this.resolve = null;
    resolve?.(whole);
  }
}

/** The owner's side: which deliveries on each channel come after the cut. */
export class OwnerCut {
  /** channel → whether the owner published its mark there, and whether it read it back. */
  private readonly channels = new Map<string, { published: boolean; seen: boolean }>();
  private readonly held: Buffer[] = [];
  private readonly completion = new Completion(() => [...this.channels.values()].every((c) => c.seen));

  constructor(
    private readonly self: string,
    channels: readonly string[],
  ) {
    for (const channel of channels) this.channels.set(channel, { published: false, seen: false });
  }

  /** The mark went out on `channel`, in this turn: this instance's later deliveries there are after the cut. */
  published(channel: string): void {
    const state = this.channels.get(channel);
    if (state) state.published = true;
  }

  /** A mark of this handoff read on `channel`. */
  marked(channel: string, from: string): void {
    const state = this.channels.get(channel);
    if (from !== this.self || !state) return;
    state.seen = true;
    this.completion.check();
  }

  /** Holds a delivery that falls after the cut on its channel; false when the owner numbers it. */
  holds(body: Buffer, origin: string, channel: string): boolean {
    const state = this.channels.get(channel);
    if (!state || !(origin === this.self ? state.published : state.seen)) return false;
    this.held.push(body);
    return true;
  }

  /** Resolves true once every mark came back, false after `timeoutMs`. */
  settled(timeoutMs: number): Promise<boolean> {
    return this.completion.wait(timeoutMs);
  }

  /** The held deliveries, in arrival order. */
  take(): Buffer[] {
    return this.held.splice(0);
  }
}

/** The claimer's side: what a session arriving from `owner` keeps, channel by channel. */
export class ChannelCapture implements Capture {
  /**
   * channel → whether the owner's mark was read there, whether this instance published its own, and read it back; and
   * its own deliveries made between publishing and reading back its mark, which the channel places after it.
   */
  private readonly channels = new Map<string, { ownerSeen: boolean; published: boolean; seen: boolean; waiting: Buffer[] }>();
  private readonly kept: Buffer[] = [];
  private stateSeen = false;
  private readonly completion = new Completion(() => this.stateSeen && [...this.channels.values()].every((c) => c.seen));

  constructor(
    readonly owner: string,
    private readonly self: string,
    channels: readonly string[],
    /** Publishes this handoff's mark on `channel` (Broker.markChannel). */
    private readonly mark: (channel: string) => void,
  ) {
    for (const channel of channels) this.channels.set(channel, { ownerSeen: false, published: false, seen: false, waiting: [] });
  }

  /** The control-order mark means nothing here: each channel has its own. */
  committed(): void {}

  marked(): void {}

  answered(): void {
    this.stateSeen = true;
    this.completion.check();
  }

  /** A mark of this handoff read on `channel`: the owner's starts this instance's part of it; its own ends the cut. */
  channelMarked(channel: string, from: string): void {
    const state = this.channels.get(channel);
    if (!state) return;
    if (from === this.owner && !state.ownerSeen) {
      state.ownerSeen = true;
      // Before the mark goes: a broker that delivers at once hands it back within this call.
      state.published = true;
      this.mark(channel);
    } else if (from === this.self && state.published && !state.seen) {
      state.seen = true;
      this.kept.push(...state.waiting.splice(0));
      this.completion.check();
    }
  }

  offer(body: Buffer, origin: string, channel: string): void {
    const state = this.channels.get(channel);
    if (!state) return;
    if (origin !== this.self) {
      if (state.ownerSeen) this.kept.push(body);
    } else if (state.seen) this.kept.push(body);
    else if (state.published) state.waiting.push(body);
  }

  echo(body: Buffer, channel: string): void {
    const state = this.channels.get(channel);
    if (state?.ownerSeen && !state.seen) this.kept.push(body);
  }

  settled(timeoutMs: number): Promise<boolean> {
    return this.completion.wait(timeoutMs);
  }

  take(): Buffer[] {
    return this.kept.splice(0);
  }
}
