// The cluster contract: two gateway instances behave as one gateway. Run against every broker/presence implementation.
// Absence is asserted against a sentinel on the same path: messages one instance publishes reach another in order.
import { describe, expect, it, vi } from 'vitest';
import { nextMillisecond, type TestGateway } from './helpers/gateway';
import type { ProbeClient, ServerEnvelope } from './helpers/ProbeClient';

/** Starts two instances of one cluster; `env` applies to both. */
export type StartPair = (env?: Record<string, string>) => Promise<[TestGateway, TestGateway]>;

/**
 * For the tests of who is UP across instances: each presence change goes out at the end of its turn instead of up to
 * GW_PRESENCE_BATCH_MS later, so a change made before a client joins has gone out before its member list is read (a
 * batch that crosses a list read may repeat what the list says), and a DOWN and UP that a bug would make in different
 * turns are not merged away: a flap shows.
 */
const PROMPT_PRESENCE = { GW_PRESENCE_BATCH_MS: '0' };

const isData = (e: ServerEnvelope) => e.type === 'data_update';
const isSignal = (e: ServerEnvelope) => e.type === 'signal';
const seqOf = (e: ServerEnvelope) => (e as unknown as { seq: number }).seq;

/** The payloads of the data_updates `c` received before the one whose payload is `end` (which is consumed). */
async function payloadsBefore(c: ProbeClient, end: unknown): Promise<unknown[]> {
  return (await c.before((e) => isData(e) && e.data!.payload === end)).filter(isData).map((e) => e.data!.payload);
}

export function clusterContract(name: string, startPair: StartPair): void {
  describe(`cluster contract: ${name}`, () => {
    it('fans data_update out across instances both ways, exactly once per connection', async () => {
      const [a, b] = await startPair();
      const aliceA = await a.join('alice', ['g']);
      const aliceB = await b.join('alice', ['g']);
      const bobA = await a.join('bob', ['g']);
      const bobB = await b.join('bob', ['g']);
      await aliceA.request('data_update', { group: 'g', payload: 'from A' });
      await bobB.request('data_update', { group: 'g', payload: 'from B' });
      // Each instance publishes a sentinel once it has seen the other's last message: 'end A' then reaches B after
      // every copy of 'from A' and of 'from B' (even one looping back to B), and 'end B' reaches A after every copy of all three.
      expect(await payloadsBefore(aliceA, 'from B')).toEqual([]);
      await aliceA.request('data_update', { group: 'g', payload: 'end A' });
      expect(await payloadsBefore(bobB, 'end A')).toEqual(['from A']);
      // 'from A' (relayed) and 'from B' (local) race to aliceB; only the set is fixed.
      expect((await payloadsBefore(aliceB, 'end A')).sort()).toEqual(['from A', 'from B']);
      await bobB.request('data_update', { group: 'g', payload: 'end B' });
      expect(await payloadsBefore(aliceA, 'end B')).toEqual([]);
      expect(await payloadsBefore(bobA, 'end B')).toEqual(['from A', 'from B', 'end A']);
    });

    it('delivers echo to the sender once and nothing to instances with no member in the group', async () => {
      const [a, b] = await startPair();
      const alice = await a.join('alice', ['g', 'other']);
      const outsider = await b.join('carol', ['other']);
      await alice.request('data_update', { group: 'g', payload: 1, echo: true });
      // B has no member in g; A's next message in "other" reaches B after anything A sent for g.
      await alice.request('data_update', { group: 'other', payload: 'end A' });
      expect(await payloadsBefore(outsider, 'end A')).toEqual([]);
      // Sent once B has seen 'end A': reaches A after any copy of the echo that went round through the cluster.
      await outsider.request('data_update', { group: 'other', payload: 'end B' });
      expect(await payloadsBefore(alice, 'end B')).toEqual([1]);
    });

    it('lists members from every instance in ready and subscribed', async () => {
      const [a, b] = await startPair();
      await a.join('alice', ['g'], { meta: { where: 'A' } });
      const bob = await b.connect();
      const ready = await bob.identify(await b.token({ sub: 'bob', groups: ['g', 'h'] }), ['g']);
      expect(ready.data!.groups).toEqual([expect.objectContaining({ group: 'g', count: 2, next: null })]);
      const members = (ready.data!.groups as { members: { userId: string; meta: unknown }[] }[])[0]!.members;
      expect(members.map((m) => [m.userId, m.meta])).toEqual([
        ['alice', { where: 'A' }],
        ['bob', {}],
      ]);
      await a.join('carol', ['h']);
      // Ordered by since: carol joined h a millisecond or more before bob does (same clock: one process).
      await nextMillisecond();
      const sub = await bob.request('subscribe', { group: 'h' });
      expect(sub.data).toMatchObject({ group: 'h', count: 2, next: null });
      expect((sub.data!.members as { userId: string }[]).map((m) => m.userId)).toEqual(['carol', 'bob']);
    });

    it('keeps a user UP while a tab is open on any instance: one UP, one DOWN', async () => {
      const [a, b] = await startPair(PROMPT_PRESENCE);
      const watchA = await a.join('watcher-a', ['g']);
      const watchB = await b.join('watcher-b', ['g']);
      await watchA.next((e) => e.type === 'presence_update' && e.data!.userId === 'watcher-b');
      const tabA = await a.join('alice', ['g']);
      for (const w of [watchA, watchB]) expect((await w.next('presence_update')).data).toMatchObject({ userId: 'alice', status: 'UP' });
      // Each sentinel user joins on the instance where the event that must stay silent happened, after it.
      const tabB = await b.join('alice', ['g']);
      await b.join('sentinel-b', ['g']);
      for (const c of [watchA, watchB, tabB]) expect(await c.presenceBefore('sentinel-b')).toEqual([]);
      await tabA.close();
      await a.connections(1);
      await a.join('sentinel-a', ['g']);
      for (const c of [watchA, watchB, tabB]) expect(await c.presenceBefore('sentinel-a')).toEqual([]);
      await tabB.close();
      await b.connections(2); // watcher-b and sentinel-b
      await b.join('sentinel-c', ['g']);
      for (const w of [watchA, watchB]) expect(await w.presenceBefore('sentinel-c')).toEqual([['alice', 'DOWN']]);
    });

    it('stops delivering to an instance once its last member unsubscribed', async () => {
      const [a, b] = await startPair();
      const alice = await a.join('alice', ['g', 'h']);
      const bob = await b.join('bob', ['g', 'h']);
      await bob.request('unsubscribe', { group: 'g' });
      await alice.request('data_update', { group: 'g', payload: 'after' });
      // Bob stays in h: A's next message in h reaches B after anything A sent for g.
      await alice.request('data_update', { group: 'h', payload: 'end' });
      expect(await payloadsBefore(bob, 'end')).toEqual([]);
    });

    it('holds GW_MAX_CONNECTIONS_PER_USER across the cluster', async () => {
      const [a, b] = await startPair({ GW_MAX_CONNECTIONS_PER_USER: '2' });
      await a.join('alice');
      const second = await b.join('alice');
      const third = await a.connect();
      expect((await third.identify(await a.token({ sub: 'alice' }))).data!.code).toBe('LIMIT_EXCEEDED');
      expect((await third.closed).code).toBe(4029);
      await second.close();
      // B has handled the close, and released alice's second connection before A can count her again.
      await b.connections(0);
      await a.join('alice');
    });

    it('fans signals out to the group (not the sender) and deduplicates (group, kind, user) across instances', async () => {
      const [a, b] = await startPair({ GW_SIGNAL_DEDUP_MS: '400' });
      const tabA = await a.join('alice', ['g']);
      const tabB = await b.join('alice', ['g']);
      const bob = await b.join('bob', ['g']);
      const windowFrom = Date.now();
      expect(await tabA.request('signal', { group: 'g', kind: 'typing', data: { field: 'msg' } })).toMatchObject({ type: 'ack' });
      const first = await bob.next('signal');
      expect(first.data).toEqual({ group: 'g', from: { userId: 'alice', connectionId: expect.any(String) }, kind: 'typing', data: { field: 'msg' } });
      expect((await tabB.next('signal')).data!.kind).toBe('typing');
      // Same (group, kind, user) from the other instance within the window: acknowledged, not fanned out.
      expect((await tabB.request('signal', { group: 'g', kind: 'typing' })).type).toBe('ack');
      await tabA.request('signal', { group: 'g', kind: 'read' });
      // 'read' reaches bob after any other copy of A's typing, and after whatever tabB's typing sent on B.
      const beforeRead = await bob.before((e) => isSignal(e) && e.data!.kind === 'read');
      expect(beforeRead.filter(isSignal)).toEqual([]);
      // The window must pass: retry the deduplicated signal until it goes through, each try checked behind a barrier.
      let through: ServerEnvelope[] = [];
      await vi.waitFor(
        async () => {
          await tabB.request('signal', { group: 'g', kind: 'typing' });
          through = (await bob.barrier()).filter(isSignal);
          expect(through).not.toEqual([]);
        },
        { timeout: 3000, interval: 50 },
      );
      expect(Date.now() - windowFrom).toBeGreaterThanOrEqual(400);
      expect(through.map((e) => e.data)).toEqual([{ group: 'g', from: { userId: 'alice', connectionId: expect.any(String) }, kind: 'typing', data: null }]);
      // tabA is never sent its own signals, nor tabB's deduplicated one: the typing that went through came from B after it.
      const beforeLast = await tabA.before((e) => isSignal(e) && e.data!.kind === 'typing' && e.data!.data === null);
      expect(beforeLast.filter(isSignal)).toEqual([]);
    });

    it('resumes a session on the other instance: same session, every missed message once and in order, live traffic after, no flap', async () => {
      const [a, b] = await startPair(PROMPT_PRESENCE);
      const watcher = await a.join('watcher', ['g']);
      const bob = await b.join('bob', ['g']);
      const alice = await a.connect();
      const ready = (await alice.identify(await a.token({ sub: 'alice', groups: ['g'] }), ['g'])).data as { sessionId: string; sessionToken: string };
      for (const c of [watcher, bob]) await c.next((e) => e.type === 'presence_update' && e.data!.userId === 'alice');
      await bob.request('data_update', { group: 'g', payload: 1 });
      const first = await alice.next('data_update');
      const lastSeq = seqOf(first);
      alice.socket.terminate();
      await a.connections(1);
      for (const n of [2, 3]) await bob.request('data_update', { group: 'g', payload: n });
      await watcher.request('data_update', { group: 'g', payload: 4 });

      const moved = await b.connect();
      const reply = await moved.request('identify', { token: await b.token({ sub: 'alice', groups: ['g'] }), resume: { sessionId: ready.sessionId, sessionToken: ready.sessionToken, lastSeq } });
      expect(reply.data).toMatchObject({ resumed: true, sessionId: ready.sessionId });
      // Order holds per publisher; messages from different instances may interleave differently.
      const replayed = [await moved.next('data_update'), await moved.next('data_update'), await moved.next('data_update')];
      const payloads = replayed.map((e) => e.data!.payload as number);
      expect([...payloads].sort()).toEqual([2, 3, 4]);
      expect(payloads.indexOf(2)).toBeLessThan(payloads.indexOf(3));
      expect(replayed.map(seqOf)).toEqual([lastSeq + 1, lastSeq + 2, lastSeq + 3]);
      await bob.request('data_update', { group: 'g', payload: 5 });
      await watcher.request('data_update', { group: 'g', payload: 6 });
      const live = [await moved.next('data_update'), await moved.next('data_update')];
      expect(live.map((e) => e.data!.payload as number).sort()).toEqual([5, 6]);
      expect(live.map(seqOf)).toEqual([lastSeq + 4, lastSeq + 5]);
      // No duplicate from either publisher: a later message from each comes after any on its path.
      await bob.request('data_update', { group: 'g', payload: 'end bob' });
      expect(await payloadsBefore(moved, 'end bob')).toEqual([]);
      await watcher.request('data_update', { group: 'g', payload: 'end watcher' });
      expect(await payloadsBefore(moved, 'end watcher')).toEqual([]);
      const members = await bob.request('subscribe', { group: 'g' });
      expect((members.data!.members as { userId: string }[]).map((m) => m.userId).sort()).toEqual(['alice', 'bob', 'watcher']);
      // No flap: the only presence about alice since her UP is the DOWN of the final clean close.
      await moved.close(1000);
      await b.connections(1);
      await b.join('sentinel', ['g']);
      for (const c of [watcher, bob]) expect((await c.presenceBefore('sentinel')).filter(([userId]) => userId === 'alice')).toEqual([['alice', 'DOWN']]);
    });

    it('hands its sessions to the other instance on a graceful stop: resumed there, every message once and in order, no DOWN', async () => {
      const [a, b] = await startPair(PROMPT_PRESENCE);
      const watcher = await b.join('watcher', ['g']);
      const alice = await a.connect();
      const ready = (await alice.identify(await a.token({ sub: 'alice', groups: ['g'] }), ['g'])).data as { sessionId: string; sessionToken: string };
      await watcher.next((e) => e.type === 'presence_update' && e.data!.userId === 'alice');
      await watcher.request('data_update', { group: 'g', payload: 1 });
      const first = await alice.next('data_update');
      // Published while the hand-over runs: each reaches alice once, before the cut on A or after it on B.
      const stopping = a.gateway.stop();
      for (let n = 2; n <= 6; n++) await watcher.request('data_update', { group: 'g', payload: n });
      await stopping;
      expect((await alice.closed).code).toBe(1001);
      const before = [first, ...alice.drain().filter(isData)];
      expect(before.map(seqOf)).toEqual(before.map((_, i) => i + 1));
      await watcher.request('data_update', { group: 'g', payload: 7 });
      const moved = await b.connect();
      const resume = { sessionId: ready.sessionId, sessionToken: ready.sessionToken, lastSeq: before.length };
      const reply = await moved.request('identify', { token: await b.token({ sub: 'alice', groups: ['g'] }), resume });
      expect(reply.data).toMatchObject({ resumed: true, sessionId: ready.sessionId });
      const after = await moved.before((e) => isData(e) && e.data!.payload === 7);
      const all = [...before, ...after.filter(isData)];
      expect(all.map((e) => e.data!.payload)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(all.map(seqOf)).toEqual([1, 2, 3, 4, 5, 6]);
      await b.join('sentinel', ['g']);
      expect((await watcher.presenceBefore('sentinel')).filter(([userId]) => userId === 'alice')).toEqual([]);
    });

    it('takes a session over from a live connection on the other instance (4011 there)', async () => {
      const [a, b] = await startPair();
      const old = await a.connect();
      const ready = (await old.identify(await a.token({ sub: 'alice', groups: ['g'] }), ['g'])).data as { sessionId: string; sessionToken: string };
      const fresh = await b.connect();
      const reply = await fresh.request('identify', { token: await b.token({ sub: 'alice', groups: ['g'] }), resume: { sessionId: ready.sessionId, sessionToken: ready.sessionToken, lastSeq: 0 } });
      expect(reply.data!.resumed).toBe(true);
      expect((await old.closed).code).toBe(4011);
    });

    it('refuses a cross-instance resume for another user or after the session ended', async () => {
      const [a, b] = await startPair();
      const alice = await a.connect();
      const ready = (await alice.identify(await a.token({ sub: 'alice', groups: ['g'] }), ['g'])).data as { sessionId: string; sessionToken: string };
      alice.socket.terminate();
      await a.connections(0);
      const mallory = await b.connect();
      const stolen = await mallory.request('identify', { token: await b.token({ sub: 'mallory', groups: ['g'] }), resume: { sessionId: ready.sessionId, sessionToken: ready.sessionToken, lastSeq: 0 } });
      expect(stolen.data!.resumed).toBe(false);
      const back = await b.connect();
      const mine = await back.request('identify', { token: await b.token({ sub: 'alice', groups: ['g'] }), resume: { sessionId: ready.sessionId, sessionToken: ready.sessionToken, lastSeq: 0 } });
      expect(mine.data!.resumed).toBe(true);
      await back.close(1000);
      await b.connections(1); // mallory's
      const again = await a.connect();
      const ended = await again.request('identify', { token: await a.token({ sub: 'alice', groups: ['g'] }), resume: { sessionId: ready.sessionId, sessionToken: ready.sessionToken, lastSeq: 0 } });
      expect(ended.data!.resumed).toBe(false);
    });

    // The session moved to B before B found that its buffer no longer covers lastSeq: B ends it, as the owner would.
    it('ends the old session at once when a cross-instance resume finds its buffer no longer covers lastSeq', async () => {
      const [a, b] = await startPair({ ...PROMPT_PRESENCE, GW_RESUME_BUFFER_MESSAGES: '3' });
      const bob = await b.join('bob', ['g']);
      const alice = await a.connect();
      const ready = (await alice.identify(await a.token({ sub: 'alice', groups: ['g'] }), ['g'])).data as { sessionId: string; sessionToken: string };
      await bob.next((e) => e.type === 'presence_update' && e.data!.userId === 'alice' && e.data!.status === 'UP');
      alice.socket.terminate();
      await a.connections(0);
      for (let i = 0; i < 5; i++) await bob.request('data_update', { group: 'g', payload: i });
      const back = await b.connect();
      const fresh = await back.request('identify', { token: await b.token({ sub: 'alice', groups: ['g'] }), resume: { sessionId: ready.sessionId, sessionToken: ready.sessionToken, lastSeq: 0 } });
      expect(fresh.data!.resumed).toBe(false);
      // The old session ended now, not after the orphan TTL: its DOWN comes, and it cannot be resumed anywhere.
      expect((await bob.next('presence_update')).data).toMatchObject({ userId: 'alice', status: 'DOWN' });
      for (const gw of [a, b]) {
        const again = await gw.connect();
        const ended = await again.request('identify', { token: await gw.token({ sub: 'alice', groups: ['g'] }), resume: { sessionId: ready.sessionId, sessionToken: ready.sessionToken, lastSeq: 5 } });
        expect(ended.data!.resumed).toBe(false);
      }
    });

    it('refuses signals outside the connection’s groups and malformed kinds', async () => {
      const [a] = await startPair();
      const alice = await a.join('alice', ['g'], { grants: ['*'] });
      expect((await alice.request('signal', { group: 'h', kind: 'typing' })).data!.code).toBe('FORBIDDEN');
      expect((await alice.request('signal', { group: 'g', kind: 'has space' })).data!.code).toBe('INVALID_ENVELOPE');
      expect((await alice.request('signal', { group: 'g' })).data!.code).toBe('INVALID_ENVELOPE');
    });
  });
}
