// The Broker contract over a real Redis Cluster (three masters, three replicas), then what only a cluster has: channels
// sharded to the master that owns their slot, and delivery that comes back by itself after a master dies or the slot
// of its channel moves to another master.
import calculateSlot from 'cluster-key-slot';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { hasRedis, useRedisCluster, type ClusterNodeProcess } from '../../test/helpers/redisCluster';
import { closeRedis, createRedis, type RedisClient } from '../redis/connection';
import { serializeEnvelope } from '../types/envelope';
import type { Relayed } from '../types/signals';
import { createLogger } from '../utils/logger';
import type { BrokerHandlers, ControlHandlers } from './Broker';
import { brokerContract } from './Broker.contract';
import { RedisBroker } from './RedisBroker';
import { channelName } from './wire';

const log = createLogger('silent');

/** The bound the issue sets on a failover: delivery is back this long after the replica's promotion. */
const RESUME_WITHIN_MS = 10_000;

describe.skipIf(!hasRedis)('redis cluster', () => {
  const cluster = useRedisCluster();
  const made: { broker: RedisBroker; pub: RedisClient }[] = [];
  /** Nodes a test killed: started again after it, so the next test has six (the restarted one joins as a replica). */
  const killed: ClusterNodeProcess[] = [];

  afterEach(async () => {
    for (const { broker, pub } of made.splice(0)) {
      await broker.stop();
      await closeRedis(pub);
    }
    for (const node of killed.splice(0)) await node.start();
  });

  async function makeBroker(instanceId: string): Promise<RedisBroker> {
    const target = cluster.server.target;
    const pub = createRedis(target, `test:${instanceId}`, log);
    const broker = new RedisBroker(instanceId, pub, target, log);
    made.push({ broker, pub });
    await new Promise((ready) => pub.once('ready', ready));
    return broker;
  }

  // The slow link is not applied here: cluster nodes announce their own addresses in CLUSTER SLOTS, so a relay in front
  // of the seeds is bypassed once the slot map is read (it would take a NAT map per node). The subscribe case still runs,
  // without it; the mark's place among envelopes of other channels is not promised on a cluster (see sendControl).
  brokerContract('redis cluster', () => (instanceId) => makeBroker(instanceId), { singleOrder: false });

  /**
   * Brokers started with an inbox each and listening, once each lists the others as peers: their subscriber
   * connections are up then (a subscribe while down resolves at once, without delivery).
   */
  async function boot<const Ids extends readonly string[]>(ids: Ids): Promise<{ [K in keyof Ids]: { broker: RedisBroker; box: ReturnType<typeof inbox> } }> {
    const nodes = await Promise.all(ids.map(async (id) => ({ broker: await makeBroker(id), box: inbox() })));
    for (const { broker, box } of nodes) {
      await broker.start(box);
      await broker.listenControl(box);
    }
    for (const { broker } of nodes) {
      const others = ids.filter((id) => id !== broker.instanceId).sort();
      await vi.waitFor(async () => expect((await broker.peers()).sort()).toEqual(others), { timeout: 10_000, interval: 20 });
    }
    return nodes as { [K in keyof Ids]: { broker: RedisBroker; box: ReturnType<typeof inbox> } };
  }

  /** Everything one broker received: payloads of data_updates and control messages, with when each arrived. */
  function inbox(): BrokerHandlers & ControlHandlers & { payloads: { payload: unknown; at: number }[]; controls: { message: string; at: number }[] } {
    const payloads: { payload: unknown; at: number }[] = [];
    const controls: { message: string; at: number }[] = [];
    return {
      payloads,
      controls,
      onRelayed: (_kind, _name, envelope) => void payloads.push({ payload: (JSON.parse(envelope.frame) as { data: { payload: unknown } }).data.payload, at: Date.now() }),
      onControl: (message) => void controls.push({ message, at: Date.now() }),
    };
  }

  const dataUpdate = (group: string, payload: unknown): Relayed => ({
    type: 'data_update',
    frame: serializeEnvelope('data_update', { group, from: { userId: 'alice', connectionId: 'conn-1' }, payload }),
  });

  /** Group names whose channels are owned by three different masters, one per master, with the master. */
  async function groupsOnEveryMaster(): Promise<{ group: string; master: ClusterNodeProcess }[]> {
    const byPort = new Map<number, { group: string; master: ClusterNodeProcess }>();
    for (let i = 0; byPort.size < 3; i++) {
      const group = `shard-${i}`;
      const master = await cluster.server.masterOf(channelName('group', group));
      if (!byPort.has(master.port)) byPort.set(master.port, { group, master });
    }
    return [...byPort.values()];
  }

  const spublishCalls = async (node: ClusterNodeProcess): Promise<number> => {
    const stats = (await cluster.server.nodeClient(node.port).call('INFO', 'commandstats')) as string;
    return Number(/cmdstat_spublish:calls=(\d+)/.exec(stats)?.[1] ?? 0);
  };

  it('shards group channels: each subscription and each message is on the master that owns its slot, none is classic', async () => {
    const [{ broker: a }, { broker: b, box: inB }] = await boot(['a', 'b']);
    const groups = await groupsOnEveryMaster();
    await Promise.all(groups.map(({ group }) => b.subscribe('group', group)));
    const masters = await cluster.server.masters();
    for (const m of masters) await cluster.server.nodeClient(m.port).call('CONFIG', 'RESETSTAT');

    // Each group gets a different number of messages, so each master's count names its group.
    groups.forEach(({ group }, i) => {
      for (let n = 0; n <= i; n++) a.publish('group', group, dataUpdate(group, `${group}#${n}`));
    });
    await vi.waitFor(() => expect(inB.payloads).toHaveLength(1 + 2 + 3), { timeout: 5_000, interval: 10 });

    for (const m of masters) {
      const owned = groups.findIndex(({ master }) => master.port === m.port);
      const node = cluster.server.nodeClient(m.port);
      // SPUBLISH ran only on the owner, once per message; the subscription lives on the owner only.
      expect(await spublishCalls(m)).toBe(owned + 1);
      const counts = (await node.call('PUBSUB', 'SHARDNUMSUB', ...groups.map(({ group }) => channelName('group', group)))) as (string | number)[];
      expect(counts.filter((_, i) => i % 2 === 1).map(Number)).toEqual(groups.map((_, i) => (i === owned ? 1 : 0)));
      // Nothing on classic pub/sub, which a cluster broadcasts to every node.
      expect(await node.call('PUBSUB', 'CHANNELS')).toEqual([]);
    }
  });

  /** Publishes a probe every 50 ms from `a` until `received` holds one; resolves with when the first one arrived. */
  async function pollUntilDelivered(publish: (n: number) => void, received: { at: number }[]): Promise<number> {
    const before = received.length;
    for (let n = 0; received.length === before; n++) {
      publish(n);
      await new Promise((r) => setTimeout(r, 50));
      if (n > 600) throw new Error('delivery never came back');
    }
    return received[before]!.at;
  }

  for (const run of [1, 2, 3]) {
    it(`delivers a group's messages again by itself once the replica of its killed master is promoted (run ${run})`, async () => {
      const [{ broker: a }, { broker: b, box: inB }, { broker: c, box: inC }] = await boot(['a', 'b', 'c']);
      const group = `failover-${run}`;
      await Promise.all([b.subscribe('group', group), c.subscribe('group', group)]);
      a.publish('group', group, dataUpdate(group, 'before'));
      await vi.waitFor(() => expect([inB.payloads.length, inC.payloads.length]).toEqual([1, 1]), { timeout: 5_000, interval: 10 });

      const master = await cluster.server.masterOf(channelName('group', group));
      const killedAt = Date.now();
      killed.push(master);
      await master.kill();
      // While the shard has no master: publishes neither throw nor wait; they are counted as dropped (or delivered late).
      for (let n = 0; n < 5; n++) expect(() => a.publish('group', group, dataUpdate(group, `during ${n}`))).not.toThrow();
      await cluster.server.healthy();
      const promotedAt = Date.now();

      const probe = (n: number) => a.publish('group', group, dataUpdate(group, `after ${n}`));
      const backB = await pollUntilDelivered(probe, inB.payloads);
      const backC = await pollUntilDelivered(probe, inC.payloads);
      const gap = Math.max(backB, backC) - promotedAt;
      console.log(`failover run ${run}: promotion ${promotedAt - killedAt} ms after the kill; delivery back ${gap} ms after promotion (b ${backB - promotedAt} ms, c ${backC - promotedAt} ms); publisher dropped ${a.dropped}`);
      expect(gap).toBeLessThan(RESUME_WITHIN_MS);
      // And it stays back: every message of a burst now arrives, once, in order.
      const [fromB, fromC] = [inB.payloads.length, inC.payloads.length];
      for (let n = 0; n < 20; n++) {
        a.publish('group', group, dataUpdate(group, `steady ${n}`));
        await new Promise((r) => setTimeout(r, 20));
      }
      const steady = Array.from({ length: 20 }, (_, n) => `steady ${n}`);
      const payloads = (box: typeof inB, from: number) => box.payloads.slice(from).map((p) => p.payload).filter((p) => String(p).startsWith('steady'));
      await vi.waitFor(() => expect([payloads(inB, fromB), payloads(inC, fromC)]).toEqual([steady, steady]), { timeout: 5_000, interval: 20 });
    }, 60_000);
  }

  it("follows a channel's slot migrated to another master: delivery comes back by itself, then every message once and in order", async () => {
    const [{ broker: a }, { broker: b, box: inB }] = await boot(['a', 'b']);
    const group = 'migrating';
    const channel = channelName('group', group);
    await b.subscribe('group', group);
    a.publish('group', group, dataUpdate(group, 'before'));
    await vi.waitFor(() => expect(inB.payloads).toHaveLength(1), { timeout: 5_000, interval: 10 });

    // The slot moves as redis-cli --cluster reshard moves one (it holds no keys): IMPORTING, MIGRATING, then the new
    // owner announced to every master, the target first.
    const from = await cluster.server.masterOf(channel);
    const masters = await cluster.server.masters();
    const to = masters.find((m) => m.port !== from.port)!;
    const idOf = async (node: ClusterNodeProcess) => String(await cluster.server.nodeClient(node.port).call('CLUSTER', 'MYID'));
    const [fromId, toId] = [await idOf(from), await idOf(to)];
    const slot = calculateSlot(channel);
    const setslot = (node: ClusterNodeProcess, ...args: string[]) => cluster.server.nodeClient(node.port).call('CLUSTER', 'SETSLOT', String(slot), ...args);
    await setslot(to, 'IMPORTING', fromId);
    await setslot(from, 'MIGRATING', toId);
    for (const node of [to, from, ...masters.filter((m) => m !== to && m !== from)]) await setslot(node, 'NODE', toId);
    const movedAt = Date.now();

    const back = await pollUntilDelivered((n) => a.publish('group', group, dataUpdate(group, `after ${n}`)), inB.payloads);
    console.log(`slot migration: delivery back ${back - movedAt} ms after the slot moved; publisher dropped ${a.dropped}`);
    expect(back - movedAt).toBeLessThan(RESUME_WITHIN_MS);
    const numsub = (node: ClusterNodeProcess) => cluster.server.nodeClient(node.port).call('PUBSUB', 'SHARDNUMSUB', channel) as Promise<(string | number)[]>;
    expect((await numsub(to))[1]).toBe(1);
    expect((await numsub(from))[1]).toBe(0);
    const from0 = inB.payloads.length;
    for (let n = 0; n < 20; n++) a.publish('group', group, dataUpdate(group, `steady ${n}`));
    const steady = Array.from({ length: 20 }, (_, n) => `steady ${n}`);
    await vi.waitFor(() => expect(inB.payloads.slice(from0).map((p) => p.payload).filter((p) => String(p).startsWith('steady'))).toEqual(steady), { timeout: 5_000, interval: 20 });
  }, 60_000);

  it('its subscriber connections cut by every master: each channel is subscribed again on the new connection, delivery comes back by itself, once', async () => {
    const [{ broker: a }, { broker: b, box: inB }] = await boot(['a', 'b']);
    const groups = await groupsOnEveryMaster();
    await Promise.all(groups.map(({ group }) => b.subscribe('group', group)));
    for (const { master } of groups) expect(await cluster.server.nodeClient(master.port).call('CLIENT', 'KILL', 'TYPE', 'pubsub')).toBeGreaterThan(0);
    const cutAt = Date.now();
    for (const { group, master } of groups) {
      const back = await pollUntilDelivered((n) => a.publish('group', group, dataUpdate(group, `${group} after ${n}`)), inB.payloads);
      console.log(`subscriber connections cut: ${group} delivered again ${back - cutAt} ms after the cut`);
      const numsub = (await cluster.server.nodeClient(master.port).call('PUBSUB', 'SHARDNUMSUB', channelName('group', group))) as (string | number)[];
      expect(Number(numsub[1])).toBe(1);
    }
    // Every channel once on its master again: a steady run arrives whole, in order, never twice.
    const from = inB.payloads.length;
    const steady = groups.flatMap(({ group }) => Array.from({ length: 10 }, (_, n) => `${group} steady ${n}`));
    for (const { group } of groups) for (let n = 0; n < 10; n++) a.publish('group', group, dataUpdate(group, `${group} steady ${n}`));
    await vi.waitFor(() => expect(inB.payloads.slice(from).map((p) => String(p.payload)).filter((p) => p.includes('steady')).sort()).toEqual([...steady].sort()), { timeout: 5_000, interval: 20 });
    for (const { group } of groups) {
      const mine = inB.payloads.slice(from).map((p) => String(p.payload)).filter((p) => p.startsWith(`${group} steady`));
      expect(mine).toEqual(steady.filter((p) => p.startsWith(`${group} steady`)));
    }
  }, 60_000);

  it('sends control messages, with their marks, and lists peers again once the {control} master was killed and replaced', async () => {
    const [{ broker: a, box: inA }, { broker: b, box: inB }] = await boot(['a', 'b']);

    const master = await cluster.server.masterOf('rt:{control}:a');
    const killedAt = Date.now();
    killed.push(master);
    await master.kill();
    // The shard is down: an answer now is false (nobody heard it), never a throw.
    await expect(a.sendControl('b', 'during')).resolves.toBeTypeOf('boolean');
    await cluster.server.healthy();
    const promotedAt = Date.now();

    let heard = false;
    const back = await pollUntilDelivered((n) => void a.sendControl('b', `after ${n}`).then((h) => (heard ||= h)), inB.controls);
    console.log(`control failover: promotion ${promotedAt - killedAt} ms after the kill; control messages back ${back - promotedAt} ms after promotion`);
    expect(back - promotedAt).toBeLessThan(RESUME_WITHIN_MS);
    await vi.waitFor(() => expect(heard).toBe(true), { timeout: 5_000, interval: 20 });
    expect(await a.sendControl('b', 'commit', 'mark')).toBe(true);
    await vi.waitFor(() => expect(inA.controls.map((c) => c.message)).toContain('mark'), { timeout: 5_000, interval: 10 });
    await vi.waitFor(() => expect(inB.controls.map((c) => c.message)).toContain('commit'), { timeout: 5_000, interval: 10 });
    expect(await a.peers()).toEqual(['b']);
    expect(await b.peers()).toEqual(['a']);
  }, 60_000);
});
