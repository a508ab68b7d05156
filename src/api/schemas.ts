// The server API's contract: each method's request and result as zod schemas. Requests are validated with them, the
// OpenAPI document is generated from them (openapi.ts), and the TypeScript types below are inferred from them.
//
// Every object is strict: a field the gateway does not know is refused (INVALID_REQUEST), never ignored, so a backend
// that sends a field a newer gateway understands learns that this one would not apply it.
import { z } from 'zod';
import { limits } from '../config/limits';
import { HttpErrorCode, type HttpErrorCodeName } from '../types/codes';
import { availabilitySchema, GROUP_NAME_PATTERN, groupNameSchema, memberCursorSchema, sessionIdSchema, userIdSchema } from '../types/domain';
import { filterSchema } from '../types/filter';
import { distinctList } from '../types/lists';
import { nestsDeeperThan } from '../utils/json';

/**
 * The deepest a payload may nest: the `data_update` carrying it (envelope, then `data`) must stay within the frame
 * nesting limit, or instances would drop it as it arrives from Redis while this one delivered it.
 */
export const MAX_PAYLOAD_DEPTH = limits.maxJsonDepth - 2;

/** Shown to recipients as `from.userId` when a request names no `from`. */
export const DEFAULT_FROM = 'api';

const payloadSchema = z
  .unknown()
  .superRefine((value, ctx) => {
    if (value === undefined) ctx.addIssue({ code: 'custom', message: 'payload is required (any JSON value, null included)' });
    else if (nestsDeeperThan(value, MAX_PAYLOAD_DEPTH)) ctx.addIssue({ code: 'custom', message: `payload nests deeper than ${MAX_PAYLOAD_DEPTH} levels` });
  })
  .meta({ description: `Any JSON value (null included), nested at most ${MAX_PAYLOAD_DEPTH} levels.` });

const fromSchema = userIdSchema.default(DEFAULT_FROM).meta({ description: 'Shown to recipients as `from.userId` (`connectionId` is null); the rules of a user id.' });

const publishFilter = filterSchema.optional().meta({ description: 'Only the sessions of the audience that pass every rule given; absent: all of them.' });

const publishParams = z
  .strictObject({
    group: groupNameSchema.optional().meta({ description: 'Every member of the group, on every instance.' }),
    user: userIdSchema.optional().meta({ description: 'Every session of the user, on every instance, whatever its groups (`group` is null in what they receive).' }),
    payload: payloadSchema,
    from: fromSchema,
    filter: publishFilter,
  })
  .superRefine(({ group, user }, ctx) => {
    if (group !== undefined && user !== undefined) ctx.addIssue({ code: 'custom', path: ['user'], message: 'give either group or user, not both' });
    else if (group === undefined && user === undefined) ctx.addIssue({ code: 'custom', path: ['group'], message: 'group or user is required' });
  })
  // zod cannot say "exactly one of" in JSON Schema by itself.
  .meta({ oneOf: [{ required: ['group'] }, { required: ['user'] }] });

const broadcastParams = z.strictObject({
  groups: distinctList(groupNameSchema, limits.apiBatchMax).meta({ description: `1 to ${limits.apiBatchMax} distinct groups; each gets the payload once.` }),
  payload: payloadSchema,
  from: fromSchema,
  filter: publishFilter,
});

const presenceParams = z.strictObject({
  group: groupNameSchema,
  after: memberCursorSchema.optional().meta({ description: 'The `next` of an earlier page; absent: the first page.' }),
  limit: z.number().int().min(1).max(limits.memberPageMax).default(limits.memberPage),
});

const presenceStatsParams = z.strictObject({ group: groupNameSchema });

/** A WebSocket close reason is at most 123 bytes of UTF-8; 100 printable characters leave room for most scripts. */
const MAX_REASON_CHARS = 100;

const disconnectParams = z.strictObject({
  user: userIdSchema.meta({ description: 'The user whose sessions end, on every instance.' }),
  session: sessionIdSchema
    .optional()
    .meta({ description: "Only this session of the user (a `ready.sessionId`); absent: every session of the user." }),
  reason: z
    .string()
    .min(1)
    .max(MAX_REASON_CHARS)
    .regex(/^[^\p{C}\p{Zl}\p{Zp}]*$/u, 'reason must be printable (no control, format or unassigned characters, no line breaks)')
    .refine((reason) => Buffer.byteLength(reason) <= limits.maxCloseReasonBytes, `reason is over ${limits.maxCloseReasonBytes} bytes of UTF-8 (a WebSocket close reason's limit)`)
    .optional()
    .meta({ description: `Told to each client as the close reason and the error's message: 1–${MAX_REASON_CHARS} printable characters, at most ${limits.maxCloseReasonBytes} bytes of UTF-8.` }),
  reconnect: z
    .boolean()
    .default(false)
    .meta({ description: 'false: close 4005 (REVOKED), the client must not reconnect until it has a new token from the platform. true: close 4006 (SESSION_ENDED), the client reconnects with a fresh session.' }),
});

const unsubscribeParams = z.strictObject({
  user: userIdSchema.meta({ description: 'The user whose sessions leave the group, on every instance.' }),
  group: groupNameSchema,
});

const disconnectResult = z.strictObject({
  sessions: z
    .number()
    .int()
    .min(0)
    .meta({ description: 'Sessions this call ended (with or without a connection), each once; a session whose instance is gone or did not answer in time is not counted.' }),
});

const unsubscribeResult = z.strictObject({
  sessions: z
    .number()
    .int()
    .min(0)
    .meta({ description: 'Sessions this call took out of the group (those that were in it), each once; a session whose instance is gone or did not answer in time is not counted.' }),
});

const userParams = z.strictObject({ user: userIdSchema.meta({ description: 'The user whose sessions are listed, on every instance.' }) });

/** No parameters; an object, so later ones can join. */
const infoParams = z.strictObject({});

const groupsParams = z.strictObject({
  limit: z.number().int().min(1).max(limits.apiGroupsMax).default(limits.apiGroups).meta({ description: `How many groups, 1–${limits.apiGroupsMax}.` }),
  prefix: z
    .string()
    .regex(GROUP_NAME_PATTERN, 'a prefix is 1 to 128 of the characters of a group name')
    .optional()
    .meta({ description: 'Only groups whose name starts with it.' }),
});

const redisStatus = z.enum(['up', 'down']);
const sessionId = z.string().meta({ description: 'The session id (a `ready.sessionId`).' });

const userResult = z.strictObject({
  user: z.string(),
  sessions: z
    .array(
      z.union([
        z.strictObject({
          sessionId,
          instance: z.string().meta({ description: 'The id of the instance holding the session.' }),
          groups: z.array(z.string()),
          availability: availabilitySchema.meta({ description: "What the session says of its user's presence (a `presence` envelope; `invisible` included)." }),
          connectedSince: z.number().int().meta({ description: 'When the session was created (ms since the epoch); a resume keeps it.' }),
          state: z.enum(['attached', 'resumable']).meta({ description: '`attached`: it has a connection; `resumable`: its connection dropped and it waits for a resume.' }),
        }),
        z.strictObject({
          sessionId,
          instance: z.string(),
          state: z.literal('unknown').meta({ description: 'Its instance is gone (crashed) or did not answer in time: only what the session directory knows.' }),
        }),
      ]),
    )
    .meta({ description: 'Ordered by `connectedSince`, `unknown` ones last; empty for a user with no session.' }),
});

const infoResult = z.strictObject({
  instances: z
    .array(
      z.union([
        z.strictObject({
          id: z.string(),
          version: z.string(),
          uptimeSec: z.number().int().min(0),
          connections: z.number().int().min(0),
          sessions: z.number().int().min(0).meta({ description: 'Sessions held, attached or waiting for a resume.' }),
          state: z.enum(['starting', 'up', 'draining']),
          redis: redisStatus.optional().meta({ description: "The instance's view of Redis; absent without Redis." }),
          traffic: z
            .strictObject({
              at: z.number().int().meta({ description: "The instance's clock when it read these totals (ms since the epoch)." }),
              messagesIn: z.number().int().min(0).meta({ description: 'Frames received from clients, every type.' }),
              messagesOut: z.number().int().min(0).meta({ description: 'Envelopes written to client sockets, every type (a fan-out counts once per recipient).' }),
              fanouts: z.number().int().min(0).meta({ description: "Fan-outs timed: deliveries of one message (or presence batch) to the instance's sessions in a group or of a user." }),
              fanoutSeconds: z.number().min(0).meta({ description: 'Their summed duration in seconds (divided by `fanouts`: the mean fan-out time).' }),
            })
            .optional()
            .meta({ description: 'Totals since the instance started, which only grow: a rate is the difference of two readings divided by the difference of their `at`. Absent from an instance of an earlier version.' }),
        }),
        z.strictObject({ id: z.string(), state: z.literal('unknown').meta({ description: 'It listens for control messages but did not answer in time.' }) }),
      ]),
    )
    .meta({ description: 'The instance answering first, then the others by id.' }),
  redis: redisStatus.optional().meta({ description: "The answering instance's view of Redis; absent without Redis." }),
});

const groupsResult = z.strictObject({
  groups: z
    .array(
      z.strictObject({
        group: z.string(),
        users: z.number().int().min(0).meta({ description: 'Users listed in the group, cluster-wide (as `presence_stats`).' }),
        sessions: z.number().int().min(0).meta({ description: 'Sessions in the group, cluster-wide (as `presence_stats`).' }),
      }),
    )
    .meta({ description: 'Busiest first (most sessions, then by name); at most `limit`.' }),
});

/** Empty for now; an object, so later fields (offsets, say) can join without breaking anyone. */
const publishResult = z.strictObject({});
const broadcastResult = z.strictObject({});

const memberSchema = z.strictObject({
  userId: z.string(),
  meta: z.record(z.string(), z.unknown()).meta({ description: "The meta of the user's leading session (docs/protocol.md, Presence status)." }),
  since: z.number().int().meta({ description: 'When that session joined the group (ms since the epoch): the list is ordered by it.' }),
  availability: availabilitySchema.exclude(['invisible']).meta({ description: "The most available of the user's sessions in the group; a user whose every session is invisible is not listed." }),
});

const presenceResult = z.strictObject({
  group: z.string(),
  members: z.array(memberSchema),
  count: z.number().int().min(0).meta({ description: 'Users listed in the group, cluster-wide (invisible ones are not).' }),
  next: z.string().nullable().meta({ description: 'The cursor of the next page (`after`), null at the end.' }),
});

const presenceStatsResult = z.strictObject({
  group: z.string(),
  users: z.number().int().min(0).meta({ description: "Users listed in the group, cluster-wide (the member list's count: invisible ones are not)." }),
  sessions: z
    .number()
    .int()
    .min(0)
    .meta({ description: "Client sessions in the group, cluster-wide (invisible ones included): one per connection, and one per dropped connection's session that can still resume." }),
});

export const apiErrorSchema = z.strictObject({
  code: z.enum(Object.keys(HttpErrorCode) as [HttpErrorCodeName, ...HttpErrorCodeName[]]),
  message: z.string(),
  field: z.string().optional().meta({ description: 'INVALID_REQUEST: the offending field, its path joined with `.`.' }),
});
export type ApiError = z.infer<typeof apiErrorSchema>;

/** The methods a `batch` may hold (a batch does not nest). */
const single = {
  publish: { params: publishParams, result: publishResult, summary: 'A data_update to a group or to one user, cluster-wide.' },
  broadcast: { params: broadcastParams, result: broadcastResult, summary: 'One payload to several groups, cluster-wide.' },
  presence: { params: presenceParams, result: presenceResult, summary: "A page of a group's member list, cluster-wide." },
  presence_stats: { params: presenceStatsParams, result: presenceStatsResult, summary: "A group's user and session counts, cluster-wide." },
  disconnect: { params: disconnectParams, result: disconnectResult, summary: "Ends a user's sessions (or one of them), cluster-wide, with a close code that tells the client whether to reconnect." },
  unsubscribe: { params: unsubscribeParams, result: unsubscribeResult, summary: "Takes every session of a user out of a group, cluster-wide." },
  user: { params: userParams, result: userResult, summary: "A user's sessions, cluster-wide: each one's instance, groups, creation time and state." },
  info: { params: infoParams, result: infoResult, summary: 'Every live instance of the cluster: its version, uptime, connection and session counts, state and message totals.' },
  groups: { params: groupsParams, result: groupsResult, summary: 'The busiest groups of the cluster by sessions, with their user and session counts.' },
} as const;

type SingleName = keyof typeof single;
const SINGLE_NAMES = Object.keys(single) as [SingleName, ...SingleName[]];

const batchParams = z.strictObject({
  commands: z
    .array(
      z.strictObject({
        method: z.enum(SINGLE_NAMES),
        params: z.looseObject({}).meta({ description: "The method's request body; checked when the command runs (a bad one fails that command alone)." }),
      }),
    )
    .min(1)
    .max(limits.apiBatchMax),
});

const batchResult = z.strictObject({
  replies: z
    .array(z.union([z.strictObject({ result: z.union([publishResult, broadcastResult, presenceResult, presenceStatsResult, disconnectResult, unsubscribeResult, userResult, infoResult, groupsResult]) }), z.strictObject({ error: apiErrorSchema })]))
    .meta({ description: 'One per command, in order: its result, or its error.' }),
});

/** Every method of the server API (`POST /api/<name>`): its request body, its result (`data`) and what it does. */
export const apiMethods = {
  ...single,
  batch: { params: batchParams, result: batchResult, summary: `Up to ${limits.apiBatchMax} commands in one request, run in order; a failing command does not stop the others.` },
} as const;

export type ApiMethodName = keyof typeof apiMethods;
export type ApiParams<M extends ApiMethodName> = z.output<(typeof apiMethods)[M]['params']>;
/** A request body as a caller writes it (defaults not yet applied): what the admin console sends. */
export type ApiInput<M extends ApiMethodName> = z.input<(typeof apiMethods)[M]['params']>;
export type ApiResult<M extends ApiMethodName> = z.output<(typeof apiMethods)[M]['result']>;

export function isApiMethod(name: string): name is ApiMethodName {
  return Object.prototype.hasOwnProperty.call(apiMethods, name);
}

/** The answer to every server API request: `data` on success, else the error. */
export function okEnvelope<T extends z.ZodType>(data: T) {
  return z.strictObject({ ok: z.literal(true), data });
}

export const errorEnvelope = z.strictObject({ ok: z.literal(false), error: apiErrorSchema });
