// Presence helpers for the integration suites: identify a member in a presence mode, read presence_diffs, and apply
// them to a member list as a client would.
import { expect } from 'vitest';
import type { Member, Role } from '../../src/types/domain';
import type { MemberList } from '../../src/types/signals';
import type { TestGateway } from './gateway';
import type { ProbeClient, ServerEnvelope } from './ProbeClient';

export type { Member, MemberList };

export interface Ready {
  sessionId: string;
  sessionToken: string;
  resumed: boolean;
  groups: MemberList[];
}

export interface MemberOptions {
  /** identify.presence; absent: a client of the first v1, which sends no `presence`. */
  presence?: 'diffs' | 'updates';
  meta?: Record<string, unknown>;
  grants?: string[];
  /** The token's role (default: client). */
  role?: Role;
}

/** Waits on batches: generous, since other suites load the machine too. */
export const BATCH_WAIT_MS = 10_000;

/** Identifies `userId` into `groups` and returns the client with its `ready`. */
export async function member(gw: TestGateway, userId: string, groups: string[], options: MemberOptions = {}): Promise<{ client: ProbeClient; ready: Ready }> {
  const client = await gw.connect();
  const reply = await client.request('identify', { token: await gw.token({ sub: userId, groups: options.grants ?? groups, role: options.role }), groups, presence: options.presence, meta: options.meta });
  expect(reply.type, JSON.stringify(reply.data)).toBe('ready');
  return { client, ready: reply.data as unknown as Ready };
}

export const isDiff = (e: ServerEnvelope) => e.type === 'presence_diff';
export const joinsOf = (e: ServerEnvelope) => (e.data!.joins as Member[]).map((m) => m.userId);
export const leavesOf = (e: ServerEnvelope) => e.data!.leaves as string[];

/** Each mention of `userId` in `diffs`, in order: UP for a join, DOWN for a leave. */
export function mentions(diffs: ServerEnvelope[], userId: string): string[] {
  return diffs.flatMap((d) => [...(joinsOf(d).includes(userId) ? ['UP'] : []), ...(leavesOf(d).includes(userId) ? ['DOWN'] : [])]);
}

/** A member list page with `diffs` applied in order, as a client keeps it: the users listed, and the last count. */
export function applyDiffs(page: MemberList, diffs: ServerEnvelope[]): { list: Map<string, Member>; count: number } {
  const list = new Map(page.members.map((m) => [m.userId, m]));
  let count = page.count;
  for (const diff of diffs) {
    for (const join of diff.data!.joins as Member[]) list.set(join.userId, join);
    for (const leave of leavesOf(diff)) list.delete(leave);
    count = diff.data!.count as number;
  }
  return { list, count };
}
