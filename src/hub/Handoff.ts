// Handoff: moves a session between instances when its client resumes on another one. Two phases over the broker's
// control channel, so nothing published meanwhile is lost:
//   claim  → the owner answers with the session's groups; the claimer joins them locally and captures deliveries;
//   commit → the owner detaches the session and sends its numbering and buffer; the claimer restores them.
// Any step that times out makes the resume fail cleanly (the client gets a fresh session).
import { randomBytes } from 'node:crypto';
import type { Broker, ControlHandlers } from '../broker/Broker';
import type { GroupName, PresenceMeta, Role, SessionId, UserId } from '../types/domain';
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

type Message =
  | { op: 'claim'; id: string; from: string; sessionId: SessionId; userId: UserId }
  | { op: 'offer'; id: string; from: string; to: string; groups: GroupName[]; role: Role; meta: PresenceMeta; createdAt: number }
  | { op: 'commit'; id: string; from: string; to: string; sessionId: SessionId; userId: UserId; lastSeq: number }
  | { op: 'state'; id: string; from: string; to: string; state: SessionState }
  | { op: 'gone'; id: string; from: string; to: string };

type Reply = Extract<Message, { op: 'offer' | 'state' | 'gone' }>;

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
    const offer = await this.ask({ op: 'claim', id, from: this.instanceId, sessionId, userId }, id);
    if (offer?.op !== 'offer') return null;
    await prepare({ owner: offer.from, groups: offer.groups, role: offer.role, meta: offer.meta, createdAt: offer.createdAt });
    const reply = await this.ask({ op: 'commit', id, from: this.instanceId, to: offer.from, sessionId, userId, lastSeq }, id);
    return reply?.op === 'state' ? reply.state : null;
  }

  onControl(raw: string): void {
    let message: Message;
    try {
      message = JSON.parse(raw) as Message;
    } catch {
      this.log.warn('malformed control message ignored');
      return;
    }
    if (message.op === 'claim') return this.offer(message);
    if (!('to' in message) || message.to !== this.instanceId) return;
    if (message.op === 'commit') return this.commit(message);
    this.waiting.get(message.id)?.(message);
  }

  private offer(claim: Extract<Message, { op: 'claim' }>): void {
    const session = this.host.handoffCandidate(claim.sessionId, claim.userId);
    if (!session) return;
    this.send({ op: 'offer', id: claim.id, from: this.instanceId, to: claim.from, groups: [...session.groups], role: session.role, meta: session.meta, createdAt: session.createdAt });
  }

  private commit(commit: Extract<Message, { op: 'commit' }>): void {
    const session = this.host.handoffCandidate(commit.sessionId, commit.userId);
    if (!session || !session.covers(commit.lastSeq)) {
      this.send({ op: 'gone', id: commit.id, from: this.instanceId, to: commit.from });
      return;
    }
    this.send({ op: 'state', id: commit.id, from: this.instanceId, to: commit.from, state: this.host.surrender(session, commit.lastSeq) });
    this.log.info({ sessionId: session.id, userId: session.userId, to: commit.from }, 'session handed over');
  }

  private ask(message: Message, id: string): Promise<Reply | null> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve(null);
      }, this.timeoutMs);
      this.waiting.set(id, (reply) => {
        clearTimeout(timer);
        this.waiting.delete(id);
        resolve(reply);
      });
      this.send(message);
    });
  }

  private send(message: Message): void {
    this.broker.publishControl(JSON.stringify(message));
  }
}
