// Session: one identified client session, the unit of fan-out. It numbers what it receives (seq), keeps a bounded
// replay buffer, and outlives its connection for GW_ORPHAN_SESSION_TTL_MS so a reconnect can resume it.
import type { Availability, GroupName, PresenceMeta, Role, SessionId, UserId } from '../types/domain';
import type { PresenceMode } from '../types/signals';
import { newId } from '../utils/ids';
import type { Capture } from './Capture';
import type { OwnerCut } from './ChannelCut';
import type { ConnectionContext } from './ConnectionContext';
import { keptUtf8 } from './frames';
import { ReplayBuffer, type Buffered } from './ReplayBuffer';

/** The versions of a group between which a session read the pages of its member list (see PresenceFanout). */
export interface ListedRange {
  from: number;
  to: number;
}

/** How a session hears of presence: its mode, the large groups it watches, and when it read each member list. */
export interface PresenceView {
  mode: PresenceMode;
  watching: GroupName[];
  /** [group, the range of versions its member list pages were read at]. */
  listed: [GroupName, number, number][];
}

/** What moves between instances when another instance resumes the session. */
export interface SessionState {
  id: SessionId;
  userId: UserId;
  role: Role;
  grants: string[];
  meta: PresenceMeta;
  availability: Availability;
  createdAt: number;
  groups: GroupName[];
  presence: PresenceView;
  seq: number;
  /** Buffered envelopes after the resuming client's lastSeq (all of them for a hand-over), bodies as UTF-8 text. */
  buffer: { seq: number; body: string }[];
}

export interface SessionLimits {
  bufferMessages: number;
  bufferBytes: number;
}

export class Session {
  readonly groups = new Set<GroupName>();
  /** The attached connection, or null while orphaned. */
  conn: ConnectionContext | null;
  orphanedAt: number | null = null;
  /** The last seq assigned. */
  seq = 0;
  /**
   * When the connection's token expires (its `exp`, ms since the epoch), set from the token at identify, resume and
   * refresh. Zero until then, so a session attached without a token would expire at once rather than never.
   */
  expiresAt = 0;
  /** What this session says of its user's presence (identify.availability, then `presence` envelopes); meta beside it. */
  availability: Availability = 'online';
  /** How this session hears of presence changes (identify.presence). */
  presenceMode: PresenceMode = 'updates';
  /** Large groups whose every presence change this session asked for (presence_watch). */
  readonly watching = new Set<GroupName>();
  /** group → the versions the pages this session holds of the group's member list were read at. */
  readonly listed = new Map<GroupName, ListedRange>();
  /** The last envelopes delivered, for resume. */
  private readonly buffer: ReplayBuffer;
  /** While another instance hands this session over, deliveries are held here, unnumbered (see restore). */
  private capture: Capture | null = null;
  /** While this instance hands the session over channel by channel, what falls after the cut is held here (see ChannelCut). */
  private cut: OwnerCut | null = null;

  constructor(
    readonly userId: UserId,
    /** The token's `role` (replaced by a newer token on resume and refresh). */
    public role: Role,
    /** The token's `groups` claim (replaced by a newer token on resume and refresh). */
    public grants: readonly string[],
    /** identify.meta, replaced by a `presence` envelope that carries one. */
    public meta: PresenceMeta,
    readonly createdAt: number,
    conn: ConnectionContext | null,
    limits: SessionLimits,
    readonly id: SessionId = newId('s'),
  ) {
    this.conn = conn;
    this.buffer = new ReplayBuffer(limits.bufferMessages, limits.bufferBytes);
  }

  presenceView(): PresenceView {
    return { mode: this.presenceMode, watching: [...this.watching], listed: [...this.listed].map(([group, { from, to }]) => [group, from, to]) };
  }

  /** Takes the presence view of the session as another instance held it (the offer's, then the state's). */
  adoptPresenceView(view: PresenceView): void {
    this.presenceMode = view.mode;
    this.watching.clear();
    for (const group of view.watching) this.watching.add(group);
    this.listed.clear();
    for (const [group, from, to] of view.listed) this.listed.set(group, { from, to });
  }

  /** A page of the group's member list was read at `version`; a first page starts the list anew. */
  noteListed(group: GroupName, version: number, firstPage: boolean): void {
    const range = this.listed.get(group);
    if (!range || firstPage) this.listed.set(group, { from: version, to: version });
    else this.listed.set(group, { from: Math.min(range.from, version), to: Math.max(range.to, version) });
  }

  /** Holds deliveries unnumbered until `restore` (the session is arriving from `capture.owner`). */
  startCapture(capture: Capture): void {
    this.capture = capture;
  }

  /** Whether the session is arriving from another instance (its deliveries are being captured). */
  get capturing(): boolean {
    return this.capture !== null;
  }

  /** Holds what falls after `cut` on its channel, unnumbered, until `endCut`. */
  startCut(cut: OwnerCut): void {
    this.cut = cut;
  }

  /** The cut is over (the state was exported, or the handoff failed): what it held is numbered now, in arrival order. */
  endCut(): void {
    const held = this.cut?.take() ?? [];
    this.cut = null;
    for (const body of held) this.append(body);
  }

  /**
   * Takes the numbering and buffer from the instance that held the session (each body through `body`, which may share
   * it with other sessions), then numbers what the capture kept: the deliveries that instance did not number (see Capture).
   */
  restore(state: SessionState, body: (text: string) => Buffer = keptUtf8): void {
    this.adoptPresenceView(state.presence);
    this.seq = state.seq;
    this.buffer.reset(state.buffer[0]?.seq ?? state.seq + 1);
    for (const entry of state.buffer) this.buffer.push(body(entry.body));
    const kept = this.capture?.take() ?? [];
    this.capture = null;
    for (const body of kept) this.append(body);
  }

  /** The state another instance needs to resume this session after `lastSeq`. */
  export(lastSeq: number): SessionState {
    return {
      id: this.id,
      userId: this.userId,
      role: this.role,
      grants: [...this.grants],
      meta: this.meta,
      availability: this.availability,
      createdAt: this.createdAt,
      groups: [...this.groups],
      presence: this.presenceView(),
      seq: this.seq,
      buffer: this.replayAfter(lastSeq).map((entry) => ({ seq: entry.seq, body: entry.body.toString() })),
    };
  }

  /**
   * A sequenced envelope (data_update, presence_update, presence_diff) from `origin` on `channel`: numbered, kept for
   * replay, sent if attached.
   */
  deliver(body: Buffer, origin: string, channel: string): void {
    if (this.capture) return this.capture.offer(body, origin, channel);
    if (this.cut?.holds(body, origin, channel)) return;
    this.append(body);
  }

  /** This instance's own envelope on `channel`, read back from the broker: only a capture places it. */
  echo(body: Buffer, channel: string): void {
    this.capture?.echo(body, channel);
  }

  private append(body: Buffer): void {
    const seq = ++this.seq;
    this.buffer.push(body);
    this.conn?.sendSequenced(body, seq);
  }

  /** An unsequenced envelope (signal, presence_count), already framed: sent if attached, never kept. */
  sendFrame(frame: Buffer): void {
    this.conn?.sendFrame(frame);
  }

  /** Whether every envelope after `lastSeq` is still buffered. */
  covers(lastSeq: number): boolean {
    if (!Number.isInteger(lastSeq) || lastSeq < 0 || lastSeq > this.seq) return false;
    if (lastSeq === this.seq) return true;
    return this.buffer.size > 0 && this.buffer.oldestSeq <= lastSeq + 1;
  }

  /** The buffered envelopes after `lastSeq`, in order. */
  replayAfter(lastSeq: number): Buffered[] {
    return this.buffer.after(lastSeq);
  }
}
