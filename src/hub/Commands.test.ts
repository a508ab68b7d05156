// Commands over real in-process parts (MemoryBroker, MemoryPresenceStore, Membership, Sessions, Replies,
// MemoryDeduper, real JWTs) and fake connections that record every write in order: identify and its refusals, what
// is written before `ready`, the group cap, membership checks, signal de-duplication, and resume.
import { decodeJwt } from 'jose';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createVerifier, mintToken, type MintOptions } from '../auth/jwt';
import { SessionTokens } from '../auth/sessionToken';
import { MemoryBroker, MemoryBus } from '../broker/MemoryBroker';
import type { Config } from '../config';
import { MemoryDeduper } from '../dedup/Deduper';
import { Metrics } from '../metrics';
import { MemoryPresenceState, MemoryPresenceStore } from '../presence/MemoryPresenceStore';
import type { MemberPage } from '../presence/PresenceStore';
import type { GroupName, Member, MemberCursor } from '../types/domain';
import { clientSignals, type ClientSignalData, type ClientSignalType } from '../types/signals';
import { createLogger } from '../utils/logger';
import { Commands } from './Commands';
import type { ConnectionContext } from './ConnectionContext';
import { Control } from './Control';
import { sequencedTextFrame, textFrame } from './frames';
import { Membership } from './Membership';
import { Replies } from './Replies';
import type { Session } from './Session';
import { Sessions } from './Sessions';

const SECRET = new TextEncoder().encode('commands-test-secret-of-at-least-32-bytes');
const MAX_CONNECTIONS_PER_USER = 2;
const MAX_GROUPS_PER_CONNECTION = 2;
const SIGNAL_DEDUP_MS = 3_000;
/** Presence batches go out at the end of the turn in these tests. */
const PRESENCE_CONFIG = { presenceBatchMs: 0, presenceLargeGroup: 1_000, presenceCountIntervalMs: 1_000 };

/** One envelope written to a connection (`seq` only on sequenced ones), or its close. */
type Written = { type: string; data: Record<string, unknown>; replyTo?: string; seq?: number } | { close: number; reason: string };

/** The payload of a complete unmasked text frame (what ConnectionContext writes to the socket). */
function framePayload(frame: Buffer): string {
  const length = frame[1]! & 0x7f;
  const header = length < 126 ? 2 : length === 126 ? 4 : 10;
  return frame.subarray(header).toString('utf8');
}

/** The fields Commands, Replies, Sessions and Session use on a connection; every write recorded in order. */
class FakeConnection {
  static next = 0;
  readonly id = `c_fake${++FakeConnection.next}`;
  readonly ip = '198.51.100.9';
  isOpen = true;
  closed = false;
  draining = false;
  serverClosed = false;
  identifying = false;
  session: Session | null = null;
  readonly written: Written[] = [];

  constructor(readonly name: string) {}

  /** Writes go through the same framing as ConnectionContext's, then are read back. */
  send(envelope: string): void {
    if (this.isOpen) this.record(framePayload(textFrame(envelope)));
  }

  sendSequenced(body: Buffer, seq: number): void {
    if (this.isOpen) this.record(framePayload(sequencedTextFrame(body, seq)));
  }

  sendFrame(frame: Buffer): void {
    if (this.isOpen) this.record(framePayload(frame));
  }

  close(code: number, reason: string): void {
    this.serverClosed = true;
    if (!this.isOpen) return;
    this.isOpen = false;
    this.written.push({ close: code, reason });
  }

  /** Envelopes of one type, without their ts. */
  of(type: string): Written[] {
    return this.written.filter((w) => 'type' in w && w.type === type);
  }

  get types(): string[] {
    return this.written.map((w) => ('close' in w ? `close ${w.close}` : w.type === 'error' ? `error ${String(w.data.code)}` : w.type));
  }

  private record(json: string): void {
    const { type, data, replyTo, seq } = JSON.parse(json) as { type: string; data: Record<string, unknown>; replyTo?: string; seq?: number };
    this.written.push({ type, data, ...(replyTo === undefined ? {} : { replyTo }), ...(seq === undefined ? {} : { seq }) });
  }
}

const asCtx = (conn: FakeConnection) => conn as unknown as ConnectionContext;

/** The `data` of a written envelope, as the test expects it to be (failing the test on a close). */
function dataOf<T = Record<string, unknown>>(written: Written | undefined): T {
  if (!written || 'close' in written) throw new Error(`expected an envelope, got ${JSON.stringify(written)}`);
  return written.data as T;
}

/** MemoryPresenceStore with a one-shot hook before a member list is read (the last await of identify before `ready`). */
class HookedPresence extends MemoryPresenceStore {
  beforeMembers: ((group: GroupName) => void) | null = null;

  override async members(group: GroupName, after: MemberCursor | undefined, limit: number): Promise<MemberPage> {
    const hook = this.beforeMembers;
    this.beforeMembers = null;
    hook?.(group);
    return super.members(group, after, limit);
  }
}

interface Gateway {
  presence: HookedPresence;
  state: MemoryPresenceState;
  membership: Membership;
  sessions: Sessions;
  tokens: SessionTokens;
  metrics: Metrics;
  commands: Commands;
  broker: MemoryBroker;
}

const running: Gateway[] = [];

async function gateway(options: { resumeBufferMessages?: number } = {}): Promise<Gateway> {
  const logger = createLogger('silent');
  const metrics = new Metrics({ connections: () => 0, sessions: () => 0, groups: () => 0, redis: () => undefined, dropped: () => 0, invalid: () => 0 });
  const bus = new MemoryBus();
  const state = new MemoryPresenceState();
  const broker = new MemoryBroker('gw', bus);
  const presence = new HookedPresence('gw', () => {}, state);
  const membership = new Membership(broker, presence, logger, metrics, PRESENCE_CONFIG);
  const tokens = new SessionTokens(SECRET, 60_000);
  const config: Pick<Config, 'instanceId' | 'orphanSessionTtlMs' | 'resumeBufferMessages' | 'resumeBufferBytes' | 'maxConnectionsPerUser' | 'maxGroupsPerConnection' | 'signalDedupMs'> = {
    instanceId: 'gw',
    orphanSessionTtlMs: 60_000,
    resumeBufferMessages: options.resumeBufferMessages ?? 100,
    resumeBufferBytes: 1_000_000,
    maxConnectionsPerUser: MAX_CONNECTIONS_PER_USER,
    maxGroupsPerConnection: MAX_GROUPS_PER_CONNECTION,
    signalDedupMs: SIGNAL_DEDUP_MS,
  };
  const sessions = new Sessions({ config, logger, membership, presence, broker, tokens, metrics });
  const replies = new Replies(metrics);
  const commands = new Commands({ config, logger, sessions, membership, deduper: new MemoryDeduper(), replies, metrics, tokens, verifier: createVerifier(SECRET) });
  await broker.start(membership);
  await broker.listenControl(new Control([sessions.control], logger));
  await presence.start();
  const gw: Gateway = { presence, state, membership, sessions, tokens, metrics, commands, broker };
  running.push(gw);
  return gw;
}

afterEach(async () => {
  vi.useRealTimers();
  for (const gw of running.splice(0)) {
    gw.sessions.stop();
    await gw.membership.idle();
    await gw.broker.stop();
  }
});

/** Dispatches as Inbound does: `data` through its schema first. */
function dispatch<T extends ClientSignalType>(gw: Gateway, conn: FakeConnection, type: T, data: ClientSignalData<T>, id?: string): Promise<void> | undefined {
  return gw.commands.dispatch(asCtx(conn), type, clientSignals[type].parse(data), id);
}

const token = (sub: string, extra: Omit<MintOptions, 'sub'> = {}) => mintToken({ groups: ['g', 'team-*'], ...extra, sub }, SECRET);

/** A connection that identified; returns it with its `ready` data. */
async function identified(gw: Gateway, name: string, userId: string, data: Omit<ClientSignalData<'identify'>, 'token'> = {}): Promise<{ conn: FakeConnection; ready: Record<string, unknown> }> {
  const conn = new FakeConnection(name);
  await dispatch(gw, conn, 'identify', { token: await token(userId), groups: ['g'], ...data }, `${name}-identify`);
  const first = conn.written[0];
  if (!first || !('type' in first) || first.type !== 'ready') throw new Error(`${name} did not get ready: ${JSON.stringify(conn.written)}`);
  return { conn, ready: first.data };
}

/** What Router.onClose does when a connection has closed with `code`. */
function closed(gw: Gateway, conn: FakeConnection, code: number): void {
  conn.isOpen = false;
  conn.closed = true;
  gw.sessions.connectionClosed(asCtx(conn), code);
}

const payloads = (conn: FakeConnection) => conn.of('data_update').map((w) => ('type' in w ? [(w.data.payload as { n: number }).n, w.seq] : null));

/** Sends the presence batches still pending (they would go out at the end of this turn): what follows them is numbered after them. */
const presenceSent = (gw: Gateway) => gw.membership.idle();

async function sentCount(gw: Gateway, type: string): Promise<number> {
  const values = (await gw.metrics.registry.getSingleMetric('gateway_messages_out_total')!.get()).values;
  return values.find((v) => v.labels.type === type)?.value ?? NaN;
}

describe('Commands identify', () => {
  it('makes a session and replies ready: not resumed, groups with their members, denied for the ungranted', async () => {
    const gw = await gateway();
    // bob joins a millisecond before alice: member lists are ordered by since.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    const bob = await identified(gw, 'bob', 'bob', { meta: { device: 'desk' } });
    await presenceSent(gw);
    vi.setSystemTime(Date.now() + 1);
    const alice = new FakeConnection('alice');
    const before = Date.now();
    const aliceToken = await token('alice', { ttl: 600 });
    await dispatch(gw, alice, 'identify', { token: aliceToken, groups: ['g', 'team-red', 'secret'], meta: { device: 'phone' } }, 'id-1');
    await presenceSent(gw);

    // alice hears nothing about herself, not even once the batch of her UP went out.
    expect(alice.written).toEqual([
      {
        type: 'ready',
        replyTo: 'id-1',
        data: {
          sessionId: expect.stringMatching(/^s_/),
          connectionId: alice.id,
          userId: 'alice',
          role: 'client',
          groups: [
            { group: 'g', members: [{ userId: 'bob', meta: { device: 'desk' }, since: expect.any(Number), availability: 'online' }, { userId: 'alice', meta: { device: 'phone' }, since: expect.any(Number), availability: 'online' }], count: 2, next: null },
            { group: 'team-red', members: [{ userId: 'alice', meta: { device: 'phone' }, since: expect.any(Number), availability: 'online' }], count: 1, next: null },
          ],
          denied: ['secret'],
          resumed: false,
          sessionToken: expect.any(String),
          expiresAt: decodeJwt(aliceToken).exp! * 1000,
        },
      },
    ]);
    const ready = dataOf<{ sessionId: string; sessionToken: string; groups: { members: Member[] }[] }>(alice.written[0]);
    expect(ready.groups[0]!.members[1]!.since).toBe(before);
    expect(ready.groups[0]!.members[0]!.since).toBe(before - 1);
    expect(gw.tokens.verify(ready.sessionToken)).toBe(ready.sessionId);
    expect(alice.session?.id).toBe(ready.sessionId);
    expect(alice.session?.conn).toBe(alice);
    expect(alice.identifying).toBe(false);
    expect(gw.sessions.size).toBe(2);
    expect(await gw.presence.owner('alice', ready.sessionId)).toBe('gw');
    // bob hears alice come UP in the group they share, numbered, once the batch went out.
    expect(bob.conn.written.slice(1)).toEqual([
      { type: 'presence_update', data: { group: 'g', userId: 'alice', status: 'UP', meta: { device: 'phone' }, availability: 'online' }, seq: 1 },
    ]);
  });

  it('the role and the grants come from the token', async () => {
    const gw = await gateway();
    const conn = new FakeConnection('svc');
    await dispatch(gw, conn, 'identify', { token: await mintToken({ sub: 'svc-1', role: 'service', groups: ['ops'] }, SECRET), groups: ['ops', 'g'] }, 'i');
    expect(conn.written).toEqual([expect.objectContaining({ type: 'ready', data: expect.objectContaining({ role: 'service', denied: ['g'], groups: [expect.objectContaining({ group: 'ops' })] }) })]);
  });

  it('writes nothing numbered before ready: a group message that reaches the session while it joins follows ready', async () => {
    const gw = await gateway();
    const bob = await identified(gw, 'bob', 'bob');
    let delivered = false;
    // Between alice's join (she is in the group locally) and her ready: bob's data_update reaches her session.
    gw.presence.beforeMembers = () => {
      void dispatch(gw, bob.conn, 'data_update', { group: 'g', payload: { n: 1 } });
      delivered = true;
    };
    const alice = new FakeConnection('alice');
    await dispatch(gw, alice, 'identify', { token: await token('alice'), groups: ['g'] }, 'id-1');
    expect(delivered).toBe(true);
    expect(alice.types).toEqual(['ready', 'data_update']);
    expect(alice.written[1]).toEqual({ type: 'data_update', data: { group: 'g', from: { userId: 'bob', connectionId: bob.conn.id }, payload: { n: 1 } }, seq: 1 });
    // And live traffic goes on from there.
    void dispatch(gw, bob.conn, 'data_update', { group: 'g', payload: { n: 2 } });
    expect(payloads(alice)).toEqual([
      [1, 1],
      [2, 2],
    ]);
  });

  it.each([
    ['not a JWT', async () => 'not-a-jwt', 'token is malformed or its signature is invalid'],
    ['signed with another secret', () => mintToken({ sub: 'alice', groups: ['g'] }, new TextEncoder().encode('some-other-secret-of-at-least-32-bytes')), 'token is malformed or its signature is invalid'],
    ['expired', () => mintToken({ sub: 'alice', groups: ['g'], ttl: -60 }, SECRET), 'token expired'],
  ])('a bad token (%s): AUTH_FAILED, then close 4003, and no session', async (_name, makeToken, reason) => {
    const gw = await gateway();
    const conn = new FakeConnection('alice');
    await dispatch(gw, conn, 'identify', { token: await makeToken(), groups: ['g'] }, 'id-1');
    expect(conn.written).toEqual([
      { type: 'error', data: { code: 'AUTH_FAILED', message: reason }, replyTo: 'id-1' },
      { close: 4003, reason: 'auth failed' },
    ]);
    expect(conn.session).toBeNull();
    expect(conn.identifying).toBe(false);
    expect(gw.sessions.size).toBe(0);
    expect((await gw.presence.members('g', undefined, 100)).members).toEqual([]);
  });

  it('meta over 1 KiB: PAYLOAD_TOO_LARGE, without a close', async () => {
    const gw = await gateway();
    const conn = new FakeConnection('alice');
    await dispatch(gw, conn, 'identify', { token: await token('alice'), meta: { blob: 'x'.repeat(1100) } }, 'id-1');
    expect(conn.types).toEqual(['error PAYLOAD_TOO_LARGE']);
    expect(conn.written[0]).toMatchObject({ replyTo: 'id-1' });
    expect(gw.sessions.size).toBe(0);
  });

  it('over the per-user cap: LIMIT_EXCEEDED, then close 4029; a slot freed lets the next one in', async () => {
    const gw = await gateway();
    const first = await identified(gw, 'tab-1', 'alice');
    await identified(gw, 'tab-2', 'alice');
    const third = new FakeConnection('tab-3');
    await dispatch(gw, third, 'identify', { token: await token('alice'), groups: ['g'] }, 'id-3');
    expect(third.written).toEqual([
      { type: 'error', data: { code: 'LIMIT_EXCEEDED', message: `user already has ${MAX_CONNECTIONS_PER_USER} connections` }, replyTo: 'id-3' },
      { close: 4029, reason: 'too many connections' },
    ]);
    expect(third.session).toBeNull();
    expect(gw.sessions.size).toBe(MAX_CONNECTIONS_PER_USER);
    expect(gw.state.users.get('alice')?.size).toBe(MAX_CONNECTIONS_PER_USER);

    closed(gw, first.conn, 1000);
    await gw.membership.idle();
    const fourth = await identified(gw, 'tab-4', 'alice');
    expect(fourth.ready.resumed).toBe(false);
  });
});

describe('Commands groups', () => {
  it('subscribe beyond maxGroupsPerConnection: LIMIT_EXCEEDED without a close', async () => {
    const gw = await gateway();
    const { conn } = await identified(gw, 'alice', 'alice');
    await dispatch(gw, conn, 'subscribe', { group: 'team-a' }, 's1');
    await dispatch(gw, conn, 'subscribe', { group: 'team-b' }, 's2');
    // Already a member: not refused at the cap.
    await dispatch(gw, conn, 'subscribe', { group: 'g' }, 's3');
    expect(conn.written.slice(1)).toEqual([
      { type: 'subscribed', data: { group: 'team-a', members: [expect.objectContaining({ userId: 'alice' })], count: 1, next: null }, replyTo: 's1' },
      { type: 'error', data: { code: 'LIMIT_EXCEEDED', message: `a connection may be in at most ${MAX_GROUPS_PER_CONNECTION} groups` }, replyTo: 's2' },
      { type: 'subscribed', data: { group: 'g', members: [expect.objectContaining({ userId: 'alice' })], count: 1, next: null }, replyTo: 's3' },
    ]);
    expect(conn.isOpen).toBe(true);
    expect([...conn.session!.groups].sort()).toEqual(['g', 'team-a']);
    expect((await gw.presence.members('team-b', undefined, 100)).members).toEqual([]);
  });

  it('identify joins the granted groups up to the cap and denies the rest', async () => {
    const gw = await gateway();
    const { ready } = await identified(gw, 'alice', 'alice', { groups: ['g', 'team-a', 'team-b'] });
    expect((ready.groups as { group: string }[]).map((g) => g.group)).toEqual(['g', 'team-a']);
    expect(ready.denied).toEqual(['team-b']);
  });

  it('subscribe to a group the token does not grant: FORBIDDEN without a close', async () => {
    const gw = await gateway();
    const { conn } = await identified(gw, 'alice', 'alice');
    await dispatch(gw, conn, 'subscribe', { group: 'secret' }, 's1');
    expect(conn.written.slice(1)).toEqual([{ type: 'error', data: { code: 'FORBIDDEN', message: 'the token does not grant group "secret"' }, replyTo: 's1' }]);
    expect(conn.isOpen).toBe(true);
  });

  it('data_update to a group not joined: FORBIDDEN, and nothing reaches the group', async () => {
    const gw = await gateway();
    const bob = await identified(gw, 'bob', 'bob', { groups: ['team-x'] });
    const { conn } = await identified(gw, 'alice', 'alice');
    dispatch(gw, conn, 'data_update', { group: 'team-x', payload: { n: 1 } }, 'd1');
    expect(conn.written.slice(1)).toEqual([{ type: 'error', data: { code: 'FORBIDDEN', message: 'not a member of group "team-x"' }, replyTo: 'd1' }]);
    expect(conn.isOpen).toBe(true);
    // Once a member, the same envelope goes through: bob gets that one only (his seq 1 was alice's presence UP).
    await dispatch(gw, conn, 'subscribe', { group: 'team-x' }, 's1');
    await presenceSent(gw);
    dispatch(gw, conn, 'data_update', { group: 'team-x', payload: { n: 2 } }, 'd2');
    expect(conn.types.slice(-1)).toEqual(['ack']);
    expect(bob.conn.written.slice(1)).toEqual([
      { type: 'presence_update', data: { group: 'team-x', userId: 'alice', status: 'UP', meta: {}, availability: 'online' }, seq: 1 },
      expect.objectContaining({ type: 'data_update', seq: 2 }),
    ]);
    expect(payloads(bob.conn)).toEqual([[2, 2]]);
  });

  it('data_update goes to the other members, and to the sender too with echo', async () => {
    const gw = await gateway();
    const bob = await identified(gw, 'bob', 'bob');
    await presenceSent(gw);
    const alice = await identified(gw, 'alice', 'alice');
    await presenceSent(gw);
    dispatch(gw, alice.conn, 'data_update', { group: 'g', payload: { n: 1 } });
    dispatch(gw, alice.conn, 'data_update', { group: 'g', payload: { n: 2 }, echo: true }, 'd2');
    expect(payloads(alice.conn)).toEqual([[2, 1]]);
    expect(alice.conn.of('ack')).toEqual([{ type: 'ack', data: {}, replyTo: 'd2' }]);
    // bob's seq 1 was alice's presence UP.
    expect(payloads(bob.conn)).toEqual([
      [1, 2],
      [2, 3],
    ]);
  });
});

describe('Commands signal', () => {
  it('the same (group, kind, user) is delivered once within the window, acked each time; others and later ones go through', async () => {
    const gw = await gateway();
    const bob = await identified(gw, 'bob', 'bob');
    const alice = await identified(gw, 'alice', 'alice');
    const carol = await identified(gw, 'carol', 'carol');
    const signals = () => bob.conn.of('signal').map((w) => ('type' in w ? `${(w.data.from as { userId: string }).userId}:${String(w.data.kind)}:${JSON.stringify(w.data.data)}` : ''));
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });

    await dispatch(gw, alice.conn, 'signal', { group: 'g', kind: 'typing', data: { on: 1 } }, 'a1');
    await dispatch(gw, alice.conn, 'signal', { group: 'g', kind: 'typing', data: { on: 2 } }, 'a2');
    vi.setSystemTime(Date.now() + SIGNAL_DEDUP_MS - 1);
    await dispatch(gw, alice.conn, 'signal', { group: 'g', kind: 'typing', data: { on: 3 } }, 'a3');
    // Another kind, another user: their own windows.
    await dispatch(gw, alice.conn, 'signal', { group: 'g', kind: 'cursor' }, 'a4');
    await dispatch(gw, carol.conn, 'signal', { group: 'g', kind: 'typing', data: { on: 5 } }, 'c1');
    expect(signals()).toEqual(['alice:typing:{"on":1}', 'alice:cursor:null', 'carol:typing:{"on":5}']);
    expect(alice.conn.of('ack').map((w) => ('type' in w ? w.replyTo : ''))).toEqual(['a1', 'a2', 'a3', 'a4']);

    vi.setSystemTime(Date.now() + 2);
    await dispatch(gw, alice.conn, 'signal', { group: 'g', kind: 'typing', data: { on: 6 } }, 'a5');
    expect(signals().at(-1)).toBe('alice:typing:{"on":6}');
    // Signals are not numbered, and never go back to their sender.
    expect(bob.conn.of('signal').every((w) => !('seq' in w))).toBe(true);
    expect(alice.conn.of('signal').map((w) => ('type' in w ? (w.data.from as { userId: string }).userId : ''))).toEqual(['carol']);
    expect(bob.conn.of('signal')[0]).toEqual({ type: 'signal', data: { group: 'g', from: { userId: 'alice', connectionId: alice.conn.id }, kind: 'typing', data: { on: 1 } } });
  });

  it('a signal to a group not joined: FORBIDDEN, and it does not use up the window', async () => {
    const gw = await gateway();
    const bob = await identified(gw, 'bob', 'bob', { groups: ['team-x'] });
    const { conn } = await identified(gw, 'alice', 'alice');
    await dispatch(gw, conn, 'signal', { group: 'team-x', kind: 'typing' }, 'x1');
    expect(conn.written.slice(1)).toEqual([{ type: 'error', data: { code: 'FORBIDDEN', message: 'not a member of group "team-x"' }, replyTo: 'x1' }]);
    await dispatch(gw, conn, 'subscribe', { group: 'team-x' });
    await dispatch(gw, conn, 'signal', { group: 'team-x', kind: 'typing' }, 'x2');
    expect(bob.conn.of('signal')).toHaveLength(1);
  });
});

describe('Commands heartbeat', () => {
  it('answers heartbeat_ack with a fresh session token for the session', async () => {
    const gw = await gateway();
    const { conn, ready } = await identified(gw, 'alice', 'alice');
    expect(dispatch(gw, conn, 'heartbeat', {}, 'h1')).toBeUndefined();
    const ack = conn.written[1] as { type: string; data: { serverTs: number; sessionToken: string }; replyTo: string };
    expect(ack).toMatchObject({ type: 'heartbeat_ack', replyTo: 'h1', data: { serverTs: expect.any(Number), sessionToken: expect.any(String) } });
    expect(gw.tokens.verify(ack.data.sessionToken)).toBe(ready.sessionId);
  });
});

describe('Commands resume', () => {
  async function orphanedAlice(gw: Gateway) {
    // bob joins a millisecond before alice: member lists are ordered by since.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    const bob = await identified(gw, 'bob', 'bob');
    await presenceSent(gw);
    vi.setSystemTime(Date.now() + 1);
    const alice = await identified(gw, 'alice-1', 'alice');
    await presenceSent(gw);
    const send = (n: number) => void dispatch(gw, bob.conn, 'data_update', { group: 'g', payload: { n } });
    for (let n = 1; n <= 3; n++) send(n);
    expect(payloads(alice.conn)).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
    ]);
    closed(gw, alice.conn, 1006);
    for (let n = 4; n <= 5; n++) send(n);
    const { sessionId, sessionToken } = alice.ready as { sessionId: string; sessionToken: string };
    return { bob, alice, send, sessionId, sessionToken };
  }

  it('a resume of an orphaned local session: ready (resumed: true), then what followed lastSeq, then live traffic', async () => {
    const gw = await gateway();
    const { bob, alice, send, sessionId, sessionToken } = await orphanedAlice(gw);
    const conn = new FakeConnection('alice-2');
    // A resume takes the new token's expiry.
    const fresh = await token('alice', { ttl: 7200 });
    await dispatch(gw, conn, 'identify', { token: fresh, groups: ['g'], resume: { sessionId, sessionToken, lastSeq: 2 } }, 'r1');
    await presenceSent(gw);

    expect(conn.types).toEqual(['ready', 'data_update', 'data_update', 'data_update']);
    expect(conn.written[0]).toEqual({
      type: 'ready',
      replyTo: 'r1',
      data: {
        sessionId,
        connectionId: conn.id,
        userId: 'alice',
        role: 'client',
        groups: [{ group: 'g', members: [expect.objectContaining({ userId: 'bob' }), expect.objectContaining({ userId: 'alice' })], count: 2, next: null }],
        denied: [],
        resumed: true,
        sessionToken: expect.any(String),
        expiresAt: decodeJwt(fresh).exp! * 1000,
      },
    });
    expect(gw.tokens.verify(dataOf<{ sessionToken: string }>(conn.written[0]).sessionToken)).toBe(sessionId);
    expect(payloads(conn)).toEqual([
      [3, 3],
      [4, 4],
      [5, 5],
    ]);
    send(6);
    expect(payloads(conn).at(-1)).toEqual([6, 6]);
    expect(conn.session?.id).toBe(sessionId);
    expect(gw.sessions.size).toBe(2);
    expect(await sentCount(gw, 'replay')).toBe(3);
    // The resume did not come and go in presence: bob heard alice come UP once, and nothing since (the pending
    // batches went out before and after the resume); alice is still listed since her first join.
    expect(bob.conn.types).toEqual(['ready', 'presence_update']);
    const members = (data: Record<string, unknown>) => (data.groups as { members: Member[] }[])[0]!.members;
    expect(members(dataOf(conn.written[0])).find((m) => m.userId === 'alice')).toEqual(members(alice.ready).find((m) => m.userId === 'alice'));
  });

  it('a resume of a session still attached elsewhere takes it over: the old connection gets 4011', async () => {
    const gw = await gateway();
    const alice = await identified(gw, 'alice-1', 'alice');
    const { sessionId, sessionToken } = alice.ready as { sessionId: string; sessionToken: string };
    const conn = new FakeConnection('alice-2');
    await dispatch(gw, conn, 'identify', { token: await token('alice'), groups: ['g'], resume: { sessionId, sessionToken, lastSeq: 0 } }, 'r1');
    expect(conn.written).toEqual([expect.objectContaining({ type: 'ready', data: expect.objectContaining({ sessionId, resumed: true }) })]);
    expect(alice.conn.written.at(-1)).toEqual({ close: 4011, reason: 'session resumed elsewhere' });
    expect(alice.conn.session).toBeNull();
    expect(gw.sessions.size).toBe(1);
  });

  it('a resume the buffer no longer covers: a new session (resumed: false), and the stale orphan ends', async () => {
    const gw = await gateway({ resumeBufferMessages: 2 });
    const { sessionId, sessionToken } = await orphanedAlice(gw);
    const conn = new FakeConnection('alice-2');
    await dispatch(gw, conn, 'identify', { token: await token('alice'), groups: ['g'], resume: { sessionId, sessionToken, lastSeq: 1 } }, 'r1');
    expect(conn.types).toEqual(['ready']);
    const ready = dataOf<{ sessionId: string; resumed: boolean }>(conn.written[0]);
    expect(ready.resumed).toBe(false);
    expect(ready.sessionId).not.toBe(sessionId);
    expect(gw.sessions.candidate(sessionId, 'alice')).toBeNull();
    await gw.membership.idle();
    expect(await gw.presence.owner('alice', sessionId)).toBeNull();
    expect(gw.sessions.size).toBe(2);
  });

  it('a resume with a forged session token: a new session, and the orphan is left alone', async () => {
    const gw = await gateway();
    const { sessionId } = await orphanedAlice(gw);
    const conn = new FakeConnection('alice-2');
    const forged = new SessionTokens(new TextEncoder().encode('an-attacker-secret-of-at-least-32-bytes'), 60_000).issue(sessionId);
    await dispatch(gw, conn, 'identify', { token: await token('alice'), groups: ['g'], resume: { sessionId, sessionToken: forged, lastSeq: 3 } }, 'r1');
    expect(conn.types).toEqual(['ready']);
    expect(conn.written[0]).toMatchObject({ data: { resumed: false } });
    expect(dataOf(conn.written[0]).sessionId).not.toBe(sessionId);
    expect(gw.sessions.candidate(sessionId, 'alice')?.orphanedAt).not.toBeNull();
    expect(gw.sessions.size).toBe(3);
  });

  it('a resume with another user’s session token does not resume it', async () => {
    const gw = await gateway();
    const { sessionId, sessionToken } = await orphanedAlice(gw);
    const conn = new FakeConnection('mallory');
    await dispatch(gw, conn, 'identify', { token: await token('mallory'), groups: ['g'], resume: { sessionId, sessionToken, lastSeq: 3 } }, 'r1');
    expect(conn.types).toEqual(['ready']);
    expect(conn.written[0]).toMatchObject({ data: { resumed: false, userId: 'mallory' } });
    expect(dataOf(conn.written[0]).sessionId).not.toBe(sessionId);
    expect(gw.sessions.candidate(sessionId, 'alice')?.conn).toBeNull();
  });
});
