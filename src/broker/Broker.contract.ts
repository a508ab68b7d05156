// The Broker contract, run against every implementation (MemoryBroker.test.ts, RedisBroker.test.ts). Absence is
// asserted behind a sentinel: a later message the receiver does want, sent on a path that keeps order after the first.
import { describe, expect, it, vi } from 'vitest';
import { serializeEnvelope } from '../types/envelope';
import type { Filter } from '../types/filter';
import type { Relayed } from '../types/signals';
import type { Broker, BrokerHandlers, ChannelKind, ControlHandlers } from './Broker';
import { presenceBatch } from './wire';

export interface InstanceOptions {
  /**
   * This instance's receiving side (its subscriptions, and what arrives on them) goes through a slow link, so an
   * ordering a test checks cannot hold by luck. An implementation that delivers synchronously ignores it.
   */
  slowLink?: boolean;
}

/**
 * One fresh cluster per call: the returned function makes an instance of it, constructed but not started, with its
 * transport connected. The runner owns what it makes and stops it after each test (a second stop must be harmless).
 */
export type NewCluster = () => (instanceId: string, options?: InstanceOptions) => Promise<Broker>;

/** What an implementation does not promise, and whose cases are skipped for it. */
export interface ContractOptions {
  /**
   * The broker's `singleOrder`: false when envelopes and control messages travel in more than one order (a Redis
   * Cluster's shards): a mark then keeps its place among control messages only, not among envelopes on other channels.
   */
  singleOrder?: boolean;
}

type Received =
  | { on: 'relayed'; kind: ChannelKind; name: string; envelope: Relayed; origin: string; filter?: Filter }
  | { on: 'control'; message: string; from: string }
  | { on: 'mark'; channel: string; mark: string; from: string }
  | { on: 'echo'; kind: ChannelKind; name: string; envelope: Relayed };

/** Everything one instance received, in order. */
class Inbox implements BrokerHandlers, ControlHandlers {
  readonly received: Received[] = [];

  onRelayed(kind: ChannelKind, name: string, envelope: Relayed, origin: string, filter?: Filter): void {
    this.received.push({ on: 'relayed', kind, name, envelope, origin, filter });
  }

  onControl(message: string, from: string): void {
    this.received.push({ on: 'control', message, from });
  }

  onMark(channel: string, mark: string, from: string): void {
    this.received.push({ on: 'mark', channel, mark, from });
  }

  onEcho(kind: ChannelKind, name: string, envelope: Relayed): void {
    this.received.push({ on: 'echo', kind, name, envelope });
  }

  /** Waits for the first entry matching `last`; resolves with it and everything before it, which are consumed. */
  async until(last: (r: Received) => boolean): Promise<Received[]> {
    const at = await vi.waitFor(() => {
      const i = this.received.findIndex(last);
      expect(i, 'the awaited message never arrived').toBeGreaterThanOrEqual(0);
      return i;
    }, { timeout: 5_000, interval: 5 });
    return this.received.splice(0, at + 1);
  }

  /** Waits for `n` entries; resolves with them, consumed (for messages on several channels, whose order may differ). */
  async count(n: number): Promise<Received[]> {
    await vi.waitFor(() => expect(this.received.length, 'awaited messages never arrived').toBeGreaterThanOrEqual(n), { timeout: 5_000, interval: 5 });
    return this.received.splice(0, n);
  }

  /** As `until`, without the awaited entry: what came before it. */
  async before(last: (r: Received) => boolean): Promise<Received[]> {
    return (await this.until(last)).slice(0, -1);
  }
}

/** A data_update as a gateway serializes it: `group` null is a backend message to a user. */
function dataUpdate(group: string | null, payload: unknown): Relayed {
  return { type: 'data_update', frame: serializeEnvelope('data_update', { group, from: { userId: 'alice', connectionId: group === null ? null : 'conn-1' }, payload }) };
}

const relayedWith = (payload: unknown) => (r: Received) => r.on === 'relayed' && (JSON.parse(r.envelope.frame) as { data: { payload: unknown } }).data.payload === payload;
const control = (message: string) => (r: Received) => r.on === 'control' && r.message === message;

export function brokerContract(name: string, newCluster: NewCluster, options: ContractOptions = {}): void {
  describe(`Broker contract: ${name}`, () => {
    /**
     * Makes, starts and makes listen one instance per id, and waits until each lists all the others as peers. The
     * instances named in `slow` get a slow link.
     */
    async function boot<const Ids extends readonly string[]>(ids: Ids, slow: string[] = []): Promise<{ [K in keyof Ids]: { broker: Broker; inbox: Inbox } }> {
      const make = newCluster();
      const nodes = await Promise.all(
        ids.map(async (id) => {
          const broker = await make(id, { slowLink: slow.includes(id) });
          const inbox = new Inbox();
          await broker.start(inbox);
          await broker.listenControl(inbox);
          return { broker, inbox };
        }),
      );
      for (const { broker } of nodes) {
        expect(broker.singleOrder).toBe(options.singleOrder ?? true);
        const others = ids.filter((id) => id !== broker.instanceId).sort();
        await vi.waitFor(async () => expect((await broker.peers()).sort()).toEqual(others), { timeout: 5_000, interval: 20 });
      }
      return nodes as { [K in keyof Ids]: { broker: Broker; inbox: Inbox } };
    }

    it('relays each envelope type on a group channel to a subscribed instance, exactly, with the publisher as origin', async () => {
      const [a, b] = await boot(['a', 'b']);
      await b.broker.subscribe('group', 'g');
      const sent: Relayed[] = [
        dataUpdate('g', { n: 1 }),
        presenceBatch({ group: 'g', changes: [{ userId: 'bob', status: 'UP', meta: { device: 'phone' }, since: 1, availability: 'online', version: 1, undoneFrom: null }], count: 1, version: 1 }),
        { type: 'signal', frame: serializeEnvelope('signal', { group: 'g', from: { userId: 'alice', connectionId: 'conn-1' }, kind: 'typing', data: null }) },
        dataUpdate('g', 'end'),
      ];
      for (const envelope of sent) a.broker.publish('group', 'g', envelope);
      const received = await b.inbox.before(relayedWith('end'));
      expect(received).toEqual(sent.slice(0, -1).map((envelope) => ({ on: 'relayed', kind: 'group', name: 'g', envelope, origin: 'a' })));
    });

    it("puts a channel's mark in order with the sender's envelopes there, for every instance listening (the sender too); its own envelopes come back only while echoes are wanted", async () => {
      const [a, b] = await boot(['a', 'b']);
      await Promise.all([a.broker.subscribe('group', 'g'), b.broker.subscribe('group', 'g')]);
      const [d1, d2, d3] = [dataUpdate('g', 1), dataUpdate('g', 2), dataUpdate('g', 3)];
      const mark = (m: string) => (r: Received) => r.on === 'mark' && r.mark === m;
      a.broker.publish('group', 'g', d1);
      a.broker.markChannel('group', 'g', 'm1');
      a.broker.publish('group', 'g', d2);
      expect(await b.inbox.until(relayedWith(2))).toEqual([
        { on: 'relayed', kind: 'group', name: 'g', envelope: d1, origin: 'a' },
        { on: 'mark', channel: 'rt:group:g', mark: 'm1', from: 'a' },
        { on: 'relayed', kind: 'group', name: 'g', envelope: d2, origin: 'a' },
      ]);
      // Without echoes wanted, the mark is all `a` reads of its own (d1 went before it).
      expect(await a.inbox.until(mark('m1'))).toEqual([{ on: 'mark', channel: 'rt:group:g', mark: 'm1', from: 'a' }]);
      a.broker.wantEchoes(true);
      a.broker.publish('group', 'g', d3);
      a.broker.markChannel('group', 'g', 'm2');
      expect(await a.inbox.until(mark('m2'))).toEqual([
        { on: 'echo', kind: 'group', name: 'g', envelope: d3 },
        { on: 'mark', channel: 'rt:group:g', mark: 'm2', from: 'a' },
      ]);
      a.broker.wantEchoes(false);
      a.broker.publish('group', 'g', d1);
      a.broker.markChannel('group', 'g', 'm3');
      expect(await a.inbox.until(mark('m3'))).toEqual([{ on: 'mark', channel: 'rt:group:g', mark: 'm3', from: 'a' }]);
    });

    it("relays on a user channel as kind 'user', and keeps a user's channel apart from a group of the same name", async () => {
      const [a, b] = await boot(['a', 'b']);
      await b.broker.subscribe('user', 'alice');
      // Published first, on the group named like the user: must not reach b, which wants only the user channel.
      a.broker.publish('group', 'alice', dataUpdate('alice', 'to the group'));
      const toUser = dataUpdate(null, 'to the user');
      a.broker.publish('user', 'alice', toUser);
      expect(await b.inbox.until(relayedWith('to the user'))).toEqual([{ on: 'relayed', kind: 'user', name: 'alice', envelope: toUser, origin: 'a' }]);
    });

    it("carries a data_update's filter as published, on group and user channels; an unfiltered one arrives without", async () => {
      const [a, b] = await boot(['a', 'b']);
      await Promise.all([b.broker.subscribe('group', 'g'), b.broker.subscribe('user', 'alice')]);
      const toGroup = dataUpdate('g', 'filtered');
      const groupFilter: Filter = { roles: ['admin', 'service'], users: ['alice', 'bob'], exceptUsers: ['carol'] };
      const toUser = dataUpdate(null, 'filtered to alice');
      const unfiltered = dataUpdate('g', 'unfiltered');
      a.broker.publish('group', 'g', toGroup, groupFilter);
      a.broker.publish('user', 'alice', toUser, { roles: ['client'] });
      a.broker.publish('group', 'g', unfiltered);
      // One channel's messages keep their order; two channels' need not (a Redis Cluster carries them on two shards).
      const received = await b.inbox.count(3);
      expect(received.filter((r) => r.on === 'relayed' && r.kind === 'group')).toEqual([
        { on: 'relayed', kind: 'group', name: 'g', envelope: toGroup, origin: 'a', filter: groupFilter },
        { on: 'relayed', kind: 'group', name: 'g', envelope: unfiltered, origin: 'a' },
      ]);
      expect(received.filter((r) => r.on === 'relayed' && r.kind === 'user')).toEqual([
        { on: 'relayed', kind: 'user', name: 'alice', envelope: toUser, origin: 'a', filter: { roles: ['client'] } },
      ]);
    });

    it('delivers to every subscribed instance but never back to the publisher', async () => {
      const [a, b, c] = await boot(['a', 'b', 'c']);
      await Promise.all([a, b, c].map((n) => n.broker.subscribe('group', 'g')));
      a.broker.publish('group', 'g', dataUpdate('g', 'from a'));
      for (const n of [b, c]) expect(await n.inbox.before(relayedWith('from a'))).toEqual([]);
      // Sent once b saw a's message: it reaches a after any copy of a's own.
      b.broker.publish('group', 'g', dataUpdate('g', 'from b'));
      expect(await a.inbox.before(relayedWith('from b'))).toEqual([]);
      expect(a.inbox.received).toEqual([]);
    });

    it('does not deliver to an instance that never subscribed to the channel', async () => {
      const [a, b] = await boot(['a', 'b']);
      await b.broker.subscribe('group', 'wanted');
      a.broker.publish('group', 'unwanted', dataUpdate('unwanted', 'unwanted'));
      a.broker.publish('group', 'wanted', dataUpdate('wanted', 'sentinel'));
      expect(await b.inbox.before(relayedWith('sentinel'))).toEqual([]);
    });

    it('stops delivering a channel once the instance unsubscribed, and keeps delivering the others', async () => {
      const [a, b] = await boot(['a', 'b']);
      await Promise.all([b.broker.subscribe('group', 'g'), b.broker.subscribe('group', 'h')]);
      a.broker.publish('group', 'g', dataUpdate('g', 'while subscribed'));
      expect(await b.inbox.before(relayedWith('while subscribed'))).toEqual([]);
      b.broker.unsubscribe('group', 'g');
      // A subscribe awaited after the unsubscribe: the unsubscribe has taken effect once it resolves.
      await b.broker.subscribe('group', 'sync');
      a.broker.publish('group', 'g', dataUpdate('g', 'after unsubscribe'));
      a.broker.publish('group', 'h', dataUpdate('h', 'sentinel'));
      expect(await b.inbox.before(relayedWith('sentinel'))).toEqual([]);
    });

    it('resolves subscribe only once delivery works: a publish right after it arrives', async () => {
      // The subscriber's link is slow: had subscribe resolved before the transport took it, the publishes would overtake it.
      const [a, b] = await boot(['a', 'b'], ['b']);
      const channels = Array.from({ length: 20 }, (_, i) => `g${i}`);
      await Promise.all(channels.map((g) => b.broker.subscribe('group', g)));
      for (const g of channels) a.broker.publish('group', g, dataUpdate(g, g));
      // Each channel's one message, in whatever order the channels come (a Redis Cluster carries them on three shards).
      const payloadOf = (r: Received) => (r.on === 'relayed' ? (JSON.parse(r.envelope.frame) as { data: { payload: unknown } }).data.payload : r.on);
      expect((await b.inbox.count(channels.length)).map(payloadOf).sort()).toEqual([...channels].sort());
      // Subscribing again to a channel already held resolves too, and delivery goes on once, not twice: a second copy
      // would come before the sentinel sent after it on the same channel.
      await b.broker.subscribe('group', 'g0');
      a.broker.publish('group', 'g0', dataUpdate('g0', 'once'));
      a.broker.publish('group', 'g0', dataUpdate('g0', 'sentinel'));
      expect((await b.inbox.until(relayedWith('sentinel'))).map(payloadOf)).toEqual(['once', 'sentinel']);
    });

    it('sends a control message to the addressed instance only, with the sender as from, and resolves true', async () => {
      const [a, b, c] = await boot(['a', 'b', 'c']);
      expect(await a.broker.sendControl('b', 'for b')).toBe(true);
      expect(await b.inbox.until(control('for b'))).toEqual([{ on: 'control', message: 'for b', from: 'a' }]);
      expect(await a.broker.sendControl('c', 'for c')).toBe(true);
      // a's messages reach c in the order sent: 'for b', had it gone to c, would be first.
      expect(await c.inbox.before(control('for c'))).toEqual([]);
      // Sent once b read 'for b': reaches a after 'for b', had that gone to a too.
      expect(await b.broker.sendControl('a', 'for a')).toBe(true);
      expect(await a.inbox.until(control('for a'))).toEqual([{ on: 'control', message: 'for a', from: 'b' }]);
      expect([b, c].map((n) => n.inbox.received)).toEqual([[], []]);
    });

    it('resolves sendControl false for an instance nobody listens on: unknown, or stopped', async () => {
      const [a, b] = await boot(['a', 'b']);
      expect(await a.broker.sendControl('nobody', 'hello?')).toBe(false);
      await b.broker.stop();
      expect(await a.broker.sendControl('b', 'hello?')).toBe(false);
      expect(await a.broker.peers()).toEqual([]);
      expect(b.inbox.received).toEqual([]);
    });

    it('hands a mark to the sender itself, from its own id, and the message to the addressee', async () => {
      const [a, b] = await boot(['a', 'b']);
      expect(await a.broker.sendControl('b', 'commit', 'mark')).toBe(true);
      expect(await a.inbox.until(control('mark'))).toEqual([{ on: 'control', message: 'mark', from: 'a' }]);
      expect(await b.inbox.until(control('commit'))).toEqual([{ on: 'control', message: 'commit', from: 'a' }]);
      // Neither went to the other: a's next message reaches b after the mark would have; b's answer, sent once b read
      // the message, reaches a after any copy of it.
      expect(await a.broker.sendControl('b', 'b: sentinel')).toBe(true);
      expect(await b.inbox.before(control('b: sentinel'))).toEqual([]);
      expect(await b.broker.sendControl('a', 'a: sentinel')).toBe(true);
      expect(await a.inbox.before(control('a: sentinel'))).toEqual([]);
    });

    it.skipIf(options.singleOrder === false)("puts the mark after what reached the sender before the message was sent: a third party's earlier publish comes first", async () => {
      // The sender's link is slow: when b has read the publish, a's copy is still on its way, and a mark handed over
      // locally at once would overtake it.
      const [a, b, c] = await boot(['a', 'b', 'c'], ['a']);
      await Promise.all([a.broker.subscribe('group', 'g'), b.broker.subscribe('group', 'g')]);
      const earlier = dataUpdate('g', 'earlier');
      c.broker.publish('group', 'g', earlier);
      // b read it: the transport has placed it in its order before anything sent from here on.
      await b.inbox.before(relayedWith('earlier'));
      expect(await a.broker.sendControl('b', 'commit', 'mark')).toBe(true);
      expect(await a.inbox.until(control('mark'))).toEqual([
        { on: 'relayed', kind: 'group', name: 'g', envelope: earlier, origin: 'c' },
        { on: 'control', message: 'mark', from: 'a' },
      ]);
    });

    it('lists the other listening instances as peers, not itself nor one that does not listen, and drops a stopped one', async () => {
      const make = newCluster();
      const [a, b, c] = await Promise.all([make('a'), make('b'), make('c')]);
      const inbox = new Inbox();
      for (const broker of [a, b, c]) await broker.start(inbox);
      await a.listenControl(inbox);
      await b.listenControl(inbox);
      await vi.waitFor(async () => expect(await a.peers()).toEqual(['b']), { timeout: 5_000, interval: 20 });
      expect(await b.peers()).toEqual(['a']);
      // c started but does not listen: it is nobody's peer until it does.
      expect(await a.sendControl('c', 'hello?')).toBe(false);
      await c.listenControl(inbox);
      await vi.waitFor(async () => expect((await a.peers()).sort()).toEqual(['b', 'c']), { timeout: 5_000, interval: 20 });
      expect((await c.peers()).sort()).toEqual(['a', 'b']);
      await c.stop();
      expect(await a.peers()).toEqual(['b']);
      expect(await b.peers()).toEqual(['a']);
      expect(inbox.received).toEqual([]);
    });

    it('stops delivering to an instance once stop() resolved', async () => {
      const [a, b, c] = await boot(['a', 'b', 'c']);
      await Promise.all([b.broker.subscribe('group', 'g'), c.broker.subscribe('group', 'g')]);
      a.broker.publish('group', 'g', dataUpdate('g', 'before stop'));
      for (const n of [b, c]) expect(await n.inbox.before(relayedWith('before stop'))).toEqual([]);
      await b.broker.stop();
      a.broker.publish('group', 'g', dataUpdate('g', 'after stop'));
      expect(await a.broker.sendControl('b', 'after stop')).toBe(false);
      // c, subscribed the same way, is the sentinel: the publish has been fanned out once c has it, and a round trip
      // through the transport (peers) later b would have read it too.
      expect(await c.inbox.before(relayedWith('after stop'))).toEqual([]);
      expect(await a.broker.peers()).toEqual(['c']);
      expect(b.inbox.received).toEqual([]);
    });
  });
}
