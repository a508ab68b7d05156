// Session handoffs under faults, over in-process instances whose bus drops, holds or repeats control messages: in
// every case the session ends up on exactly one instance (the directory names it, resumable there) or cleanly expired,
// never on two, never lost while its user shows UP. Each case runs twice: with the cut against one order of every
// message, and channel by channel as on a Redis Cluster (the memory brokers with `singleOrder` false).
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { MemoryCluster } from '../src/cluster';
import { timings } from '../src/config/timings';
import { API_ENV, apiClient } from './helpers/api';
import { startTestGateway, type TestGateway } from './helpers/gateway';
import type { ProbeClient, ServerEnvelope } from './helpers/ProbeClient';

type Op = 'claim' | 'offer' | 'take' | 'commit' | 'mark' | 'state' | 'done' | 'gone' | 'revoke' | 'revoked';
const opOf = (body: string) => (JSON.parse(body) as { op: Op }).op;
const seqOf = (e: ServerEnvelope) => (e as unknown as { seq: number }).seq;

interface Credentials {
  sessionId: string;
  sessionToken: string;
}

/** Whether the instances of the running describe block share one order (set by its beforeAll). */
let singleOrder = true;

async function start(ids: string[], env: Record<string, string> = {}): Promise<{ cluster: MemoryCluster; gws: TestGateway[] }> {
  const cluster = new MemoryCluster(singleOrder);
  // One after the other, so the bus lists them in this order (a stopping instance hands sessions out in peer order).
  const gws: TestGateway[] = [];
  for (const id of ids) gws.push(await startTestGateway({ GW_INSTANCE_ID: id, ...env }, { memoryCluster: cluster }));
  return { cluster, gws };
}

/** alice identifies on `gw` in group g and drops without a close frame: her session is orphaned there. */
async function orphanedAlice(gw: TestGateway): Promise<Credentials> {
  const alice = await gw.connect();
  const ready = (await alice.identify(await gw.token({ sub: 'alice', groups: ['g'] }), ['g'])).data as unknown as Credentials;
  alice.socket.terminate();
  await gw.connections(gw.gateway.connectionCount - 1);
  return ready;
}

async function resume(gw: TestGateway, credentials: Credentials, lastSeq = 0): Promise<{ client: ProbeClient; reply: ServerEnvelope }> {
  const client = await gw.connect();
  const reply = await client.request('identify', { token: await gw.token({ sub: 'alice', groups: ['g'] }), resume: { ...credentials, lastSeq } }, 5_000);
  return { client, reply };
}

/** The instance the cluster's session directory names for alice's session. */
const ownerOf = (cluster: MemoryCluster, sessionId: string) => cluster.presence.users.get('alice')?.get(sessionId) ?? null;

/** Handoffs out of `gw` that ended with `result` (gateway_session_handoffs_total): each one the owner has settled. */
async function handoffsOut(gw: TestGateway, result: 'moved' | 'failed'): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${gw.gateway.internalPort}/metrics`)).text();
  const series = `gateway_session_handoffs_total{direction="out",result="${result}"} `;
  const line = text.split('\n').find((l) => l.startsWith(series));
  return line === undefined ? 0 : Number(line.slice(series.length));
}

describe.each([
  ['one order', true],
  ['cut per channel', false],
])('handoff faults (%s)', (_, order) => {
  beforeAll(() => {
    singleOrder = order;
  });
  it('the state reply dropped: the resume fails cleanly, the owner keeps the session, a retry resumes it', async () => {
    const { cluster, gws } = await start(['owner', 'claimer']);
    const [owner, claimer] = gws as [TestGateway, TestGateway];
    const watcher = await owner.join('watcher', ['g']);
    const credentials = await orphanedAlice(owner);
    cluster.bus.fault = ({ body }) => (opOf(body) === 'state' ? 'drop' : 'deliver');
    const failed = await resume(claimer, credentials);
    expect(failed.reply.data).toMatchObject({ resumed: false });
    // The claimer's `done` (not moved) reaches the owner, which revokes the lease and keeps the session: at once, long
    // before its own timer would have settled the handoff. (Its session count is 2 throughout: no proof of that.)
    await vi.waitFor(async () => expect(await handoffsOut(owner, 'failed')).toBe(1), { timeout: timings.handoffTimeoutMs / 2 });
    expect(owner.gateway.sessionCount).toBe(2);
    expect(claimer.gateway.sessionCount).toBe(1); // the fresh session, not a second copy
    expect(ownerOf(cluster, credentials.sessionId)).toBe('owner');
    cluster.bus.fault = null;
    await watcher.request('data_update', { group: 'g', payload: 'missed' });
    const retried = await resume(claimer, credentials);
    expect(retried.reply.data).toMatchObject({ resumed: true, sessionId: credentials.sessionId });
    expect((await retried.client.next('data_update')).data!.payload).toBe('missed');
    expect(ownerOf(cluster, credentials.sessionId)).toBe('claimer');
    expect([owner.gateway.sessionCount, claimer.gateway.sessionCount]).toEqual([1, 2]);
  });

  it('the state reply delayed past the timeout: the late state changes nothing', async () => {
    const { cluster, gws } = await start(['owner', 'claimer']);
    const [owner, claimer] = gws as [TestGateway, TestGateway];
    const credentials = await orphanedAlice(owner);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    cluster.bus.fault = ({ body }) => (opOf(body) === 'state' ? held : 'deliver');
    const started = Date.now();
    const failed = await resume(claimer, credentials);
    expect(failed.reply.data).toMatchObject({ resumed: false });
    expect(Date.now() - started).toBeGreaterThanOrEqual(timings.handoffTimeoutMs);
    // The owner settled the handoff, keeping the session, before the late state goes on.
    await vi.waitFor(async () => expect(await handoffsOut(owner, 'failed')).toBe(1));
    expect(owner.gateway.sessionCount).toBe(1);
    release();
    await held;
    // The late state has been handed to the claimer (delivery follows the promise at once); a request/reply barrier on
    // the claimer's loop comes after it.
    await failed.client.barrier();
    expect(claimer.gateway.sessionCount).toBe(1);
    expect(ownerOf(cluster, credentials.sessionId)).toBe('owner');
    cluster.bus.fault = null;
    expect((await resume(owner, credentials)).reply.data).toMatchObject({ resumed: true });
  });

  it('the claimer dies after committing: the owner hears nothing, revokes the lease, and keeps the session resumable', async () => {
    const { cluster, gws } = await start(['owner', 'claimer']);
    const [owner, claimer] = gws as [TestGateway, TestGateway];
    const credentials = await orphanedAlice(owner);
    let dead = false;
    // Nothing reaches the claimer after its commit, and nothing leaves it: as if its process had died there.
    cluster.bus.fault = ({ from, to, body }) => {
      if (dead && (from === 'claimer' || to === 'claimer')) return 'drop';
      if (from === 'claimer' && opOf(body) === 'commit') dead = true;
      return 'deliver';
    };
    expect((await resume(claimer, credentials)).reply.data).toMatchObject({ resumed: false });
    // The owner's own check (after twice the step timeout) finds the directory entry still its own, and keeps it. (The
    // entry names the owner throughout: only the settled handoff shows that the check ran.)
    await vi.waitFor(async () => expect(await handoffsOut(owner, 'failed')).toBe(1), { timeout: 4 * timings.handoffTimeoutMs });
    expect(await handoffsOut(owner, 'moved')).toBe(0);
    expect(ownerOf(cluster, credentials.sessionId)).toBe('owner');
    cluster.bus.fault = null;
    const back = await resume(owner, credentials);
    expect(back.reply.data).toMatchObject({ resumed: true, sessionId: credentials.sessionId });
    expect(claimer.gateway.sessionCount).toBe(1);
  });

  it('the owner dies mid-handoff: the resume fails, and the session expires cleanly with its owner, never held twice', async () => {
    const { cluster, gws } = await start(['owner', 'claimer'], { GW_ORPHAN_SESSION_TTL_MS: '1500' });
    const [owner, claimer] = gws as [TestGateway, TestGateway];
    const credentials = await orphanedAlice(owner);
    // The owner offers, then dies as the commit reaches it: the commit is lost and nothing leaves it any more.
    let dead = false;
    cluster.bus.fault = ({ from, to, body }) => {
      if (to === 'owner' && opOf(body) === 'commit') dead = true;
      return dead && (from === 'owner' || to === 'owner') ? 'drop' : 'deliver';
    };
    expect((await resume(claimer, credentials)).reply.data).toMatchObject({ resumed: false });
    expect(ownerOf(cluster, credentials.sessionId)).toBe('owner');
    await vi.waitFor(() => expect(ownerOf(cluster, credentials.sessionId)).toBeNull(), { timeout: 5_000 });
    expect(owner.gateway.sessionCount).toBe(0);
    cluster.bus.fault = null;
    expect((await resume(claimer, credentials)).reply.data).toMatchObject({ resumed: false });
  });

  it('a commit delivered twice gets the same answer twice; the session moves once, every message once', async () => {
    const { cluster, gws } = await start(['owner', 'claimer']);
    const [owner, claimer] = gws as [TestGateway, TestGateway];
    const watcher = await claimer.join('watcher', ['g']);
    const credentials = await orphanedAlice(owner);
    for (const n of [1, 2]) await watcher.request('data_update', { group: 'g', payload: n });
    cluster.bus.fault = ({ body }) => (opOf(body) === 'commit' ? 'twice' : 'deliver');
    const moved = await resume(claimer, credentials);
    expect(moved.reply.data).toMatchObject({ resumed: true });
    await watcher.request('data_update', { group: 'g', payload: 3 });
    const got = (await moved.client.before((e) => e.type === 'data_update' && e.data!.payload === 3)).filter((e) => e.type === 'data_update');
    expect(got.map((e) => [e.data!.payload, seqOf(e)])).toEqual([
      [1, 1],
      [2, 2],
    ]);
    expect([owner.gateway.sessionCount, claimer.gateway.sessionCount]).toEqual([0, 2]);
  });

  it('two instances resume the same session at once: it ends up on exactly one', async () => {
    const { cluster, gws } = await start(['owner', 'left', 'right']);
    const [owner, left, right] = gws as [TestGateway, TestGateway, TestGateway];
    const credentials = await orphanedAlice(owner);
    const [l, r] = await Promise.all([resume(left, credentials), resume(right, credentials)]);
    const resumed = [l, r].filter((x) => x.reply.data!.resumed === true);
    expect(resumed.length).toBeGreaterThanOrEqual(1);
    const holder = ownerOf(cluster, credentials.sessionId);
    expect(['left', 'right']).toContain(holder);
    // Whichever resumed last holds it; the other connection (if it resumed first) was taken over with 4011.
    const counts = { owner: owner.gateway.sessionCount, left: left.gateway.sessionCount, right: right.gateway.sessionCount };
    expect(counts.owner).toBe(0);
    expect(counts.left + counts.right).toBe(1 + [l, r].filter((x) => x.reply.data!.resumed === false).length);
  });

  it('a resume that arrives while the owner is pushing the session to a survivor follows it there', async () => {
    const { cluster, gws } = await start(['stopping', 'survivor', 'elsewhere']);
    const [stopping, survivor, elsewhere] = gws as [TestGateway, TestGateway, TestGateway];
    const credentials = await orphanedAlice(stopping);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let sawState: () => void;
    const stateSent = new Promise<void>((resolve) => (sawState = resolve));
    let claimed!: () => void;
    const claimReached = new Promise<void>((resolve) => (claimed = resolve));
    cluster.bus.fault = ({ from, to, body }) => {
      if (to === 'survivor' && opOf(body) === 'state') {
        sawState();
        return held;
      }
      if (from === 'elsewhere' && to === 'stopping' && opOf(body) === 'claim') claimed();
      return 'deliver';
    };
    const stopped = stopping.gateway.stop();
    await stateSent;
    const resuming = resume(elsewhere, credentials);
    // The claim reaches the stopping owner while the push is still in flight; only then does the push complete, so
    // the owner answers `gone` and the claimer must follow the session to the survivor.
    await claimReached;
    release();
    await stopped;
    expect((await resuming).reply.data).toMatchObject({ resumed: true, sessionId: credentials.sessionId });
    expect(ownerOf(cluster, credentials.sessionId)).toBe('elsewhere');
    expect(survivor.gateway.sessionCount).toBe(0);
  });

  // Regressions from a review of the handoff, one per interleaving it found.

  it('a resume that reaches the survivor itself while the session is being pushed there resumes it', async () => {
    const { cluster, gws } = await start(['stopping', 'survivor']);
    const [stopping, survivor] = gws as [TestGateway, TestGateway];
    const credentials = await orphanedAlice(stopping);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let claimed!: () => void;
    const claimReached = new Promise<void>((resolve) => (claimed = resolve));
    cluster.bus.fault = ({ to, body }) => {
      if (to === 'survivor' && opOf(body) === 'state') return held;
      if (to === 'stopping' && opOf(body) === 'claim') claimed();
      return 'deliver';
    };
    const stopped = stopping.gateway.stop();
    const resuming = resume(survivor, credentials);
    // The survivor's claim waits on the stopping instance for the push to settle; the push then completes.
    await claimReached;
    release();
    await stopped;
    expect((await resuming).reply.data).toMatchObject({ resumed: true, sessionId: credentials.sessionId });
    expect(survivor.gateway.sessionCount).toBe(1);
  });

  it('groups changed between offer and commit: the resume fails, the owner keeps the session whole, a retry moves all of it', async () => {
    const { cluster, gws } = await start(['owner', 'claimer']);
    const [owner, claimer] = gws as [TestGateway, TestGateway];
    const alice = await owner.connect();
    const ready = (await alice.identify(await owner.token({ sub: 'alice', groups: ['g', 'h'] }), ['g'])).data as unknown as Credentials;
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let committing!: () => void;
    const commitSeen = new Promise<void>((resolve) => (committing = resolve));
    cluster.bus.fault = ({ to, body }) => {
      if (to !== 'owner' || opOf(body) !== 'commit') return 'deliver';
      committing();
      return held;
    };
    const moving = claimer.connect();
    const client = await moving;
    const reply = client.request('identify', { token: await claimer.token({ sub: 'alice', groups: ['g', 'h'] }), resume: { ...ready, lastSeq: 0 } }, 5_000);
    await commitSeen;
    // The old connection, still attached on the owner, joins h before the owner reads the commit.
    await alice.request('subscribe', { group: 'h' });
    release();
    expect((await reply).data).toMatchObject({ resumed: false });
    cluster.bus.fault = null;
    const again = await claimer.connect();
    const retried = await again.request('identify', { token: await claimer.token({ sub: 'alice', groups: ['g', 'h'] }), resume: { ...ready, lastSeq: 0 } });
    const groups = (retried.data!.groups as { group: string }[]).map((g) => g.group).sort();
    expect([retried.data!.resumed, groups]).toEqual([true, ['g', 'h']]);
    const watcher = await owner.join('watcher', ['h']);
    const members = (await watcher.request('subscribe', { group: 'h' })).data!.members as { userId: string }[];
    expect(members.map((m) => m.userId).sort()).toEqual(['alice', 'watcher']);
    expect(ownerOf(cluster, ready.sessionId)).toBe('claimer');
  });

  it('the owner’s orphan TTL runs out while the session is moving: the move wins, the session is not ended under it', async () => {
    const { cluster, gws } = await start(['owner', 'claimer'], { GW_ORPHAN_SESSION_TTL_MS: '1000' });
    const [owner, claimer] = gws as [TestGateway, TestGateway];
    const credentials = await orphanedAlice(owner);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    cluster.bus.fault = ({ to, body }) => (to === 'owner' && opOf(body) === 'done' ? held : 'deliver');
    const moved = await resume(claimer, credentials);
    expect(moved.reply.data).toMatchObject({ resumed: true });
    // The owner's copy passes its TTL while `done` is held: expiry must leave it to the handoff.
    await vi.waitFor(() => expect(Date.now()).toBeGreaterThan(Number(moved.reply.ts) + 1_500), { timeout: 3_000, interval: 50 });
    release();
    await vi.waitFor(() => expect(owner.gateway.sessionCount).toBe(0));
    expect(ownerOf(cluster, credentials.sessionId)).toBe('claimer');
    expect(claimer.gateway.sessionCount).toBe(1);
  });

  it('a pull that completes on an instance that began shutting down is handed on, not left behind', async () => {
    const { cluster, gws } = await start(['owner', 'claimer', 'other']);
    const [owner, claimer, other] = gws as [TestGateway, TestGateway, TestGateway];
    const credentials = await orphanedAlice(owner);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let stateSent!: () => void;
    const stateSeen = new Promise<void>((resolve) => (stateSent = resolve));
    cluster.bus.fault = ({ to, body }) => {
      if (to === 'claimer' && opOf(body) === 'state') {
        stateSent();
        return held;
      }
      return 'deliver';
    };
    const client = await claimer.connect();
    void client.request('identify', { token: await claimer.token({ sub: 'alice', groups: ['g'] }), resume: { ...credentials, lastSeq: 0 } }, 5_000).catch(() => undefined);
    await stateSeen;
    const stopped = claimer.gateway.stop();
    release();
    await stopped;
    cluster.bus.fault = null;
    expect(['owner', 'other']).toContain(ownerOf(cluster, credentials.sessionId));
    expect((await resume(other, credentials)).reply.data).toMatchObject({ resumed: true, sessionId: credentials.sessionId });
    expect(owner.gateway.sessionCount + other.gateway.sessionCount).toBe(1);
  });
});

describe('a backend ending a session that is being handed over', () => {
  beforeAll(() => {
    singleOrder = true;
  });
  it('the owner lets the handoff settle, the call follows the session to the instance it moved to and ends it there', async () => {
    const { cluster, gws } = await start(['owner', 'claimer'], API_ENV);
    const [owner, claimer] = gws as [TestGateway, TestGateway];
    const watcher = await owner.join('watcher', ['g']);
    const credentials = await orphanedAlice(owner);
    const aliceIn = (e: ServerEnvelope) => e.type === 'presence_update' && e.data?.userId === 'alice';
    expect((await watcher.next(aliceIn)).data).toMatchObject({ status: 'UP' });
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let sawState!: () => void;
    const stateSent = new Promise<void>((resolve) => (sawState = resolve));
    cluster.bus.fault = ({ to, body }) => {
      if (to === 'claimer' && opOf(body) === 'state') {
        sawState();
        return held;
      }
      // The revoke reaches the owner while its handoff is committed but not done: only then does the move go on.
      if (to === 'owner' && opOf(body) === 'revoke') release();
      return 'deliver';
    };
    const resuming = resume(claimer, credentials);
    await stateSent;
    expect(await apiClient(claimer).ok('disconnect', { user: 'alice' })).toEqual({ sessions: 1 });
    const { client, reply } = await resuming;
    // Ended on the claimer, where it arrived: a resume that got there first is closed with 4005, a later one starts afresh.
    if (reply.data!.sessionId === credentials.sessionId) expect(await client.closed).toMatchObject({ code: 4005 });
    else expect(reply.data).toMatchObject({ resumed: false });
    expect(ownerOf(cluster, credentials.sessionId)).toBeNull();
    expect(owner.gateway.sessionCount).toBe(1);
    expect((await watcher.next(aliceIn)).data).toMatchObject({ status: 'DOWN' });
  });
});
