// Revocations: what a backend takes back from a user, on every instance. `disconnect` ends their sessions (each
// connection gets the error and close of REVOKED, 4005, or SESSION_ENDED, 4006; orphaned sessions end too); `unsubscribe`
// takes every session of theirs out of a group (told with `unsubscribed`, reason `server`). The session directory
// names the instance holding each session: this instance acts on its own and asks each other holder with one control
// message, then follows any session a handoff moved meanwhile to its new holder.
import { z } from 'zod';
import type { Broker } from '../broker/Broker';
import { limits } from '../config/limits';
import type { PresenceStore } from '../presence/PresenceStore';
import { groupNameSchema, sessionIdSchema, userIdSchema, type GroupName, type SessionId, type UserId } from '../types/domain';
import type { Logger } from '../utils/logger';
import type { ControlReceiver } from './Control';
import type { Membership } from './Membership';
import { Questions } from './Questions';
import type { Replies } from './Replies';
import type { Sessions } from './Sessions';

/** What is taken back from each session: the session itself, or one group. */
export type Revocation = { kind: 'end'; close: 'REVOKED' | 'SESSION_ENDED'; reason?: string } | { kind: 'leave'; group: GroupName };

/** A session a handoff moved is followed this many times; it cannot keep moving (a handoff needs a resume or a stop). */
const ROUNDS = 3;

const revocationSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('end'),
    close: z.enum(['REVOKED', 'SESSION_ENDED']),
    reason: z
      .string()
      .refine((reason) => Buffer.byteLength(reason) <= limits.maxCloseReasonBytes)
      .optional(),
  }),
  z.object({ kind: z.literal('leave'), group: groupNameSchema }),
]) satisfies z.ZodType<Revocation>;
const messageSchema = z.discriminatedUnion('op', [
  z.object({ op: z.literal('revoke'), id: z.string().min(1).max(64), userId: userIdSchema, sessions: z.array(sessionIdSchema).min(1).max(10_000), action: revocationSchema }),
  // The sessions the instance ended or took out of the group.
  z.object({ op: z.literal('revoked'), id: z.string().min(1).max(64), sessions: z.array(sessionIdSchema).max(10_000) }),
]);
type Message = z.infer<typeof messageSchema>;

export interface RevocationsOptions {
  instanceId: string;
  broker: Broker;
  presence: Pick<PresenceStore, 'sessionsOf'>;
  sessions: Pick<Sessions, 'here' | 'endHere'>;
  membership: Pick<Membership, 'leave'>;
  replies: Replies;
  /** How long an answer from another instance is waited for. */
  timeoutMs: number;
  logger: Logger;
}

export class Revocations implements ControlReceiver {
  readonly ops = messageSchema.options.map((option) => option.shape.op.value);
  private readonly questions: Questions<SessionId[]>;

  constructor(private readonly options: RevocationsOptions) {
    this.questions = new Questions(options.broker, options.timeoutMs);
  }

  /**
   * Ends every session of `userId` the directory lists (or only `sessionId`), wherever it is held; resolves with how
   * many were ended, each counted once, by the instance that ended it and answered in time.
   */
  disconnect(userId: UserId, sessionId: SessionId | undefined, close: 'REVOKED' | 'SESSION_ENDED', reason: string | undefined): Promise<number> {
    return this.revoke(userId, sessionId, reason === undefined ? { kind: 'end', close } : { kind: 'end', close, reason });
  }

  /** Takes every session of `userId` out of `group`, wherever it is held; resolves with how many were in it and left. */
  unsubscribe(userId: UserId, group: GroupName): Promise<number> {
    return this.revoke(userId, undefined, { kind: 'leave', group });
  }

  receive(raw: unknown, from: string): boolean {
    const checked = messageSchema.safeParse(raw);
    if (!checked.success) return false;
    const message = checked.data;
    if (message.op === 'revoke') {
      void this.apply(message.userId, message.sessions, message.action).then((sessions) => this.send(from, { op: 'revoked', id: message.id, sessions }));
    } else {
      this.questions.answer(message.id, from, message.sessions);
    }
    return true;
  }

  private async revoke(userId: UserId, only: SessionId | undefined, action: Revocation): Promise<number> {
    const { presence, instanceId } = this.options;
    let targets = (await presence.sessionsOf(userId)).filter((entry) => only === undefined || entry.sessionId === only);
    /** Each session's instance when it was last asked. */
    const asked = new Map<SessionId, string>();
    const done = new Set<SessionId>();
    for (let round = 0; round < ROUNDS && targets.length > 0; round++) {
      const byInstance = new Map<string, SessionId[]>();
      for (const { sessionId, instanceId: holder } of targets) {
        asked.set(sessionId, holder);
        const ids = byInstance.get(holder);
        if (ids) ids.push(sessionId);
        else byInstance.set(holder, [sessionId]);
      }
      const answers = await Promise.all([...byInstance].map(([holder, ids]) => (holder === instanceId ? this.apply(userId, ids, action) : this.ask(holder, userId, ids, action))));
      for (const id of answers.flat()) done.add(id);
      if (targets.every((entry) => done.has(entry.sessionId))) break;
      // A session not done either ended by itself, is held by an instance that is gone (both: no longer listed, or
      // listed where it was asked), or moved with a handoff meanwhile: listed under another instance, which is asked next.
      targets = (await presence.sessionsOf(userId)).filter(({ sessionId, instanceId: holder }) => asked.has(sessionId) && !done.has(sessionId) && asked.get(sessionId) !== holder);
    }
    return done.size;
  }

  /** Acts on the sessions held here; resolves with those it ended or took out of the group. */
  private async apply(userId: UserId, ids: SessionId[], action: Revocation): Promise<SessionId[]> {
    const results = await Promise.all(ids.map((id) => (action.kind === 'end' ? this.end(userId, id, action) : this.leave(userId, id, action.group))));
    return ids.filter((_, i) => results[i]);
  }

  private async end(userId: UserId, sessionId: SessionId, { close, reason }: Extract<Revocation, { kind: 'end' }>): Promise<boolean> {
    const ended = await this.options.sessions.endHere(userId, sessionId);
    if (!ended) return false;
    if (ended.conn) {
      const message = reason ?? (close === 'REVOKED' ? 'the platform ended your access' : 'a backend ended this session');
      this.options.replies.refuse(ended.conn, close, message, { closeReason: reason });
    }
    this.options.logger.info({ userId, sessionId, close, reason, attached: ended.conn !== null }, 'session ended by a backend');
    return true;
  }

  private async leave(userId: UserId, sessionId: SessionId, group: GroupName): Promise<boolean> {
    const session = await this.options.sessions.here(userId, sessionId);
    if (!session?.groups.has(group)) return false;
    await this.options.membership.leave(session, group);
    // Told on its connection, if it has one now; an orphaned session's resume finds the group gone from `ready`.
    if (session.conn?.isOpen) this.options.replies.send(session.conn, 'unsubscribed', { group, reason: 'server' });
    return true;
  }

  /** Asks instance `to` to act on its sessions; resolves with those it did, or none when it is gone or does not answer in time. */
  private ask(to: string, userId: UserId, sessions: SessionId[], action: Revocation): Promise<SessionId[]> {
    return this.questions.ask(to, (id): Message => ({ op: 'revoke', id, userId, sessions, action }), [], () =>
      this.options.logger.warn({ instance: to, userId, sessions: sessions.length }, 'no answer from an instance asked to revoke sessions'),
    );
  }

  private send(to: string, message: Message): Promise<boolean> {
    return this.options.broker.sendControl(to, JSON.stringify(message));
  }
}
