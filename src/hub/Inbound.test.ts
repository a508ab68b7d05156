// Inbound: a connection's frames from arrival to their handler, over a fake connection and a fake Commands whose
// handlers resolve when the test says: the validation order and its codes, one frame at a time per connection,
// handler failures, the rate limit and its flood close, draining, and liveness on every frame.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { TokenBucket } from 'limiter';
import { Metrics } from '../metrics';
import type { ClientSignalType } from '../types/signals';
import { createLogger } from '../utils/logger';
import type { Commands } from './Commands';
import type { ConnectionContext, QueuedFrame } from './ConnectionContext';
import { Inbound } from './Inbound';
import { Liveness } from './Liveness';
import { createBucket } from './rateLimits';
import { Replies } from './Replies';
import type { Session } from './Session';

/** Buckets (and the flood threshold) large enough that tests not about the rate limit never reach them. */
const ROOMY = 1_000;
/** The message bucket (and so the flood threshold) and the heartbeat bucket of the rate-limit tests. */
const MESSAGES = 5;
const HEARTBEATS = 3;

type Written = { type: string; data: Record<string, unknown>; replyTo?: string } | { close: number; reason: string };

/** The fields Inbound (and Replies, Liveness) read and write on a connection; what is written, in order. */
interface FakeConnection {
  id: string;
  ip: string;
  isOpen: boolean;
  draining: boolean;
  session: Session | null;
  queue: QueuedFrame[] | null;
  buckets: { messages: TokenBucket; heartbeats: TokenBucket };
  rejectedStreak: number;
  lastSeenAt: number;
  alive: boolean;
  written: Written[];
  send(envelope: string): void;
  close(code: number, reason: string): void;
}

function fakeConnection(options: { identified?: boolean; messages?: number; heartbeats?: number } = {}): FakeConnection {
  const conn: FakeConnection = {
    id: 'c_test',
    ip: '203.0.113.7',
    isOpen: true,
    draining: false,
    session: options.identified === false ? null : ({ id: 's_test', userId: 'alice' } as Session),
    queue: null,
    buckets: { messages: createBucket(options.messages ?? ROOMY), heartbeats: createBucket(options.heartbeats ?? ROOMY) },
    rejectedStreak: 0,
    lastSeenAt: 0,
    alive: false,
    written: [],
    send(envelope) {
      const { type, data, replyTo } = JSON.parse(envelope) as { type: string; data: Record<string, unknown>; replyTo?: string };
      conn.written.push(replyTo === undefined ? { type, data } : { type, data, replyTo });
    },
    close(code, reason) {
      conn.written.push({ close: code, reason });
      conn.isOpen = false;
    },
  };
  return conn;
}

const asCtx = (conn: FakeConnection) => conn as unknown as ConnectionContext;

/** The `data` of a written envelope (failing the test on a close). */
function dataOf(written: Written | undefined): Record<string, unknown> {
  if (!written || 'close' in written) throw new Error(`expected an envelope, got ${JSON.stringify(written)}`);
  return written.data;
}

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

interface Dispatched {
  type: ClientSignalType;
  data: unknown;
  id: string | undefined;
}

/**
 * A Commands whose `dispatch` records each call and returns what `next` gives for it: undefined (handled at once),
 * a promise (the handler awaits), or a throw.
 */
function fakeCommands() {
  const calls: Dispatched[] = [];
  const fake = {
    calls,
    next: (_call: Dispatched): Promise<void> | undefined => undefined,
  };
  const commands = {
    dispatch: (_ctx: ConnectionContext, type: ClientSignalType, data: unknown, id: string | undefined) => {
      const call = { type, data, id };
      calls.push(call);
      return fake.next(call);
    },
  } as unknown as Commands;
  return { fake, commands };
}

const metricsFor = () => new Metrics({ connections: () => 0, sessions: () => 0, groups: () => 0, redis: () => undefined, dropped: () => 0, invalid: () => 0 });

/** gateway_messages_in_total by type (a scrape resets the pending counts). */
async function receivedCounts(metrics: Metrics): Promise<Record<string, number>> {
  const values = (await metrics.registry.getSingleMetric('gateway_messages_in_total')!.get()).values;
  return Object.fromEntries(values.filter((v) => v.value > 0).map((v) => [String(v.labels.type), v.value]));
}

function setup(options: { messagesPer10s?: number } = {}) {
  const metrics = metricsFor();
  const replies = new Replies(metrics);
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger('info', { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  // Never started: Inbound only calls `seen`.
  const liveness = new Liveness({ identifyTimeoutMs: 1_000, heartbeatTimeoutMs: 1_000, heartbeatIntervalMs: 500, tokenExpiryGraceMs: 1_000 }, new Map(), replies, logger);
  const { fake, commands } = fakeCommands();
  const inbound = new Inbound({ commands, replies, liveness, metrics, logger, messagesPer10s: options.messagesPer10s ?? ROOMY });
  const receive = (conn: FakeConnection, frame: unknown, isBinary = false) =>
    inbound.receive(asCtx(conn), Buffer.from(typeof frame === 'string' ? frame : JSON.stringify(frame)), isBinary);
  return { metrics, logs, fake, inbound, receive };
}

const error = (code: string, replyTo?: string) => (replyTo === undefined ? { type: 'error', data: expect.objectContaining({ code }) } : { type: 'error', data: expect.objectContaining({ code }), replyTo });
const codes = (conn: FakeConnection) => conn.written.map((w) => ('close' in w ? `close ${w.close}` : w.type === 'error' ? String(w.data.code) : w.type));

/**
 * A connection whose first frame, subscribe `a`, stays in its handler until the test settles `held`: frames received
 * after it wait in ctx.queue.
 */
function holdingFirst(options: Parameters<typeof setup>[0] = {}, connection: Parameters<typeof fakeConnection>[0] = {}) {
  const parts = setup(options);
  const conn = fakeConnection(connection);
  const held = deferred();
  parts.fake.next = (call) => (call.id === 'a' ? held.promise : undefined);
  parts.receive(conn, { type: 'subscribe', id: 'a', data: { group: 'g' } });
  return { ...parts, conn, held };
}

/** Resolves once the connection's queue has run dry (Inbound sets it back to null). */
const queueDrained = (conn: FakeConnection) => vi.waitFor(() => expect(conn.queue).toBeNull());

afterEach(() => {
  vi.restoreAllMocks();
});

describe('Inbound validation order', () => {
  it('BAD_JSON for a frame that is not JSON, with no replyTo', () => {
    const { fake, receive } = setup();
    const conn = fakeConnection();
    receive(conn, '{"type":"subscribe","id":"x1"');
    expect(conn.written).toEqual([{ type: 'error', data: { code: 'BAD_JSON', message: 'frame is not valid JSON' } }]);
    expect(fake.calls).toEqual([]);
  });

  it('INVALID_ENVELOPE for a binary frame and for too deep a frame', () => {
    const { fake, receive } = setup();
    const conn = fakeConnection();
    receive(conn, { type: 'heartbeat', id: 'b1' }, true);
    let deep: unknown = {};
    for (let i = 0; i < 70; i++) deep = { d: deep };
    receive(conn, { type: 'heartbeat', id: 'd1', data: deep });
    expect(conn.written).toEqual([error('INVALID_ENVELOPE'), error('INVALID_ENVELOPE')]);
    expect(fake.calls).toEqual([]);
  });

  it('INVALID_ENVELOPE replies to the id of a malformed envelope when that id is itself well-formed', () => {
    const { fake, receive } = setup();
    const conn = fakeConnection();
    receive(conn, { id: 'keep-me', type: 42 });
    receive(conn, { id: 'keep-me-too', type: 'subscribe', data: ['not', 'an', 'object'] });
    receive(conn, { id: 'x'.repeat(64), type: '' });
    // Not salvaged: too long, empty, not a string, not an object at all.
    receive(conn, { id: 'x'.repeat(65), type: 42 });
    receive(conn, { id: '', type: 42 });
    receive(conn, { id: 7, type: 'heartbeat' });
    receive(conn, [{ id: 'in-an-array', type: 'heartbeat' }]);
    receive(conn, '"a string"');
    expect(conn.written).toEqual([
      error('INVALID_ENVELOPE', 'keep-me'),
      error('INVALID_ENVELOPE', 'keep-me-too'),
      error('INVALID_ENVELOPE', 'x'.repeat(64)),
      error('INVALID_ENVELOPE'),
      error('INVALID_ENVELOPE'),
      error('INVALID_ENVELOPE'),
      error('INVALID_ENVELOPE'),
      error('INVALID_ENVELOPE'),
    ]);
    expect(dataOf(conn.written[0]).message).toMatch(/^envelope type: /);
    expect(fake.calls).toEqual([]);
  });

  it('UNKNOWN_TYPE comes before the identification check and the data check', () => {
    const { fake, receive } = setup();
    const anonymous = fakeConnection({ identified: false });
    receive(anonymous, { type: 'teleport', id: 'u1', data: { anything: true } });
    receive(anonymous, { type: '__proto__', id: 'u2' });
    receive(anonymous, { type: 'toString', id: 'u3' });
    expect(anonymous.written).toEqual([error('UNKNOWN_TYPE', 'u1'), error('UNKNOWN_TYPE', 'u2'), error('UNKNOWN_TYPE', 'u3')]);
    expect(dataOf(anonymous.written[0]).message).toBe('unknown type "teleport"');
    expect(fake.calls).toEqual([]);
  });

  it('NOT_IDENTIFIED for anything but identify before a session, even with bad data', () => {
    const { fake, receive } = setup();
    const anonymous = fakeConnection({ identified: false });
    for (const type of ['heartbeat', 'subscribe', 'unsubscribe', 'data_update', 'signal'] as const) {
      receive(anonymous, { type, id: `n-${type}`, data: { group: 'not a valid group!' } });
    }
    expect(anonymous.written).toEqual(['heartbeat', 'subscribe', 'unsubscribe', 'data_update', 'signal'].map((type) => error('NOT_IDENTIFIED', `n-${type}`)));
    expect(fake.calls).toEqual([]);
  });

  it('ALREADY_IDENTIFIED for a second identify, even with bad data', () => {
    const { fake, receive } = setup();
    const conn = fakeConnection();
    receive(conn, { type: 'identify', id: 'i2', data: {} });
    receive(conn, { type: 'identify', id: 'i3', data: { token: 't' } });
    expect(conn.written).toEqual([error('ALREADY_IDENTIFIED', 'i2'), error('ALREADY_IDENTIFIED', 'i3')]);
    expect(fake.calls).toEqual([]);
  });

  it('INVALID_ENVELOPE for data of the wrong shape, naming the field, once the type and identification pass', () => {
    const { fake, receive } = setup();
    const anonymous = fakeConnection({ identified: false });
    receive(anonymous, { type: 'identify', id: 'i1', data: { groups: ['g'] } });
    receive(anonymous, { type: 'identify', id: 'i2' });
    const conn = fakeConnection();
    receive(conn, { type: 'subscribe', id: 's1', data: { group: 'bad group!' } });
    receive(conn, { type: 'subscribe', id: 's2' });
    receive(conn, { type: 'data_update', id: 'd1', data: { group: 'g' } });
    receive(conn, { type: 'signal', id: 'g1', data: { group: 'g', kind: 'no spaces' } });
    const messages = [...anonymous.written, ...conn.written].map((w) => {
      expect(w).toMatchObject({ type: 'error', data: { code: 'INVALID_ENVELOPE' } });
      return String(dataOf(w).message);
    });
    expect(messages.map((m) => m.split(':')[0])).toEqual(['data.token', 'data.token', 'data.group', 'data.group', 'data.payload', 'data.kind']);
    expect([...anonymous.written, ...conn.written].map((w) => (w as { replyTo?: string }).replyTo)).toEqual(['i1', 'i2', 's1', 's2', 'd1', 'g1']);
    expect(fake.calls).toEqual([]);
  });

  it('dispatches a valid envelope with its parsed data and id, and counts frames in by type', async () => {
    const { fake, metrics, receive } = setup();
    const anonymous = fakeConnection({ identified: false });
    receive(anonymous, { type: 'identify', id: 'i1', data: { token: 'abc', groups: ['g'] } });
    const conn = fakeConnection();
    receive(conn, { type: 'subscribe', data: { group: 'g', extra: 1 } });
    receive(conn, { type: 'heartbeat', id: 'h1' });
    receive(conn, '{');
    expect(fake.calls).toEqual([
      { type: 'identify', data: { token: 'abc', groups: ['g'] }, id: 'i1' },
      // Unknown fields of `data` do not reach the handler.
      { type: 'subscribe', data: { group: 'g' }, id: undefined },
      { type: 'heartbeat', data: {}, id: 'h1' },
    ]);
    expect(await receivedCounts(metrics)).toEqual({ identify: 1, subscribe: 1, heartbeat: 1, invalid: 1 });
  });
});

describe('Inbound ordering', () => {
  it('handles one frame at a time: later frames wait in ctx.queue while a handler awaits, then run in arrival order', async () => {
    const { fake, receive } = setup();
    const conn = fakeConnection();
    const pending = new Map<string, Deferred>();
    fake.next = (call) => {
      if (call.id === 'a' || call.id === 'c') {
        const d = deferred();
        pending.set(call.id, d);
        return d.promise;
      }
      return undefined;
    };
    const subscribe = (id: string) => receive(conn, { type: 'subscribe', id, data: { group: `g-${id}` } });

    subscribe('a');
    subscribe('b');
    subscribe('c');
    subscribe('d');
    expect(fake.calls.map((c) => c.id)).toEqual(['a']);
    expect(conn.queue?.map((q) => q.replyTo)).toEqual(['b', 'c', 'd']);

    pending.get('a')!.resolve();
    // b is handled at once, c awaits: d stays queued until c's handler is done.
    await vi.waitFor(() => expect(fake.calls.map((c) => c.id)).toEqual(['a', 'b', 'c']));
    expect(conn.queue?.map((q) => q.replyTo)).toEqual(['d']);

    subscribe('e');
    expect(conn.queue?.map((q) => q.replyTo)).toEqual(['d', 'e']);
    pending.get('c')!.resolve();
    await queueDrained(conn);
    expect(fake.calls.map((c) => c.id)).toEqual(['a', 'b', 'c', 'd', 'e']);

    // Nothing pending: the next frame runs at once.
    subscribe('f');
    expect(fake.calls.map((c) => c.id)).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
    expect(conn.queue).toBeNull();
  });

  it('a queued frame that fails validation is refused in its turn, after the handler before it', async () => {
    const { fake, receive, conn, held } = holdingFirst();
    receive(conn, '{not json');
    receive(conn, { type: 'teleport', id: 'b' });
    receive(conn, { type: 'heartbeat', id: 'c' });
    expect(conn.written).toEqual([]);
    // The handler of `a` writes its reply when it finishes.
    void held.promise.then(() => conn.send(JSON.stringify({ type: 'subscribed', data: { group: 'g' }, replyTo: 'a' })));
    held.resolve();
    await queueDrained(conn);
    expect(codes(conn)).toEqual(['subscribed', 'BAD_JSON', 'UNKNOWN_TYPE']);
    expect(fake.calls.map((c) => c.id)).toEqual(['a', 'c']);
  });

  it('a handler that throws gets INTERNAL with its replyTo, and the next frame still runs', () => {
    const { fake, logs, receive } = setup();
    const conn = fakeConnection();
    fake.next = (call) => {
      if (call.id === 'boom') throw new Error('handler exploded');
      return undefined;
    };
    receive(conn, { type: 'subscribe', id: 'boom', data: { group: 'g' } });
    receive(conn, { type: 'heartbeat', id: 'after' });
    expect(conn.written).toEqual([{ type: 'error', data: { code: 'INTERNAL', message: 'the gateway could not handle this envelope' }, replyTo: 'boom' }]);
    expect(fake.calls.map((c) => c.id)).toEqual(['boom', 'after']);
    expect(conn.queue).toBeNull();
    expect(conn.isOpen).toBe(true);
    expect(logs).toContainEqual(expect.objectContaining({ msg: 'envelope handling failed', err: 'handler exploded', connectionId: 'c_test', userId: 'alice' }));
  });

  it('a handler that rejects gets INTERNAL, and the frames queued behind it run in order', async () => {
    const { fake, receive, conn, held } = holdingFirst();
    receive(conn, { type: 'heartbeat', id: 'b' });
    receive(conn, { type: 'unsubscribe', id: 'c', data: { group: 'g' } });
    held.reject(new Error('redis went away'));
    await queueDrained(conn);
    expect(conn.written).toEqual([error('INTERNAL', 'a')]);
    expect(fake.calls.map((c) => c.id)).toEqual(['a', 'b', 'c']);
  });

  it('a rejection in the middle of the queue does not stop it', async () => {
    const { fake, receive } = setup();
    const conn = fakeConnection();
    const a = deferred();
    const b = deferred();
    fake.next = (call) => (call.id === 'a' ? a.promise : call.id === 'b' ? b.promise : undefined);
    for (const id of ['a', 'b', 'c']) receive(conn, { type: 'subscribe', id, data: { group: 'g' } });
    a.resolve();
    await vi.waitFor(() => expect(fake.calls.map((c) => c.id)).toEqual(['a', 'b']));
    b.reject('not an Error');
    await queueDrained(conn);
    expect(fake.calls.map((c) => c.id)).toEqual(['a', 'b', 'c']);
    expect(conn.written).toEqual([error('INTERNAL', 'b')]);
  });
});

describe('Inbound rate limit', () => {
  it('refuses a frame over the bucket RATE_LIMITED with retryAfterMs and its replyTo, and does not dispatch it', async () => {
    const { fake, metrics, receive } = setup({ messagesPer10s: MESSAGES });
    const conn = fakeConnection({ messages: MESSAGES, heartbeats: HEARTBEATS });
    for (let i = 0; i < MESSAGES; i++) receive(conn, { type: 'subscribe', id: `ok-${i}`, data: { group: 'g' } });
    expect(conn.written).toEqual([]);
    receive(conn, { type: 'subscribe', id: 'over', data: { group: 'g' } });
    expect(fake.calls).toHaveLength(MESSAGES);
    expect(conn.written).toEqual([{ type: 'error', data: { code: 'RATE_LIMITED', message: 'too many envelopes; slow down', retryAfterMs: expect.any(Number) }, replyTo: 'over' }]);
    // One token of a bucket of MESSAGES refilled over 10 s: about 10 000 / MESSAGES ms away.
    const retryAfterMs = Number(dataOf(conn.written[0]).retryAfterMs);
    expect(retryAfterMs).toBeGreaterThan(10_000 / MESSAGES / 2);
    expect(retryAfterMs).toBeLessThanOrEqual(Math.ceil(10_000 / MESSAGES));
    expect(conn.rejectedStreak).toBe(1);
    expect(conn.isOpen).toBe(true);
    expect((await metrics.rateLimited.get()).values[0]?.value).toBe(1);
  });

  it('every frame spends a token, bad ones included, and the refusal salvages a well-formed id', () => {
    const { receive } = setup({ messagesPer10s: MESSAGES });
    const conn = fakeConnection({ messages: MESSAGES, heartbeats: HEARTBEATS });
    for (let i = 0; i < MESSAGES; i++) receive(conn, '{');
    receive(conn, { id: 'salvaged', type: 7 });
    expect(codes(conn)).toEqual([...Array<string>(MESSAGES).fill('BAD_JSON'), 'RATE_LIMITED']);
    expect(conn.written.at(-1)).toMatchObject({ replyTo: 'salvaged' });
  });

  it('the token is spent on arrival: a frame over the limit is refused at once, ahead of the frames queued before it', async () => {
    const { fake, receive, conn, held } = holdingFirst({ messagesPer10s: 2 }, { messages: 2 });
    receive(conn, { type: 'subscribe', id: 'b', data: { group: 'g' } });
    receive(conn, { type: 'subscribe', id: 'c', data: { group: 'g' } });
    expect(conn.written).toEqual([error('RATE_LIMITED', 'c')]);
    expect(conn.queue?.map((q) => q.replyTo)).toEqual(['b']);
    held.resolve();
    await queueDrained(conn);
    expect(fake.calls.map((c) => c.id)).toEqual(['a', 'b']);
  });

  it('heartbeats spend their own bucket: they pass when the message bucket is empty, and run out on their own', () => {
    const { fake, receive } = setup({ messagesPer10s: MESSAGES });
    const conn = fakeConnection({ messages: MESSAGES, heartbeats: HEARTBEATS });
    for (let i = 0; i < MESSAGES; i++) receive(conn, { type: 'subscribe', id: `m${i}`, data: { group: 'g' } });
    for (let i = 0; i < HEARTBEATS; i++) receive(conn, { type: 'heartbeat', id: `h${i}` });
    expect(conn.written).toEqual([]);
    expect(fake.calls.filter((c) => c.type === 'heartbeat')).toHaveLength(HEARTBEATS);
    receive(conn, { type: 'heartbeat', id: 'h-over' });
    receive(conn, { type: 'subscribe', id: 'm-over', data: { group: 'g' } });
    expect(conn.written).toEqual([error('RATE_LIMITED', 'h-over'), error('RATE_LIMITED', 'm-over')]);
    expect(fake.calls).toHaveLength(MESSAGES + HEARTBEATS);
  });

  it('an empty heartbeat bucket leaves the message bucket untouched', () => {
    const { fake, receive } = setup({ messagesPer10s: MESSAGES });
    const conn = fakeConnection({ messages: MESSAGES, heartbeats: HEARTBEATS });
    for (let i = 0; i <= HEARTBEATS; i++) receive(conn, { type: 'heartbeat', id: `h${i}` });
    expect(conn.written).toEqual([error('RATE_LIMITED', `h${HEARTBEATS}`)]);
    for (let i = 0; i < MESSAGES; i++) receive(conn, { type: 'subscribe', id: `m${i}`, data: { group: 'g' } });
    expect(conn.written).toHaveLength(1);
    expect(fake.calls.filter((c) => c.type === 'subscribe')).toHaveLength(MESSAGES);
  });

  it('a bucket’s worth of refusals in a row closes the connection with 4008', () => {
    const { logs, receive } = setup({ messagesPer10s: MESSAGES });
    const conn = fakeConnection({ messages: MESSAGES, heartbeats: HEARTBEATS });
    for (let i = 0; i < MESSAGES; i++) receive(conn, { type: 'subscribe', id: `ok${i}`, data: { group: 'g' } });
    for (let i = 0; i < MESSAGES - 1; i++) receive(conn, { type: 'subscribe', id: `no${i}`, data: { group: 'g' } });
    expect(codes(conn)).toEqual(Array<string>(MESSAGES - 1).fill('RATE_LIMITED'));
    expect(conn.isOpen).toBe(true);
    receive(conn, { type: 'subscribe', id: 'last straw', data: { group: 'g' } });
    expect(codes(conn)).toEqual([...Array<string>(MESSAGES).fill('RATE_LIMITED'), 'close 4008']);
    expect(conn.written.at(-1)).toEqual({ close: 4008, reason: 'rate limit exceeded' });
    expect(logs).toContainEqual(expect.objectContaining({ msg: 'closed for flooding', connectionId: 'c_test', userId: 'alice', ip: '203.0.113.7' }));
  });

  it('one accepted frame resets the streak: an accepted heartbeat, or a message once a token came back', () => {
    const { receive } = setup({ messagesPer10s: MESSAGES });
    const conn = fakeConnection({ messages: MESSAGES, heartbeats: HEARTBEATS });
    const subscribe = (id: string) => receive(conn, { type: 'subscribe', id, data: { group: 'g' } });
    for (let i = 0; i < MESSAGES; i++) subscribe(`ok${i}`);
    for (let i = 0; i < MESSAGES - 1; i++) subscribe(`no${i}`);
    expect(conn.rejectedStreak).toBe(MESSAGES - 1);

    receive(conn, { type: 'heartbeat', id: 'hb' });
    expect(conn.rejectedStreak).toBe(0);
    for (let i = 0; i < MESSAGES - 1; i++) subscribe(`again${i}`);
    expect(conn.rejectedStreak).toBe(MESSAGES - 1);

    // A token refilled.
    conn.buckets.messages.content = 1;
    subscribe('accepted');
    expect(conn.rejectedStreak).toBe(0);
    for (let i = 0; i < MESSAGES - 1; i++) subscribe(`more${i}`);
    expect(conn.isOpen).toBe(true);
    expect(codes(conn)).not.toContain('close 4008');
    subscribe('now it closes');
    expect(codes(conn).at(-1)).toBe('close 4008');
  });
});

describe('Inbound draining', () => {
  it('a draining connection’s frames are neither dispatched nor answered, nor charged', () => {
    const { fake, receive } = setup({ messagesPer10s: MESSAGES });
    const conn = fakeConnection({ messages: MESSAGES });
    conn.draining = true;
    for (let i = 0; i < MESSAGES + 2; i++) receive(conn, { type: 'subscribe', id: `s${i}`, data: { group: 'g' } });
    receive(conn, '{');
    expect(fake.calls).toEqual([]);
    expect(conn.written).toEqual([]);
    expect(conn.rejectedStreak).toBe(0);
    expect(conn.buckets.messages.tryRemoveTokens(MESSAGES)).toBe(true);
  });

  it('frames queued before the drain began are dropped when their turn comes', async () => {
    const { fake, receive, conn, held } = holdingFirst();
    receive(conn, { type: 'subscribe', id: 'b', data: { group: 'g' } });
    receive(conn, '{');
    conn.draining = true;
    held.resolve();
    await queueDrained(conn);
    expect(fake.calls.map((c) => c.id)).toEqual(['a']);
    expect(conn.written).toEqual([]);
  });

  it('frames queued on a connection that closed are dropped too', async () => {
    const { fake, receive, conn, held } = holdingFirst();
    receive(conn, { type: 'subscribe', id: 'b', data: { group: 'g' } });
    conn.isOpen = false;
    held.resolve();
    await queueDrained(conn);
    expect(fake.calls.map((c) => c.id)).toEqual(['a']);
  });
});

describe('Inbound liveness', () => {
  it('every frame updates lastSeenAt and marks the peer alive: good, bad, rate-limited and draining ones', () => {
    const { receive } = setup();
    const frames: [string, (conn: FakeConnection) => void][] = [
      ['valid', (c) => receive(c, { type: 'heartbeat' })],
      ['bad JSON', (c) => receive(c, '{')],
      ['binary', (c) => receive(c, { type: 'heartbeat' }, true)],
      ['unknown type', (c) => receive(c, { type: 'teleport' })],
      [
        'rate limited',
        (c) => {
          c.buckets.heartbeats.content = 0;
          receive(c, { type: 'heartbeat' });
        },
      ],
      [
        'draining',
        (c) => {
          c.draining = true;
          receive(c, { type: 'heartbeat' });
        },
      ],
    ];
    for (const [name, send] of frames) {
      const conn = fakeConnection();
      vi.spyOn(Date, 'now').mockReturnValue(1_234_567);
      send(conn);
      vi.restoreAllMocks();
      expect({ name, lastSeenAt: conn.lastSeenAt, alive: conn.alive }).toEqual({ name, lastSeenAt: 1_234_567, alive: true });
    }
  });

  it('an unidentified connection’s frames count as seen too', () => {
    const { receive } = setup();
    const conn = fakeConnection({ identified: false });
    vi.spyOn(Date, 'now').mockReturnValue(7_654_321);
    receive(conn, { type: 'subscribe', id: 'x', data: { group: 'g' } });
    expect(conn.lastSeenAt).toBe(7_654_321);
    expect(conn.alive).toBe(true);
    expect(conn.written).toEqual([error('NOT_IDENTIFIED', 'x')]);
  });
});
