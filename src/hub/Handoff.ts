// Handoff: moves a session between instances when its client resumes on another one. Two phases over the broker's
// control channel, so nothing published meanwhile is lost:
//   claim  → the owner answers with the session's groups (every other instance answers `none`); the claimer joins
//            them locally and captures deliveries;
//   commit → the owner detaches the session and sends its numbering and buffer; the claimer restores them.
// A claim that no instance can answer fails at once; any step that times out makes the resume fail cleanly (the
// client gets a fresh session). Messages from the control channel are validated; what does not parse is dropped.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Broker, ControlHandlers } from '../broker/Broker';
import { groupNameSchema, roleSchema, type GroupName, type PresenceMeta, type Role, type SessionId, type UserId } from '../types/domain';
import { jsonObjectSchema } from '../types/envelope';
import type { Logger } from '../utils/logger';
import type { Session, SessionState } from './Session';

/** What the claimer learns in phase one. */
export interface HandoffOffer {
  owner: string;
  groups: GroupName[];
  role: Role;
  meta: PresenceMeta;
  createdAt: number;
}

/** The owner's side: the Router answers for the sessions it holds. */
export interface HandoffHost {
  /** The local session `sessionId` when it belongs to `userId` and may move. */
  handoffCandidate(sessionId: SessionId, userId: UserId): Session | null;
  /** Detaches the session (closing its connection with 4011 if it still has one) and exports it after `lastSeq`. */
  surrender(session: Session, lastSeq: number): SessionState;
}

const text = z.string().min(1).max(256);
const header = { id: text, from: text };
const reply = { ...header, to: text };
const sessionStateSchema = z.object({
  id: text,
  userId: text,
  role: roleSchema,
  meta: jsonObjectSchema,
  createdAt: z.number(),
  groups: z.array(groupNameSchema),
  seq: z.number().int().min(0),
  buffer: z.array(z.object({ seq: z.number().int().min(1), body: z.string() })),
}) satisfies z.ZodType<SessionState>;

const messageSchema = z.discriminatedUnion('op', [
  // `declines`: the claimer counts `none` answers. An instance of an earlier version claims without it, and would take
  // a `none` for the answer, so it gets none (during a rolling upgrade both versions share the channel).
  z.object({ op: z.literal('claim'), ...header, sessionId: text, userId: text, declines: z.literal(true).optional() }),
  z.object({ op: z.literal('offer'), ...reply, groups: z.array(groupNameSchema), role: roleSchema, meta: jsonObjectSchema, createdAt: z.number() }),
  z.object({ op: z.literal('none'), ...reply }),
  z.object({ op: z.literal('commit'), ...reply, sessionId: text, userId: text, lastSeq: z.number().int().min(0) }),
  z.object({ op: z.literal('state'), ...reply, state: sessionStateSchema }),
  z.object({ op: z.literal('gone'), ...reply }),
]);
type Message = z.infer<typeof messageSchema>;
type Reply = Extract<Message, { op: 'offer' | 'none' | 'state' | 'gone' }>;

export class Handoff implements ControlHandlers {
  private readonly waiting = new Map<string, (reply: Reply) => void>();

  constructor(
    private readonly instanceId: string,
    private readonly broker: Broker,
    private readonly host: HandoffHost,
    private readonly timeoutMs: number,
    private readonly log: Logger,
  ) {}

  /**
   * Claims `sessionId` from whichever instance holds it. `prepare` receives the offer and must have the local
   * stand-in session capturing deliveries before it resolves; then the state is fetched.
   */
  async claim(sessionId: SessionId, userId: UserId, lastSeq: number, prepare: (offer: HandoffOffer) => Promise<void>): Promise<SessionState | null> {
    const id = randomBytes(8).toString('hex');
    const offer = await this.ask({ op: 'claim', id, from: this.instanceId, sessionId, userId, declines: true }, id);
    if (offer?.op !== 'offer') return null;
    await prepare({ owner: offer.from, groups: offer.groups, role: offer.role, meta: offer.meta, createdAt: offer.createdAt });
    const answer = await this.ask({ op: 'commit', id, from: this.instanceId, to: offer.from, sessionId, userId, lastSeq }, id);
    return answer?.op === 'state' ? answer.state : null;
  }

  onControl(raw: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      parsed = undefined;
    }
    const checked = messageSchema.safeParse(parsed);
    if (!checked.success) {
      this.log.warn('malformed control message ignored');
      return;
    }
    const message = checked.data;
    if (message.op === 'claim') return this.answerClaim(message);
    if (message.to !== this.instanceId) return;
    if (message.op === 'commit') return this.commit(message);
    this.waiting.get(message.id)?.(message);
  }

  private answerClaim(claim: Extract<Message, { op: 'claim' }>): void {
    const session = this.host.handoffCandidate(claim.sessionId, claim.userId);
    const to = { id: claim.id, from: this.instanceId, to: claim.from };
    if (!session) {
      if (claim.declines) void this.send({ op: 'none', ...to });
      return;
    }
    void this.send({ op: 'offer', ...to, groups: [...session.groups], role: session.role, meta: session.meta, createdAt: session.createdAt });
  }

  private commit(commit: Extract<Message, { op: 'commit' }>): void {
    const session = this.host.handoffCandidate(commit.sessionId, commit.userId);
    const to = { id: commit.id, from: this.instanceId, to: commit.from };
    if (!session || !session.covers(commit.lastSeq)) {
      void this.send({ op: 'gone', ...to });
      return;
    }
    void this.send({ op: 'state', ...to, state: this.host.surrender(session, commit.lastSeq) });
    this.log.info({ sessionId: session.id, userId: session.userId, to: commit.from }, 'session handed over');
  }

  /**
   * Sends `message` and resolves with the first reply that is not `none`; with null when every instance that heard it
   * answered `none` (at once when none heard it), or after the timeout.
   */
  private ask(message: Message, id: string): Promise<Reply | null> {
    return new Promise((resolve) => {
      let heard: number | null = null;
      let declined = 0;
      const finish = (result: Reply | null) => {
        clearTimeout(timer);
        this.waiting.delete(id);
        resolve(result);
      };
      const timer = setTimeout(() => finish(null), this.timeoutMs);
      this.waiting.set(id, (answer) => {
        if (answer.op !== 'none') return finish(answer);
        declined++;
        if (heard !== null && declined >= heard) finish(null);
      });
      void this.send(message).then((count) => {
        heard = count;
        if (declined >= heard) finish(null);
      });
    });
  }

  private send(message: Message): Promise<number> {
    return this.broker.publishControl(JSON.stringify(message));
  }
}
