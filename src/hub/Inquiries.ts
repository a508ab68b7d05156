// Inquiries: what a backend reads about the cluster (server API `user`, `info`, `groups`). A user's sessions come from
// the session directory, which names each one's holder: this instance describes its own, and asks each other holder
// with one control message. The instances come from the broker's peers, each asked for its status (or its busiest
// groups) with one control message. An instance that is gone or silent is reported as `unknown`, with what the
// directory or the peer list knows of it; for `groups` it adds nothing to the ranking.
import { z } from 'zod';
import type { Broker } from '../broker/Broker';
import { limits } from '../config/limits';
import type { PresenceStore } from '../presence/PresenceStore';
import { availabilitySchema, groupNameSchema, sessionIdSchema, userIdSchema, type Availability, type GroupName, type SessionId, type UserId } from '../types/domain';
import type { Traffic } from '../metrics';
import type { Logger } from '../utils/logger';
import type { ControlReceiver } from './Control';
import { byLoad, type GroupLoad } from './Groups';
import type { Membership } from './Membership';
import { Questions } from './Questions';
import type { Sessions } from './Sessions';

/** A session as its holder sees it: with a connection (or one being set up), or orphaned and waiting for a resume. */
export interface HeldSession {
  sessionId: SessionId;
  groups: GroupName[];
  /** What the session says of its user's presence (`invisible` included: backends see it). */
  availability: Availability;
  /** When the session was created (ms since the epoch); a resume, here or on another instance, keeps it. */
  connectedSince: number;
  state: 'attached' | 'resumable';
}

/** A session of the user and its instance; `unknown` when that instance is gone or did not answer in time. */
export type SessionReport = (HeldSession & { instance: string }) | { sessionId: SessionId; instance: string; state: 'unknown' };

/** What an instance says of itself. */
export interface InstanceStatus {
  version: string;
  uptimeSec: number;
  connections: number;
  /** Sessions held, attached or orphaned. */
  sessions: number;
  state: 'starting' | 'up' | 'draining';
  /** Its view of Redis; absent without Redis. */
  redis?: 'up' | 'down';
  /** Its message totals since it started; absent from an instance of a version before them. */
  traffic?: InstanceTraffic;
}

/** An instance's totals (`Metrics.traffic()`) and its clock when it read them: rates come from two readings. */
export interface InstanceTraffic extends Traffic {
  /** The instance's clock when it read the totals (ms since the epoch). */
  at: number;
}

/** A group, cluster-wide: users listed and sessions in it (the PresenceStore's `stats`). */
export interface GroupReport {
  group: GroupName;
  users: number;
  sessions: number;
}

export type InstanceReport = (InstanceStatus & { id: string }) | { id: string; state: 'unknown' };

export interface ClusterInfo {
  /** This instance first, then the others by id. */
  instances: InstanceReport[];
  /** This instance's view of Redis; absent without Redis. */
  redis?: 'up' | 'down';
}

const id = z.string().min(1).max(64);
const count = z.number().int().min(0);
const heldSchema = z.object({
  sessionId: sessionIdSchema,
  groups: z.array(groupNameSchema).max(10_000),
  availability: availabilitySchema,
  connectedSince: count,
  state: z.enum(['attached', 'resumable']),
}) satisfies z.ZodType<HeldSession>;
const total = z.number().min(0);
const statusSchema = z.object({
  version: z.string().min(1).max(64),
  uptimeSec: count,
  connections: count,
  sessions: count,
  state: z.enum(['starting', 'up', 'draining']),
  redis: z.enum(['up', 'down']).optional(),
  traffic: z.object({ at: count, messagesIn: count, messagesOut: count, fanouts: count, fanoutSeconds: total }).optional(),
}) satisfies z.ZodType<InstanceStatus>;
const groupLoadSchema = z.object({ group: groupNameSchema, sessions: count }) satisfies z.ZodType<GroupLoad>;
const messageSchema = z.discriminatedUnion('op', [
  z.object({ op: z.literal('describe_sessions'), id, userId: userIdSchema, sessions: z.array(sessionIdSchema).min(1).max(10_000) }),
  // The sessions asked about that the instance holds.
  z.object({ op: z.literal('sessions_described'), id, sessions: z.array(heldSchema).max(10_000) }),
  z.object({ op: z.literal('describe_instance'), id }),
  z.object({ op: z.literal('instance_described'), id, status: statusSchema }),
  z.object({ op: z.literal('describe_groups'), id, limit: z.number().int().min(1).max(limits.apiGroupsMax), prefix: z.string().max(128).optional() }),
  // The instance's busiest groups, busiest first.
  z.object({ op: z.literal('groups_described'), id, groups: z.array(groupLoadSchema).max(limits.apiGroupsMax) }),
]);
type Message = z.infer<typeof messageSchema>;

export interface InquiriesOptions {
  instanceId: string;
  broker: Pick<Broker, 'sendControl' | 'peers'>;
  presence: Pick<PresenceStore, 'sessionsOf' | 'stats'>;
  sessions: Pick<Sessions, 'candidate'>;
  membership: Pick<Membership, 'busiestGroups'>;
  /** This instance's status now. */
  status(): InstanceStatus;
  /** How long an answer from another instance is waited for. */
  timeoutMs: number;
  logger: Logger;
}

export class Inquiries implements ControlReceiver {
  readonly ops = messageSchema.options.map((option) => option.shape.op.value);
  private readonly sessionQuestions: Questions<HeldSession[] | null>;
  private readonly statusQuestions: Questions<InstanceStatus | null>;
  private readonly groupQuestions: Questions<GroupLoad[]>;

  constructor(private readonly options: InquiriesOptions) {
    this.sessionQuestions = new Questions(options.broker, options.timeoutMs);
    this.statusQuestions = new Questions(options.broker, options.timeoutMs);
    this.groupQuestions = new Questions(options.broker, options.timeoutMs);
  }

  /**
   * Every session of `userId` the directory lists, as its holder describes it, ordered by `connectedSince` (unknown
   * ones last). A session the holder no longer has (it ended, or moved on, after the directory was read) is left out.
   */
  async user(userId: UserId): Promise<SessionReport[]> {
    const { presence, instanceId, logger } = this.options;
    const byInstance = new Map<string, SessionId[]>();
    for (const { sessionId, instanceId: holder } of await presence.sessionsOf(userId)) {
      const ids = byInstance.get(holder);
      if (ids) ids.push(sessionId);
      else byInstance.set(holder, [sessionId]);
    }
    const answers = await Promise.all(
      [...byInstance].map(async ([holder, ids]): Promise<SessionReport[]> => {
        const held =
          holder === instanceId
            ? this.describe(userId, ids)
            : await this.sessionQuestions.ask(holder, (id): Message => ({ op: 'describe_sessions', id, userId, sessions: ids }), null, () =>
                logger.warn({ instance: holder, userId, sessions: ids.length }, 'no answer from an instance asked to describe sessions'),
              );
        if (held === null) return ids.map((sessionId) => ({ sessionId, instance: holder, state: 'unknown' }));
        return held.map((session) => ({ ...session, instance: holder }));
      }),
    );
    const since = (report: SessionReport) => ('connectedSince' in report ? report.connectedSince : Infinity);
    return answers.flat().sort((a, b) => since(a) - since(b) || (a.sessionId < b.sessionId ? -1 : 1));
  }

  /** This instance and every other one listening for control messages, each as it describes itself. */
  async info(): Promise<ClusterInfo> {
    const { broker, instanceId, logger } = this.options;
    const self = this.options.status();
    const peers = (await broker.peers()).sort();
    const others = await Promise.all(
      peers.map(async (peer): Promise<InstanceReport> => {
        const status = await this.statusQuestions.ask(peer, (id): Message => ({ op: 'describe_instance', id }), null, () =>
          logger.warn({ instance: peer }, 'no answer from an instance asked for its status'),
        );
        return status === null ? { id: peer, state: 'unknown' } : { id: peer, ...status };
      }),
    );
    const instances = [{ id: instanceId, ...self }, ...others];
    return self.redis === undefined ? { instances } : { instances, redis: self.redis };
  }

  /**
   * The `limit` busiest groups of the cluster (names starting with `prefix`, when given), by sessions, with their exact
   * cluster-wide counts. Each instance names its own busiest `limit` by local sessions; the candidates are ranked by
   * those local counts summed, and the best `limit` are read from the PresenceStore. The ranking is exact for a group
   * every instance holding it ranks among its own `limit`; a group spread thinly over many instances can be missed.
   */
  async groups(limit: number, prefix: string | undefined): Promise<GroupReport[]> {
    const { broker, membership, presence, logger } = this.options;
    const peers = await broker.peers();
    const lists = await Promise.all([
      membership.busiestGroups(limit, prefix),
      ...peers.map((peer) =>
        this.groupQuestions.ask(peer, (id): Message => ({ op: 'describe_groups', id, limit, ...(prefix === undefined ? {} : { prefix }) }), [], () =>
          logger.warn({ instance: peer }, 'no answer from an instance asked for its busiest groups'),
        ),
      ),
    ]);
    const summed = new Map<GroupName, number>();
    for (const list of lists) for (const { group, sessions } of list) summed.set(group, (summed.get(group) ?? 0) + sessions);
    const candidates = [...summed].map(([group, sessions]) => ({ group, sessions })).sort(byLoad).slice(0, limit);
    const reports = await Promise.all(candidates.map(async ({ group }) => ({ group, ...(await presence.stats(group)) })));
    // A group may have emptied between the two reads.
    return reports.filter((report) => report.sessions > 0).sort(byLoad);
  }

  receive(raw: unknown, from: string): boolean {
    const checked = messageSchema.safeParse(raw);
    if (!checked.success) return false;
    const message = checked.data;
    switch (message.op) {
      case 'describe_sessions':
        void this.send(from, { op: 'sessions_described', id: message.id, sessions: this.describe(message.userId, message.sessions) });
        break;
      case 'sessions_described':
        this.sessionQuestions.answer(message.id, from, message.sessions);
        break;
      case 'describe_instance':
        void this.send(from, { op: 'instance_described', id: message.id, status: this.options.status() });
        break;
      case 'instance_described':
        this.statusQuestions.answer(message.id, from, message.status);
        break;
      case 'describe_groups':
        void this.send(from, { op: 'groups_described', id: message.id, groups: this.options.membership.busiestGroups(message.limit, message.prefix) });
        break;
      case 'groups_described':
        this.groupQuestions.answer(message.id, from, message.groups);
        break;
    }
    return true;
  }

  /** The sessions of `ids` held here now, as they are: no wait for a handoff, whose owner holds the session until it moved. */
  private describe(userId: UserId, ids: SessionId[]): HeldSession[] {
    const held: HeldSession[] = [];
    for (const sessionId of ids) {
      const session = this.options.sessions.candidate(sessionId, userId);
      if (session) held.push({ sessionId, groups: [...session.groups], availability: session.availability, connectedSince: session.createdAt, state: session.orphanedAt === null ? 'attached' : 'resumable' });
    }
    return held;
  }

  private send(to: string, message: Message): Promise<boolean> {
    return this.options.broker.sendControl(to, JSON.stringify(message));
  }
}
