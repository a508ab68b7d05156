// Handoff between instances over MemoryBrokers on one MemoryBus, each with a small in-memory host whose session
// directory (owner, lease, adopt, revoke) is shared like MemoryPresenceStore's: pulls, pushes, faults, bad input.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryBroker, MemoryBus } from '../broker/MemoryBroker';
import { Metrics } from '../metrics';
import type { GroupName, SessionId, UserId } from '../types/domain';
import { createLogger } from '../utils/logger';
import type { Capture } from './Capture';
import { Control } from './Control';
import { Handoff, type HandoffHost, type HandoffOffer } from './Handoff';
import { Session, type PresenceView } from './Session';

const TIMEOUT_MS = 200;
const LIMITS = { bufferMessages: 10, bufferBytes: 10_000 };
/** The presence view of a session in the default mode that watches nothing and read no member list. */
const NO_PRESENCE_VIEW: PresenceView = { mode: 'updates', watching: [], listed: [] };

type Op = 'claim' | 'offer' | 'take' | 'commit' | 'mark' | 'state' | 'done' | 'gone';
const opOf = (body: string) => (JSON.parse(body) as { op: Op }).op;

/** The session directory every host shares, with MemoryPresenceStore's semantics. */
class Directory {
  /** user → session → the instance holding it. */
  readonly owners = new Map<UserId, Map<SessionId, string>>();
  readonly leases = new Map<SessionId, { lease: string; until: number }>();

  ownerOf(userId: UserId, sessionId: SessionId): string | null {
    return this.owners.get(userId)?.get(sessionId) ?? null;
  }

  set(userId: UserId, sessionId: SessionId, instance: string): void {
    let sessions = this.owners.get(userId);
    if (!sessions) this.owners.set(userId, (sessions = new Map()));
    sessions.set(sessionId, instance);
  }
}

/** One instance's Sessions, seen by Handoff: sessions in a Map, every call recorded. */
class FakeHost implements HandoffHost {
  accepting = true;
  readonly sessions = new Map<SessionId, Session>();
  readonly standIns: Session[] = [];
  readonly abandoned: Session[] = [];
  readonly detached: Session[] = [];
  readonly handedOverCalls: Session[] = [];
  readonly keptCalls: Session[] = [];
  readonly outdatedCalls: Session[] = [];
  /** Called by `candidate`, to move things around in the middle of a handoff. */
  onCandidate: ((sessionId: SessionId) => void) | null = null;

  constructor(
    readonly id: string,
    private readonly directory: Directory,
  ) {}

  /** A session held here, with `deliveries` numbered into its buffer. */
  hold(userId: UserId, sessionId: SessionId, deliveries: string[] = [], groups: GroupName[] = ['g']): Session {
    const session = new Session(userId, 'client', ['g', 'h'], { device: 'phone' }, 1_700_000_000_000, null, LIMITS, sessionId);
    for (const group of groups) session.groups.add(group);
    for (const body of deliveries) session.deliver(Buffer.from(body), 'backend', 'rt:group:g');
    this.sessions.set(sessionId, session);
    this.directory.set(userId, sessionId, this.id);
    return session;
  }

  candidate(sessionId: SessionId, userId: UserId): Session | null {
    this.onCandidate?.(sessionId);
    const session = this.sessions.get(sessionId);
    return session && session.userId === userId ? session : null;
  }

  async standIn(sessionId: SessionId, userId: UserId, offer: HandoffOffer, capture: Capture): Promise<Session> {
    const session = new Session(userId, offer.role, offer.grants, offer.meta, offer.createdAt, null, LIMITS, sessionId);
    session.adoptPresenceView(offer.presence);
    for (const group of offer.groups) session.groups.add(group);
    session.startCapture(capture);
    this.standIns.push(session);
    return session;
  }

  abandon(session: Session): void {
    this.abandoned.push(session);
  }

  /** MemoryPresenceStore.transfer: only under the lease, and only if `owner` still holds the entry. */
  async adopt(session: Session, owner: string, lease: string): Promise<boolean> {
    if (this.directory.ownerOf(session.userId, session.id) === this.id) return true;
    const held = this.directory.leases.get(session.id);
    if (held?.lease !== lease || held.until <= Date.now()) return false;
    this.directory.leases.delete(session.id);
    if (this.directory.ownerOf(session.userId, session.id) !== owner) return false;
    this.directory.set(session.userId, session.id, this.id);
    this.sessions.set(session.id, session);
    return true;
  }

  detach(session: Session): void {
    this.detached.push(session);
  }

  handedOver(session: Session): void {
    this.handedOverCalls.push(session);
    this.sessions.delete(session.id);
  }

  async owner(userId: UserId, sessionId: SessionId): Promise<string | null> {
    return this.directory.ownerOf(userId, sessionId);
  }

  async lease(_userId: UserId, sessionId: SessionId, lease: string, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    if ((this.directory.leases.get(sessionId)?.until ?? 0) > now) return false;
    this.directory.leases.set(sessionId, { lease, until: now + ttlMs });
    return true;
  }

  async release(_userId: UserId, sessionId: SessionId, lease: string): Promise<void> {
    if (this.directory.leases.get(sessionId)?.lease === lease) this.directory.leases.delete(sessionId);
  }

  async revoke(userId: UserId, sessionId: SessionId, lease: string): Promise<boolean | null> {
    if (this.directory.ownerOf(userId, sessionId) !== this.id) return false;
    if (this.directory.leases.get(sessionId)?.lease === lease) this.directory.leases.delete(sessionId);
    return true;
  }

  kept(session: Session): void {
    this.keptCalls.push(session);
  }

  outdated(session: Session): void {
    this.outdatedCalls.push(session);
  }
}

interface Instance {
  id: string;
  metrics: Metrics;
  host: FakeHost;
  broker: MemoryBroker;
  handoff: Handoff;
  /** Where the broker delivers this instance's control messages. */
  control: Control;
}

interface Cluster {
  bus: MemoryBus;
  directory: Directory;
  /** Every control message sent on the bus, in order. */
  messages: { from: string; to: string; op: Op; body: Record<string, unknown> }[];
  instances: Record<string, Instance>;
  /** Log lines written by each instance's handoff. */
  logs: string[];
}

const running: MemoryBroker[] = [];

async function cluster(ids: string[], timeoutMs = TIMEOUT_MS): Promise<Cluster> {
  const bus = new MemoryBus();
  const directory = new Directory();
  const logs: string[] = [];
  const logger = createLogger('info', { write: (line: string) => void logs.push(line) });
  const instances: Record<string, Instance> = {};
  for (const id of ids) {
    const host = new FakeHost(id, directory);
    const broker = new MemoryBroker(id, bus);
    const metrics = new Metrics({ connections: () => 0, sessions: () => 0, groups: () => 0, redis: () => undefined, dropped: () => 0, invalid: () => 0 });
    const handoff = new Handoff({ instanceId: id, broker, host, timeoutMs, logger, metrics });
    const control = new Control([handoff], logger);
    await broker.listenControl(control);
    await broker.start({ onRelayed() {} });
    running.push(broker);
    instances[id] = { id, metrics, host, broker, handoff, control };
  }
  const c: Cluster = { bus, directory, messages: [], instances, logs };
  return c;
}

/** Records every control message (valid JSON ones) and then applies `fate` to it. */
function record(c: Cluster, fate: (op: Op, from: string, to: string) => 'deliver' | 'drop' | 'twice' = () => 'deliver'): void {
  c.bus.fault = ({ from, to, body }) => {
    let parsed: Record<string, unknown> = {};
    try {
      const value: unknown = JSON.parse(body);
      if (typeof value === 'object' && value !== null) parsed = value as Record<string, unknown>;
    } catch {
      // recorded without an op
    }
    const op = parsed.op as Op;
    c.messages.push({ from, to, op, body: parsed });
    return fate(op, from, to);
  };
}

/** gateway_session_handoffs_total of one instance, as "direction result" → count. */
const handoffCounts = async (i: Instance) => {
  const metric = await i.metrics.registry.getSingleMetric('gateway_session_handoffs_total')!.get();
  return Object.fromEntries(metric.values.map((v) => [`${v.labels.direction} ${v.labels.result}`, v.value]));
};
const ops = (c: Cluster) => c.messages.map((m) => `${m.from}>${m.to}:${m.op}`);
const replay = (session: Session, lastSeq: number) => session.replayAfter(lastSeq).map((e) => [e.seq, String(e.body)]);

afterEach(async () => {
  await Promise.all(running.splice(0).map((broker) => broker.stop()));
});

describe('Handoff pull', () => {
  it('takes a session held by another instance, restored with its seq and buffer after lastSeq; the owner hands it over once', async () => {
    const c = await cluster(['a', 'b']);
    const { a, b } = c.instances as { a: Instance; b: Instance };
    const held = b.host.hold('alice', 's1', ['{"n":1', '{"n":2', '{"n":3'], ['g', 'h']);
    held.presenceMode = 'diffs';
    held.watching.add('h');
    held.noteListed('g', 7, true);
    held.noteListed('g', 9, false);
    record(c);

    const pulled = await a.handoff.pull('s1', 'alice', 1);
    expect(pulled).not.toBeNull();
    const session = pulled!;
    expect(session).toBe(a.host.standIns[0]);
    expect(session).not.toBe(held);
    expect([session.id, session.userId, session.role, session.grants, session.meta, session.createdAt]).toEqual(['s1', 'alice', 'client', ['g', 'h'], { device: 'phone' }, 1_700_000_000_000]);
    expect([...session.groups]).toEqual(['g', 'h']);
    // How it hears of presence moves with it: its mode, what it watches, and when it read its member lists.
    expect(session.presenceView()).toEqual({ mode: 'diffs', watching: ['h'], listed: [['g', 7, 9]] });
    expect(session.seq).toBe(3);
    expect(replay(session, 1)).toEqual([
      [2, '{"n":2'],
      [3, '{"n":3'],
    ]);
    expect(session.covers(1)).toBe(true);
    expect(session.covers(0)).toBe(false); // only what followed lastSeq moved
    // The restore ended the capture: the next delivery is numbered after the owner's seq.
    session.deliver(Buffer.from('{"n":4'), 'backend', 'rt:group:g');
    expect(session.seq).toBe(4);

    await b.handoff.settled('s1');
    expect(b.host.handedOverCalls).toEqual([held]);
    expect(b.host.detached).toEqual([held]);
    expect(b.host.sessions.has('s1')).toBe(false);
    expect(a.host.sessions.get('s1')).toBe(session);
    expect(a.host.abandoned).toEqual([]);
    expect(c.directory.ownerOf('alice', 's1')).toBe('a');
    expect(c.directory.leases.has('s1')).toBe(false);
    expect(ops(c)).toEqual(['a>b:claim', 'b>a:offer', 'a>b:commit', 'b>a:state', 'a>b:done']);
    expect(c.messages.at(-1)!.body).toMatchObject({ moved: true });
    expect(await handoffCounts(a)).toEqual({ 'in moved': 1 });
    expect(await handoffCounts(b)).toEqual({ 'out moved': 1 });
  });

  it('returns null at once for a session no instance holds', async () => {
    const c = await cluster(['a', 'b'], 1_000);
    const { a } = c.instances as { a: Instance };
    record(c);
    const started = Date.now();
    expect(await a.handoff.pull('nobody-has-it', 'alice', 0)).toBeNull();
    expect(Date.now() - started).toBeLessThan(200);
    expect(c.messages).toEqual([]);
  });

  it('returns null at once when the named owner does not have the session (it answers gone, asked twice)', async () => {
    const c = await cluster(['a', 'b'], 1_000);
    const { a, b } = c.instances as { a: Instance; b: Instance };
    c.directory.set('alice', 's1', 'b');
    record(c);
    const started = Date.now();
    expect(await a.handoff.pull('s1', 'alice', 0)).toBeNull();
    expect(Date.now() - started).toBeLessThan(200);
    expect(ops(c)).toEqual(['a>b:claim', 'b>a:gone', 'a>b:claim', 'b>a:gone']);
    expect(a.host.standIns).toEqual([]);
    expect(b.host.handedOverCalls).toEqual([]);
  });

  it('returns null at once when the session belongs to another user there', async () => {
    const c = await cluster(['a', 'b'], 1_000);
    const { a, b } = c.instances as { a: Instance; b: Instance };
    b.host.hold('bob', 's1');
    c.directory.set('alice', 's1', 'b'); // as if alice's directory entry named it
    const started = Date.now();
    expect(await a.handoff.pull('s1', 'alice', 0)).toBeNull();
    expect(Date.now() - started).toBeLessThan(200);
    expect(b.host.sessions.has('s1')).toBe(true);
    expect(b.host.detached).toEqual([]);
  });

  it('returns null at once when the owner no longer listens', async () => {
    const c = await cluster(['a', 'b'], 1_000);
    const { a, b } = c.instances as { a: Instance; b: Instance };
    b.host.hold('alice', 's1', ['{"n":1']);
    await b.broker.stop();
    record(c);
    const started = Date.now();
    expect(await a.handoff.pull('s1', 'alice', 0)).toBeNull();
    expect(Date.now() - started).toBeLessThan(200);
    // sendControl found nobody listening: nothing went on the bus.
    expect(c.messages).toEqual([]);
    expect(a.host.standIns).toEqual([]);
  });

  it('returns null after one timeout when the claim goes unanswered, without asking again', async () => {
    const c = await cluster(['a', 'b']);
    const { a, b } = c.instances as { a: Instance; b: Instance };
    b.host.hold('alice', 's1');
    record(c, (op) => (op === 'claim' ? 'drop' : 'deliver'));
    const started = Date.now();
    expect(await a.handoff.pull('s1', 'alice', 0)).toBeNull();
    expect(Date.now() - started).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);
    expect(ops(c)).toEqual(['a>b:claim']);
    expect(a.host.standIns).toEqual([]);
    expect(c.directory.leases.has('s1')).toBe(false);
  });

  it('returns null when the directory names this instance itself', async () => {
    const c = await cluster(['a']);
    const { a } = c.instances as { a: Instance };
    c.directory.set('alice', 's1', 'a');
    record(c);
    expect(await a.handoff.pull('s1', 'alice', 0)).toBeNull();
    expect(c.messages).toEqual([]);
  });

  it('follows a session that moved on while asked, once', async () => {
    const c = await cluster(['a', 'b', 'c']);
    const { a, b, c: third } = c.instances as { a: Instance; b: Instance; c: Instance };
    c.directory.set('alice', 's1', 'b');
    third.host.sessions.set('s1', new Session('alice', 'client', [], {}, 0, null, LIMITS, 's1'));
    third.host.sessions.get('s1')!.deliver(Buffer.from('{"n":1'), 'backend', 'rt:group:g');
    // b no longer has it: by the time it answers, the directory names c.
    b.host.onCandidate = () => c.directory.set('alice', 's1', 'c');
    record(c);
    const session = await a.handoff.pull('s1', 'alice', 0);
    expect(session?.seq).toBe(1);
    expect(ops(c)).toEqual(['a>b:claim', 'b>a:gone', 'a>c:claim', 'c>a:offer', 'a>c:commit', 'c>a:state', 'a>c:done']);
    expect(c.directory.ownerOf('alice', 's1')).toBe('a');
    await third.handoff.settled('s1');
    expect(third.host.handedOverCalls).toHaveLength(1);
  });

  it('returns null at once when the owner no longer covers lastSeq; the session stays, and its host hears it is outdated', async () => {
    const c = await cluster(['a', 'b'], 1_000);
    const { a, b } = c.instances as { a: Instance; b: Instance };
    const held = b.host.hold('alice', 's1', ['{"n":1', '{"n":2']);
    record(c);
    const started = Date.now();
    expect(await a.handoff.pull('s1', 'alice', 5)).toBeNull();
    expect(Date.now() - started).toBeLessThan(200);
    expect(ops(c)).toEqual(['a>b:claim', 'b>a:offer', 'a>b:commit', 'b>a:gone', 'a>b:done']);
    expect(a.host.abandoned).toEqual(a.host.standIns);
    expect(a.host.abandoned).toHaveLength(1);
    await b.handoff.settled('s1');
    expect(b.host.sessions.get('s1')).toBe(held);
    expect(b.host.detached).toEqual([]);
    expect(b.host.handedOverCalls).toEqual([]);
    expect(b.host.outdatedCalls).toEqual([held]);
    expect(c.directory.ownerOf('alice', 's1')).toBe('b');
    // The claimer let its lease go: another instance's valid claim right after succeeds.
    await vi.waitFor(() => expect(c.directory.leases.has('s1')).toBe(false));
    expect(await a.handoff.pull('s1', 'alice', 2)).not.toBeNull();
  });

  it('ignores an answer from an instance other than the one asked', async () => {
    const c = await cluster(['a', 'b', 'm']);
    const { a, b, m } = c.instances as { a: Instance; b: Instance; m: Instance };
    b.host.hold('alice', 's1', ['{"n":1']);
    let forged = false;
    record(c, (op, from) => {
      if (op === 'commit' && from === 'a' && !forged) {
        forged = true;
        // m answers the commit in b's place, before b reads it, with a state of its own making.
        const id = c.messages.at(-1)!.body.id as string;
        const state = { id: 's1', userId: 'alice', role: 'admin', grants: ['*'], meta: {}, availability: 'online', createdAt: 0, groups: ['g'], presence: NO_PRESENCE_VIEW, seq: 999, buffer: [] };
        void m.broker.sendControl('a', JSON.stringify({ op: 'state', id, state }));
      }
      return 'deliver';
    });
    const session = await a.handoff.pull('s1', 'alice', 0);
    expect(session?.seq).toBe(1);
    expect(replay(session!, 0)).toEqual([[1, '{"n":1']]);
    expect(ops(c)).toEqual(['a>b:claim', 'b>a:offer', 'a>b:commit', 'm>a:state', 'b>a:state', 'a>b:done']);
    expect(a.control.invalid).toBe(0); // refused for its sender, not for its shape
  });
});

describe('Handoff push', () => {
  it('moves a session to a peer: resolves true, the whole buffer moves, the owner hands it over once', async () => {
    const c = await cluster(['a', 'b']);
    const { a, b } = c.instances as { a: Instance; b: Instance };
    const held = a.host.hold('alice', 's1', ['{"n":1', '{"n":2']);
    held.watching.add('g');
    held.noteListed('g', 4, true);
    record(c);
    expect(await a.handoff.push(held, 'b')).toBe(true);
    const moved = b.host.sessions.get('s1');
    expect(moved).toBe(b.host.standIns[0]);
    expect(moved?.seq).toBe(2);
    expect(replay(moved!, 0)).toEqual([
      [1, '{"n":1'],
      [2, '{"n":2'],
    ]);
    expect([...moved!.groups]).toEqual(['g']);
    expect(moved!.presenceView()).toEqual({ mode: 'updates', watching: ['g'], listed: [['g', 4, 4]] });
    expect(a.host.handedOverCalls).toEqual([held]);
    expect(a.host.sessions.has('s1')).toBe(false);
    expect(c.directory.ownerOf('alice', 's1')).toBe('b');
    expect(ops(c)).toEqual(['a>b:take', 'b>a:commit', 'a>b:state', 'b>a:done']);
    expect(c.messages[1]!.body).toMatchObject({ lastSeq: null });
  });

  it('leaves a session whose presence changed between the offer and the state with its owner', async () => {
    const c = await cluster(['a', 'b']);
    const { a, b } = c.instances as { a: Instance; b: Instance };
    const held = a.host.hold('alice', 's1', ['{"n":1']);
    record(c, (op, from) => {
      // The client says `presence` on the owner while the claimer commits: the stand-in joined presence as offered.
      if (op === 'commit' && from === 'b') held.availability = 'idle';
      return 'deliver';
    });
    expect(await a.handoff.push(held, 'b')).toBe(false);
    expect(a.host.sessions.get('s1')).toBe(held);
    expect(b.host.sessions.has('s1')).toBe(false);
    expect(c.directory.ownerOf('alice', 's1')).toBe('a');
    expect(ops(c)).toEqual(['a>b:take', 'b>a:commit', 'a>b:state', 'b>a:done']);
  });

  it('resolves false quickly when the peer is not accepting; the owner keeps the session', async () => {
    const c = await cluster(['a', 'b'], 1_000);
    const { a, b } = c.instances as { a: Instance; b: Instance };
    const held = a.host.hold('alice', 's1', ['{"n":1']);
    b.host.accepting = false;
    record(c);
    const started = Date.now();
    expect(await a.handoff.push(held, 'b')).toBe(false);
    expect(Date.now() - started).toBeLessThan(200);
    expect(ops(c)).toEqual(['a>b:take', 'b>a:done']);
    expect(b.host.standIns).toEqual([]);
    expect(a.host.handedOverCalls).toEqual([]);
    expect(a.host.sessions.get('s1')).toBe(held);
    expect(c.directory.ownerOf('alice', 's1')).toBe('a');
  });

  it('resolves false at once when the peer does not listen', async () => {
    const c = await cluster(['a', 'b'], 1_000);
    const { a, b } = c.instances as { a: Instance; b: Instance };
    const held = a.host.hold('alice', 's1');
    await b.broker.stop();
    const started = Date.now();
    expect(await a.handoff.push(held, 'b')).toBe(false);
    expect(Date.now() - started).toBeLessThan(200);
    expect(a.host.handedOverCalls).toEqual([]);
  });
});

describe('Handoff faults', () => {
  it('the state dropped: pull resolves null after the timeout; the owner revokes the lease, keeps the session, and a retry moves it', async () => {
    const c = await cluster(['a', 'b']);
    const { a, b } = c.instances as { a: Instance; b: Instance };
    const held = b.host.hold('alice', 's1', ['{"n":1']);
    record(c, (op) => (op === 'state' ? 'drop' : 'deliver'));
    const revoke = vi.spyOn(b.host, 'revoke');
    const started = Date.now();
    expect(await a.handoff.pull('s1', 'alice', 0)).toBeNull();
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);
    expect(elapsed).toBeLessThan(TIMEOUT_MS * 2);
    await b.handoff.settled('s1');
    // The claimer released its lease too: only the owner's own call shows that it revoked the claim's lease.
    expect(revoke.mock.calls).toEqual([['alice', 's1', c.messages[0]!.body.id]]);
    expect(b.host.keptCalls).toEqual([held]);
    expect(b.host.handedOverCalls).toEqual([]);
    expect(b.host.sessions.get('s1')).toBe(held);
    expect(a.host.abandoned).toEqual(a.host.standIns);
    expect(a.host.sessions.has('s1')).toBe(false);
    expect(c.directory.ownerOf('alice', 's1')).toBe('b');
    expect(c.directory.leases.has('s1')).toBe(false);
    expect(ops(c)).toEqual(['a>b:claim', 'b>a:offer', 'a>b:commit', 'b>a:state', 'a>b:done']);
    expect(c.messages.at(-1)!.body).toMatchObject({ moved: false });
    expect(await handoffCounts(a)).toEqual({ 'in failed': 1 });
    expect(await handoffCounts(b)).toEqual({ 'out failed': 1 });

    // The lease is gone, so the session can be claimed again at once.
    record(c);
    const retried = await a.handoff.pull('s1', 'alice', 0);
    expect(retried?.seq).toBe(1);
    await b.handoff.settled('s1');
    expect(b.host.handedOverCalls).toEqual([held]);
  });

  it('the state and done both dropped: the owner times out by itself, revokes, and keeps the session', async () => {
    const c = await cluster(['a', 'b']);
    const { a, b } = c.instances as { a: Instance; b: Instance };
    const held = b.host.hold('alice', 's1');
    record(c, (op) => (op === 'state' || op === 'done' ? 'drop' : 'deliver'));
    const revoke = vi.spyOn(b.host, 'revoke');
    expect(await a.handoff.pull('s1', 'alice', 0)).toBeNull();
    await vi.waitFor(() => expect(c.directory.leases.has('s1')).toBe(false)); // the claimer that gave up let it go
    await b.handoff.settled('s1');
    expect(c.directory.leases.has('s1')).toBe(false);
    // No `done` reached the owner: its own timer revoked the claim's lease and kept the session.
    expect(revoke.mock.calls).toEqual([['alice', 's1', c.messages[0]!.body.id]]);
    expect(b.host.keptCalls).toEqual([held]);
    expect(b.host.handedOverCalls).toEqual([]);
    expect(b.host.sessions.get('s1')).toBe(held);
    expect(c.directory.ownerOf('alice', 's1')).toBe('b');
  });

  it('a revoke the directory cannot answer (Redis away) keeps the session moving and is asked again, never taken for "still mine"', async () => {
    const c = await cluster(['a', 'b']);
    const { a, b } = c.instances as { a: Instance; b: Instance };
    b.host.hold('alice', 's1');
    record(c, (op) => (op === 'done' ? 'drop' : 'deliver'));
    let unanswered = 2;
    const revoke = b.host.revoke.bind(b.host);
    b.host.revoke = async (userId, sessionId, lease) => (unanswered-- > 0 ? null : revoke(userId, sessionId, lease));
    const pulled = await a.handoff.pull('s1', 'alice', 0);
    expect(pulled).not.toBeNull();
    expect(b.handoff.moving('s1')).toBe(true);
    await b.handoff.settled('s1');
    expect(unanswered).toBe(-1);
    // The move had happened: the owner, once the directory answered, handed the session over instead of keeping it.
    expect(b.host.handedOverCalls).toHaveLength(1);
    expect(b.host.keptCalls).toEqual([]);
    expect(c.directory.ownerOf('alice', 's1')).toBe('a');
  });

  it('done dropped after the session moved: the owner finds its entry gone on revoke and hands the session over', async () => {
    const c = await cluster(['a', 'b']);
    const { a, b } = c.instances as { a: Instance; b: Instance };
    const held = b.host.hold('alice', 's1');
    record(c, (op) => (op === 'done' ? 'drop' : 'deliver'));
    const session = await a.handoff.pull('s1', 'alice', 0);
    expect(session).not.toBeNull();
    expect(c.directory.ownerOf('alice', 's1')).toBe('a');
    // Until its own timer, the owner still holds its copy, detached; it never keeps a session whose entry moved.
    expect(b.host.sessions.get('s1')).toBe(held);
    await b.handoff.settled('s1');
    expect(b.host.handedOverCalls).toEqual([held]);
  });

  it('every control message delivered twice: the session moves once', async () => {
    const c = await cluster(['a', 'b']);
    const { a, b } = c.instances as { a: Instance; b: Instance };
    const held = b.host.hold('alice', 's1', ['{"n":1', '{"n":2']);
    record(c, () => 'twice');
    const session = await a.handoff.pull('s1', 'alice', 0);
    expect(session?.seq).toBe(2);
    expect(replay(session!, 0).map(([seq]) => seq)).toEqual([1, 2]);
    await b.handoff.settled('s1');
    expect(b.host.handedOverCalls).toEqual([held]);
    expect(a.host.standIns).toHaveLength(1);
    expect(a.host.abandoned).toEqual([]);
    expect(c.directory.ownerOf('alice', 's1')).toBe('a');
  });
});

describe('Handoff input', () => {
  it('counts and ignores malformed control messages, and answers the next valid one', async () => {
    const c = await cluster(['a', 'b']);
    const { a, b } = c.instances as { a: Instance; b: Instance };
    b.host.hold('alice', 's1', ['{"n":1']);
    record(c);
    const malformed = [
      'not json',
      'null',
      '[]',
      JSON.stringify({ op: 'claim', id: 'x', sessionId: 's1' }), // no userId
      JSON.stringify({ op: 'claim', id: '', sessionId: 's1', userId: 'alice' }), // empty id
      JSON.stringify({ op: 'launch', id: 'x' }),
      JSON.stringify({ op: 'commit', id: 'x', sessionId: 's1', userId: 'alice', lastSeq: -1 }),
      JSON.stringify({ op: 'state', id: 'x', state: { id: 's1' } }),
      JSON.stringify({ op: 'take', id: 'x', sessionId: 's1', userId: 'alice', groups: ['no spaces allowed'], role: 'client', grants: [], meta: {}, createdAt: 0, presence: NO_PRESENCE_VIEW }),
    ];
    for (const body of malformed) expect(await a.broker.sendControl('b', body)).toBe(true);
    expect(b.control.invalid).toBe(malformed.length);
    expect(a.control.invalid).toBe(0);
    expect(c.logs.filter((line) => line.includes('malformed control message ignored'))).toHaveLength(malformed.length);
    expect(JSON.parse(c.logs[0]!)).toMatchObject({ from: 'a', msg: 'malformed control message ignored' });

    // Barrier: a valid claim is answered; nothing was answered, detached or taken for the malformed ones before it.
    await a.broker.sendControl('b', JSON.stringify({ op: 'claim', id: 'barrier', sessionId: 'unknown', userId: 'alice' }));
    await vi.waitFor(() => expect(ops(c).filter((o) => o.startsWith('b>'))).toEqual(['b>a:gone']));
    expect(b.host.detached).toEqual([]);
    expect(b.host.sessions.has('s1')).toBe(true);
    expect(b.host.standIns).toEqual([]);
    expect(b.control.invalid).toBe(malformed.length);

    // And the instance still hands sessions over.
    expect((await a.handoff.pull('s1', 'alice', 0))?.seq).toBe(1);
  });

  it('ignores a mark that does not come from this instance', async () => {
    const c = await cluster(['a', 'b']);
    const { a, b } = c.instances as { a: Instance; b: Instance };
    b.host.hold('alice', 's1', ['{"n":1']);
    // The claimer's own mark is lost; a mark from b with the right id must not stand in for it.
    record(c, (op) => {
      if (op === 'commit') void b.broker.sendControl('a', JSON.stringify({ op: 'mark', id: c.messages.at(-1)!.body.id }));
      return 'deliver';
    });
    // MemoryBroker hands a mark straight to its own listener, bypassing the bus: drop it there.
    await a.broker.listenControl({ onControl: (message, from) => (from === 'a' && opOf(message) === 'mark' ? undefined : a.control.onControl(message, from)) });
    expect(await a.handoff.pull('s1', 'alice', 0)).toBeNull();
    expect(c.messages.some((m) => m.op === 'mark' && m.from === 'b')).toBe(true);
    expect(a.host.abandoned).toHaveLength(1);
    await b.handoff.settled('s1');
    expect(b.host.handedOverCalls).toEqual([]);
    expect(c.directory.ownerOf('alice', 's1')).toBe('b');
  });
});
