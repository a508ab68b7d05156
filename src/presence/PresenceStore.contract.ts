// The PresenceStore contract, run against every implementation (MemoryPresenceStore.test.ts, RedisPresenceStore.test.ts):
// several stores of one cluster decide presence, the per-user cap and the session directory together.
import { describe, expect, it } from 'vitest';
import type { GroupName, PresenceMeta, UserId } from '../types/domain';
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
}

/** The whole member list of a group, as one store reads it. */
const list = async (store: PresenceStore, group: GroupName) => (await store.members(group, undefined, 1_000)).members;

const entry = (group: GroupName, userId: UserId, sessionId: string, since: number, meta: PresenceMeta = {}): PresenceEntry => ({ group, userId, sessionId, meta, since });

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
        { userId: 'alice', meta: { tab: 1 }, since: 100 },
        { userId: 'bob', meta: { tab: 1 }, since: 200 },
        { userId: 'carol', meta: {}, since: 400 },
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

    it('grants a lease to one claimer at a time, until it expires', async () => {
      const [a, b] = await cluster('a', 'b');
      expect(await a.lease('s1', 'lease-a', 300)).toBe(true);
      expect(await b.lease('s1', 'lease-b', 300)).toBe(false);
      expect(await a.lease('s1', 'lease-a2', 300)).toBe(false);
      // Per session.
      expect(await b.lease('s2', 'lease-b', 300)).toBe(true);
      // Once it expires, the next claimer gets it (for long enough that it cannot expire before the last check).
      await expect.poll(() => b.lease('s1', 'lease-b', 60_000), { timeout: 5_000, interval: 25 }).toBe(true);
      expect(await a.lease('s1', 'lease-a3', 300)).toBe(false);
    });

    it('releases a lease only for its holder, and then at once', async () => {
      const [a, b] = await cluster('a', 'b');
      await a.connect('alice', 's1', 2);
      expect(await b.lease('s1', 'L-b', 60_000)).toBe(true);
      // Another claimer's release names another lease: the held one stays.
      await a.release('s1', 'L-a');
      expect(await a.lease('s1', 'L-a', 60_000)).toBe(false);
      await b.release('s1', 'L-b');
      expect(await a.lease('s1', 'L-a', 60_000)).toBe(true);
      expect(await b.transfer('a', { userId: 'alice', sessionId: 's1', meta: {}, since: 1 }, [], 'L-b')).toBe(false);
      expect(await b.owner('alice', 's1')).toBe('a');
    });

    it('transfers a session under the held lease: the new instance owns it, presence shows no transition, the lease is spent', async () => {
      const [a, b] = await cluster('a', 'b');
      const session = { userId: 'alice', sessionId: 's1', meta: { tab: 1 }, since: 100 };
      await a.connect('alice', 's1', 2);
      await a.join(entry('g', 'alice', 's1', 100, { tab: 1 }));
      await a.join(entry('h', 'alice', 's1', 100, { tab: 1 }));
      await b.join(entry('g', 'bob', 's2', 200));
      expect(await b.lease('s1', 'L', 60_000)).toBe(true);

      expect(await b.transfer('a', session, ['g', 'h'], 'L')).toBe(true);
      a.handedOver('alice', 's1', ['g', 'h']);
      expect([await a.owner('alice', 's1'), await b.owner('alice', 's1')]).toEqual(['b', 'b']);
      // Asked again (an answer lost on the way): true, and nothing changes; the old owner cannot take it back.
      expect(await b.transfer('a', session, ['g', 'h'], 'L')).toBe(true);
      expect(await a.transfer('b', session, ['g', 'h'], 'L')).toBe(false);
      expect(await b.owner('alice', 's1')).toBe('b');

      // Still UP in both groups, as the same member, and still counted once.
      const alice = { userId: 'alice', meta: { tab: 1 }, since: 100 };
      expect(await list(a, 'g')).toEqual([alice, { userId: 'bob', meta: {}, since: 200 }]);
      expect(await list(b, 'h')).toEqual([alice]);
      expect(await a.join(entry('g', 'alice', 's3', 300))).toBeNull();
      expect(await a.leave('g', 'alice', 's3')).toBeNull();
      expect(await a.connect('alice', 's3', 2)).toBe(true);
      expect(await b.connect('alice', 's4', 2)).toBe(false);
      // The session now leaves from its new instance, as its last in the group.
      expect(await b.leave('g', 'alice', 's1')).not.toBeNull();
      expect(await list(a, 'g')).toEqual([{ userId: 'bob', meta: {}, since: 200 }]);
      expect(transitions.seen).toEqual([]);
      expect(await events()).toEqual(['online alice a']);
    });

    it('refuses a transfer without the lease, under another lease, or from an instance that does not hold the session', async () => {
      const [a, b, c] = await cluster('a', 'b', 'c');
      const session = { userId: 'alice', sessionId: 's1', meta: {}, since: 100 };
      await a.connect('alice', 's1', 2);
      await a.join(entry('g', 'alice', 's1', 100));
      expect(await b.transfer('a', session, ['g'], 'L')).toBe(false);
      expect(await c.lease('s1', 'L-c', 60_000)).toBe(true);
      expect(await b.transfer('a', session, ['g'], 'L')).toBe(false);
      expect(await a.owner('alice', 's1')).toBe('a');
      // Under the held lease, from an instance that does not hold the session: nothing moves.
      expect(await c.transfer('b', session, ['g'], 'L-c')).toBe(false);
      expect(await a.owner('alice', 's1')).toBe('a');
      expect(await list(a, 'g')).toEqual([{ userId: 'alice', meta: {}, since: 100 }]);
      expect(await a.leave('g', 'alice', 's1')).not.toBeNull();
    });

    it('revokes: true while the revoker still holds the session, after which the old lease moves nothing', async () => {
      const [a, b] = await cluster('a', 'b');
      const session = { userId: 'alice', sessionId: 's1', meta: {}, since: 100 };
      await a.connect('alice', 's1', 2);
      expect(await b.lease('s1', 'L', 60_000)).toBe(true);
      expect(await a.revoke('alice', 's1', 'L')).toBe(true);
      expect(await b.transfer('a', session, [], 'L')).toBe(false);
      expect(await b.owner('alice', 's1')).toBe('a');
      // A session the revoker never held.
      expect(await a.revoke('alice', 'other', 'L')).toBe(false);
    });

    it('revokes only its own lease: another handoff’s lease still moves the session', async () => {
      const [a, b] = await cluster('a', 'b');
      const session = { userId: 'alice', sessionId: 's1', meta: {}, since: 100 };
      await a.connect('alice', 's1', 2);
      expect(await b.lease('s1', 'L-other', 60_000)).toBe(true);
      expect(await a.revoke('alice', 's1', 'L-refused')).toBe(true);
      expect(await b.transfer('a', session, [], 'L-other')).toBe(true);
      expect(await a.owner('alice', 's1')).toBe('b');
    });

    it('revokes: false once the session moved to another instance', async () => {
      const [a, b] = await cluster('a', 'b');
      const session = { userId: 'alice', sessionId: 's1', meta: {}, since: 100 };
      await a.connect('alice', 's1', 2);
      expect(await b.lease('s1', 'L', 60_000)).toBe(true);
      expect(await b.transfer('a', session, [], 'L')).toBe(true);
      expect(await a.revoke('alice', 's1', 'L')).toBe(false);
      expect(await a.owner('alice', 's1')).toBe('b');
      expect(await b.revoke('alice', 's1', 'L')).toBe(true);
    });
  });
}
