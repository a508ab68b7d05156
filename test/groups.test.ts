// subscribe/unsubscribe, FORBIDDEN, data_update fan-out (echo or not), multi-tab presence, replies by id.
import { describe, expect, it } from 'vitest';
import { nextMillisecond, startTestGateway } from './helpers/gateway';
import type { ServerEnvelope } from './helpers/ProbeClient';

const ofType = (type: string) => (envs: ServerEnvelope[]) => envs.filter((e) => e.type === type);
const dataUpdates = ofType('data_update');

describe('groups and fan-out', () => {
  it('subscribes to a granted group with its member list and unsubscribes', async () => {
    const gw = await startTestGateway();
    await gw.join('bob', ['team-red'], { meta: { name: 'Bob' } });
    const alice = await gw.join('alice', [], { grants: ['team-*'] });
    // Ordered by since: bob joined the group a millisecond or more before alice does.
    await nextMillisecond();
    const sub = await alice.request('subscribe', { group: 'team-red' });
    expect(sub.type).toBe('subscribed');
    expect(sub.data).toEqual({
      group: 'team-red',
      members: [
        { userId: 'bob', meta: { name: 'Bob' }, since: expect.any(Number), availability: 'online' },
        { userId: 'alice', meta: {}, since: expect.any(Number), availability: 'online' },
      ],
      count: 2,
      next: null,
    });
    const unsub = await alice.request('unsubscribe', { group: 'team-red' });
    expect(unsub).toMatchObject({ type: 'unsubscribed', data: { group: 'team-red' } });
    expect((await alice.request('data_update', { group: 'team-red', payload: 1 })).data!.code).toBe('FORBIDDEN');
  });

  it('answers subscribe to a group the token does not grant with FORBIDDEN', async () => {
    const gw = await startTestGateway();
    const alice = await gw.join('alice', [], { grants: ['team-*'] });
    const reply = await alice.request('subscribe', { group: 'other' });
    expect(reply.data).toMatchObject({ code: 'FORBIDDEN' });
  });

  it('rejects group names outside ^[A-Za-z0-9._:-]{1,128}$ with INVALID_ENVELOPE', async () => {
    const gw = await startTestGateway();
    const alice = await gw.join('alice', [], { grants: ['*'] });
    for (const group of ['', 'has space', 'x'.repeat(129), 'émoji', 42]) {
      expect((await alice.request('subscribe', { group })).data!.code).toBe('INVALID_ENVELOPE');
    }
    expect((await alice.request('subscribe', { group: 'a.b:c_d-1' })).type).toBe('subscribed');
  });

  it('fans data_update out to every other connection, other tabs included, not back to the sender', async () => {
    const gw = await startTestGateway();
    const a1 = await gw.join('alice', ['g']);
    const a2 = await gw.join('alice', ['g']);
    const bob = await gw.join('bob', ['g']);
    const outsider = await gw.join('carol', ['other']);
    const ack = await a1.request('data_update', { group: 'g', payload: { text: 'hi' } });
    expect(ack).toMatchObject({ type: 'ack', data: {} });
    for (const c of [a2, bob]) {
      const msg = await c.next('data_update');
      expect(msg.data).toEqual({ group: 'g', from: { userId: 'alice', connectionId: expect.stringMatching(/^c_/) }, payload: { text: 'hi' } });
    }
    for (const c of [a1, a2, bob, outsider]) expect(dataUpdates(await c.barrier())).toEqual([]);
  });

  it('delivers the sender its own data_update, once, when echo is true', async () => {
    const gw = await startTestGateway();
    const alice = await gw.join('alice', ['g']);
    alice.send('data_update', { group: 'g', payload: [1, 2], echo: true }, 'echo');
    const own = dataUpdates(await alice.before((e) => e.replyTo === 'echo'));
    expect(own.map((e) => e.data)).toEqual([{ group: 'g', from: { userId: 'alice', connectionId: expect.stringMatching(/^c_/) }, payload: [1, 2] }]);
  });

  it('answers data_update to a group the connection is not in with FORBIDDEN', async () => {
    const gw = await startTestGateway();
    const alice = await gw.join('alice', [], { grants: ['*'] });
    expect((await alice.request('data_update', { group: 'g', payload: 1 })).data!.code).toBe('FORBIDDEN');
    expect((await alice.request('data_update', { group: 'g' })).data!.code).toBe('INVALID_ENVELOPE');
  });

  it('announces UP once for a user’s first tab and DOWN once when the last tab leaves', async () => {
    const gw = await startTestGateway();
    const bob = await gw.join('bob', ['g']);
    const tab1 = await gw.join('alice', ['g'], { meta: { device: 'web' } });
    const up = await bob.next('presence_update');
    expect(up.data).toEqual({ group: 'g', userId: 'alice', status: 'UP', meta: { device: 'web' }, availability: 'online' });
    const tab2 = await gw.join('alice', ['g'], { meta: { device: 'web' } });
    await tab1.close();
    // The close has been handled; a user joining after it is announced after anything the join or the close caused.
    await gw.connections(2);
    await gw.join('sentinel-1', ['g']);
    for (const c of [bob, tab2]) expect(await c.presenceBefore('sentinel-1')).toEqual([]);
    await tab2.close();
    const down = await bob.next('presence_update');
    expect(down.data).toEqual({ group: 'g', userId: 'alice', status: 'DOWN', meta: { device: 'web' }, availability: 'online' });
    await gw.connections(2); // bob and sentinel-1
    await gw.join('sentinel-2', ['g']);
    expect(await bob.presenceBefore('sentinel-2')).toEqual([]);
  });

  it('reports the meta of the user’s leading remaining connection in member lists', async () => {
    const gw = await startTestGateway();
    const tab1 = await gw.join('alice', ['g'], { meta: { tab: 1 } });
    await gw.join('alice', ['g'], { meta: { tab: 2 } });
    await tab1.close();
    await gw.connections(1);
    const bob = await gw.join('bob', [], { grants: ['*'] });
    const sub = await bob.request('subscribe', { group: 'g' });
    expect(sub.data!.members).toEqual([
      { userId: 'alice', meta: { tab: 2 }, since: expect.any(Number), availability: 'online' },
      { userId: 'bob', meta: {}, since: expect.any(Number), availability: 'online' },
    ]);
  });

  it('announces presence on subscribe and unsubscribe, not to the connection that moved', async () => {
    // Each change goes out at the end of its turn: bob's UP is out before alice reads the list (a batch crossing her
    // read would repeat it to her), and her UP and DOWN are not merged into nothing.
    const gw = await startTestGateway({ GW_PRESENCE_BATCH_MS: '0' });
    const bob = await gw.join('bob', ['g']);
    // alice stays in h, where a sentinel's UP comes after anything her moves in g caused.
    const alice = await gw.join('alice', ['h'], { grants: ['*'] });
    await alice.request('subscribe', { group: 'g' });
    expect((await bob.next('presence_update')).data).toMatchObject({ userId: 'alice', status: 'UP' });
    await alice.request('unsubscribe', { group: 'g' });
    expect((await bob.next('presence_update')).data).toMatchObject({ userId: 'alice', status: 'DOWN' });
    await gw.join('sentinel', ['g', 'h']);
    expect(await alice.presenceBefore('sentinel')).toEqual([]);
    expect(await bob.presenceBefore('sentinel')).toEqual([]);
  });

  it('answers every envelope that has an id exactly once, with replyTo', async () => {
    const gw = await startTestGateway();
    const alice = await gw.join('alice', ['g']);
    const cases: [string, unknown, string][] = [
      ['heartbeat', {}, 'heartbeat_ack'],
      ['subscribe', { group: 'g' }, 'subscribed'],
      ['data_update', { group: 'g', payload: 1 }, 'ack'],
      ['unsubscribe', { group: 'g' }, 'unsubscribed'],
      ['subscribe', { group: 'nope' }, 'error'],
    ];
    for (const [i, [type, data]] of cases.entries()) alice.send(type, data, `id-${i}`);
    // Replies come in the order the envelopes were sent: everything before the last one's reply is all the others got.
    alice.send('heartbeat', {}, 'last');
    const replies = (await alice.before((e) => e.replyTo === 'last')).filter((e) => e.replyTo !== undefined);
    expect(replies.map((e) => [e.replyTo, e.type])).toEqual(cases.map(([, , replyType], i) => [`id-${i}`, replyType]));
  });
});
