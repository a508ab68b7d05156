// Slow consumers: a client that stops reading is cut off (4010) and terminated; memory stays bounded; fast members get everything.
import { describe, expect, it } from 'vitest';
import { mintToken } from '../src/auth/jwt';
import { ProbeClient } from '../src/dev/ProbeClient';
import { sleep, startTestGateway, TEST_SECRET } from './helpers/gateway';
import { spawnGateway } from './helpers/process';

/** Server RSS may grow by at most this much while 48 MiB go past a paused subscriber (documented in README). */
const RSS_GROWTH_BOUND_BYTES = 24 * 1024 * 1024;
const MESSAGES = 800;
const PAYLOAD = 'p'.repeat(60_000);

describe('slow consumers', () => {
  it('cuts off a paused subscriber with 4010 while the fast one receives 48 MiB in order, within the memory bound', async () => {
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
    await sleep(300);
    const before = gw.rssBytes();
    let peak = before;
    // The publisher keeps at most WINDOW messages ahead of the fast reader, as a reader that keeps up would.
    const WINDOW = 8;
    for (let n = 0; n < MESSAGES; n++) {
      await receivedAtLeast(n - WINDOW);
      publisher.send('data_update', { group: 'g', payload: { n, data: PAYLOAD } });
      if (n % 50 === 0) peak = Math.max(peak, gw.rssBytes());
    }
    await receivedAtLeast(MESSAGES);
    peak = Math.max(peak, gw.rssBytes());
    console.log(`slow consumer: RSS before ${(before / 2 ** 20).toFixed(1)} MiB, peak ${(peak / 2 ** 20).toFixed(1)} MiB, growth ${((peak - before) / 2 ** 20).toFixed(1)} MiB`);
    expect(inOrder).toBe(true);
    expect(received).toBe(MESSAGES);
    expect(peak - before).toBeLessThan(RSS_GROWTH_BOUND_BYTES);
    slow.socket.resume();
    expect((await slow.closed).code).toBe(4010);
    expect(gw.stdout()).toContain('slow consumer cut off');
  }, 60_000);

  it('terminates a cut-off socket that does not close within the grace period and announces its user DOWN', async () => {
    const gw = await startTestGateway({ GW_SLOW_CONSUMER_BYTES: '65536', GW_SLOW_CONSUMER_GRACE_MS: '300', GW_RATE_MSG_PER_10S: '100000' });
    const watcher = await gw.join('watcher', ['g']);
    const slow = await gw.join('slow', ['g']);
    await watcher.next('presence_update');
    const publisher = await gw.join('publisher', ['g']);
    slow.socket.pause();
    const payload = 'x'.repeat(30_000);
    for (let n = 0; n < 200 && gw.gateway.connectionCount === 3; n++) {
      await publisher.request('data_update', { group: 'g', payload });
      await watcher.next('data_update');
    }
    const down = await watcher.next((e) => e.type === 'presence_update' && e.data!.userId === 'slow', 3000);
    expect(down.data!.status).toBe('DOWN');
    expect(gw.gateway.connectionCount).toBe(2);
    slow.socket.resume();
    expect((await slow.closed).code).not.toBe(1000);
  });
});
