// Domain names shared by every layer: users, groups, roles, token claims.
import { z } from 'zod';
import { parseCursor } from './members';

export type UserId = string;
export type GroupName = string;
export type ConnectionId = string;
export type SessionId = string;

export const GROUP_NAME_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
export const groupNameSchema = z.string().regex(GROUP_NAME_PATTERN, 'group names match ^[A-Za-z0-9._:-]{1,128}$');

/** A user id, as a token's `sub` carries it. */
export const userIdSchema = z.string().min(1).max(256);

/** A session id (`ready.sessionId`), as clients, backends and other instances name one. */
export const sessionIdSchema = z.string().min(1).max(64);

export const roleSchema = z.enum(['client', 'service', 'admin']);
export type Role = z.infer<typeof roleSchema>;

/** Claims of a JWT issued by the platform's HTTP API (signature and `exp` are checked by jose). */
export const tokenClaimsSchema = z.object({
  sub: userIdSchema,
  exp: z.number(),
  role: roleSchema.default('client'),
  groups: z.array(z.string().min(1).max(129)).max(1000).default([]),
});
export type TokenClaims = z.infer<typeof tokenClaimsSchema>;

/** Presence metadata a connection attaches in `identify` (device, display name…), replaced by a `presence` envelope. */
export type PresenceMeta = Record<string, unknown>;

/**
 * What a session says of its user's presence (`identify.availability`, the `presence` envelope), most available first.
 * A user's availability in a group is the most available of their sessions there; `invisible` sessions do not count,
 * and a user whose every session is invisible is not listed at all (see PresenceRegistry).
 */
export const AVAILABILITIES = ['online', 'idle', 'dnd', 'invisible'] as const;
export type Availability = (typeof AVAILABILITIES)[number];
/** What member lists and presence changes show: never `invisible` (such a user is not listed). */
export type VisibleAvailability = Exclude<Availability, 'invisible'>;
export const availabilitySchema = z.enum(AVAILABILITIES, {
  error: (issue) => (issue.input === undefined ? 'availability is required: online, idle, dnd or invisible' : 'availability must be online, idle, dnd or invisible'),
});

/**
 * A change of how a user shows in a group: UP (now listed), DOWN (no longer listed), UPDATE (still listed, with another
 * availability or meta).
 */
export type PresenceStatus = 'UP' | 'DOWN' | 'UPDATE';

/** How a user shows in a group: one of their sessions' availability and meta (see PresenceRegistry). */
export interface Member {
  userId: UserId;
  meta: PresenceMeta;
  since: number;
  availability: VisibleAvailability;
}

export { compareMembers, encodeCursor, parseCursor, type MemberCursor } from './members';

/** `members.after`, read into the position it names (INVALID_ENVELOPE when it is not a cursor). */
export const memberCursorSchema = z
  .string()
  .max(300)
  .transform((text, ctx) => {
    const cursor = parseCursor(text);
    if (cursor) return cursor;
    ctx.addIssue({ code: 'custom', message: 'a cursor is the `next` of a member list' });
    return z.NEVER;
  });
