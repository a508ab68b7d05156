// Prometheus /metrics: served on its own port (never the public one), optionally behind a token, with live values.
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { startTestGateway } from './helpers/gateway';

const value = (text: string, series: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('metrics', () => {
  it('exposes connections, sessions, groups, messages in/out, fan-out latency, rate limits and process metrics', async () => {
    // Presence batches go out at the end of each turn: each join's UP is a batch of its own, sent before the next join.
    const gw = await startTestGateway({ GW_RATE_MSG_PER_10S: '3', GW_PRESENCE_BATCH_MS: '0' });
    const metricsUrl = `http://127.0.0.1:${gw.gateway.internalPort}`;
    const alice = await gw.join('alice', ['g']);
    const bob = await gw.join('bob', ['g']);
    const carol = await gw.join('carol', ['g']);
    // Every presence_update has arrived (bob's UP to alice, carol's to alice and bob) before the data_update.
    for (const c of [alice, bob]) await c.next((e) => e.type === 'presence_update' && e.data!.userId === 'carol');
    await alice.request('data_update', { group: 'g', payload: 1 });
    await bob.next('data_update');
    await carol.next('data_update');
    alice.sendRaw('{oops');
    await alice.next('error');
    await alice.request('heartbeat');
    alice.send('data_update', { group: 'g', payload: 2 });
    // Every series below is updated before the reply or fan-out that the lines above waited for.
    await alice.next((e) => e.type === 'error' && e.data!.code === 'RATE_LIMITED');

    const res = await request(metricsUrl).get('/metrics').expect(200).expect('content-type', /text\/plain/);
    const text = res.text;
    expect(value(text, 'gateway_connections')).toBe(3);
    expect(value(text, 'gateway_sessions')).toBe(3);
    expect(value(text, 'gateway_groups')).toBe(1);
    expect(value(text, 'gateway_messages_in_total{type="identify"}')).toBe(3);
    expect(value(text, 'gateway_messages_in_total{type="data_update"}')).toBe(2);
    expect(value(text, 'gateway_messages_in_total{type="invalid"}')).toBe(1);
    expect(value(text, 'gateway_messages_out_total{type="data_update"}')).toBe(2);
    expect(value(text, 'gateway_messages_out_total{type="ready"}')).toBe(3);
    expect(value(text, 'gateway_messages_out_total{type="presence_update"}')).toBe(3);
    expect(value(text, 'gateway_rate_limited_total')).toBe(1);
    expect(value(text, 'gateway_slow_consumers_total')).toBe(0);
    // One fan-out per presence batch (alice's, bob's and carol's UP) and one for the data_update.
    expect(value(text, 'gateway_fanout_seconds_count')).toBe(4);
    expect(text).toContain('process_resident_memory_bytes');
    expect(text).not.toContain('gateway_redis_up');
  });

  it('is not served on the public port', async () => {
    const gw = await startTestGateway();
    await request(gw.httpUrl).get('/metrics').expect(404);
    await request(`http://127.0.0.1:${gw.gateway.internalPort}`).get('/metrics').expect(200);
  });

  it('requires the bearer token when GW_METRICS_TOKEN is set', async () => {
    const gw = await startTestGateway({ GW_METRICS_TOKEN: 'a-long-enough-metrics-token' });
    const url = `http://127.0.0.1:${gw.gateway.internalPort}`;
    await request(url).get('/metrics').expect(401).expect('www-authenticate', 'Bearer');
    await request(url).get('/metrics').set('Authorization', 'Bearer wrong-token-of-some-length').expect(401);
    await request(url).get('/metrics').set('Authorization', 'Bearer a-long-enough-metrics-token').expect(200);
  });
});
