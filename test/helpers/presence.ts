// Presence helpers for the integration suites: identify a member in a presence mode, read presence_diffs, and apply
// them to a member list as a client would.
import { expect } from 'vitest';
import type { Availability, Member, Role } from '../../src/types/domain';
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
  /** identify.availability; absent: online. */
  availability?: Availability;
  grants?: string[];
  /** The token's role (default: client). */
  role?: Role;
}

/** Waits on batches: generous, since other suites load the machine too. */
export const BATCH_WAIT_MS = 10_000;

/** Identifies `userId` into `groups` and returns the client with its `ready`. */
export async function member(gw: TestGateway, userId: string, groups: string[], options: MemberOptions = {}): Promise<{ client: ProbeClient; ready: Ready }> {
  const client = await gw.connect();
  const reply = await client.request('identify', { token: await gw.token({ sub: userId, groups: options.grants ?? groups, role: options.role }), groups, presence: options.presence, meta: options.meta, availability: options.availability });
  expect(reply.type, JSON.stringify(reply.data)).toBe('ready');
  return { client, ready: reply.data as unknown as Ready };
}

export const isDiff = (e: ServerEnvelope) => e.type === 'presence_diff';
export const joinsOf = (e: ServerEnvelope) => (e.data!.joins as Member[]).map((m) => m.userId);
export const leavesOf = (e: ServerEnvelope) => e.data!.leaves as string[];
export const updatesOf = (e: ServerEnvelope) => ((e.data!.updates ?? []) as Member[]).map((m) => m.userId);

/** Each mention of `userId` in `diffs`, in order: UP for a join, DOWN for a leave, UPDATE for an update. */
export function mentions(diffs: ServerEnvelope[], userId: string): string[] {
  return diffs.flatMap((d) => [...(joinsOf(d).includes(userId) ? ['UP'] : []), ...(leavesOf(d).includes(userId) ? ['DOWN'] : []), ...(updatesOf(d).includes(userId) ? ['UPDATE'] : [])]);
}

/** The presence_diffs `c` received up to and including the first whose joins hold `sentinel` (all consumed). */
export async function diffsThrough(c: ProbeClient, sentinel: string): Promise<ServerEnvelope[]> {
  let hit: ServerEnvelope | undefined;
  const before = await c.before((e) => {
    const found = isDiff(e) && joinsOf(e).includes(sentinel);
    if (found) hit = e;
    return found;
  }, BATCH_WAIT_MS);
  return [...before.filter(isDiff), hit!];
}

/** [userId, status] of the presence_updates `c` received before `sentinel`'s UP (consumed). */
export async function updatesBefore(c: ProbeClient, sentinel: string): Promise<string[][]> {
  const seen = await c.before((e) => e.type === 'presence_update' && e.data!.userId === sentinel && e.data!.status === 'UP', BATCH_WAIT_MS);
  return seen.filter((e) => e.type === 'presence_update').map((e) => [e.data!.userId as string, e.data!.status as string]);
}

/** One presence_update (or diff entry) as [userId, status, availability]. */
export type Seen = [string, string, string];

/** What `c` heard of `userId` before `sentinel` came UP: each presence_update as [userId, status, availability]. */
export async function heardBefore(c: ProbeClient, sentinel: string, userId: string): Promise<Seen[]> {
  const seen = await c.before((e) => e.type === 'presence_update' && e.data!.userId === sentinel && e.data!.status === 'UP', BATCH_WAIT_MS);
  return seen.filter((e) => e.type === 'presence_update' && e.data!.userId === userId).map((e) => [userId, e.data!.status as string, e.data!.availability as string]);
}

/** What a diffs session heard of `userId` up to `sentinel`'s join: each mention as [userId, status, availability]. */
export async function diffedBefore(c: ProbeClient, sentinel: string, userId: string): Promise<Seen[]> {
  const diffs = await diffsThrough(c, sentinel);
  return diffs.flatMap((d) => {
    const entries = [...(d.data!.joins as Member[]).map((m) => ['UP', m] as const), ...((d.data!.updates ?? []) as Member[]).map((m) => ['UPDATE', m] as const)];
    const shown = entries.filter(([, m]) => m.userId === userId).map(([status, m]): Seen => [userId, status, m.availability]);
    return [...shown, ...((d.data!.leaves as string[]).includes(userId) ? [[userId, 'DOWN', '']] : [])] as Seen[];
  });
}

/** A member list page with `diffs` applied in order, as a client keeps it: the users listed, and the last count. */
export function applyDiffs(page: MemberList, diffs: ServerEnvelope[]): { list: Map<string, Member>; count: number } {
  const list = new Map(page.members.map((m) => [m.userId, m]));
  let count = page.count;
  for (const diff of diffs) {
    for (const join of [...(diff.data!.joins as Member[]), ...((diff.data!.updates ?? []) as Member[])]) list.set(join.userId, join);
    for (const leave of leavesOf(diff)) list.delete(leave);
    count = diff.data!.count as number;
  }
  return { list, count };
}
