// Liveness: the one sweep over every connection, on fake timers: identify timeout, heartbeat timeout, token expiry,
// pings for silent connections and the terminate of those that did not answer.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Metrics } from '../metrics';
import { createLogger } from '../utils/logger';
import type { ConnectionContext } from './ConnectionContext';
import { Liveness } from './Liveness';
import { Replies } from './Replies';
import type { Session } from './Session';

const IDENTIFY_TIMEOUT_MS = 1_000;
const HEARTBEAT_INTERVAL_MS = 1_000;
const HEARTBEAT_TIMEOUT_MS = 3_000;
const EXPIRY_GRACE_MS = 500;
/** The sweep period these timings give (a fifth of the shortest). */
const TICK_MS = 200;

type Event = 'ping' | 'terminate' | { close: number; reason: string } | { error: string };

/** The fields Liveness reads and the calls it makes, recorded. */
interface FakeConnection {
  isOpen: boolean;
  session: Session | null;
  identifying: boolean;
  openedAt: number;
  lastSeenAt: number;
  alive: boolean;
  socket: { ping(): void };
  close(code: number, reason: string): void;
  terminate(): void;
  send(envelope: string): void;
  events: Event[];
}

function fakeConnection(fields: Partial<Pick<FakeConnection, 'session' | 'identifying'>> = {}, onPing?: (conn: FakeConnection) => void): FakeConnection {
  const now = Date.now();
  const conn: FakeConnection = {
    isOpen: true,
    session: null,
    identifying: false,
    openedAt: now,
    lastSeenAt: now,
    alive: true,
    events: [],
    socket: {
      ping: () => {
        conn.events.push('ping');
        onPing?.(conn);
      },
    },
    close(code, reason) {
      conn.events.push({ close: code, reason });
      conn.isOpen = false;
    },
    terminate() {
      conn.events.push('terminate');
      conn.isOpen = false;
    },
    send(envelope) {
      conn.events.push({ error: (JSON.parse(envelope) as { data: { code: string } }).data.code });
    },
    ...fields,
  };
  return conn;
}

/** A session whose token outlives every test. */
const aSession = { expiresAt: Number.MAX_SAFE_INTEGER } as Session;
const asCtx = (conn: FakeConnection) => conn as unknown as ConnectionContext;

describe('Liveness', () => {
  let connections: Map<string, ConnectionContext>;
  let liveness: Liveness;

  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
    connections = new Map();
    const replies = new Replies({ sent() {} } as unknown as Metrics);
    liveness = new Liveness(
      { identifyTimeoutMs: IDENTIFY_TIMEOUT_MS, heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS, heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS, tokenExpiryGraceMs: EXPIRY_GRACE_MS },
      connections,
      replies,
      createLogger('silent'),
    );
  });

  afterEach(() => {
    liveness.stop();
    vi.useRealTimers();
  });

  const add = (conn: FakeConnection) => {
    connections.set(`c${connections.size}`, asCtx(conn));
    return conn;
  };

  it('sweeps on one timer, every fifth of the shortest timeout: a deadline is acted on at the next sweep', () => {
    expect(vi.getTimerCount()).toBe(0);
    liveness.start();
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(150);
    const a = add(fakeConnection()); // due at 1150: the sweep at 1200 sees it
    vi.advanceTimersByTime(100);
    const b = add(fakeConnection()); // due at 1250: the sweep at 1400 sees it
    vi.advanceTimersByTime(1200 - 250 - 1);
    expect([a.events, b.events]).toEqual([[], []]);
    vi.advanceTimersByTime(1);
    expect(a.events).toEqual([{ error: 'IDENTIFY_TIMEOUT' }, { close: 4001, reason: 'identify timeout' }]);
    vi.advanceTimersByTime(TICK_MS - 1);
    expect(b.events).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(b.events).toEqual([{ error: 'IDENTIFY_TIMEOUT' }, { close: 4001, reason: 'identify timeout' }]);
    expect(vi.getTimerCount()).toBe(1);
  });

  it('refuses IDENTIFY_TIMEOUT and closes 4001 when no identify came in time', () => {
    liveness.start();
    const late = add(fakeConnection());
    vi.advanceTimersByTime(IDENTIFY_TIMEOUT_MS - TICK_MS);
    expect(late.events).toEqual([]);
    vi.advanceTimersByTime(TICK_MS);
    expect(late.events).toEqual([{ error: 'IDENTIFY_TIMEOUT' }, { close: 4001, reason: 'identify timeout' }]);
    // Closed: never swept again.
    vi.advanceTimersByTime(HEARTBEAT_TIMEOUT_MS * 2);
    expect(late.events).toHaveLength(2);
  });

  it('does not time out a connection whose identify is in progress, nor one that is identified', () => {
    liveness.start();
    const sentinel = add(fakeConnection());
    const identifying = add(fakeConnection({ identifying: true }, (c) => liveness.ponged(asCtx(c))));
    const identified = add(fakeConnection({ session: aSession }, (c) => liveness.ponged(asCtx(c))));
    vi.advanceTimersByTime(IDENTIFY_TIMEOUT_MS);
    expect(sentinel.events).toEqual([{ error: 'IDENTIFY_TIMEOUT' }, { close: 4001, reason: 'identify timeout' }]);
    // Silent for an interval, they got a ping in that same sweep, and nothing else.
    expect(identifying.events).toEqual(['ping']);
    expect(identified.events).toEqual(['ping']);
  });

  it('closes 4009 an identified connection that answers pings but sends no frame for heartbeatTimeoutMs', () => {
    liveness.start();
    const conn = add(fakeConnection({ session: aSession }, (c) => liveness.ponged(asCtx(c))));
    vi.advanceTimersByTime(HEARTBEAT_TIMEOUT_MS - TICK_MS);
    expect(conn.events).toEqual(['ping', 'ping']);
    vi.advanceTimersByTime(TICK_MS);
    expect(conn.events).toEqual(['ping', 'ping', { close: 4009, reason: 'heartbeat timeout' }]);
  });

  it('refuses TOKEN_EXPIRED and closes 4004 at the sweep after expiresAt + the grace, however lively the connection', () => {
    liveness.start();
    const expiresAt = Date.now() + 1_000;
    const conn = add(fakeConnection({ session: { expiresAt } as Session }));
    const refreshed = add(fakeConnection({ session: { expiresAt } as Session }));
    const until = (at: number) => {
      while (Date.now() < at) {
        vi.advanceTimersByTime(TICK_MS);
        for (const c of [conn, refreshed]) liveness.seen(asCtx(c), Date.now());
      }
    };
    until(expiresAt);
    // A refresh moves the deadline: the sweep reads the session's expiry each time.
    (refreshed.session as { expiresAt: number }).expiresAt = expiresAt + 10_000;
    until(expiresAt + EXPIRY_GRACE_MS - TICK_MS);
    expect(conn.events).toEqual([]);
    until(expiresAt + EXPIRY_GRACE_MS);
    expect(conn.events).toEqual([{ error: 'TOKEN_EXPIRED' }, { close: 4004, reason: 'token expired' }]);
    expect(refreshed.events).toEqual([]);
  });

  it('pings a silent connection once per interval and terminates it when no pong came by the next one', () => {
    liveness.start();
    const conn = add(fakeConnection({ session: aSession }));
    vi.advanceTimersByTime(HEARTBEAT_INTERVAL_MS);
    expect(conn.events).toEqual(['ping']);
    expect(conn.alive).toBe(false);
    vi.advanceTimersByTime(HEARTBEAT_INTERVAL_MS - TICK_MS);
    expect(conn.events).toEqual(['ping']);
    vi.advanceTimersByTime(TICK_MS);
    expect(conn.events).toEqual(['ping', 'terminate']);
  });

  it('a pong keeps a silent connection: pinged again at the next interval instead of terminated', () => {
    liveness.start();
    const conn = add(fakeConnection({ session: aSession }));
    vi.advanceTimersByTime(HEARTBEAT_INTERVAL_MS);
    expect(conn.events).toEqual(['ping']);
    liveness.ponged(asCtx(conn));
    vi.advanceTimersByTime(HEARTBEAT_INTERVAL_MS);
    expect(conn.events).toEqual(['ping', 'ping']);
  });

  it('does not ping a connection that sent frames within the interval', () => {
    liveness.start();
    const silent = add(fakeConnection({ session: aSession }, (c) => liveness.ponged(asCtx(c))));
    const chatty = add(fakeConnection({ session: aSession }));
    for (let t = 0; t < HEARTBEAT_TIMEOUT_MS * 2; t += 400) {
      vi.advanceTimersByTime(400);
      liveness.seen(asCtx(chatty), Date.now());
    }
    // The silent one, swept alongside, was pinged at every interval (and then closed 4009).
    expect(silent.events).toEqual(['ping', 'ping', { close: 4009, reason: 'heartbeat timeout' }]);
    expect(chatty.events).toEqual([]);
    expect(chatty.alive).toBe(true);
  });

  it('seen records the time and proves the peer alive; ponged proves it alive only', () => {
    const conn = fakeConnection({ session: aSession });
    conn.alive = false;
    liveness.seen(asCtx(conn), 1_234_567);
    expect(conn.lastSeenAt).toBe(1_234_567);
    expect(conn.alive).toBe(true);
    conn.alive = false;
    liveness.ponged(asCtx(conn));
    expect(conn.alive).toBe(true);
    expect(conn.lastSeenAt).toBe(1_234_567);
  });

  it('a frame after a ping counts as its answer: no terminate', () => {
    liveness.start();
    const conn = add(fakeConnection({ session: aSession }));
    vi.advanceTimersByTime(HEARTBEAT_INTERVAL_MS);
    expect(conn.events).toEqual(['ping']);
    liveness.seen(asCtx(conn), Date.now());
    vi.advanceTimersByTime(HEARTBEAT_INTERVAL_MS);
    // Seen at the last ping: silent for exactly one interval, so pinged again, not terminated.
    expect(conn.events).toEqual(['ping', 'ping']);
  });

  it('skips connections that are no longer open', () => {
    liveness.start();
    const sentinel = add(fakeConnection());
    const closing = add(fakeConnection());
    closing.isOpen = false;
    vi.advanceTimersByTime(IDENTIFY_TIMEOUT_MS * 3);
    expect(sentinel.events).toEqual([{ error: 'IDENTIFY_TIMEOUT' }, { close: 4001, reason: 'identify timeout' }]);
    expect(closing.events).toEqual([]);
  });

  it('stop() clears the sweep timer', () => {
    liveness.start();
    expect(vi.getTimerCount()).toBe(1);
    const conn = add(fakeConnection());
    liveness.stop();
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(IDENTIFY_TIMEOUT_MS * 10);
    expect(conn.events).toEqual([]);
    liveness.stop(); // twice is harmless
    liveness.start();
    vi.advanceTimersByTime(TICK_MS);
    expect(conn.events).toEqual([{ error: 'IDENTIFY_TIMEOUT' }, { close: 4001, reason: 'identify timeout' }]);
  });
});
