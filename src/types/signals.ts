// The `data` of every envelope type: zod schemas for what clients send, TypeScript shapes for what the gateway sends.
import { z } from 'zod';
import { limits } from '../config/limits';
import { availabilitySchema, groupNameSchema, memberCursorSchema, sessionIdSchema, userIdSchema, type ConnectionId, type GroupName, type Member, type PresenceMeta, type PresenceStatus, type Role, type SessionId, type UserId, type VisibleAvailability } from './domain';
import { jsonObjectSchema } from './envelope';
import type { ErrorCodeName } from './codes';

export const MAX_META_BYTES = 1024;
export const SIGNAL_KIND_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;
export const MAX_TOKEN_LENGTH = 8192;

const payloadSchema = z.unknown().refine((v) => v !== undefined, { message: 'payload is required' });
const signalKindSchema = z.string().regex(SIGNAL_KIND_PATTERN, 'signal kinds match ^[A-Za-z0-9._:-]{1,64}$');

export const clientSignals = {
  identify: z.object({
    token: z.string().min(1).max(MAX_TOKEN_LENGTH),
    groups: z.array(groupNameSchema).optional(),
    meta: jsonObjectSchema.optional(),
    resume: z
      .object({
        sessionId: sessionIdSchema,
        sessionToken: z.string().min(1).max(512),
        lastSeq: z.number().int().min(0),
      })
      .optional(),
    presence: z.enum(['updates', 'diffs']).optional(),
    availability: availabilitySchema.optional(),
  }),
  heartbeat: z.object({}),
  refresh: z.object({ token: z.string().min(1).max(MAX_TOKEN_LENGTH) }),
  subscribe: z.object({ group: groupNameSchema }),
  unsubscribe: z.object({ group: groupNameSchema }),
  members: z.object({
    group: groupNameSchema,
    after: memberCursorSchema.optional(),
    limit: z.number().int().min(1).max(limits.memberPageMax).optional(),
  }),
  presence_watch: z.object({ group: groupNameSchema, watch: z.boolean() }),
  presence: z.object({ availability: availabilitySchema, meta: jsonObjectSchema.optional() }),
  data_update: z.object({
    group: groupNameSchema,
    payload: payloadSchema,
    echo: z.boolean().optional(),
  }),
  signal: z.object({
    group: groupNameSchema,
    kind: signalKindSchema,
    data: z.unknown().optional(),
  }),
} as const;

export type ClientSignalType = keyof typeof clientSignals;
export type ClientSignalData<T extends ClientSignalType> = z.infer<(typeof clientSignals)[T]>;

export function isClientSignalType(type: string): type is ClientSignalType {
  return Object.prototype.hasOwnProperty.call(clientSignals, type);
}

/** Why the gateway took a connection out of a group (`unsubscribed.reason`). */
export type UnsubscribeReason = 'not_granted' | 'server';

/** How a session hears of presence changes (identify.presence). */
export type PresenceMode = 'updates' | 'diffs';

/** A page of a group's member list: `ready`, `subscribed` and `members` carry one. */
export interface MemberList {
  group: GroupName;
  members: Member[];
  /** Users in the group, cluster-wide. */
  count: number;
  /** The cursor of the next page, or null when this page reaches the end. */
  next: string | null;
}

/** Server → client envelope types and their `data`. */
export interface ServerSignals {
  hello: { connectionId: ConnectionId; heartbeatIntervalMs: number; heartbeatTimeoutMs: number; identifyTimeoutMs: number };
  ready: {
    sessionId: SessionId;
    connectionId: ConnectionId;
    userId: UserId;
    role: Role;
    groups: MemberList[];
    denied: GroupName[];
    /** True when an orphaned session was resumed; its missed envelopes follow `ready`. */
    resumed: boolean;
    sessionToken: string;
    /** When the connection expires: the token's `exp`, in ms since the epoch (see `refresh`). */
    expiresAt: number;
  };
  heartbeat_ack: { serverTs: number; sessionToken: string };
  refreshed: { expiresAt: number };
  subscribed: MemberList;
  members: MemberList;
  /**
   * The answer to `unsubscribe` (no `reason`), or a notice that the gateway took the connection out of a group:
   * `not_granted` when a refreshed token no longer grants it, `server` when a backend took the user out of it (server
   * API `unsubscribe`).
   */
  unsubscribed: { group: GroupName; reason?: UnsubscribeReason };
  ack: Record<string, never>;
  /** `group` is null for a backend message sent to a user directly; `connectionId` is null for backend messages. */
  data_update: { group: GroupName | null; from: { userId: UserId; connectionId: ConnectionId | null }; payload: unknown };
  signal: { group: GroupName; from: { userId: UserId; connectionId: ConnectionId }; kind: string; data: unknown };
  /** For DOWN, `meta` and `availability` are as the user was listed. */
  presence_update: { group: GroupName; userId: UserId; status: PresenceStatus; meta: PresenceMeta; availability: VisibleAvailability };
  /** `updates` (users still listed whose availability or meta changed) only when there are some. */
  presence_diff: { group: GroupName; joins: Member[]; leaves: UserId[]; updates?: Member[]; count: number };
  presence_count: { group: GroupName; count: number };
  error: { code: ErrorCodeName; message: string; retryAfterMs?: number };
  shutdown: { reason: string; reconnectAfterMs: number };
}
export type ServerSignalType = keyof ServerSignals;

/**
 * What travels between instances on group and user channels (and from backends): server envelopes forwarded as they
 * are (`data_update`, `signal`), and `presence_batch`, one instance's batch of presence changes in a group, which each
 * instance renders into presence envelopes for its own sessions.
 */
export const RELAYED_TYPES = ['data_update', 'signal', 'presence_batch'] as const;
export type RelayedType = (typeof RELAYED_TYPES)[number];

/** A user's net presence change in one batch. */
export interface BatchedChange {
  userId: UserId;
  /** Where the user ended: UP (listed, and was not), DOWN (not listed), UPDATE (listed before and after, shown otherwise). */
  status: PresenceStatus;
  meta: PresenceMeta;
  since: number;
  availability: VisibleAvailability;
  /** The version of the user's last step in the batch. */
  version: number;
  /**
   * Null for a change. For a change undone within the batch (UP then DOWN, or DOWN then UP to the same look), the
   * version of its first step: only a session whose member list was read from then until `version` (and so shows the
   * passing state) gets it.
   */
  undoneFrom: number | null;
}

/** One instance's presence changes in one group over one batch period. */
export interface PresenceBatch {
  group: GroupName;
  changes: BatchedChange[];
  /** The group's user count after the batch's latest change, and that change's version (see PresenceStore). */
  count: number;
  version: number;
}

/** An envelope forwarded to sessions as it is, serialized once. */
export interface Forwarded {
  type: 'data_update' | 'signal';
  frame: string;
}

/** What fan-out and the broker pass along: a forwarded envelope, or a presence batch with what its frame says. */
export type Relayed = Forwarded | { type: 'presence_batch'; frame: string; batch: PresenceBatch };

const connectionIdSchema = z.string().min(1).max(64);

/**
 * The `data` of each relayed type, exactly as the gateway writes it: what arrives from Redis must match before it is
 * forwarded to a client (a gateway never forwards what it did not produce). Strict: unknown fields are refused.
 */
export const relayedData = {
  data_update: z.strictObject({
    group: groupNameSchema.nullable(),
    from: z.strictObject({ userId: userIdSchema, connectionId: connectionIdSchema.nullable() }),
    payload: payloadSchema,
  }),
  presence_batch: z.strictObject({
    group: groupNameSchema,
    changes: z.array(
      z.strictObject({
        userId: userIdSchema,
        status: z.enum(['UP', 'DOWN', 'UPDATE']),
        meta: jsonObjectSchema,
        since: z.number().int().min(0),
        availability: availabilitySchema.exclude(['invisible']),
        version: z.number().int().min(0),
        undoneFrom: z.number().int().min(0).nullable(),
      }),
    ),
    count: z.number().int().min(0),
    version: z.number().int().min(0),
  }),
  signal: z.strictObject({
    group: groupNameSchema,
    from: z.strictObject({ userId: userIdSchema, connectionId: connectionIdSchema }),
    kind: signalKindSchema,
    data: z.unknown(),
  }),
} satisfies { [K in RelayedType]: z.ZodType<K extends keyof ServerSignals ? ServerSignals[K] : PresenceBatch> };
