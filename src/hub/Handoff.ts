// Handoff: moves a session between instances over control messages addressed to one instance. A client that resumes
// on an instance not holding its session pulls it; an instance shutting down pushes its sessions to survivors.
//   pull:  claim → offer        (the claimer found the owner in the session directory)
//   push:  take                 (the owner picked a survivor; `take` carries what an offer would)
//   then:  commit (with the claimer's mark) → state → done
// The claimer leases the session in the directory, joins its channels and captures deliveries (Capture) before it
// commits. The owner keeps the session, in its groups and buffering, until `done`. The claimer moving the directory
// entry under its lease (PresenceStore.transfer) is the one commit point; an owner that hears nothing revokes the
// lease and, if the entry is still its own, keeps the session, resumable. So a session is never held by two instances
// and never by none. Messages arrive through Control and are validated here (zod); what does not parse is refused.
// Where the broker has one order of every message (in memory; one redis-server) the cut is the claimer's mark against
// the owner's `commit` (Capture); on a Redis Cluster it is made channel by channel (ChannelCut): the owner marks each
// channel of the session on `commit` and answers with the state once its marks came back.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Broker } from '../broker/Broker';
import { channelName, parseChannel } from '../broker/wire';
import { availabilitySchema, groupNameSchema, roleSchema, userIdSchema, type Availability, type GroupName, type PresenceMeta, type Role, type SessionId, type UserId } from '../types/domain';
import { jsonObjectSchema } from '../types/envelope';
import { sameLook } from '../types/members';
import type { Metrics } from '../metrics';
import type { Logger } from '../utils/logger';
import { OrderedCapture, type Capture } from './Capture';
import { ChannelCapture, OwnerCut } from './ChannelCut';
import type { ControlReceiver } from './Control';
import { SharedBodies } from './SharedBodies';
import type { PresenceView, Session, SessionState } from './Session';

/** What a claimer needs to stand in for a session before its state arrives. */
export interface HandoffOffer {
  groups: GroupName[];
  role: Role;
  grants: string[];
  meta: PresenceMeta;
  availability: Availability;
  createdAt: number;
  presence: PresenceView;
}

/** The Sessions module, seen from a handoff: both the owner's side and the claimer's. */
export interface HandoffHost {
  /** The local session `sessionId` of `userId`, or null. */
  candidate(sessionId: SessionId, userId: UserId): Session | null;
  /** False while this instance shuts down: it takes no sessions. */
  readonly accepting: boolean;
  /** A session arriving from another instance, in the offered groups, capturing deliveries; not yet held. */
  standIn(sessionId: SessionId, userId: UserId, offer: HandoffOffer, capture: Capture): Promise<Session>;
  /** The stand-in leaves again: the handoff failed. */
  abandon(session: Session): void;
  /** The commit point: moves the session's directory entry (under `lease`) and presence from `owner`; true when held here now. */
  adopt(session: Session, owner: string, lease: string): Promise<boolean>;
  /** The owner's side at commit: the session's connection, if any, is closed (4011); the session keeps buffering. */
  detach(session: Session): void;
  /** The owner's side: the session now lives on another instance. */
  handedOver(session: Session): void;
  /** The owner's side: a handoff failed after its commit; the session stays here. */
  kept(session: Session): void;
  /**
   * The owner's side: a client resuming elsewhere proved it holds the session, but the buffer no longer covers what it
   * has. An orphaned session ends at once, as on a resume here (the client starts a fresh one).
   */
  outdated(session: Session): void;
  /** The session directory (see PresenceStore). */
  owner(userId: UserId, sessionId: SessionId): Promise<string | null>;
  lease(userId: UserId, sessionId: SessionId, lease: string, ttlMs: number): Promise<boolean>;
  release(userId: UserId, sessionId: SessionId, lease: string): Promise<void>;
  revoke(userId: UserId, sessionId: SessionId, lease: string): Promise<boolean | null>;
}

const text = z.string().min(1).max(256);
const offerFields = {
  groups: z.array(groupNameSchema).max(10_000),
  role: roleSchema,
  grants: z.array(z.string().max(256)).max(10_000),
  meta: jsonObjectSchema,
  availability: availabilitySchema,
  createdAt: z.number(),
  presence: z.object({
    mode: z.enum(['updates', 'diffs']),
    watching: z.array(groupNameSchema).max(10_000),
    listed: z.array(z.tuple([groupNameSchema, z.number().int().min(0), z.number().int().min(0)])).max(10_000),
  }),
};
const sessionStateSchema = z.object({
  id: text,
  userId: userIdSchema,
  ...offerFields,
  seq: z.number().int().min(0),
  buffer: z.array(z.object({ seq: z.number().int().min(1), body: z.string() })),
}) satisfies z.ZodType<SessionState>;
const about = { id: text, sessionId: text, userId: userIdSchema };

const messageSchema = z.discriminatedUnion('op', [
  z.object({ op: z.literal('claim'), ...about }),
  z.object({ op: z.literal('offer'), id: text, ...offerFields }),
  z.object({ op: z.literal('take'), ...about, ...offerFields }),
  // lastSeq is null for a push: the whole buffer moves, the client has not said what it has.
  z.object({ op: z.literal('commit'), ...about, lastSeq: z.number().int().min(0).nullable() }),
  z.object({ op: z.literal('mark'), id: text }),
  z.object({ op: z.literal('state'), id: text, state: sessionStateSchema }),
  z.object({ op: z.literal('done'), ...about, moved: z.boolean() }),
  z.object({ op: z.literal('gone'), id: text }),
]);
type Message = z.infer<typeof messageSchema>;
type Answer = Extract<Message, { op: 'offer' | 'state' | 'gone' }>;

const SHARED_BODIES_MAX_BYTES = 16 * 1024 * 1024;
const SHARED_BODIES_IDLE_MS = 5_000;

/** A question this instance waits on: who must answer, and the capture to tell about the cut. */
interface Waiting {
  from: string;
  capture: Capture | null;
  answer(message: Answer): void;
}

/** The owner's side of one handoff in flight. */
interface Outgoing {
  id: string;
  to: string;
  session: Session;
  timer: NodeJS.Timeout;
  /** Resolves true when the session moved, false when it stays here. */
  settled: Promise<boolean>;
  settle(moved: boolean): void;
  /** A per-channel cut: in progress, then the state it exported (a repeated commit gets the same). */
  cut?: OwnerCut;
  state?: SessionState;
}

export interface HandoffOptions {
  instanceId: string;
  broker: Broker;
  host: HandoffHost;
  /** How long each step waits for its answer. */
  timeoutMs: number;
  logger: Logger;
  metrics: Metrics;
}

export class Handoff implements ControlReceiver {
  private readonly self: string;
  private readonly broker: Broker;
  private readonly host: HandoffHost;
  private readonly timeoutMs: number;
  private readonly log: Logger;
  private readonly metrics: Metrics;
  private readonly waiting = new Map<string, Waiting>();
  private readonly outgoing = new Map<SessionId, Outgoing>();
  /** Sessions arriving here, until each has moved or failed. */
  private readonly incoming = new Set<Promise<Session | null>>();
  /** Per-channel cuts in progress, by handoff id: whom a mark read on a channel is for. */
  private readonly marks = new Map<string, (channel: string, from: string) => void>();
  /** Restored buffers share their bodies again, as they were shared on the owner. */
  private readonly bodies = new SharedBodies(SHARED_BODIES_MAX_BYTES, SHARED_BODIES_IDLE_MS);

  constructor(options: HandoffOptions) {
    this.self = options.instanceId;
    this.broker = options.broker;
    this.host = options.host;
    this.timeoutMs = options.timeoutMs;
    this.log = options.logger;
    this.metrics = options.metrics;
  }

  /** The ops of a handoff's control messages (see Control). */
  readonly ops = messageSchema.options.map((option) => option.shape.op.value);

  /** Whether a handoff is moving this session away from this instance now. */
  moving(sessionId: SessionId): boolean {
    return this.outgoing.has(sessionId);
  }

  /** Resolves once no session is on its way here. */
  async arrived(): Promise<void> {
    while (this.incoming.size > 0) await Promise.all([...this.incoming]);
  }

  /** Resolves once a handoff of this session in flight has settled (at once when there is none). */
  async settled(sessionId: SessionId): Promise<void> {
    await this.outgoing.get(sessionId)?.settled;
  }

  /**
   * Pulls `sessionId` from the instance the directory names, for a client resuming here after `lastSeq`. Resolves with
   * the session, held here and orphaned, or null at once when no live instance holds it. A session that moved on
   * while asked is followed once.
   */
  async pull(sessionId: SessionId, userId: UserId, lastSeq: number): Promise<Session | null> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const owner = await this.host.owner(userId, sessionId);
      if (owner === null) return null;
      // It was pushed here while the claim waited (the owner shut down).
      if (owner === this.self) return this.host.candidate(sessionId, userId);
      const id = randomBytes(8).toString('hex');
      const offer = await this.ask(owner, { op: 'claim', id, sessionId, userId }, null);
      if (offer?.op === 'offer') return this.receiveSession(owner, id, sessionId, userId, offer, lastSeq);
      if (offer === null) return null;
    }
    return null;
  }

  /** Pushes a local session to instance `to` (this one shuts down); resolves true when it moved there. */
  push(session: Session, to: string): Promise<boolean> {
    const id = randomBytes(8).toString('hex');
    const out = this.track(id, to, session);
    const { id: sessionId, userId } = session;
    void this.send(to, { op: 'take', id, sessionId, userId, ...offerOf(session) }).then((heard) => {
      if (!heard) this.finish(out, false);
    });
    return out.settled;
  }

  /** A mark read on an envelope channel (Broker.markChannel): to the per-channel cut of that handoff, if one is here. */
  mark(channel: string, id: string, from: string): void {
    this.marks.get(id)?.(channel, from);
  }

  /** Handles a control message of a handoff; false when it is malformed. */
  receive(raw: unknown, from: string): boolean {
    const checked = messageSchema.safeParse(raw);
    if (!checked.success) return false;
    const message = checked.data;
    switch (message.op) {
      case 'claim':
        void this.offer(from, message);
        break;
      case 'take':
        void this.take(from, message);
        break;
      case 'commit':
        this.commit(from, message);
        break;
      case 'done':
        this.done(from, message);
        break;
      case 'mark':
        if (from === this.self) this.waiting.get(message.id)?.capture?.marked();
        break;
      default: {
        const waiting = this.waiting.get(message.id);
        if (!waiting || waiting.from !== from) break;
        // Synchronously, in the order Redis delivered it: deliveries read after this one are the claimer's to number.
        if (message.op === 'state') waiting.capture?.answered();
        waiting.answer(message);
      }
    }
    return true;
  }

  // --- the claimer's side --------------------------------------------------------------------

  /** An owner shutting down pushes a session here. */
  private async take(from: string, message: Extract<Message, { op: 'take' }>): Promise<void> {
    const { id, sessionId, userId } = message;
    // Refused (this instance shuts down too): the owner keeps the session.
    if (!this.host.accepting) return void this.send(from, { op: 'done', id, sessionId, userId, moved: false });
    await this.receiveSession(from, id, sessionId, userId, message, null);
  }

  /** Stands in, commits, restores the owner's state and moves the directory entry; the session, or null. */
  private receiveSession(owner: string, id: string, sessionId: SessionId, userId: UserId, offer: HandoffOffer, lastSeq: number | null): Promise<Session | null> {
    const arriving = this.arrive(owner, id, sessionId, userId, offer, lastSeq);
    this.incoming.add(arriving);
    void arriving.finally(() => this.incoming.delete(arriving));
    return arriving;
  }

  private async arrive(owner: string, id: string, sessionId: SessionId, userId: UserId, offer: HandoffOffer, lastSeq: number | null): Promise<Session | null> {
    // An instance shutting down takes no session (it would not be handed over again); the owner keeps it.
    if (!this.host.accepting || !(await this.host.lease(userId, sessionId, id, this.timeoutMs * 4))) {
      void this.send(owner, { op: 'done', id, sessionId, userId, moved: false });
      return null;
    }
    const capture = this.capture(owner, id, userId, offer.groups);
    const session = await this.host.standIn(sessionId, userId, offer, capture);
    const answer = await this.ask(owner, { op: 'commit', id, sessionId, userId, lastSeq }, capture);
    const whole = answer?.op === 'state' && (await capture.settled(this.timeoutMs));
    this.marks.delete(id);
    if (!this.broker.singleOrder) this.broker.wantEchoes(false);
    // The stand-in captured the offered groups and joined presence as offered: a session whose groups or presence
    // changed meanwhile stays with its owner.
    const ok = answer?.op === 'state' && whole && answer.state.id === sessionId && answer.state.userId === userId && sameGroups(offer.groups, answer.state.groups) && sameLook(offer, answer.state);
    if (ok) session.restore(answer.state, (text) => this.bodies.get(text));
    const moved = ok && (await this.host.adopt(session, owner, id));
    if (!moved) {
      this.host.abandon(session);
      void this.host.release(userId, sessionId, id);
    }
    void this.send(owner, { op: 'done', id, sessionId, userId, moved });
    this.metrics.handoffs.inc({ direction: 'in', result: moved ? 'moved' : 'failed' });
    if (moved) this.log.debug({ sessionId, userId, from: owner }, 'session taken over from another instance');
    return moved ? session : null;
  }

  /** The capture of a session arriving from `owner`: against one order, or channel by channel (echoes on until it ends). */
  private capture(owner: string, id: string, userId: UserId, groups: readonly GroupName[]): Capture {
    if (this.broker.singleOrder) return new OrderedCapture(owner, this.self);
    const capture = new ChannelCapture(owner, this.self, channelsOf(userId, groups), (channel) => this.markChannel(channel, id));
    this.marks.set(id, (channel, from) => capture.channelMarked(channel, from));
    this.broker.wantEchoes(true);
    return capture;
  }

  private markChannel(channel: string, id: string): void {
    const target = parseChannel(channel);
    if (target) this.broker.markChannel(target.kind, target.name, id);
  }

  /**
   * Sends `message` to `to` and resolves with its answer; null when `to` is gone (at once), or after the timeout. A
   * commit goes with this instance's mark, which the capture must see before the state.
   */
  private ask(to: string, message: Extract<Message, { op: 'claim' | 'commit' }>, capture: Capture | null): Promise<Answer | null> {
    return new Promise((resolve) => {
      const finish = (answer: Answer | null) => {
        clearTimeout(timer);
        this.waiting.delete(message.id);
        resolve(answer);
      };
      const timer = setTimeout(() => finish(null), this.timeoutMs);
      this.waiting.set(message.id, { from: to, capture, answer: finish });
      // Written in this turn: local deliveries from here on are after the commit (see Capture).
      capture?.committed();
      const mark = capture ? JSON.stringify({ op: 'mark', id: message.id } satisfies Message) : undefined;
      void this.broker.sendControl(to, JSON.stringify(message), mark).then((heard) => {
        if (!heard) finish(null);
      });
    });
  }

  // --- the owner's side ----------------------------------------------------------------------

  private async offer(from: string, claim: Extract<Message, { op: 'claim' }>): Promise<void> {
    await this.settled(claim.sessionId);
    const session = this.host.candidate(claim.sessionId, claim.userId);
    if (!session) return void this.send(from, { op: 'gone', id: claim.id });
    void this.send(from, { op: 'offer', id: claim.id, ...offerOf(session) });
  }

  /**
   * Exports the session in the same turn as the commit is read (the cut), detaching its connection; the session stays
   * here, buffering, until `done` or the owner's own check. A retried commit gets the state again.
   */
  private commit(from: string, commit: Extract<Message, { op: 'commit' }>): void {
    const session = this.host.candidate(commit.sessionId, commit.userId);
    const existing = this.outgoing.get(commit.sessionId);
    const busy = existing !== undefined && (existing.id !== commit.id || existing.to !== from);
    if (!session || busy || (commit.lastSeq !== null && !session.covers(commit.lastSeq))) {
      if (session && !busy) this.host.outdated(session);
      return void this.send(from, { op: 'gone', id: commit.id });
    }
    const out = existing ?? this.track(commit.id, from, session);
    this.host.detach(session);
    this.restartTimer(out, this.timeoutMs * 2);
    if (this.broker.singleOrder) return void this.send(from, { op: 'state', id: commit.id, state: session.export(commit.lastSeq ?? 0) });
    void this.cut(out, commit.lastSeq);
  }

  /**
   * The owner's per-channel cut (see ChannelCut): a mark on each channel of the session, then the state once every mark
   * came back (`gone` when one did not in time: the handoff fails, the session stays whole here). A repeated commit
   * waits for the cut in progress, or gets the state it exported.
   */
  private async cut(out: Outgoing, lastSeq: number | null): Promise<void> {
    if (out.state) return void this.send(out.to, { op: 'state', id: out.id, state: out.state });
    if (out.cut) return;
    const { session } = out;
    const channels = channelsOf(session.userId, [...session.groups]);
    const cut = new OwnerCut(this.self, channels);
    out.cut = cut;
    session.startCut(cut);
    this.marks.set(out.id, (channel, from) => cut.marked(channel, from));
    for (const channel of channels) {
      cut.published(channel);
      this.markChannel(channel, out.id);
    }
    const whole = await cut.settled(this.timeoutMs);
    this.marks.delete(out.id);
    // What the wait numbered may have pushed `lastSeq` out of the bounded buffer: then the state would not cover it.
    if (whole && (lastSeq === null || session.covers(lastSeq))) out.state = session.export(lastSeq ?? 0);
    session.endCut();
    if (this.outgoing.get(session.id) !== out) return;
    void this.send(out.to, out.state ? { op: 'state', id: out.id, state: out.state } : { op: 'gone', id: out.id });
  }

  private done(from: string, done: Extract<Message, { op: 'done' }>): void {
    const out = this.outgoing.get(done.sessionId);
    if (out?.id !== done.id || out.to !== from) return;
    // Not moved: the claimer gave up; its lease goes, so the session can be claimed again at once.
    if (done.moved) this.finish(out, true);
    else void this.expire(out);
  }

  private track(id: string, to: string, session: Session): Outgoing {
    let settle!: (moved: boolean) => void;
    const settled = new Promise<boolean>((resolve) => (settle = resolve));
    const out: Outgoing = { id, to, session, settled, settle, timer: setTimeout(() => this.finish(out, false), this.timeoutMs) };
    this.outgoing.set(session.id, out);
    return out;
  }

  private restartTimer(out: Outgoing, ms: number): void {
    clearTimeout(out.timer);
    out.timer = setTimeout(() => void this.expire(out), ms);
  }

  /**
   * No `done` came: revoke the claimer's lease; the session stays unless its entry already moved. When the directory
   * cannot say (Redis unreachable), the move may have happened: the session stays moving, and the owner asks again.
   */
  private async expire(out: Outgoing): Promise<void> {
    if (this.outgoing.get(out.session.id) !== out) return;
    const stillMine = await this.host.revoke(out.session.userId, out.session.id, out.id);
    if (this.outgoing.get(out.session.id) !== out) return;
    if (stillMine === null) return this.restartTimer(out, this.timeoutMs);
    this.finish(out, !stillMine);
  }

  private finish(out: Outgoing, moved: boolean): void {
    if (this.outgoing.get(out.session.id) !== out) return;
    clearTimeout(out.timer);
    this.outgoing.delete(out.session.id);
    if (moved) {
      this.host.handedOver(out.session);
      this.log.debug({ sessionId: out.session.id, userId: out.session.userId, to: out.to }, 'session handed over');
    } else {
      this.host.kept(out.session);
    }
    this.metrics.handoffs.inc({ direction: 'out', result: moved ? 'moved' : 'failed' });
    out.settle(moved);
  }

  private send(to: string, message: Message): Promise<boolean> {
    return this.broker.sendControl(to, JSON.stringify(message));
  }
}

function sameGroups(a: readonly GroupName[], b: readonly GroupName[]): boolean {
  const set = new Set(a);
  return set.size === new Set(b).size && b.every((group) => set.has(group));
}

/** The channels a session hears on: its user's and its groups'. */
function channelsOf(userId: UserId, groups: readonly GroupName[]): string[] {
  return [channelName('user', userId), ...groups.map((group) => channelName('group', group))];
}

function offerOf(session: Session): HandoffOffer {
  return { groups: [...session.groups], role: session.role, grants: [...session.grants], meta: session.meta, availability: session.availability, createdAt: session.createdAt, presence: session.presenceView() };
}
