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

    it('refuses signals outside the connection’s groups and malformed kinds', async () => {
      const [a] = await startPair();
      const alice = await a.join('alice', ['g'], { grants: ['*'] });
      expect((await alice.request('signal', { group: 'h', kind: 'typing' })).data!.code).toBe('FORBIDDEN');
      expect((await alice.request('signal', { group: 'g', kind: 'has space' })).data!.code).toBe('INVALID_ENVELOPE');
      expect((await alice.request('signal', { group: 'g' })).data!.code).toBe('INVALID_ENVELOPE');
    });
  });
}
