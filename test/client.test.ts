// The client SDK against real gateways: requests settled by id, presence map, reconnect with resume, token refresh.
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { GatewayClient, GatewayError, type WebSocketConstructor } from '../src/client';
import { sleep, startTestGateway, type TestGateway } from './helpers/gateway';

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
    expect(await alice.subscribe('h')).toEqual([{ userId: 'alice', meta: {}, since: expect.any(Number) }]);
    await alice.unsubscribe('h');
    expect(alice.members('h')).toEqual([]);
  });

  it('receives all 1000 messages of a stream in order, exactly once, across a server-side and a client-side cut; nobody sees it go DOWN', async () => {
    const gw = await startTestGateway({ GW_RATE_MSG_PER_10S: '100000' });
    const { Impl, sockets } = trackedWebSocket();
    const subscriber = client(gw, 'sub', ['stream'], { WebSocket: Impl });
    const publisher = client(gw, 'pub', ['stream']);
    const watcher = client(gw, 'watcher', ['stream']);
    await Promise.all([watcher.connect(), subscriber.connect(), publisher.connect()]);
    const presence: string[] = [];
    watcher.on('presence', (p) => presence.push(`${p.userId}:${p.status}`));
    const received: number[] = [];
    subscriber.on('data', (d) => received.push(d.payload as number));
    const resumes: boolean[] = [];
    subscriber.on('ready', (r) => resumes.push(r.resumed));

    for (let n = 1; n <= 1000; n++) {
      await publisher.publish('stream', n);
      if (n === 300) expect(gw.gateway.terminateConnection(subscriber.connectionId!)).toBe(true);
      if (n === 700) sockets.at(-1)!.terminate();
    }
    for (let i = 0; i < 100 && received.length < 1000; i++) await sleep(50);
    expect(received).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    expect(resumes).toEqual([true, true]);
    expect(sockets.length).toBe(3);
    expect(presence.filter((p) => p.startsWith('sub:'))).toEqual([]);
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
    const { Impl, network } = trackedWebSocket();
    const alice = client(gw, 'alice', ['g'], { WebSocket: Impl });
    await alice.connect();
    const first = alice.sessionId;
    const next = new Promise<{ resumed: boolean }>((resolve) => alice.on('ready', resolve));
    network.down = true;
    gw.gateway.terminateConnection(alice.connectionId!);
    await sleep(400);
    network.down = false;
    const ready = await next;
    expect(ready.resumed).toBe(false);
    expect(alice.sessionId).not.toBe(first);
    expect(alice.members('g').map((m) => m.userId)).toEqual(['alice']);
  });

  it('stops for good when the session is taken over elsewhere (4011)', async () => {
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
    sockets[0]!.resume();
    for (let i = 0; i < 40 && alice.state !== 'closed'; i++) await sleep(25);
    expect(alice.state).toBe('closed');
    expect(errors.join()).toContain('4011');
  });
});
