// The PresenceStore contract, run against every implementation (MemoryPresenceStore.test.ts, RedisPresenceStore.test.ts):
// several stores of one cluster decide presence, the per-user cap and the session directory together.
import { describe, expect, it } from 'vitest';
import type { Availability, GroupName, MemberCursor, PresenceMeta, UserId } from '../types/domain';
import type { PresenceChange, PresenceEntry, PresenceHandlers, PresenceStore } from './PresenceStore';

/** One fresh cluster of stores. The runner owns what it makes and stops it after each test. */
export interface PresenceCluster {
  /** A started store of this cluster for `instanceId`, ready to answer from the cluster's shared state. */
  store(instanceId: string, handlers: PresenceHandlers): Promise<PresenceStore>;
  /** The online/offline events written so far, oldest first, as `type user instance [reason]`. */
  events(): Promise<string[]>;
}

export type NewPresenceCluster = () => PresenceCluster;

/** Transitions a store found by itself; none of the operations here should cause one. */
class Transitions implements PresenceHandlers {
  readonly seen: string[] = [];

  onTransition(group: GroupName, userId: UserId, change: PresenceChange): void {
    this.seen.push(`${group} ${userId} ${change.status}`);
  }

  onReconnected(): void {}
}

/** The whole member list of a group, as one store reads it. */
const list = async (store: PresenceStore, group: GroupName) => (await store.members(group, undefined, 1_000)).members;

const entry = (group: GroupName, userId: UserId, sessionId: string, since: number, meta: PresenceMeta = {}): PresenceEntry => ({ group, userId, sessionId, meta, availability: 'online', since });

export function presenceStoreContract(name: string, newCluster: NewPresenceCluster): void {
  describe(`PresenceStore contract: ${name}`, () => {
    const transitions = new Transitions();

    let events: () => Promise<string[]>;

    /** Stores of one cluster, one per id; `events` reads that cluster's. */
    async function cluster<const Ids extends readonly string[]>(...ids: Ids): Promise<{ [K in keyof Ids]: PresenceStore }> {
      transitions.seen.length = 0;
      const made = newCluster();
      events = () => made.events();
      const stores: PresenceStore[] = [];
      for (const id of ids) stores.push(await made.store(id, transitions));
      return stores as { [K in keyof Ids]: PresenceStore };
    }

    it("joins: true only for a user's first session in the group anywhere in the cluster", async () => {
      const [a, b] = await cluster('a', 'b');
      expect(await a.join(entry('g', 'alice', 's1', 1))).not.toBeNull();
      expect(await b.join(entry('g', 'alice', 's2', 2))).toBeNull();
      expect(await a.join(entry('g', 'alice', 's3', 3))).toBeNull();
      // Another user, and the same user in another group, come UP on their own.
      expect(await b.join(entry('g', 'bob', 's4', 4))).not.toBeNull();
      expect(await b.join(entry('h', 'alice', 's2', 2))).not.toBeNull();
      expect(transitions.seen).toEqual([]);
    });

    it("leaves: true only for a user's last session in the group anywhere in the cluster", async () => {
      const [a, b] = await cluster('a', 'b');
      await a.join(entry('g', 'alice', 's1', 1));
      await b.join(entry('g', 'alice', 's2', 2));
      await a.join(entry('g', 'alice', 's3', 3));
      expect(await a.leave('g', 'alice', 's1')).toBeNull();
      expect(await b.leave('g', 'alice', 's2')).toBeNull();
      // A session that is not there changes nothing.
      expect(await b.leave('g', 'alice', 's2')).toBeNull();
      expect(await b.leave('g', 'alice', 'never-joined')).toBeNull();
      expect(await a.leave('g', 'alice', 's3')).not.toBeNull();
      expect(await list(a, 'g')).toEqual([]);
      // Gone DOWN, the user comes UP again with their next session.
      expect(await b.join(entry('g', 'alice', 's5', 5))).not.toBeNull();
      expect(transitions.seen).toEqual([]);
    });

    it('lists one entry per user, earliest first, with the meta and since of their earliest session, from every store', async () => {
      const [a, b] = await cluster('a', 'b');
      await a.join(entry('g', 'alice', 's1', 100, { tab: 1 }));
      await b.join(entry('g', 'bob', 's2', 200, { tab: 1 }));
      await b.join(entry('g', 'alice', 's3', 300, { tab: 2 }));
      await a.join(entry('g', 'carol', 's4', 400));
      await a.join(entry('other', 'dave', 's5', 50));
      const expected = [
        { userId: 'alice', meta: { tab: 1 }, since: 100, availability: 'online' },
        { userId: 'bob', meta: { tab: 1 }, since: 200, availability: 'online' },
        { userId: 'carol', meta: {}, since: 400, availability: 'online' },
      ];
      expect(await list(a, 'g')).toEqual(expected);
      expect(await list(b, 'g')).toEqual(expected);
      await b.leave('g', 'bob', 's2');
      expect(await list(a, 'g')).toEqual([expected[0], expected[2]]);
      expect(await list(b, 'empty')).toEqual([]);
    });

    it('enforces the per-user cap across instances, counting each session once', async () => {
      const [a, b] = await cluster('a', 'b');
      expect(await a.connect('alice', 's1', 2)).toBe(true);
      expect(await b.connect('alice', 's2', 2)).toBe(true);
      expect(await a.connect('alice', 's3', 2)).toBe(false);
      expect(await b.connect('alice', 's3', 2)).toBe(false);
      // The cap is per user.
      expect(await a.connect('bob', 's4', 2)).toBe(true);
      // Refused, s3 was not counted; a session that ends frees its place wherever it was.
      await b.disconnect('alice', 's2');
      expect(await a.connect('alice', 's3', 2)).toBe(true);
      expect(await b.connect('alice', 's5', 2)).toBe(false);
    });

    it("writes online for a user's first session in the cluster and offline for their last, by the instance that saw it", async () => {
      const [a, b] = await cluster('a', 'b');
      await a.connect('alice', 's1', 5);
      await b.connect('alice', 's2', 5);
      expect(await b.connect('alice', 's3', 1)).toBe(false);
      await a.disconnect('alice', 's1');
      await b.disconnect('alice', 's2');
      await b.connect('alice', 's4', 5);
      expect(await events()).toEqual(['online alice a', 'offline alice b closed', 'online alice b']);
    });

    it('names the instance holding a session from connect to disconnect, on every store', async () => {
      const [a, b] = await cluster('a', 'b');
      expect(await b.owner('alice', 's1')).toBeNull();
      await a.connect('alice', 's1', 5);
      await b.connect('alice', 's2', 5);
      expect([await a.owner('alice', 's1'), await b.owner('alice', 's1')]).toEqual(['a', 'a']);
      expect([await a.owner('alice', 's2'), await b.owner('alice', 's2')]).toEqual(['b', 'b']);
      // Keyed by user and session both.
      expect(await a.owner('bob', 's1')).toBeNull();
      await a.disconnect('alice', 's1');
      expect([await a.owner('alice', 's1'), await b.owner('alice', 's1')]).toEqual([null, null]);
      expect(await a.owner('alice', 's2')).toBe('b');
    });

    it("lists a user's sessions with the instance holding each, on every store, until they end or move", async () => {
      const [a, b] = await cluster('a', 'b');
      expect(await a.sessionsOf('alice')).toEqual([]);
      await a.connect('alice', 's1', 5);
      await b.connect('alice', 's2', 5);
      await b.connect('bob', 's3', 5);
      const sorted = (entries: { sessionId: string }[]) => [...entries].sort((x, y) => x.sessionId.localeCompare(y.sessionId));
      for (const store of [a, b]) {
        expect(sorted(await store.sessionsOf('alice'))).toEqual([
          { sessionId: 's1', instanceId: 'a' },
          { sessionId: 's2', instanceId: 'b' },
        ]);
      }
      // A session that moved is listed with its new instance; one that ended is not listed.
      expect(await b.lease('alice', 's1', 'L', 10_000)).toBe(true);
      expect(await b.transfer('a', { userId: 'alice', sessionId: 's1', meta: {}, availability: 'online' as const, since: 1 }, [], 'L')).toBe(true);
      await b.disconnect('alice', 's2');
      expect(await a.sessionsOf('alice')).toEqual([{ sessionId: 's1', instanceId: 'b' }]);
      expect(await a.sessionsOf('bob')).toEqual([{ sessionId: 's3', instanceId: 'b' }]);
    });

    it('grants a lease to one claimer at a time, until it expires', async () => {
      const [a, b] = await cluster('a', 'b');
      expect(await a.lease('alice', 's1', 'lease-a', 300)).toBe(true);
      expect(await b.lease('alice', 's1', 'lease-b', 300)).toBe(false);
      expect(await a.lease('alice', 's1', 'lease-a2', 300)).toBe(false);
      // Per session.
      expect(await b.lease('alice', 's2', 'lease-b', 300)).toBe(true);
      // Once it expires, the next claimer gets it (for long enough that it cannot expire before the last check).
      await expect.poll(() => b.lease('alice', 's1', 'lease-b', 60_000), { timeout: 5_000, interval: 25 }).toBe(true);
      expect(await a.lease('alice', 's1', 'lease-a3', 300)).toBe(false);
    });

    it('releases a lease only for its holder, and then at once', async () => {
      const [a, b] = await cluster('a', 'b');
      await a.connect('alice', 's1', 2);
      expect(await b.lease('alice', 's1', 'L-b', 60_000)).toBe(true);
      // Another claimer's release names another lease: the held one stays.
      await a.release('alice', 's1', 'L-a');
      expect(await a.lease('alice', 's1', 'L-a', 60_000)).toBe(false);
      await b.release('alice', 's1', 'L-b');
      expect(await a.lease('alice', 's1', 'L-a', 60_000)).toBe(true);
      expect(await b.transfer('a', { userId: 'alice', sessionId: 's1', meta: {}, availability: 'online' as const, since: 1 }, [], 'L-b')).toBe(false);
      expect(await b.owner('alice', 's1')).toBe('a');
    });

    it('transfers a session under the held lease: the new instance owns it, presence shows no transition, the lease is spent', async () => {
      const [a, b] = await cluster('a', 'b');
      const session = { userId: 'alice', sessionId: 's1', meta: { tab: 1 }, availability: 'online' as const, since: 100 };
      await a.connect('alice', 's1', 2);
      await a.join(entry('g', 'alice', 's1', 100, { tab: 1 }));
      await a.join(entry('h', 'alice', 's1', 100, { tab: 1 }));
      await b.join(entry('g', 'bob', 's2', 200));
      expect(await b.lease('alice', 's1', 'L', 60_000)).toBe(true);

      expect(await b.transfer('a', session, ['g', 'h'], 'L')).toBe(true);
      a.handedOver('alice', 's1', ['g', 'h']);
      expect([await a.owner('alice', 's1'), await b.owner('alice', 's1')]).toEqual(['b', 'b']);
      // Asked again (an answer lost on the way): true, and nothing changes; the old owner cannot take it back.
      expect(await b.transfer('a', session, ['g', 'h'], 'L')).toBe(true);
      expect(await a.transfer('b', session, ['g', 'h'], 'L')).toBe(false);
      expect(await b.owner('alice', 's1')).toBe('b');

      // Still UP in both groups, as the same member, and still counted once.
      const alice = { userId: 'alice', meta: { tab: 1 }, since: 100, availability: 'online' };
      expect(await list(a, 'g')).toEqual([alice, { userId: 'bob', meta: {}, since: 200, availability: 'online' }]);
      expect(await list(b, 'h')).toEqual([alice]);
      expect(await a.join(entry('g', 'alice', 's3', 300, { tab: 1 }))).toBeNull();
      expect(await a.leave('g', 'alice', 's3')).toBeNull();
      expect(await a.connect('alice', 's3', 2)).toBe(true);
      expect(await b.connect('alice', 's4', 2)).toBe(false);
      // The session now leaves from its new instance, as its last in the group.
      expect(await b.leave('g', 'alice', 's1')).not.toBeNull();
      expect(await list(a, 'g')).toEqual([{ userId: 'bob', meta: {}, since: 200, availability: 'online' }]);
      expect(transitions.seen).toEqual([]);
      expect(await events()).toEqual(['online alice a']);
    });

    it('refuses a transfer without the lease, under another lease, or from an instance that does not hold the session', async () => {
      const [a, b, c] = await cluster('a', 'b', 'c');
      const session = { userId: 'alice', sessionId: 's1', meta: {}, availability: 'online' as const, since: 100 };
      await a.connect('alice', 's1', 2);
      await a.join(entry('g', 'alice', 's1', 100));
      expect(await b.transfer('a', session, ['g'], 'L')).toBe(false);
      expect(await c.lease('alice', 's1', 'L-c', 60_000)).toBe(true);
      expect(await b.transfer('a', session, ['g'], 'L')).toBe(false);
      expect(await a.owner('alice', 's1')).toBe('a');
      // Under the held lease, from an instance that does not hold the session: nothing moves.
      expect(await c.transfer('b', session, ['g'], 'L-c')).toBe(false);
      expect(await a.owner('alice', 's1')).toBe('a');
      expect(await list(a, 'g')).toEqual([{ userId: 'alice', meta: {}, since: 100, availability: 'online' }]);
      expect(await a.leave('g', 'alice', 's1')).not.toBeNull();
    });

    it('revokes: true while the revoker still holds the session, after which the old lease moves nothing', async () => {
      const [a, b] = await cluster('a', 'b');
      const session = { userId: 'alice', sessionId: 's1', meta: {}, availability: 'online' as const, since: 100 };
      await a.connect('alice', 's1', 2);
      expect(await b.lease('alice', 's1', 'L', 60_000)).toBe(true);
      expect(await a.revoke('alice', 's1', 'L')).toBe(true);
      expect(await b.transfer('a', session, [], 'L')).toBe(false);
      expect(await b.owner('alice', 's1')).toBe('a');
      // A session the revoker never held.
      expect(await a.revoke('alice', 'other', 'L')).toBe(false);
    });

    it('revokes only its own lease: another handoff’s lease still moves the session', async () => {
      const [a, b] = await cluster('a', 'b');
      const session = { userId: 'alice', sessionId: 's1', meta: {}, availability: 'online' as const, since: 100 };
      await a.connect('alice', 's1', 2);
      expect(await b.lease('alice', 's1', 'L-other', 60_000)).toBe(true);
      expect(await a.revoke('alice', 's1', 'L-refused')).toBe(true);
      expect(await b.transfer('a', session, [], 'L-other')).toBe(true);
      expect(await a.owner('alice', 's1')).toBe('b');
    });

    // --- issue 13: versioned transitions with counts, and the paged member list -----------------------------

    it('numbers each group’s transitions: version +1 on every UP, DOWN and UPDATE and on nothing else, with the count after each', async () => {
      const [a, b] = await cluster('a', 'b');
      expect(await a.join(entry('g', 'alice', 's1', 100, { tab: 1 }))).toEqual({ status: 'UP', meta: { tab: 1 }, since: 100, availability: 'online', version: 1, count: 1 });
      // A second tab showing the same, anywhere: no transition, no new version.
      expect(await b.join(entry('g', 'alice', 's2', 300, { tab: 1 }))).toBeNull();
      expect((await b.members('g', undefined, 10)).version).toBe(1);
      expect(await b.join(entry('g', 'bob', 's3', 200))).toEqual({ status: 'UP', meta: {}, since: 200, availability: 'online', version: 2, count: 2 });
      // Versions are per group.
      expect(await a.join(entry('h', 'carol', 's4', 400))).toMatchObject({ status: 'UP', version: 1, count: 1 });
      expect(await a.join(entry('g', 'carol', 's4', 400))).toMatchObject({ status: 'UP', version: 3, count: 3 });
      // One of alice's two tabs leaves: nothing shows otherwise, so nothing changes in the version either (read from both stores).
      expect(await a.leave('g', 'alice', 's1')).toBeNull();
      expect(await a.leave('g', 'alice', 's1')).toBeNull();
      expect((await a.members('g', undefined, 10)).version).toBe(3);
      expect((await b.members('g', undefined, 10)).version).toBe(3);
      // Her remaining tab goes idle: UPDATE, numbered; saying the same again is nothing.
      expect(await b.update('g', 'alice', 's2', { meta: { tab: 1 }, availability: 'idle' })).toEqual({ status: 'UPDATE', meta: { tab: 1 }, since: 300, availability: 'idle', version: 4, count: 3 });
      expect(await b.update('g', 'alice', 's2', { meta: { tab: 1 }, availability: 'idle' })).toBeNull();
      // Her last tab: DOWN with the meta, since and availability she was listed with, and the count after it.
      expect(await b.leave('g', 'alice', 's2')).toEqual({ status: 'DOWN', meta: { tab: 1 }, since: 300, availability: 'idle', version: 5, count: 2 });
      expect(await b.leave('g', 'bob', 's3')).toEqual({ status: 'DOWN', meta: {}, since: 200, availability: 'online', version: 6, count: 1 });
      expect(await b.members('g', undefined, 10)).toEqual({ members: [{ userId: 'carol', meta: {}, since: 400, availability: 'online' }], count: 1, next: null, version: 6 });
      expect(await a.members('h', undefined, 10)).toMatchObject({ count: 1, version: 1 });
      expect(transitions.seen).toEqual([]);
    });

    // Batches numbered before a group emptied may still be in flight when it fills again: numbering must go on.
    it('goes on numbering a group that emptied and filled again, and reads a group never used as version 0', async () => {
      const [a, b] = await cluster('a', 'b');
      await a.join(entry('g', 'alice', 's1', 100));
      await b.join(entry('g', 'bob', 's2', 200));
      await a.leave('g', 'alice', 's1');
      expect(await b.leave('g', 'bob', 's2')).toMatchObject({ status: 'DOWN', version: 4, count: 0 });
      expect(await a.members('g', undefined, 10)).toMatchObject({ members: [], count: 0, next: null });
      expect(await a.join(entry('g', 'alice', 's3', 300))).toMatchObject({ status: 'UP', version: 5, count: 1 });
      expect(await b.join(entry('g', 'carol', 's4', 310))).toMatchObject({ status: 'UP', version: 6, count: 2 });
      expect(await b.members('g', undefined, 10)).toMatchObject({ count: 2, version: 6 });
      expect(await a.members('never', undefined, 10)).toEqual({ members: [], count: 0, next: null, version: 0 });
    });

    it('counts a group’s users and sessions across the cluster, each user once however many sessions they hold', async () => {
      const [a, b] = await cluster('a', 'b');
      expect(await a.stats('g')).toEqual({ users: 0, sessions: 0 });
      await a.join(entry('g', 'alice', 's1', 1));
      await b.join(entry('g', 'alice', 's2', 2));
      await b.join(entry('g', 'bob', 's3', 3));
      await a.join(entry('h', 'carol', 's4', 4));
      // A repeated join of a session counts it once.
      await a.join(entry('g', 'alice', 's1', 1));
      for (const store of [a, b]) expect(await store.stats('g')).toEqual({ users: 2, sessions: 3 });
      await b.leave('g', 'alice', 's2');
      expect(await a.stats('g')).toEqual({ users: 2, sessions: 2 });
      await a.leave('g', 'alice', 's1');
      await b.leave('g', 'bob', 's3');
      expect(await b.stats('g')).toEqual({ users: 0, sessions: 0 });
      expect(await b.stats('h')).toEqual({ users: 1, sessions: 1 });
    });

    it('pages the member list: at most `limit` members, `next` the cursor of the last one while more follow, null at the end', async () => {
      const [a, b] = await cluster('a', 'b');
      const users = ['u1', 'u2', 'u3', 'u4', 'u5', 'u6', 'u7'];
      for (const [i, userId] of users.entries()) await [a, b][i % 2]!.join(entry('g', userId, `s-${userId}`, 1_000 + i * 10, { i }));
      for (const store of [a, b]) {
        const first = await store.members('g', undefined, 3);
        expect(first.members.map((m) => m.userId)).toEqual(['u1', 'u2', 'u3']);
        expect(first.members[1]).toEqual({ userId: 'u2', meta: { i: 1 }, since: 1_010, availability: 'online' });
        expect(first).toMatchObject({ count: 7, next: '1020:u3', version: 7 });
        const second = await store.members('g', { since: 1_020, userId: 'u3' }, 3);
        expect(second.members.map((m) => m.userId)).toEqual(['u4', 'u5', 'u6']);
        expect(second.next).toBe('1050:u6');
        const last = await store.members('g', { since: 1_050, userId: 'u6' }, 3);
        expect(last).toMatchObject({ members: [{ userId: 'u7' }], count: 7, next: null });
        // A page that ends exactly at the end of the list has no next.
        expect((await store.members('g', { since: 1_030, userId: 'u4' }, 3)).next).toBeNull();
        expect((await store.members('g', undefined, 7)).next).toBeNull();
        expect((await store.members('g', undefined, 6)).next).toBe('1050:u6');
        // A cursor past the end, and one before the start.
        expect((await store.members('g', { since: 9_999, userId: 'zz' }, 3)).members).toEqual([]);
        expect((await store.members('g', { since: 1, userId: 'a' }, 1)).members.map((m) => m.userId)).toEqual(['u1']);
        expect((await store.members('g', undefined, 1)).next).toBe('1000:u1');
      }
    });

    it('goes on after a cursor whose member left, or came back later in the list', async () => {
      const [a, b] = await cluster('a', 'b');
      for (const [i, userId] of ['u1', 'u2', 'u3', 'u4', 'u5'].entries()) await [a, b][i % 2]!.join(entry('g', userId, `s-${userId}`, 100 + i));
      const first = await b.members('g', undefined, 2);
      expect(first.next).toBe('101:u2');
      // u2 leaves: the cursor is a position, so the next page is what follows it.
      expect(await b.leave('g', 'u2', 's-u2')).not.toBeNull();
      expect((await a.members('g', { since: 101, userId: 'u2' }, 2)).members.map((m) => m.userId)).toEqual(['u3', 'u4']);
      // u3 leaves too, and u2 comes back (now last): still in position.
      await a.leave('g', 'u3', 's-u3');
      await a.join(entry('g', 'u2', 's-u2b', 500));
      const after = await b.members('g', { since: 101, userId: 'u2' }, 10);
      expect(after.members.map((m) => [m.userId, m.since])).toEqual([
        ['u4', 103],
        ['u5', 104],
        ['u2', 500],
      ]);
      expect(after.next).toBeNull();
    });

    it('orders equal `since` by user id in UTF-8 byte order (not UTF-16), and pages through the ties from every store', async () => {
      const [a, b] = await cluster('a', 'b');
      // Byte order, written out: a JS sort would put 😀 (U+1F600, a surrogate pair) before ｡ (U+FF61); UTF-8 does not.
      const tied = ['B', 'a:b', 'ab', 'b', 'e', 'é', '｡', '😀'];
      const shuffled = ['😀', 'b', 'é', 'B', '｡', 'ab', 'e', 'a:b'];
      await a.join(entry('g', 'first', 's-first', 499));
      for (const [i, userId] of shuffled.entries()) await [a, b][i % 2]!.join(entry('g', userId, `s-${i}`, 500));
      await b.join(entry('g', 'last', 's-last', 501));
      const expected = ['first', ...tied, 'last'];
      for (const store of [a, b]) {
        expect((await list(store, 'g')).map((m) => m.userId)).toEqual(expected);
        // Page by 1, 2 and 3: every cursor in the middle of the ties picks up right after its user.
        for (const limit of [1, 2, 3]) {
          const seen: string[] = [];
          let after: MemberCursor | undefined;
          for (let pages = 0; pages < 20; pages++) {
            const page = await store.members('g', after, limit);
            expect(page.members.length).toBeLessThanOrEqual(limit);
            seen.push(...page.members.map((m) => m.userId));
            if (page.next === null) break;
            const last = page.members[page.members.length - 1]!;
            expect(page.next).toBe(`${last.since}:${last.userId}`);
            after = { since: last.since, userId: last.userId };
          }
          expect(seen).toEqual(expected);
        }
      }
    });

    it('lists a user by their leading session (the earliest among equals): its meta and since, and the list position that follows from them', async () => {
      const [a, b] = await cluster('a', 'b');
      await a.join(entry('g', 'alice', 'a1', 100, { tab: 1 }));
      await b.join(entry('g', 'bob', 'b1', 200));
      await b.join(entry('g', 'alice', 'a2', 300, { tab: 2 }));
      await a.join(entry('g', 'alice', 'a3', 150, { tab: 3 }));
      await a.join(entry('g', 'carol', 'c1', 250));
      const row = async (store: PresenceStore) => (await list(store, 'g')).map((m) => [m.userId, m.since, m.meta]);
      for (const store of [a, b]) {
        expect(await row(store)).toEqual([
          ['alice', 100, { tab: 1 }],
          ['bob', 200, {}],
          ['carol', 250, {}],
        ]);
      }
      // Her earliest tab leaves: the next earliest (a3, on the same store) takes the entry, still first, showing its meta.
      expect(await a.leave('g', 'alice', 'a1')).toMatchObject({ status: 'UPDATE', meta: { tab: 3 }, since: 150 });
      for (const store of [a, b]) expect((await row(store))[0]).toEqual(['alice', 150, { tab: 3 }]);
      // a3 leaves: a2 (on the other store) is her earliest, and she moves after bob and carol.
      expect(await a.leave('g', 'alice', 'a3')).toMatchObject({ status: 'UPDATE', meta: { tab: 2 }, since: 300 });
      for (const store of [a, b]) {
        expect(await row(store)).toEqual([
          ['bob', 200, {}],
          ['carol', 250, {}],
          ['alice', 300, { tab: 2 }],
        ]);
      }
      // A cursor on her old position does not see her twice; one on bob finds her after carol.
      expect((await b.members('g', { since: 100, userId: 'alice' }, 10)).members.map((m) => m.userId)).toEqual(['bob', 'carol', 'alice']);
      expect((await a.members('g', { since: 200, userId: 'bob' }, 1)).next).toBe('250:carol');
      // A session with an earlier since (a session moved here keeps its own) takes the entry back to the front.
      expect(await b.join(entry('g', 'alice', 'a4', 50, { tab: 4 }))).toMatchObject({ status: 'UPDATE', meta: { tab: 4 }, since: 50 });
      for (const store of [a, b]) expect((await row(store))[0]).toEqual(['alice', 50, { tab: 4 }]);
      expect(await b.leave('g', 'alice', 'a4')).toMatchObject({ status: 'UPDATE', meta: { tab: 2 }, since: 300 });
      // Her last session leaves: DOWN with the entry she was listed with.
      expect(await b.leave('g', 'alice', 'a2')).toMatchObject({ status: 'DOWN', meta: { tab: 2 }, since: 300, count: 2 });
      expect((await list(a, 'g')).map((m) => m.userId)).toEqual(['bob', 'carol']);
      expect(transitions.seen).toEqual([]);
    });

    it('transfers a session without a transition: version, count and list entry unchanged, the next change numbered after them', async () => {
      const [a, b] = await cluster('a', 'b');
      await a.connect('alice', 's1', 2);
      await a.join(entry('g', 'alice', 's1', 100, { tab: 1 }));
      await b.join(entry('g', 'bob', 's2', 200));
      const before = await b.members('g', undefined, 10);
      expect(before).toMatchObject({ count: 2, version: 2 });
      expect(await b.lease('alice', 's1', 'L', 60_000)).toBe(true);
      expect(await b.transfer('a', { userId: 'alice', sessionId: 's1', meta: { tab: 1 }, availability: 'online' as const, since: 100 }, ['g'], 'L')).toBe(true);
      a.handedOver('alice', 's1', ['g']);
      expect(await a.members('g', undefined, 10)).toEqual(before);
      expect(await b.members('g', undefined, 10)).toEqual(before);
      expect(transitions.seen).toEqual([]);
      // The moved session leaves from its new store: one DOWN, numbered right after the last transition.
      expect(await b.leave('g', 'alice', 's1')).toEqual({ status: 'DOWN', meta: { tab: 1 }, since: 100, availability: 'online', version: 3, count: 1 });
    });

    it('shows a user as their most available session in the cluster, the earliest among equals: UPDATE on each change of it, hidden while every session is invisible', async () => {
      const [a, b] = await cluster('a', 'b');
      const look = (on: string, availability: Availability) => ({ meta: { on }, availability });
      expect(await a.join({ ...entry('g', 'alice', 's1', 100), ...look('web', 'idle') })).toMatchObject({ status: 'UP', availability: 'idle', meta: { on: 'web' }, version: 1, count: 1 });
      // Less available than the idle tab: nothing shows.
      expect(await b.join({ ...entry('g', 'alice', 's2', 200), ...look('phone', 'dnd') })).toBeNull();
      expect(await b.update('g', 'alice', 's2', look('phone', 'online'))).toEqual({ status: 'UPDATE', meta: { on: 'phone' }, since: 200, availability: 'online', version: 2, count: 1 });
      // Both online: the earlier session leads.
      expect(await a.update('g', 'alice', 's1', look('web', 'online'))).toMatchObject({ status: 'UPDATE', meta: { on: 'web' }, since: 100, version: 3 });
      expect(await a.update('g', 'alice', 's1', look('web', 'invisible'))).toMatchObject({ status: 'UPDATE', meta: { on: 'phone' }, availability: 'online', version: 4 });
      for (const store of [a, b]) expect(await store.stats('g')).toEqual({ users: 1, sessions: 2 });
      // Her last visible session goes invisible: DOWN as she was listed, gone from the list and its count.
      expect(await b.update('g', 'alice', 's2', look('phone', 'invisible'))).toEqual({ status: 'DOWN', meta: { on: 'phone' }, since: 200, availability: 'online', version: 5, count: 0 });
      expect(await b.join({ ...entry('g', 'bob', 's3', 300), ...look('x', 'invisible') })).toBeNull();
      for (const store of [a, b]) {
        expect(await store.members('g', undefined, 10)).toEqual({ members: [], count: 0, next: null, version: 5 });
        expect(await store.stats('g')).toEqual({ users: 0, sessions: 3 });
      }
      // Visible again: UP with her session's own since.
      expect(await a.update('g', 'alice', 's1', look('web', 'dnd'))).toEqual({ status: 'UP', meta: { on: 'web' }, since: 100, availability: 'dnd', version: 6, count: 1 });
      // A session that is not in the group changes nothing.
      expect(await b.update('g', 'alice', 'elsewhere', look('web', 'online'))).toBeNull();
      expect(await b.update('h', 'alice', 's2', look('web', 'online'))).toBeNull();
      expect(await b.leave('g', 'alice', 's2')).toBeNull();
      expect(await b.leave('g', 'bob', 's3')).toBeNull();
      expect(await a.leave('g', 'alice', 's1')).toMatchObject({ status: 'DOWN', availability: 'dnd', version: 7, count: 0 });
      expect(transitions.seen).toEqual([]);
    });

    it('revokes: false once the session moved to another instance', async () => {
      const [a, b] = await cluster('a', 'b');
      const session = { userId: 'alice', sessionId: 's1', meta: {}, availability: 'online' as const, since: 100 };
      await a.connect('alice', 's1', 2);
      expect(await b.lease('alice', 's1', 'L', 60_000)).toBe(true);
      expect(await b.transfer('a', session, [], 'L')).toBe(true);
      expect(await a.revoke('alice', 's1', 'L')).toBe(false);
      expect(await a.owner('alice', 's1')).toBe('b');
      expect(await b.revoke('alice', 's1', 'L')).toBe(true);
    });
  });
}
