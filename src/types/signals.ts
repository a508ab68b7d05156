// The `data` of every envelope type: zod schemas for what clients send, TypeScript shapes for what the gateway sends.
import { z } from 'zod';
import { groupNameSchema, userIdSchema, type ConnectionId, type GroupName, type Member, type PresenceMeta, type Role, type SessionId, type UserId } from './domain';
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
        sessionId: z.string().min(1).max(64),
        sessionToken: z.string().min(1).max(512),
        lastSeq: z.number().int().min(0),
      })
      .optional(),
  }),
  heartbeat: z.object({}),
  subscribe: z.object({ group: groupNameSchema }),
  unsubscribe: z.object({ group: groupNameSchema }),
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

export interface GroupMembers {
  group: GroupName;
  members: Member[];
}

/** Server → client envelope types and their `data`. */
export interface ServerSignals {
  hello: { connectionId: ConnectionId; heartbeatIntervalMs: number; heartbeatTimeoutMs: number; identifyTimeoutMs: number };
  ready: {
    sessionId: SessionId;
    connectionId: ConnectionId;
    userId: UserId;
    role: Role;
    groups: GroupMembers[];
    denied: GroupName[];
    /** True when an orphaned session was resumed; its missed envelopes follow `ready`. */
    resumed: boolean;
    sessionToken: string;
  };
  heartbeat_ack: { serverTs: number; sessionToken: string };
  subscribed: GroupMembers;
  unsubscribed: { group: GroupName };
  ack: Record<string, never>;
  /** `group` is null for a backend message sent to a user directly; `connectionId` is null for backend messages. */
  data_update: { group: GroupName | null; from: { userId: UserId; connectionId: ConnectionId | null }; payload: unknown };
  signal: { group: GroupName; from: { userId: UserId; connectionId: ConnectionId }; kind: string; data: unknown };
  presence_update: { group: GroupName; userId: UserId; status: 'UP' | 'DOWN'; meta: PresenceMeta };
  error: { code: ErrorCodeName; message: string; retryAfterMs?: number };
  shutdown: { reason: string; reconnectAfterMs: number };
}
export type ServerSignalType = keyof ServerSignals;

/** Server envelopes that fan out to groups and users, and so travel between instances (and from backends). */
export const RELAYED_TYPES = ['data_update', 'presence_update', 'signal'] as const;
export type RelayedType = (typeof RELAYED_TYPES)[number];

/** A serialized relayed envelope and its type, as fan-out and the broker pass it along. */
export interface Relayed {
  type: RelayedType;
  frame: string;
  /** For a presence_update, the user it is about: never delivered to that user's own sessions. */
  about?: UserId;
}

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
  presence_update: z.strictObject({ group: groupNameSchema, userId: userIdSchema, status: z.enum(['UP', 'DOWN']), meta: jsonObjectSchema }),
  signal: z.strictObject({
    group: groupNameSchema,
    from: z.strictObject({ userId: userIdSchema, connectionId: connectionIdSchema }),
    kind: signalKindSchema,
    data: z.unknown(),
  }),
} satisfies { [K in RelayedType]: z.ZodType<ServerSignals[K]> };
