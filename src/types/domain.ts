// Domain names shared by every layer: users, groups, roles, token claims.
import { z } from 'zod';

export type UserId = string;
export type GroupName = string;
export type ConnectionId = string;
export type SessionId = string;

export const GROUP_NAME_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
export const groupNameSchema = z.string().regex(GROUP_NAME_PATTERN, 'group names match ^[A-Za-z0-9._:-]{1,128}$');

/** A user id, as a token's `sub` carries it. */
export const userIdSchema = z.string().min(1).max(256);

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

/** Presence metadata a connection attaches in `identify` (device, display name…). */
export type PresenceMeta = Record<string, unknown>;

export interface Member {
  userId: UserId;
  meta: PresenceMeta;
  since: number;
}

/**
 * A position in a group's member list, which is ordered by `since`, then by `userId` in byte order: `<since>:<userId>`,
 * the last member of a page. Clients pass it back as `members.after`.
 */
export interface MemberCursor {
  since: number;
  userId: UserId;
}

export function encodeCursor(member: MemberCursor): string {
  return `${member.since}:${member.userId}`;
}

/** A cursor as clients send it; undefined when it is not one. */
export function parseCursor(text: string): MemberCursor | undefined {
  const match = /^(\d{1,16}):(.+)$/s.exec(text);
  if (!match) return undefined;
  const since = Number(match[1]);
  const userId = match[2]!;
  return Number.isSafeInteger(since) && userIdSchema.safeParse(userId).success ? { since, userId } : undefined;
}

export const memberCursorSchema = z
  .string()
  .max(300)
  .refine((text) => parseCursor(text) !== undefined, 'a cursor is the `next` of a member list');

/** The member list's order: by `since`, then by `userId`'s UTF-8 bytes (Redis orders equal scores the same way). */
export function compareMembers(a: MemberCursor, b: MemberCursor): number {
  return a.since - b.since || (a.userId === b.userId ? 0 : Buffer.compare(Buffer.from(a.userId), Buffer.from(b.userId)));
}
