// The member list's order and cursors, and when two entries show the same, shared by the presence stores, the hub and
// the SDK (no zod, no Node: a browser bundle carries this as it is).
import type { Availability, PresenceMeta, UserId } from './domain';

/**
 * A position in a group's member list, which is ordered by `since`, then by `userId` in byte order: `<since>:<userId>`,
 * the last member of a page. Clients pass it back as `members.after`.
 */
export interface MemberCursor {
  since: number;
  userId: UserId;
}

/** Longest user id (a token's `sub`). */
const MAX_USER_ID_LENGTH = 256;

export function encodeCursor(member: MemberCursor): string {
  return `${member.since}:${member.userId}`;
}

/** A cursor as clients send it; undefined when it is not one. */
export function parseCursor(text: string): MemberCursor | undefined {
  const match = /^(\d{1,16}):(.+)$/s.exec(text);
  if (!match) return undefined;
  const since = Number(match[1]);
  const userId = match[2]!;
  return Number.isSafeInteger(since) && userId.length <= MAX_USER_ID_LENGTH ? { since, userId } : undefined;
}

/**
 * The member list's order: by `since`, then by `userId` in UTF-8 byte order (Redis orders equal scores so), which is
 * the order of code points: compared here without encoding either string.
 */
export function compareMembers(a: MemberCursor, b: MemberCursor): number {
  if (a.since !== b.since) return a.since - b.since;
  for (let i = 0; ; ) {
    if (i >= a.userId.length || i >= b.userId.length) return a.userId.length - b.userId.length;
    const x = a.userId.codePointAt(i)!;
    const y = b.userId.codePointAt(i)!;
    if (x !== y) return x - y;
    i += x > 0xffff ? 2 : 1;
  }
}

/**
 * Whether two sessions or member entries show the same to others: availability and meta. Metas are compared as
 * serialized, key order included, which is how the gateway writes them (the same meta has the same key order).
 */
export function sameLook(a: { availability: Availability; meta: PresenceMeta }, b: { availability: Availability; meta: PresenceMeta }): boolean {
  return a.availability === b.availability && (a.meta === b.meta || JSON.stringify(a.meta) === JSON.stringify(b.meta));
}
