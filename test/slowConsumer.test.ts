// Slow consumers: a client that stops reading is cut off (4010) and terminated; memory stays bounded; fast members get everything.
import { describe, expect, it } from 'vitest';
import { mintToken } from '../src/auth/jwt';
import { ProbeClient } from './helpers/ProbeClient';
import { startTestGateway, TEST_SECRET } from './helpers/gateway';
import { spawnGateway } from './helpers/process';

/**
 * While 3 × 48 MiB go past a paused subscriber, server RSS must level off: it may grow by at most PLATEAU_BYTES
 * between the end of the first and the end of the last round, and by at most GROWTH_BOUND_BYTES in all (documented
 * in README). Without the cut-off it grows by the volume sent, about 48 MiB a round.
 */
const PLATEAU_BYTES = 8 * 1024 * 1024;
const GROWTH_BOUND_BYTES = 32 * 1024 * 1024;
const ROUNDS = 3;
const MESSAGES_PER_ROUND = 800;
const MESSAGES = ROUNDS * MESSAGES_PER_ROUND;
const PAYLOAD = 'p'.repeat(60_000);

describe('slow consumers', () => {
  it('cuts off a paused subscriber with 4010 while the fast one receives 144 MiB in order; memory levels off', async () => {
    const gw = spawnGateway({
      GW_JWT_SECRET: TEST_SECRET,
      GW_PORT: '0',
      GW_HOST: '127.0.0.1',
      GW_RATE_MSG_PER_10S: '100000',
      GW_SLOW_CONSUMER_GRACE_MS: '30000',
    });
    const url = `ws://127.0.0.1:${await gw.port()}/rt`;
    const secret = new TextEncoder().encode(TEST_SECRET);
    const join = async (sub: string) => {
      const c = await ProbeClient.connect(url);
      await c.next('hello');
      expect((await c.identify(await mintToken({ sub, groups: ['g'] }, secret), ['g'])).type).toBe('ready');
      return c;
    };
    const slow = await join('slow');
    const fast = await join('fast');
    const publisher = await join('publisher');
    // A lean reader for the fast side: count and check order without keeping 48 MiB of envelopes around.
    let received = 0;
    let inOrder = true;
    let wake: (() => void) | null = null;
    fast.socket.on('message', (raw) => {
      const text = String(raw);
      if (!text.startsWith('{"type":"data_update"')) return;
      const n = Number(/"n":(\d+)/.exec(text)?.[1]);
      if (n !== received) inOrder = false;
      received++;
      wake?.();
    });
    const receivedAtLeast = (count: number) =>
      new Promise<void>((resolve) => {
        wake = () => {
          if (received >= count) resolve();
        };
        wake();
      });
    slow.socket.pause();
    const before = gw.rssBytes();
    const afterRound: number[] = [];
    // The publisher keeps at most WINDOW messages ahead of the fast reader, as a reader that keeps up would.
    const WINDOW = 8;
    for (let n = 0; n < MESSAGES; n++) {
      await receivedAtLeast(n - WINDOW);
      publisher.send('data_update', { group: 'g', payload: { n, data: PAYLOAD } });
      if ((n + 1) % MESSAGES_PER_ROUND === 0) {
        await receivedAtLeast(n + 1);
        afterRound.push(gw.rssBytes());
      }
    }
    const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
    console.log(`slow consumer: RSS before ${mib(before)}, after each 48 MiB round ${afterRound.map(mib).join(', ')}`);
    expect(inOrder).toBe(true);
    expect(received).toBe(MESSAGES);
    expect(afterRound.at(-1)! - afterRound[0]!).toBeLessThan(PLATEAU_BYTES);
    expect(Math.max(...afterRound) - before).toBeLessThan(GROWTH_BOUND_BYTES);
    slow.socket.resume();
    expect((await slow.closed).code).toBe(4010);
    expect(gw.stdout()).toContain('slow consumer cut off');
  }, 60_000);

  it('terminates a cut-off socket that does not close within the grace; its user stays UP until the orphan TTL', async () => {
    const gw = await startTestGateway({
      GW_SLOW_CONSUMER_BYTES: '65536',
      GW_SLOW_CONSUMER_GRACE_MS: '300',
      GW_ORPHAN_SESSION_TTL_MS: '1500',
      GW_RATE_MSG_PER_10S: '100000',
    });
    const watcher = await gw.join('watcher', ['g']);
    const slow = await gw.join('slow', ['g']);
    await watcher.next('presence_update');
    const publisher = await gw.join('publisher', ['g']);
    slow.socket.pause();
    const payload = 'x'.repeat(30_000);
    // Loopback's kernel buffers take a few MiB before anything queues in the gateway; publish until the cut-off ends it.
    // The session is orphaned when the socket is terminated, which is after the last time it was seen connected.
    let lastSeenConnected = Date.now();
    for (let n = 0; n < 2000 && gw.gateway.connectionCount === 3; n++) {
      lastSeenConnected = Date.now();
      await publisher.request('data_update', { group: 'g', payload });
      await watcher.next('data_update');
    }
    expect(gw.gateway.connectionCount).toBe(2);
    const down = await watcher.next((e) => e.type === 'presence_update' && e.data!.userId === 'slow', 5000);
    expect(down.data!.status).toBe('DOWN');
    expect(Date.now() - lastSeenConnected).toBeGreaterThanOrEqual(1500);
    slow.socket.resume();
    // Terminated: the 4010 close frame was still queued behind the data, and went with it.
    expect((await slow.closed).code).toBe(1006);
  });
});
