// The client SDK against real gateways: requests settled by id, presence map, reconnect with resume, token refresh.
import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { GatewayClient, GatewayError, type PresenceUpdate, type WebSocketConstructor } from '../src/client';
import { API_ENV, apiClient } from './helpers/api';
import { startTestGateway, type TestGateway } from './helpers/gateway';

/** `ws` that remembers every socket it opened, so a test can cut one as the network would, and that can be cut off from the network. */
function trackedWebSocket() {
  const sockets: WebSocket[] = [];
  const network = { down: false };
  class Tracked extends WebSocket {
    constructor(url: string) {
      super(network.down ? 'ws://127.0.0.1:1/rt' : url);
      sockets.push(this);
    }
  }
  return { Impl: Tracked as unknown as WebSocketConstructor, sockets, network };
}

function client(gw: TestGateway, userId: string, groups: string[], extra: Partial<ConstructorParameters<typeof GatewayClient>[0]> = {}) {
  const c = new GatewayClient({
    url: gw.wsUrl,
    getToken: () => gw.token({ sub: userId, groups: ['*'] }),
    groups,
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    initialBackoffMs: 50,
    ...extra,
  });
  cleanup.push(c);
  return c;
}

const cleanup: GatewayClient[] = [];
afterEach(() => {
  for (const c of cleanup.splice(0)) c.close();
});

describe('GatewayClient', () => {
  it('connects, joins its groups, publishes with acks, rejects refused requests with the protocol code', async () => {
    const gw = await startTestGateway();
    const alice = client(gw, 'alice', ['g']);
    const bob = client(gw, 'bob', ['g']);
    const states: string[] = [];
    alice.on('state', (s) => states.push(s));
    await alice.connect();
    await bob.connect();
    expect(states).toEqual(['connecting', 'ready']);
    const got = new Promise((resolve) => bob.on('data', resolve));
    await alice.publish('g', { hello: 'bob' });
    expect(await got).toMatchObject({ group: 'g', payload: { hello: 'bob' }, from: { userId: 'alice' }, seq: expect.any(Number) });
    const refused = await alice.publish('nope', 1).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(GatewayError);
    expect((refused as GatewayError).code).toBe('FORBIDDEN');
    expect(await alice.ping()).toBeGreaterThan(0);
  });

  it('keeps a local presence map per group from member lists and presence updates', async () => {
    const gw = await startTestGateway();
    const alice = client(gw, 'alice', ['g']);
    await alice.connect();
    const bob = client(gw, 'bob', ['g'], { meta: { device: 'phone' } });
    const up = new Promise((resolve) => alice.on('presence', resolve));
    await bob.connect();
    await up;
    expect(alice.members('g').map((m) => [m.userId, m.meta])).toEqual([
      ['alice', {}],
      ['bob', { device: 'phone' }],
    ]);
    const down = new Promise((resolve) => alice.on('presence', resolve));
    bob.close();
    expect(await down).toMatchObject({ userId: 'bob', status: 'DOWN' });
    expect(alice.members('g').map((m) => m.userId)).toEqual(['alice']);
    expect(await alice.subscribe('h')).toEqual([{ userId: 'alice', meta: {}, since: expect.any(Number), availability: 'online' }]);
    await alice.unsubscribe('h');
    expect(alice.members('h')).toEqual([]);
  });

  it('sets its presence with setPresence: the others’ maps show it (UPDATE), invisible removes it, and a fresh session starts with it', async () => {
    const gw = await startTestGateway(API_ENV);
    const alice = client(gw, 'alice', ['g']);
    await alice.connect();
    const events: PresenceUpdate[] = [];
    alice.on('presence', (e) => events.push(e));
    const bob = client(gw, 'bob', ['g'], { meta: { device: 'phone' }, availability: 'idle' });
    await bob.connect();
    await vi.waitFor(() => expect(alice.members('g').find((m) => m.userId === 'bob')).toMatchObject({ availability: 'idle', meta: { device: 'phone' } }));
    await bob.setPresence('dnd', { device: 'phone', status: 'focus' });
    await vi.waitFor(() => expect(alice.members('g').find((m) => m.userId === 'bob')).toMatchObject({ availability: 'dnd', meta: { status: 'focus' } }));
    await bob.setPresence('invisible');
    await vi.waitFor(() => expect(alice.members('g').map((m) => m.userId)).toEqual(['alice']));
    await bob.setPresence('online');
    await vi.waitFor(() => expect(alice.members('g').find((m) => m.userId === 'bob')).toMatchObject({ availability: 'online', meta: { status: 'focus' } }));
    expect(events.filter((e) => e.userId === 'bob').map((e) => [e.status, e.availability])).toEqual([
      ['UP', 'idle'],
      ['UPDATE', 'dnd'],
      ['DOWN', 'dnd'],
      ['UP', 'online'],
    ]);
    // A refused presence rejects with the protocol's code and changes nothing.
    const refused = await bob.setPresence('online', { big: 'x'.repeat(2000) }).catch((e: unknown) => e);
    expect((refused as GatewayError).code).toBe('PAYLOAD_TOO_LARGE');
    // Ended by a backend with "reconnect": a fresh session, which starts as bob last showed (a resume would keep it
    // anyway), the refused meta not included.
    await bob.setPresence('dnd');
    const fresh = new Promise<{ resumed: boolean }>((resolve) => bob.on('ready', resolve));
    expect(await apiClient(gw).ok('disconnect', { user: 'bob', reconnect: true })).toEqual({ sessions: 1 });
    expect(await fresh).toMatchObject({ resumed: false });
    expect((await apiClient(gw).ok('user', { user: 'bob' })) as unknown).toMatchObject({ sessions: [{ availability: 'dnd', state: 'attached' }] });
    await vi.waitFor(() => expect(alice.members('g').find((m) => m.userId === 'bob')).toMatchObject({ availability: 'dnd', meta: { device: 'phone', status: 'focus' } }));
  });

  /**
   * The publisher sends `total` messages, one acknowledged publish at a time. At each cut the subscriber's network goes
   * down (so its reconnects fail) and its connection is cut; after `gap` more publishes the network comes back and the
   * test waits for the SDK's `ready` before publishing on. Whether the resume beats the buffer is decided here, not by timing.
   */
  async function streamWithCuts(gw: TestGateway, total: number, cuts: { at: number; gap: number; side: 'server' | 'client' }[]) {
    const { Impl, sockets, network } = trackedWebSocket();
    const subscriber = client(gw, 'sub', ['stream'], { WebSocket: Impl, maxBackoffMs: 50 });
    const publisher = client(gw, 'pub', ['stream']);
    const watcher = client(gw, 'watcher', ['stream']);
    await Promise.all([watcher.connect(), subscriber.connect(), publisher.connect()]);
    // The joins reach the watcher in a batch after connect() resolved (or in its list): record from when it lists both.
    await vi.waitFor(() => expect(watcher.members('stream').map((m) => m.userId).sort()).toEqual(['pub', 'sub', 'watcher']));
    const presence: string[] = [];
    watcher.on('presence', (p) => presence.push(`${p.userId}:${p.status}`));
    const received: number[] = [];
    subscriber.on('data', (d) => received.push(d.payload as number));
    /** Every `ready` after the first connect. */
    const readies: boolean[] = [];
    subscriber.on('ready', (r) => readies.push(r.resumed));
    for (let n = 1; n <= total; n++) {
      const cut = cuts.find((c) => c.at === n);
      const back = cuts.find((c) => c.at + c.gap === n);
      if (back) {
        const ready = new Promise<void>((resolve) => {
          const off = subscriber.on('ready', () => {
            off();
            resolve();
          });
        });
        network.down = false;
        await ready;
      }
      await publisher.publish('stream', n);
      if (cut) {
        network.down = true;
        if (cut.side === 'server') expect(gw.gateway.terminateConnection(subscriber.connectionId!)).toBe(true);
        else sockets.at(-1)!.terminate();
      }
    }
    await vi.waitFor(() => expect(received.at(-1)).toBe(total), { timeout: 5000 });
    // Request/reply barriers: anything still on its way to either client was written before these replies.
    await Promise.all([subscriber.ping(), watcher.ping()]);
    return { received, readies, presence, sockets };
  }

  it('receives all 1000 messages of a stream in order, exactly once, across a server-side and a client-side cut; nobody sees it go DOWN', async () => {
    const gw = await startTestGateway({ GW_RATE_MSG_PER_10S: '100000' });
    const { received, readies, presence, sockets } = await streamWithCuts(gw, 1000, [
      { at: 300, gap: 400, side: 'server' },
      { at: 750, gap: 200, side: 'client' },
    ]);
    expect(received).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    expect(readies).toEqual([true, true]);
    expect(sockets.filter((s) => s.url === gw.wsUrl)).toHaveLength(3);
    expect(presence.filter((p) => p.startsWith('sub:'))).toEqual([]);
  });

  it('reports resumed: false when the gap outgrew the replay buffer, and goes on from the fresh session', async () => {
    const gw = await startTestGateway({ GW_RATE_MSG_PER_10S: '100000', GW_RESUME_BUFFER_MESSAGES: '50' });
    const { received, readies } = await streamWithCuts(gw, 200, [{ at: 20, gap: 80, side: 'server' }]);
    expect(readies).toEqual([false]);
    expect(received).toEqual([...Array.from({ length: 20 }, (_, i) => i + 1), ...Array.from({ length: 101 }, (_, i) => i + 100)]);
  });

  it('fetches a new token for every reconnect', async () => {
    const gw = await startTestGateway();
    let calls = 0;
    const alice = client(gw, 'alice', ['g'], {
      getToken: () => {
        calls++;
        return gw.token({ sub: 'alice', groups: ['g'] });
      },
    });
    await alice.connect();
    const resumed = new Promise((resolve) => alice.on('ready', resolve));
    gw.gateway.terminateConnection(alice.connectionId!);
    expect(await resumed).toMatchObject({ resumed: true });
    expect(calls).toBe(2);
  });

  it('starts a fresh session, rejoining its groups, when the session is gone', async () => {
    const gw = await startTestGateway({ GW_ORPHAN_SESSION_TTL_MS: '100' });
    const watcher = await gw.join('watcher', ['g']);
    const { Impl, network } = trackedWebSocket();
    const alice = client(gw, 'alice', ['g'], { WebSocket: Impl, maxBackoffMs: 50 });
    await alice.connect();
    await watcher.next('presence_update');
    const first = alice.sessionId;
    const next = new Promise<{ resumed: boolean }>((resolve) => alice.on('ready', resolve));
    network.down = true;
    gw.gateway.terminateConnection(alice.connectionId!);
    // The orphaned session expired: its DOWN is out.
    expect((await watcher.next('presence_update')).data).toMatchObject({ userId: 'alice', status: 'DOWN' });
    network.down = false;
    const ready = await next;
    expect(ready.resumed).toBe(false);
    expect(alice.sessionId).not.toBe(first);
    expect(alice.members('g').map((m) => m.userId)).toEqual(['watcher', 'alice']);
  });

  it('stops for good when the session is taken over elsewhere (4011): a pending request rejects with that close code', async () => {
    const gw = await startTestGateway();
    const { Impl, sockets } = trackedWebSocket();
    const alice = client(gw, 'alice', ['g'], { WebSocket: Impl });
    await alice.connect();
    const errors: string[] = [];
    alice.on('error', (e) => errors.push(e.message));
    const takeover = await gw.connect();
    sockets[0]!.pause();
    const reply = await takeover.request('identify', {
      token: await gw.token({ sub: 'alice', groups: ['g'] }),
      resume: { sessionId: alice.sessionId, sessionToken: (alice as unknown as { session: { token: string } }).session.token, lastSeq: 0 },
    });
    expect(reply.data!.resumed).toBe(true);
    // Sent after the gateway closed this connection: it is never answered, so only the close can settle it.
    const pending = alice.ping().catch((e: unknown) => e);
    sockets[0]!.resume();
    expect(await pending).toMatchObject({ name: 'GatewayError', code: 'CLOSED', closeCode: 4011 });
    expect(alice.state).toBe('closed');
    expect(errors.join()).toContain('4011');
  });

  it('rejects connect() with AUTH_FAILED and close code 4003, and stops instead of retrying a refused token', async () => {
    const gw = await startTestGateway();
    let calls = 0;
    const alice = client(gw, 'alice', ['g'], {
      getToken: () => {
        calls++;
        return 'not-a-jwt';
      },
    });
    const err = await alice.connect().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GatewayError);
    expect(err).toMatchObject({ code: 'AUTH_FAILED', closeCode: 4003 });
    expect(alice.state).toBe('closed');
    expect(calls).toBe(1);
  });

  it('rejects connect() with LIMIT_EXCEEDED and close code 4029 when the user has no connection left', async () => {
    const gw = await startTestGateway({ GW_MAX_CONNECTIONS_PER_USER: '1' });
    await client(gw, 'alice', ['g']).connect();
    const second = client(gw, 'alice', ['g']);
    expect(await second.connect().catch((e: unknown) => e)).toMatchObject({ name: 'GatewayError', code: 'LIMIT_EXCEEDED', closeCode: 4029 });
    expect(second.state).toBe('closed');
  });

  it('rejects connect() and requests waiting for ready with CLOSED (1000) when close() is called', async () => {
    const gw = await startTestGateway();
    const { Impl, network } = trackedWebSocket();
    network.down = true;
    const alice = client(gw, 'alice', ['g'], { WebSocket: Impl, maxBackoffMs: 50 });
    const connecting = alice.connect().catch((e: unknown) => e);
    const publishing = alice.publish('g', 1).catch((e: unknown) => e);
    alice.close();
    expect(await connecting).toMatchObject({ name: 'GatewayError', code: 'CLOSED', closeCode: 1000 });
    expect(await publishing).toMatchObject({ name: 'GatewayError', code: 'CLOSED', closeCode: 1000 });
  });

  it('gives up after maxReconnectAttempts: connect() rejects with DISCONNECTED and the last close code', async () => {
    const gw = await startTestGateway();
    const { Impl, network, sockets } = trackedWebSocket();
    network.down = true;
    const alice = client(gw, 'alice', ['g'], { WebSocket: Impl, maxBackoffMs: 20, maxReconnectAttempts: 3 });
    const errors: string[] = [];
    alice.on('error', (e) => errors.push(e.code));
    expect(await alice.connect().catch((e: unknown) => e)).toMatchObject({ name: 'GatewayError', code: 'DISCONNECTED', closeCode: 1006 });
    expect(sockets).toHaveLength(4);
    expect(alice.state).toBe('closed');
    expect(errors).toEqual(['DISCONNECTED']);
  });
});

describe('GatewayClient presence (diffs mode)', () => {
  /** `presence` events as `userId:STATUS` and `count` events, for one group, from now on. */
  function record(c: GatewayClient, group: string) {
    const presence: string[] = [];
    const counts: number[] = [];
    c.on('presence', (p) => p.group === group && presence.push(`${p.userId}:${p.status}`));
    c.on('count', (e) => e.group === group && counts.push(e.count));
    return { presence, counts };
  }
  const ids = (c: GatewayClient, group: string) => c.members(group).map((m) => m.userId);

  it('applies diffs to the map: a join is one UP, a second tab changes nothing, the last tab leaving is one DOWN; count follows', async () => {
    const gw = await startTestGateway();
    const alice = client(gw, 'alice', ['g']);
    const seen = record(alice, 'g');
    await alice.connect();
    expect(alice.count('g')).toBe(1);
    const phone = client(gw, 'bob', ['g'], { meta: { device: 'phone' } });
    await phone.connect();
    await vi.waitFor(() => expect(seen.presence).toEqual(['bob:UP']));
    const laptop = client(gw, 'bob', ['g'], { meta: { device: 'laptop' } });
    await laptop.connect();
    // Sentinel: carol's UP goes out in a later batch than anything bob's second tab could cause.
    await client(gw, 'carol', ['g']).connect();
    await vi.waitFor(() => expect(seen.presence).toContain('carol:UP'));
    expect(seen.presence).toEqual(['bob:UP', 'carol:UP']);
    expect(alice.members('g').find((m) => m.userId === 'bob')!.meta).toEqual({ device: 'phone' });

    laptop.close();
    await gw.connections(3);
    // Sentinel: erin's UP goes out after anything the close of bob's second tab caused (a DOWN would be before it).
    await client(gw, 'erin', ['g']).connect();
    await vi.waitFor(() => expect(seen.presence).toContain('erin:UP'));
    expect(seen.presence).toEqual(['bob:UP', 'carol:UP', 'erin:UP']);
    expect(alice.members('g').find((m) => m.userId === 'bob')!.meta).toEqual({ device: 'phone' });
    phone.close();
    await vi.waitFor(() => expect(seen.presence).toContain('bob:DOWN'));
    await client(gw, 'dave', ['g']).connect();
    await vi.waitFor(() => expect(seen.presence).toContain('dave:UP'));
    expect(seen.presence).toEqual(['bob:UP', 'carol:UP', 'erin:UP', 'bob:DOWN', 'dave:UP']);
    expect(ids(alice, 'g')).toEqual(['alice', 'carol', 'erin', 'dave']);
    expect(alice.count('g')).toBe(4);
    expect(seen.counts).toEqual([1, 2, 3, 4, 3, 4]);
    expect(alice.count('nope')).toBeUndefined();
  });

  it('loadMembers pages through a list of more than one page and replaces the map with it; diffs keep it complete', async () => {
    // Presence changes go out at the end of their turn: every joiner's UP is out before alice joins (a batch still on
    // its way, seen on a loaded machine, added 44 of them to her map after ready), and her own UP comes right after it.
    const gw = await startTestGateway({ GW_PRESENCE_BATCH_MS: '0' });
    const users = Array.from({ length: 150 }, (_, i) => `u${String(i).padStart(3, '0')}`);
    const probes = [];
    for (let i = 0; i < users.length; i += 25) probes.push(...(await Promise.all(users.slice(i, i + 25).map((u) => gw.join(u, ['big'])))));
    const sent: string[] = [];
    class Recording extends WebSocket {
      // The SDK sends each envelope as one string.
      override send(data: Parameters<WebSocket['send']>[0]): void {
        if (typeof data === 'string' && data.startsWith('{"type":"members"')) sent.push(data);
        super.send(data);
      }
    }
    const alice = client(gw, 'alice', ['big'], { WebSocket: Recording as unknown as WebSocketConstructor });
    await alice.connect();
    // The ready page (the 100 earliest) and alice herself, from her own UP.
    await vi.waitFor(() => expect(alice.members('big').map((m) => m.userId)).toContain('alice'));
    expect(alice.members('big')).toHaveLength(101);
    expect(alice.count('big')).toBe(151);
    const seen = record(alice, 'big');
    const list = await alice.loadMembers('big', { limit: 40 });
    expect(sent).toHaveLength(4);
    expect(list.map((m) => m.userId).sort()).toEqual([...users, 'alice'].sort());
    expect(new Set(list.map((m) => m.userId)).size).toBe(151);
    expect(alice.members('big')).toEqual(list);
    expect(list.map((m) => m.since)).toEqual([...list.map((m) => m.since)].sort((a, b) => a - b));
    // The 50 users beyond the first page were new to the map: one UP each.
    expect(seen.presence).toHaveLength(50);
    expect(seen.presence.every((p) => p.endsWith(':UP'))).toBe(true);

    await probes[0]!.close();
    await vi.waitFor(() => expect(seen.presence.at(-1)).toBe('u000:DOWN'));
    expect(alice.members('big')).toHaveLength(150);
    expect(alice.count('big')).toBe(150);
  });

  it('in a large group: counts only, watchPresence brings every change and a complete list, and lists are read again when diffs come back', async () => {
    const gw = await startTestGateway({ GW_PRESENCE_LARGE_GROUP: '3', GW_PRESENCE_COUNT_INTERVAL_MS: '50' });
    const probes = new Map<string, Awaited<ReturnType<TestGateway['join']>>>();
    const join = async (u: string) => probes.set(u, await gw.join(u, ['hall']));
    for (const u of ['u1', 'u2', 'u3', 'u4']) await join(u);
    const alice = client(gw, 'alice', ['hall']);
    await alice.connect();
    expect(ids(alice, 'hall')).toEqual(['u1', 'u2', 'u3', 'u4', 'alice']);
    const seen = record(alice, 'hall');

    // Counts only: u5's join moves the count, not the map.
    await join('u5');
    await vi.waitFor(() => expect(seen.counts).toEqual([6]));
    expect(seen.presence).toEqual([]);
    expect(ids(alice, 'hall')).not.toContain('u5');

    await alice.watchPresence('hall');
    expect(ids(alice, 'hall')).toEqual(['u1', 'u2', 'u3', 'u4', 'alice', 'u5']);
    expect(seen.presence).toEqual(['u5:UP']);
    await join('u6');
    await probes.get('u1')!.close();
    await vi.waitFor(() => expect(seen.presence).toEqual(['u5:UP', 'u6:UP', 'u1:DOWN']));
    expect(alice.count('hall')).toBe(6);

    // Not watching: u7's join comes as a count only (a diff, had there been one, would have come before it).
    await alice.watchPresence('hall', false);
    await join('u7');
    await vi.waitFor(() => expect(seen.counts.at(-1)).toBe(7));
    expect(seen.presence).toEqual(['u5:UP', 'u6:UP', 'u1:DOWN']);

    // Shrinking to 3 users (alice, u6, u7) while counts only; the first diff after that makes the SDK page the list again.
    for (const u of ['u2', 'u3', 'u4', 'u5']) await probes.get(u)!.close();
    await vi.waitFor(() => expect(ids(alice, 'hall').sort()).toEqual(['alice', 'u6', 'u7']));
    expect(alice.count('hall')).toBe(3);
    expect(seen.presence.slice(3).sort()).toEqual(['u2:DOWN', 'u3:DOWN', 'u4:DOWN', 'u5:DOWN', 'u7:UP']);
  });

  it('a fresh session (resumed: false) watches again and reloads the list: changes in a large group keep coming as diffs', async () => {
    const gw = await startTestGateway({ GW_PRESENCE_LARGE_GROUP: '3', GW_PRESENCE_COUNT_INTERVAL_MS: '50', GW_ORPHAN_SESSION_TTL_MS: '100' });
    const probes = await Promise.all(['u1', 'u2', 'u3', 'u4'].map((u) => gw.join(u, ['hall'])));
    // u2 watches too, in the default mode: it hears every change, as presence_update.
    expect((await probes[1]!.request('presence_watch', { group: 'hall', watch: true })).type).toBe('ack');
    const heard = (userId: string, status: string) => vi.waitFor(() => expect(probes[1]!.pending('presence_update').map((e) => `${String(e.data!.userId)}:${String(e.data!.status)}`)).toContain(`${userId}:${status}`));
    const { Impl, network } = trackedWebSocket();
    const alice = client(gw, 'alice', ['hall'], { WebSocket: Impl, maxBackoffMs: 50 });
    await alice.connect();
    await alice.watchPresence('hall');
    const fresh = new Promise<{ resumed: boolean }>((resolve) => alice.on('ready', resolve));
    network.down = true;
    expect(gw.gateway.terminateConnection(alice.connectionId!)).toBe(true);
    // While alice is away her session expires and the list changes: u1 leaves, u5 joins.
    await heard('alice', 'DOWN');
    await probes[0]!.close();
    await gw.join('u5', ['hall']);
    await heard('u1', 'DOWN');
    await heard('u5', 'UP');
    const seen = record(alice, 'hall');
    network.down = false;
    expect((await fresh).resumed).toBe(false);
    await vi.waitFor(() => expect(ids(alice, 'hall').sort()).toEqual(['alice', 'u2', 'u3', 'u4', 'u5']));
    expect(seen.presence.sort()).toEqual(['u1:DOWN', 'u5:UP']);
    // Still watched: u6's join is a diff, not a count.
    await gw.join('u6', ['hall']);
    await vi.waitFor(() => expect(seen.presence).toContain('u6:UP'));
  });

  it('no flap on resume: unchanged members emit nothing on either side; changes made while away are each emitted once', async () => {
    const gw = await startTestGateway();
    const { Impl, network } = trackedWebSocket();
    const alice = client(gw, 'alice', ['g']);
    const carol = client(gw, 'carol', ['g']);
    await Promise.all([alice.connect(), carol.connect()]);
    const bob = client(gw, 'bob', ['g'], { WebSocket: Impl, maxBackoffMs: 50 });
    await bob.connect();
    await vi.waitFor(() => expect(ids(alice, 'g').sort()).toEqual(['alice', 'bob', 'carol']));
    await vi.waitFor(() => expect(ids(bob, 'g').sort()).toEqual(['alice', 'bob', 'carol']));
    const atAlice = record(alice, 'g');
    const atBob = record(bob, 'g');
    const resumed = new Promise<{ resumed: boolean }>((resolve) => bob.on('ready', resolve));

    network.down = true;
    expect(gw.gateway.terminateConnection(bob.connectionId!)).toBe(true);
    carol.close();
    await vi.waitFor(() => expect(atAlice.presence).toEqual(['carol:DOWN']));
    await client(gw, 'dave', ['g']).connect();
    await vi.waitFor(() => expect(atAlice.presence).toEqual(['carol:DOWN', 'dave:UP']));
    network.down = false;
    expect((await resumed).resumed).toBe(true);

    // Sentinel: eve joins after the resume; her UP comes after whatever the resume and its replay caused.
    await client(gw, 'eve', ['g']).connect();
    await vi.waitFor(() => expect(atBob.presence).toContain('eve:UP'));
    await vi.waitFor(() => expect(atAlice.presence).toContain('eve:UP'));
    expect(atBob.presence).toEqual(['carol:DOWN', 'dave:UP', 'eve:UP']);
    expect(atAlice.presence).toEqual(['carol:DOWN', 'dave:UP', 'eve:UP']);
    expect(ids(bob, 'g').sort()).toEqual(['alice', 'bob', 'dave', 'eve']);
    expect(bob.count('g')).toBe(4);
  });
});

describe('GatewayClient token refresh', () => {
  /** The gateway serves a connection only this long past its token's `exp`: a missed refresh shows within the test. */
  const SHORT_GRACE = { GW_TOKEN_EXPIRY_GRACE_MS: '300', GW_HEARTBEAT_INTERVAL_MS: '500' };

  it('stays connected for 20 s on 3-second tokens, refreshing in band through getToken (a failed fetch and a refused token retried): no disconnect, no missed message', async () => {
    const gw = await startTestGateway(SHORT_GRACE);
    let calls = 0;
    const alice = client(gw, 'alice', ['g'], {
      getToken: () => {
        calls++;
        if (calls === 3) throw new Error('token endpoint unavailable');
        return gw.token({ sub: calls === 5 ? 'mallory' : 'alice', groups: ['g'], ttl: 3 });
      },
    });
    const states: string[] = [];
    const errors: string[] = [];
    const received: { n: number; seq: number }[] = [];
    alice.on('state', (s) => states.push(s));
    alice.on('error', (e) => errors.push(e.code));
    alice.on('data', (d) => received.push({ n: d.payload as number, seq: d.seq }));
    await alice.connect();
    const connectionId = alice.connectionId;
    const bob = client(gw, 'bob', ['g']);
    await bob.connect();
    // Bob's join is numbered for alice before the stream: the stream's seqs are consecutive.
    await vi.waitFor(() => expect(alice.count('g')).toBe(2));

    const total = 100;
    for (let n = 1; n <= total; n++) {
      await bob.publish('g', n);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await vi.waitFor(() => expect(received.at(-1)?.n).toBe(total));

    expect(states).toEqual(['connecting', 'ready']);
    expect(alice.connectionId).toBe(connectionId);
    expect(received.map((r) => r.n)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    const seqs = received.map((r) => r.seq);
    expect(seqs).toEqual(Array.from({ length: total }, (_, i) => seqs[0]! + i));
    // 3-second tokens over 20 s: a refresh at least every 3 s, plus the first token and the two failures.
    expect(calls).toBeGreaterThanOrEqual(9);
    expect(errors).toEqual(['AUTH_FAILED']);
  }, 40_000);

  it('when every refresh fails the gateway closes with 4004, and the reconnect resumes with a fresh token: nothing missed', async () => {
    const gw = await startTestGateway(SHORT_GRACE);
    let failing = false;
    const alice = client(gw, 'alice', ['g'], {
      getToken: () => {
        if (failing) throw new Error('token endpoint unavailable');
        return gw.token({ sub: 'alice', groups: ['g'], ttl: 2 });
      },
    });
    const received: number[] = [];
    const readies: boolean[] = [];
    const errors: string[] = [];
    alice.on('data', (d) => received.push(d.payload as number));
    alice.on('error', (e) => errors.push(e.code));
    await alice.connect();
    alice.on('ready', (r) => readies.push(r.resumed));
    const bob = client(gw, 'bob', ['g']);
    await bob.connect();
    failing = true;
    const reconnecting = new Promise<void>((resolve) => alice.on('state', (s) => s === 'reconnecting' && resolve()));
    await bob.publish('g', 1);
    await reconnecting;
    // The gateway closed it for its token (the refresh failures themselves emit nothing: the provider threw).
    expect(errors).toEqual(['TOKEN_EXPIRED']);
    await bob.publish('g', 2);
    failing = false;
    await vi.waitFor(() => expect(readies).toEqual([true]), { timeout: 5000 });
    await bob.publish('g', 3);
    await vi.waitFor(() => expect(received).toEqual([1, 2, 3]));
  });

  it('a refreshed token that no longer grants a group: unsubscribed (not_granted), and the group is dropped from the client', async () => {
    const gw = await startTestGateway(SHORT_GRACE);
    let calls = 0;
    const alice = client(gw, 'alice', ['a', 'b'], { getToken: () => gw.token({ sub: 'alice', groups: ++calls === 1 ? ['a', 'b'] : ['a'], ttl: 2 }) });
    const removed = new Promise((resolve) => alice.on('unsubscribed', resolve));
    await alice.connect();
    expect(alice.count('b')).toBe(1);
    expect(await removed).toEqual({ group: 'b', reason: 'not_granted' });
    expect(alice.count('b')).toBeUndefined();
    expect(alice.count('a')).toBe(1);
  });
});

describe('GatewayClient and the server API (disconnect, unsubscribe)', () => {
  it('disconnect without reconnect (4005 REVOKED) ends the client for good: a pending request rejects with REVOKED and 4005, no reconnect', async () => {
    const gw = await startTestGateway(API_ENV);
    const { Impl, sockets } = trackedWebSocket();
    let tokens = 0;
    const alice = client(gw, 'alice', ['g'], { WebSocket: Impl, getToken: () => (tokens++, gw.token({ sub: 'alice', groups: ['*'] })) });
    await alice.connect();
    const errors: { code: string; message: string }[] = [];
    alice.on('error', (e) => errors.push(e));
    const states: string[] = [];
    alice.on('state', (s) => states.push(s));
    sockets[0]!.pause();
    expect(await apiClient(gw).ok('disconnect', { user: 'alice', reason: 'account closed' })).toEqual({ sessions: 1 });
    // Sent after the gateway closed this connection: it is never answered, so only the close can settle it.
    const pending = alice.ping().catch((e: unknown) => e);
    sockets[0]!.resume();
    expect(await pending).toMatchObject({ name: 'GatewayError', code: 'REVOKED', closeCode: 4005 });
    expect(alice.state).toBe('closed');
    // The gateway's error (the backend's reason), then the close that ends the client.
    expect(errors).toEqual([
      { code: 'REVOKED', message: 'account closed' },
      { code: 'CLOSED', message: 'closed by the gateway with 4005: account closed' },
    ]);
    expect(states).toEqual(['closed']);
    expect([tokens, sockets.length, gw.gateway.sessionCount]).toEqual([1, 1, 0]);
  });

  it('disconnect with reconnect (4006 SESSION_ENDED) reconnects at once into a fresh session, rejoining its groups', async () => {
    const gw = await startTestGateway(API_ENV);
    const watcher = await gw.join('watcher', ['g']);
    const alice = client(gw, 'alice', ['g']);
    await alice.connect();
    await watcher.next('presence_update');
    const first = alice.sessionId;
    const next = new Promise<{ resumed: boolean }>((resolve) => alice.on('ready', resolve));
    expect(await apiClient(gw).ok('disconnect', { user: 'alice', session: first, reconnect: true })).toEqual({ sessions: 1 });
    expect(await next).toEqual(expect.objectContaining({ resumed: false }));
    expect(alice.sessionId).not.toBe(first);
    expect(alice.state).toBe('ready');
    expect(alice.members('g').map((m) => m.userId)).toEqual(['watcher', 'alice']);
    expect(gw.gateway.sessionCount).toBe(2);
  });

  it('unsubscribe: the client emits unsubscribed (server) and drops the group, keeping the others', async () => {
    const gw = await startTestGateway(API_ENV);
    const alice = client(gw, 'alice', ['a', 'b']);
    const removed = new Promise((resolve) => alice.on('unsubscribed', resolve));
    await alice.connect();
    expect(await apiClient(gw).ok('unsubscribe', { user: 'alice', group: 'b' })).toEqual({ sessions: 1 });
    expect(await removed).toEqual({ group: 'b', reason: 'server' });
    expect(alice.count('b')).toBeUndefined();
    expect(alice.count('a')).toBe(1);
  });
});
