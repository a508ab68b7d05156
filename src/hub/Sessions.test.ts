// Sessions over real in-process parts (MemoryBroker on a MemoryBus, MemoryPresenceStore, Membership, SessionTokens)
// and fake connections: what a connection's close does to its session, orphan expiry, resumable(), attach(), and
// handing sessions to another instance at shutdown or on a pull.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SessionTokens } from '../auth/sessionToken';
import { MemoryBroker, MemoryBus } from '../broker/MemoryBroker';
import { Metrics } from '../metrics';
import { MemoryPresenceState, MemoryPresenceStore } from '../presence/MemoryPresenceStore';
import type { GroupName, UserId } from '../types/domain';
import { serializeEnvelope } from '../types/envelope';
import { createLogger } from '../utils/logger';
import type { ConnectionContext } from './ConnectionContext';
import { Control } from './Control';
import { Membership } from './Membership';
import type { Session } from './Session';
import { Sessions } from './Sessions';

const SECRET = new TextEncoder().encode('sessions-test-secret-of-at-least-32-bytes');
const GROUP = 'room-1';

/** The fields Sessions reads and writes on a connection (and Session's writes to it), recorded. */
interface FakeConnection {
  name: string;
  session: Session | null;
  serverClosed: boolean;
  closes: { code: number; reason: string }[];
  /** The seqs of the sequenced envelopes written to it. */
  seqs: number[];
  close(code: number, reason: string): void;
  sendSequenced(body: Buffer, seq: number): void;
  sendFrame(frame: Buffer): void;
}

function fakeConnection(name: string): FakeConnection {
  const conn: FakeConnection = {
    name,
    session: null,
    serverClosed: false,
    closes: [],
    seqs: [],
    close(code, reason) {
      // As ConnectionContext.close: whatever the client answers, the gateway started this close.
      conn.serverClosed = true;
      conn.closes.push({ code, reason });
    },
    sendSequenced(_body, seq) {
      conn.seqs.push(seq);
    },
    sendFrame() {},
  };
  return conn;
}

const asCtx = (conn: FakeConnection) => conn as unknown as ConnectionContext;

interface Instance {
  id: string;
  broker: MemoryBroker;
  presence: MemoryPresenceStore;
  membership: Membership;
  metrics: Metrics;
  tokens: SessionTokens;
  sessions: Sessions;
  logs: Record<string, unknown>[];
}

interface Options {
  bus?: MemoryBus;
  state?: MemoryPresenceState;
  orphanSessionTtlMs?: number;
  resumeBufferMessages?: number;
}

const started: Instance[] = [];

async function instance(id: string, options: Options = {}): Promise<Instance> {
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger('info', { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const metrics = new Metrics({ connections: () => 0, sessions: () => 0, groups: () => 0, redis: () => undefined, dropped: () => 0, invalid: () => 0 });
  const broker = new MemoryBroker(id, options.bus ?? new MemoryBus());
  const presence = new MemoryPresenceStore(id, () => {}, options.state ?? new MemoryPresenceState());
  const membership = new Membership(broker, presence, logger, metrics, { presenceBatchMs: 0, presenceLargeGroup: 1_000, presenceCountIntervalMs: 1_000 });
  const tokens = new SessionTokens(SECRET, 60_000);
  const sessions = new Sessions({
    config: { instanceId: id, orphanSessionTtlMs: options.orphanSessionTtlMs ?? 60_000, resumeBufferMessages: options.resumeBufferMessages ?? 100, resumeBufferBytes: 1_000_000 },
    logger,
    membership,
    presence,
    broker,
    tokens,
    metrics,
  });
  await broker.start(membership);
  await broker.listenControl(new Control([sessions.control], logger));
  await presence.start();
  const made: Instance = { id, broker, presence, membership, metrics, tokens, sessions, logs };
  started.push(made);
  return made;
}

/** Two instances acting as one gateway: one bus, one presence state. */
async function pair(options: Omit<Options, 'bus' | 'state'> = {}): Promise<[Instance, Instance]> {
  const bus = new MemoryBus();
  const state = new MemoryPresenceState();
  return [await instance('gw-a', { ...options, bus, state }), await instance('gw-b', { ...options, bus, state })];
}

/** What Commands does for a new session: admit, hold, join, attach. `attach: false` stops before the attach. */
async function identify(i: Instance, conn: FakeConnection, userId: UserId, groups: GroupName[] = [GROUP], attach = true): Promise<Session> {
  const session = i.sessions.create(userId, 'client', ['*'], { device: conn.name });
  expect(await i.membership.admit(session, 10)).toBe(true);
  i.sessions.add(session, asCtx(conn));
  for (const group of groups) await i.membership.join(session, group);
  if (attach) i.sessions.attach(session, asCtx(conn));
  return session;
}

/** A data_update fanned out to the group, as a client's would be. */
function publish(i: Instance, n: number, group = GROUP): void {
  i.membership.publish('group', group, { type: 'data_update', frame: serializeEnvelope('data_update', { group, from: { userId: 'backend', connectionId: null }, payload: { n } }) }, null);
}

/** The payloads `n` buffered in the session after `lastSeq`, with their seqs. */
const buffered = (session: Session, lastSeq = 0) =>
  session.replayAfter(lastSeq).map(({ seq, body }) => [seq, (JSON.parse(`${body.toString()}}`) as { data: { payload: { n: number } } }).data.payload.n]);

const memberIds = async (i: Instance, group = GROUP) => (await i.presence.members(group, undefined, 1_000)).members.map((m) => m.userId);

/** gateway_session_handoffs_total, as "direction result" → count. */
async function handoffCounts(i: Instance): Promise<Record<string, number>> {
  const metric = await i.metrics.registry.getSingleMetric('gateway_session_handoffs_total')!.get();
  return Object.fromEntries(metric.values.map((v) => [`${v.labels.direction} ${v.labels.result}`, v.value]));
}

afterEach(async () => {
  for (const i of started.splice(0)) {
    i.sessions.stop();
    await i.membership.idle();
    await i.broker.stop();
  }
});

describe('Sessions.connectionClosed', () => {
  it.each([1000, 1001, 1005, 3000, 4999])('a close the client started with %i ends the session: the user is gone', async (code) => {
    const i = await instance('gw');
    const conn = fakeConnection('laptop');
    const session = await identify(i, conn, 'alice');
    expect(await memberIds(i)).toEqual(['alice']);

    i.sessions.connectionClosed(asCtx(conn), code);
    await i.membership.idle();
    expect(i.sessions.size).toBe(0);
    expect(await memberIds(i)).toEqual([]);
    expect(await i.presence.owner('alice', session.id)).toBeNull();
    expect(i.sessions.candidate(session.id, 'alice')).toBeNull();
  });

  it.each([1006, 4100])('a close with %i orphans the session: the user stays', async (code) => {
    const i = await instance('gw');
    const conn = fakeConnection('laptop');
    const session = await identify(i, conn, 'alice');

    const before = Date.now();
    i.sessions.connectionClosed(asCtx(conn), code);
    await i.membership.idle();
    expect(i.sessions.size).toBe(1);
    expect(session.conn).toBeNull();
    expect(session.orphanedAt).toBeGreaterThanOrEqual(before);
    expect(await memberIds(i)).toEqual(['alice']);
    expect(await i.presence.owner('alice', session.id)).toBe('gw');
    expect(i.sessions.candidate(session.id, 'alice')).toBe(session);
  });

  it.each([1000, 1001, 1005, 4003, 4009, 4999])('after the gateway started the close, %i orphans the session', async (code) => {
    const i = await instance('gw');
    const conn = fakeConnection('laptop');
    const session = await identify(i, conn, 'alice');
    conn.close(4009, 'heartbeat timeout');

    i.sessions.connectionClosed(asCtx(conn), code);
    await i.membership.idle();
    expect(i.sessions.size).toBe(1);
    expect(session.conn).toBeNull();
    expect(session.orphanedAt).not.toBeNull();
    expect(await memberIds(i)).toEqual(['alice']);
  });

  it('the close of a connection whose session was taken over leaves the session with the new connection', async () => {
    const i = await instance('gw');
    const old = fakeConnection('old');
    const session = await identify(i, old, 'alice');
    const fresh = fakeConnection('fresh');
    i.sessions.attach(session, asCtx(fresh));

    i.sessions.connectionClosed(asCtx(old), 1000);
    await i.membership.idle();
    expect(i.sessions.size).toBe(1);
    expect(session.conn).toBe(fresh);
    expect(session.orphanedAt).toBeNull();
    expect(await memberIds(i)).toEqual(['alice']);
  });

  it('the close of a connection that still points at a session now attached elsewhere changes nothing', async () => {
    const i = await instance('gw');
    const old = fakeConnection('old');
    const session = await identify(i, old, 'alice');
    const fresh = fakeConnection('fresh');
    i.sessions.attach(session, asCtx(fresh));
    // The guard itself, even if the takeover had not cleared `old.session`.
    old.session = session;

    i.sessions.connectionClosed(asCtx(old), 1000);
    await i.membership.idle();
    expect(i.sessions.size).toBe(1);
    expect(session.conn).toBe(fresh);
    expect(await memberIds(i)).toEqual(['alice']);
  });

  it('a connection without a session (never identified, or resuming and not attached yet) changes nothing', async () => {
    const i = await instance('gw');
    const conn = fakeConnection('laptop');
    const session = await identify(i, conn, 'alice');
    i.sessions.connectionClosed(asCtx(conn), 1006);
    // A new connection resuming the orphan: ctx.session is set only at attach.
    const resuming = fakeConnection('resuming');
    i.sessions.connectionClosed(asCtx(resuming), 1000);
    i.sessions.connectionClosed(asCtx(fakeConnection('anonymous')), 1000);
    await i.membership.idle();
    expect(i.sessions.size).toBe(1);
    expect(session.orphanedAt).not.toBeNull();
    expect(await memberIds(i)).toEqual(['alice']);
  });

  it('a client close while the new session is not attached yet (identify in flight) ends it, so it cannot linger', async () => {
    const i = await instance('gw', { orphanSessionTtlMs: 60_000 });
    const conn = fakeConnection('laptop');
    const session = await identify(i, conn, 'alice', [GROUP], false);
    expect(conn.session).toBe(session);
    expect(session.conn).toBeNull();

    i.sessions.connectionClosed(asCtx(conn), 1000);
    await i.membership.idle();
    expect(i.sessions.size).toBe(0);
    expect(await memberIds(i)).toEqual([]);
    expect(await i.presence.owner('alice', session.id)).toBeNull();
  });

  it('a lost connection while the new session is not attached yet orphans it, so it expires', async () => {
    const i = await instance('gw', { orphanSessionTtlMs: 40 });
    const conn = fakeConnection('laptop');
    const session = await identify(i, conn, 'alice', [GROUP], false);
    i.sessions.connectionClosed(asCtx(conn), 1006);
    expect(session.orphanedAt).not.toBeNull();
    i.sessions.start();
    await vi.waitFor(() => expect(i.sessions.size).toBe(0));
    await i.membership.idle();
    expect(await memberIds(i)).toEqual([]);
  });
});

describe('Sessions orphan expiry', () => {
  it('an orphan expires after orphanSessionTtlMs once started; an attached session does not', async () => {
    const i = await instance('gw', { orphanSessionTtlMs: 60 });
    const lost = fakeConnection('lost');
    const kept = fakeConnection('kept');
    const orphan = await identify(i, lost, 'alice');
    const attached = await identify(i, kept, 'bob');
    i.sessions.connectionClosed(asCtx(lost), 1006);
    const orphanedAt = orphan.orphanedAt!;
    i.sessions.start();

    await vi.waitFor(() => expect(i.sessions.size).toBe(1), { timeout: 2_000 });
    expect(Date.now() - orphanedAt).toBeGreaterThanOrEqual(60);
    await i.membership.idle();
    expect(i.sessions.candidate(orphan.id, 'alice')).toBeNull();
    expect(i.sessions.candidate(attached.id, 'bob')).toBe(attached);
    expect(await memberIds(i)).toEqual(['bob']);
    expect(await i.presence.owner('alice', orphan.id)).toBeNull();
  });

  it('an orphan resumed before the TTL is no longer expired', async () => {
    const i = await instance('gw', { orphanSessionTtlMs: 60 });
    const aliceConn = fakeConnection('alice-1');
    const bobConn = fakeConnection('bob');
    const alice = await identify(i, aliceConn, 'alice');
    const bob = await identify(i, bobConn, 'bob');
    i.sessions.connectionClosed(asCtx(aliceConn), 1006);
    const back = fakeConnection('alice-2');
    i.sessions.attach(alice, asCtx(back));
    // Orphaned after alice was: once bob expires, alice would have too, had she stayed an orphan.
    i.sessions.connectionClosed(asCtx(bobConn), 1006);
    i.sessions.start();
    await vi.waitFor(() => expect(i.sessions.candidate(bob.id, 'bob')).toBeNull(), { timeout: 2_000 });
    expect(i.sessions.candidate(alice.id, 'alice')).toBe(alice);
    expect(alice.conn).toBe(back);
    await i.membership.idle();
    expect(await memberIds(i)).toEqual(['alice']);
  });

  it('only a started Sessions expires orphans, and stop() ends the sweep', async () => {
    vi.useFakeTimers();
    try {
      const i = await instance('gw', { orphanSessionTtlMs: 100 });
      const lost = fakeConnection('lost');
      await identify(i, lost, 'alice');
      i.sessions.connectionClosed(asCtx(lost), 1006);
      await vi.advanceTimersByTimeAsync(1_000);
      expect(i.sessions.size).toBe(1);
      i.sessions.start();
      i.sessions.stop();
      await vi.advanceTimersByTimeAsync(1_000);
      expect(i.sessions.size).toBe(1);
      i.sessions.start();
      await vi.advanceTimersByTimeAsync(20);
      expect(i.sessions.size).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('Sessions.resumable', () => {
  it('a forged token, a token for another session, or one signed with another secret: nothing', async () => {
    const i = await instance('gw');
    const conn = fakeConnection('laptop');
    const session = await identify(i, conn, 'alice');
    i.sessions.connectionClosed(asCtx(conn), 1006);
    const other = await identify(i, fakeConnection('other'), 'alice');
    const genuine = i.tokens.issue(session.id);
    const forgeries = [
      `${session.id}.${Date.now() + 60_000}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA`,
      genuine.slice(0, -2) + (genuine.endsWith('AA') ? 'BB' : 'AA'),
      i.tokens.issue(other.id),
      new SessionTokens(new TextEncoder().encode('another-secret-of-at-least-32-bytes!!'), 60_000).issue(session.id),
      i.tokens.issue(session.id, Date.now() - 120_000),
      'not-a-token',
    ];
    for (const sessionToken of forgeries) {
      expect(await i.sessions.resumable({ sessionId: session.id, sessionToken, lastSeq: 0 }, 'alice'), sessionToken).toEqual({ session: null, stale: null });
    }
    // The genuine one, for contrast.
    expect((await i.sessions.resumable({ sessionId: session.id, sessionToken: genuine, lastSeq: 0 }, 'alice')).session).toBe(session);
  });

  it('a genuine token for a local session that covers lastSeq: that session, orphaned or attached', async () => {
    const i = await instance('gw');
    const conn = fakeConnection('laptop');
    const session = await identify(i, conn, 'alice');
    for (let n = 1; n <= 3; n++) publish(i, n);
    const sessionToken = i.tokens.issue(session.id);
    for (const lastSeq of [0, 2, 3]) {
      expect(await i.sessions.resumable({ sessionId: session.id, sessionToken, lastSeq }, 'alice')).toEqual({ session, stale: null });
    }
    i.sessions.connectionClosed(asCtx(conn), 1006);
    expect(await i.sessions.resumable({ sessionId: session.id, sessionToken, lastSeq: 1 }, 'alice')).toEqual({ session, stale: null });
    expect(buffered(session, 1)).toEqual([
      [2, 2],
      [3, 3],
    ]);
  });

  it('a genuine token presented by another user: nothing', async () => {
    const i = await instance('gw');
    const conn = fakeConnection('laptop');
    const session = await identify(i, conn, 'alice');
    i.sessions.connectionClosed(asCtx(conn), 1006);
    expect(await i.sessions.resumable({ sessionId: session.id, sessionToken: i.tokens.issue(session.id), lastSeq: 0 }, 'mallory')).toEqual({ session: null, stale: null });
  });

  it('a lastSeq the buffer no longer covers: the orphan comes back as stale; an attached session does not', async () => {
    const i = await instance('gw', { resumeBufferMessages: 3 });
    const conn = fakeConnection('laptop');
    const session = await identify(i, conn, 'alice');
    for (let n = 1; n <= 5; n++) publish(i, n);
    expect(buffered(session)).toEqual([
      [3, 3],
      [4, 4],
      [5, 5],
    ]);
    const sessionToken = i.tokens.issue(session.id);
    // Attached: not resumable, and not stale either (its connection is still there).
    expect(await i.sessions.resumable({ sessionId: session.id, sessionToken, lastSeq: 1 }, 'alice')).toEqual({ session: null, stale: null });

    i.sessions.connectionClosed(asCtx(conn), 1006);
    expect(await i.sessions.resumable({ sessionId: session.id, sessionToken, lastSeq: 1 }, 'alice')).toEqual({ session: null, stale: session });
    // Ahead of the session, too.
    expect(await i.sessions.resumable({ sessionId: session.id, sessionToken, lastSeq: 6 }, 'alice')).toEqual({ session: null, stale: session });
    // Still covered from 2 on.
    expect(await i.sessions.resumable({ sessionId: session.id, sessionToken, lastSeq: 2 }, 'alice')).toEqual({ session, stale: null });
  });
});

describe('Sessions.attach', () => {
  it('takes a session over from another connection, which gets 4011 and loses the session', async () => {
    const i = await instance('gw');
    const old = fakeConnection('old');
    const session = await identify(i, old, 'alice');
    const fresh = fakeConnection('fresh');

    expect(i.sessions.attach(session, asCtx(fresh))).toBe(true);
    expect(old.closes).toEqual([{ code: 4011, reason: 'session resumed elsewhere' }]);
    expect(old.session).toBeNull();
    expect(fresh.session).toBe(session);
    expect(session.conn).toBe(fresh);
    expect(fresh.closes).toEqual([]);
    publish(i, 1);
    expect(fresh.seqs).toEqual([1]);
    expect(old.seqs).toEqual([]);
    expect(i.sessions.size).toBe(1);
  });

  it('attaching an orphan, or again to the same connection, takes nothing over', async () => {
    const i = await instance('gw');
    const conn = fakeConnection('laptop');
    const session = await identify(i, conn, 'alice');
    expect(i.sessions.attach(session, asCtx(conn))).toBe(false);
    expect(conn.closes).toEqual([]);

    i.sessions.connectionClosed(asCtx(conn), 1006);
    const back = fakeConnection('back');
    expect(i.sessions.attach(session, asCtx(back))).toBe(false);
    expect(conn.closes).toEqual([]);
    expect(session.conn).toBe(back);
    expect(session.orphanedAt).toBeNull();
  });
});

describe('Sessions.handOverAll', () => {
  it('with no other instance alive: logs it and keeps every session', async () => {
    const i = await instance('gw');
    const a = await identify(i, fakeConnection('a'), 'alice');
    const lost = fakeConnection('lost');
    const b = await identify(i, lost, 'bob');
    i.sessions.connectionClosed(asCtx(lost), 1006);

    await i.sessions.handOverAll();
    expect(i.sessions.accepting).toBe(false);
    expect(i.sessions.size).toBe(2);
    expect(i.sessions.candidate(a.id, 'alice')).toBe(a);
    expect(i.sessions.candidate(b.id, 'bob')).toBe(b);
    expect(await i.presence.owner('alice', a.id)).toBe('gw');
    expect(i.logs).toContainEqual(expect.objectContaining({ msg: 'no other instance is alive: sessions are not handed over', sessions: 2 }));
  });

  it('moves every session to the other instance: sizes, directory owners, buffers, presence unchanged', async () => {
    const [a, b] = await pair();
    const attachedConn = fakeConnection('attached');
    const attached = await identify(a, attachedConn, 'alice');
    const lost = fakeConnection('lost');
    const orphan = await identify(a, lost, 'bob', [GROUP, 'room-2']);
    for (let n = 1; n <= 3; n++) publish(a, n);
    a.sessions.connectionClosed(asCtx(lost), 1006);
    publish(a, 4);
    expect([a.sessions.size, b.sessions.size]).toEqual([2, 0]);

    await a.sessions.handOverAll();

    expect([a.sessions.size, b.sessions.size]).toEqual([0, 2]);
    expect(await a.presence.owner('alice', attached.id)).toBe('gw-b');
    expect(await a.presence.owner('bob', orphan.id)).toBe('gw-b');
    expect(a.logs).toContainEqual(expect.objectContaining({ msg: 'sessions handed over to surviving instances', handedOver: 2, kept: 0, instances: 1 }));
    expect(await handoffCounts(a)).toMatchObject({ 'out moved': 2 });
    expect(await handoffCounts(b)).toMatchObject({ 'in moved': 2 });

    // The attached connection is left for the shutdown's own close (1001), not closed 4011, and gets nothing more.
    expect(attachedConn.closes).toEqual([]);
    expect(attachedConn.session).toBeNull();
    expect(attachedConn.seqs).toEqual([1, 2, 3, 4]);

    // On b: the same ids, orphaned, with their numbering and buffers, in their groups.
    const movedAttached = b.sessions.candidate(attached.id, 'alice')!;
    const movedOrphan = b.sessions.candidate(orphan.id, 'bob')!;
    expect(movedAttached).not.toBeNull();
    expect(movedOrphan).not.toBeNull();
    expect(movedAttached).not.toBe(attached);
    expect(movedAttached.conn).toBeNull();
    expect(movedAttached.orphanedAt).not.toBeNull();
    expect([...movedOrphan.groups].sort()).toEqual([GROUP, 'room-2']);
    expect(buffered(movedAttached)).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
      [4, 4],
    ]);
    expect(movedOrphan.seq).toBe(4);

    // Presence did not change hands visibly: both users are still in the group.
    expect((await memberIds(b)).sort()).toEqual(['alice', 'bob']);

    // Live traffic now reaches the sessions on b, numbered after what moved.
    publish(b, 5);
    expect(buffered(movedAttached, 4)).toEqual([[5, 5]]);
    expect(attachedConn.seqs).toEqual([1, 2, 3, 4]);
    // And b resumes them with a token a issued.
    const found = await b.sessions.resumable({ sessionId: attached.id, sessionToken: a.tokens.issue(attached.id), lastSeq: 2 }, 'alice');
    expect(found).toEqual({ session: movedAttached, stale: null });
  });

  it('an instance that is itself shutting down refuses the sessions: they stay where they were', async () => {
    const [a, b] = await pair();
    const session = await identify(a, fakeConnection('x'), 'alice');
    await b.sessions.handOverAll(); // nothing to hand over, but b now takes nothing
    await a.sessions.handOverAll();
    expect([a.sessions.size, b.sessions.size]).toEqual([1, 0]);
    expect(a.sessions.candidate(session.id, 'alice')).toBe(session);
    expect(await a.presence.owner('alice', session.id)).toBe('gw-a');
    expect(a.logs).toContainEqual(expect.objectContaining({ msg: 'sessions handed over to surviving instances', handedOver: 0, kept: 1 }));
  });
});

describe('Sessions pull (resumable on another instance)', () => {
  it('brings an orphaned session over with its buffer after lastSeq', async () => {
    const [a, b] = await pair();
    const lost = fakeConnection('lost');
    const session = await identify(a, lost, 'alice');
    for (let n = 1; n <= 4; n++) publish(a, n);
    a.sessions.connectionClosed(asCtx(lost), 1006);

    const found = await b.sessions.resumable({ sessionId: session.id, sessionToken: a.tokens.issue(session.id), lastSeq: 2 }, 'alice');
    expect(found.stale).toBeNull();
    const pulled = found.session!;
    expect(pulled).not.toBeNull();
    expect(pulled.id).toBe(session.id);
    expect(pulled.seq).toBe(4);
    expect(buffered(pulled, 2)).toEqual([
      [3, 3],
      [4, 4],
    ]);
    expect(b.sessions.candidate(session.id, 'alice')).toBe(pulled);
    await vi.waitFor(() => expect(a.sessions.size).toBe(0));
    expect(b.sessions.size).toBe(1);
    expect(await b.presence.owner('alice', session.id)).toBe('gw-b');
    expect(await memberIds(b)).toEqual(['alice']);
  });

  it('a session still attached on the other instance: its connection there gets 4011', async () => {
    const [a, b] = await pair();
    const conn = fakeConnection('laptop');
    const session = await identify(a, conn, 'alice');
    publish(a, 1);

    const found = await b.sessions.resumable({ sessionId: session.id, sessionToken: a.tokens.issue(session.id), lastSeq: 0 }, 'alice');
    expect(found.session).not.toBeNull();
    expect(buffered(found.session!)).toEqual([[1, 1]]);
    expect(conn.closes).toEqual([{ code: 4011, reason: 'session resumed elsewhere' }]);
    expect(conn.session).toBeNull();
    await vi.waitFor(() => expect(a.sessions.size).toBe(0));
  });

  it('a lastSeq the owner no longer covers: nothing moves, and the orphaned session ends there at once', async () => {
    const [a, b] = await pair({ resumeBufferMessages: 2 });
    const lost = fakeConnection('lost');
    const session = await identify(a, lost, 'alice');
    for (let n = 1; n <= 5; n++) publish(a, n);
    a.sessions.connectionClosed(asCtx(lost), 1006);

    const found = await b.sessions.resumable({ sessionId: session.id, sessionToken: a.tokens.issue(session.id), lastSeq: 1 }, 'alice');
    expect(found).toEqual({ session: null, stale: null });
    expect([a.sessions.size, b.sessions.size]).toEqual([0, 0]);
    await a.membership.idle();
    expect(await a.presence.owner('alice', session.id)).toBeNull();
  });

  it('a lastSeq the owner no longer covers, while a connection still has the session: it stays', async () => {
    const [a, b] = await pair({ resumeBufferMessages: 2 });
    const session = await identify(a, fakeConnection('alive'), 'alice');
    for (let n = 1; n <= 5; n++) publish(a, n);
    const found = await b.sessions.resumable({ sessionId: session.id, sessionToken: a.tokens.issue(session.id), lastSeq: 1 }, 'alice');
    expect(found).toEqual({ session: null, stale: null });
    expect([a.sessions.size, b.sessions.size]).toEqual([1, 0]);
    expect(await a.presence.owner('alice', session.id)).toBe('gw-a');
  });
});
