// The cluster contract: two gateway instances behave as one gateway. Run against every broker/presence implementation.
import { describe, expect, it } from 'vitest';
import { sleep, type TestGateway } from './helpers/gateway';

/** Starts two instances of one cluster; `env` applies to both. */
export type StartPair = (env?: Record<string, string>) => Promise<[TestGateway, TestGateway]>;

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
      await sleep(200);
      const got = (c: typeof aliceA) => c.pending('data_update').map((e) => e.data!.payload);
      expect(got(aliceA)).toEqual(['from B']);
      expect(got(aliceB)).toEqual(['from A', 'from B']);
      expect(got(bobA)).toEqual(['from A', 'from B']);
      expect(got(bobB)).toEqual(['from A']);
    });

    it('delivers echo to the sender once and nothing to instances with no member in the group', async () => {
      const [a, b] = await startPair();
      const alice = await a.join('alice', ['g']);
      const outsider = await b.join('carol', ['other']);
      alice.send('data_update', { group: 'g', payload: 1, echo: true });
      await alice.next('data_update');
      await sleep(150);
      expect(alice.pending('data_update')).toHaveLength(0);
      expect(outsider.pending('data_update')).toHaveLength(0);
    });

    it('lists members from every instance in ready and subscribed', async () => {
      const [a, b] = await startPair();
      await a.join('alice', ['g'], { meta: { where: 'A' } });
      const bob = await b.connect();
      const ready = await bob.identify(await b.token({ sub: 'bob', groups: ['g', 'h'] }), ['g']);
      const members = (ready.data!.groups as { members: { userId: string; meta: unknown }[] }[])[0]!.members;
      expect(members.map((m) => [m.userId, m.meta])).toEqual([
        ['alice', { where: 'A' }],
        ['bob', {}],
      ]);
      await a.join('carol', ['h']);
      const sub = await bob.request('subscribe', { group: 'h' });
      expect((sub.data!.members as { userId: string }[]).map((m) => m.userId)).toEqual(['carol', 'bob']);
    });

    it('keeps a user UP while a tab is open on any instance: one UP, one DOWN', async () => {
      const [a, b] = await startPair();
      const watchA = await a.join('watcher-a', ['g']);
      const watchB = await b.join('watcher-b', ['g']);
      await watchA.next((e) => e.type === 'presence_update' && e.data!.userId === 'watcher-b');
      const tabA = await a.join('alice', ['g']);
      for (const w of [watchA, watchB]) expect((await w.next('presence_update')).data).toMatchObject({ userId: 'alice', status: 'UP' });
      const tabB = await b.join('alice', ['g']);
      await tabA.close();
      await sleep(250);
      expect(watchA.pending('presence_update')).toHaveLength(0);
      expect(watchB.pending('presence_update')).toHaveLength(0);
      expect(tabB.pending('presence_update')).toHaveLength(0);
      await tabB.close();
      for (const w of [watchA, watchB]) expect((await w.next('presence_update')).data).toMatchObject({ userId: 'alice', status: 'DOWN' });
      await sleep(150);
      expect(watchA.pending('presence_update')).toHaveLength(0);
      expect(watchB.pending('presence_update')).toHaveLength(0);
    });

    it('stops delivering to an instance once its last member unsubscribed', async () => {
      const [a, b] = await startPair();
      const alice = await a.join('alice', ['g']);
      const bob = await b.join('bob', ['g']);
      await bob.request('unsubscribe', { group: 'g' });
      await alice.request('data_update', { group: 'g', payload: 'after' });
      await sleep(150);
      expect(bob.pending('data_update')).toHaveLength(0);
    });

    it('holds GW_MAX_CONNECTIONS_PER_USER across the cluster', async () => {
      const [a, b] = await startPair({ GW_MAX_CONNECTIONS_PER_USER: '2' });
      await a.join('alice');
      const second = await b.join('alice');
      const third = await a.connect();
      expect((await third.identify(await a.token({ sub: 'alice' }))).data!.code).toBe('LIMIT_EXCEEDED');
      expect((await third.closed).code).toBe(4029);
      await second.close();
      await sleep(100);
      await a.join('alice');
    });

    it('fans signals out to the group (not the sender) and deduplicates (group, kind, user) across instances', async () => {
      const [a, b] = await startPair({ GW_SIGNAL_DEDUP_MS: '400' });
      const tabA = await a.join('alice', ['g']);
      const tabB = await b.join('alice', ['g']);
      const bob = await b.join('bob', ['g']);
      expect(await tabA.request('signal', { group: 'g', kind: 'typing', data: { field: 'msg' } })).toMatchObject({ type: 'ack' });
      const first = await bob.next('signal');
      expect(first.data).toEqual({ group: 'g', from: { userId: 'alice', connectionId: expect.any(String) }, kind: 'typing', data: { field: 'msg' } });
      expect((await tabB.next('signal')).data!.kind).toBe('typing');
      expect((await tabB.request('signal', { group: 'g', kind: 'typing' })).type).toBe('ack');
      await tabA.request('signal', { group: 'g', kind: 'read' });
      expect((await bob.next('signal')).data!.kind).toBe('read');
      await sleep(200);
      expect(bob.pending('signal')).toHaveLength(0);
      expect(tabA.pending('signal')).toHaveLength(0);
      await sleep(300);
      await tabB.request('signal', { group: 'g', kind: 'typing' });
      expect((await bob.next('signal')).data).toMatchObject({ kind: 'typing', data: null });
    });

    it('resumes a session on the other instance: same session, every missed message once and in order, live traffic after, no flap', async () => {
      const [a, b] = await startPair();
      const watcher = await a.join('watcher', ['g']);
      const bob = await b.join('bob', ['g']);
      const alice = await a.connect();
      const ready = (await alice.identify(await a.token({ sub: 'alice', groups: ['g'] }), ['g'])).data as { sessionId: string; sessionToken: string };
      for (const c of [watcher, bob]) await c.next((e) => e.type === 'presence_update' && e.data!.userId === 'alice');
      await bob.request('data_update', { group: 'g', payload: 1 });
      const first = await alice.next('data_update');
      const lastSeq = (first as unknown as { seq: number }).seq;
      alice.socket.terminate();
      await sleep(100);
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
      expect(replayed.map((e) => (e as unknown as { seq: number }).seq)).toEqual([lastSeq + 1, lastSeq + 2, lastSeq + 3]);
      await bob.request('data_update', { group: 'g', payload: 5 });
      await watcher.request('data_update', { group: 'g', payload: 6 });
      const live = [await moved.next('data_update'), await moved.next('data_update')];
      expect(live.map((e) => e.data!.payload as number).sort()).toEqual([5, 6]);
      expect(live.map((e) => (e as unknown as { seq: number }).seq)).toEqual([lastSeq + 4, lastSeq + 5]);
      await sleep(200);
      expect(moved.pending('data_update')).toHaveLength(0);
      expect(watcher.pending('presence_update').filter((e) => e.data!.userId === 'alice')).toEqual([]);
      expect(bob.pending('presence_update').filter((e) => e.data!.userId === 'alice')).toEqual([]);
      const members = await bob.request('subscribe', { group: 'g' });
      expect((members.data!.members as { userId: string }[]).map((m) => m.userId).sort()).toEqual(['alice', 'bob', 'watcher']);
      await moved.close(1000);
      expect((await watcher.next((e) => e.type === 'presence_update' && e.data!.userId === 'alice')).data!.status).toBe('DOWN');
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
      await sleep(50);
      const mallory = await b.connect();
      const stolen = await mallory.request('identify', { token: await b.token({ sub: 'mallory', groups: ['g'] }), resume: { sessionId: ready.sessionId, sessionToken: ready.sessionToken, lastSeq: 0 } });
      expect(stolen.data!.resumed).toBe(false);
      const back = await b.connect();
      const mine = await back.request('identify', { token: await b.token({ sub: 'alice', groups: ['g'] }), resume: { sessionId: ready.sessionId, sessionToken: ready.sessionToken, lastSeq: 0 } });
      expect(mine.data!.resumed).toBe(true);
      await back.close(1000);
      await sleep(50);
      const again = await a.connect();
      const ended = await again.request('identify', { token: await a.token({ sub: 'alice', groups: ['g'] }), resume: { sessionId: ready.sessionId, sessionToken: ready.sessionToken, lastSeq: 0 } });
      expect(ended.data!.resumed).toBe(false);
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
