// What arrives from Redis is checked before it reaches a client: messages on gateway channels that are not gateway
// envelopes for that channel are dropped and counted, control messages that do not parse are ignored, and a resume
// that no instance can answer is answered at once. Against a real redis-server.
import request from 'supertest';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { timings } from '../src/config/timings';
import { createEmitter } from '../src/emitter';
import { backendDataUpdate, serializeEnvelope } from '../src/types/envelope';
import { createLogger } from '../src/utils/logger';
import { startTestGateway, type TestGateway } from './helpers/gateway';
import type { ProbeClient } from './helpers/ProbeClient';
import { hasRedis, startRedis, stopAllRedis } from './helpers/redis';

const metric = async (gw: TestGateway, series: string) => {
  const text = (await request(`http://127.0.0.1:${gw.gateway.internalPort}`).get('/metrics')).text;
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe.skipIf(!hasRedis)('input from Redis', () => {
  afterEach(stopAllRedis);

  it('drops and counts what is not a gateway envelope for its channel; forwards what is; no label from input', async () => {
    const redis = await startRedis();
    const gw = await startTestGateway({ GW_REDIS_URL: redis.url, GW_INSTANCE_ID: 'checker' });
    const alice = await gw.join('alice', ['g']);
    const valid = serializeEnvelope('data_update', { group: 'g', from: { userId: 'svc', connectionId: null }, payload: { ok: true } });
    const bad = [
      `other\n${valid}\n`, // a trailing newline: not byte for byte what a gateway writes
      `other\n${valid.replace('"type"', ' "type"')}`,
      `other\n${JSON.stringify({ type: 'evil', data: {}, ts: 1 })}`, // a made-up type
      `other\n${serializeEnvelope('data_update', { group: 'h', from: { userId: 'svc', connectionId: null }, payload: 1 })}`, // another group's
      `other\n${JSON.stringify({ type: 'data_update', data: { group: 'g', from: { userId: 'svc', connectionId: null }, payload: 1 }, ts: 1, seq: 9 })}`,
      `other\n${JSON.stringify({ type: 'presence_update', data: { group: 'g', userId: 'x', status: 'GONE', meta: {} }, ts: 1 })}`,
      `other\n${JSON.stringify({ type: 'signal', data: { group: 'g', from: { userId: 'x', connectionId: 'c_1' }, kind: 'a b', data: null }, ts: 1 })}`,
      `other\n${'['.repeat(100)}${']'.repeat(100)}`,
      'other\n{not json',
      'no separator at all',
    ];
    const pub = redis.client();
    for (const message of bad) await pub.publish('rt:group:g', message);
    // Published after the others on the same connection: it reaches the gateway after every bad one.
    await pub.publish('rt:group:g', `other\n${valid}`);
    const before = await alice.before((e) => e.type === 'data_update');
    expect(before).toEqual([]);
    expect(await metric(gw, 'gateway_cluster_invalid_total')).toBe(bad.length);
    expect(await metric(gw, 'gateway_messages_out_total{type="data_update"}')).toBe(1);
    const scraped = (await request(`http://127.0.0.1:${gw.gateway.internalPort}`).get('/metrics')).text;
    expect(scraped).not.toContain('evil');
  });

  it('applies the filter of a filtered message; one whose filter does not parse is dropped and counted, never delivered to all', async () => {
    const redis = await startRedis();
    const gw = await startTestGateway({ GW_REDIS_URL: redis.url, GW_INSTANCE_ID: 'filters' });
    const alice = await gw.join('alice', ['g']);
    const bob = await gw.join('bob', ['g'], { role: 'admin' });
    const update = (payload: string) => backendDataUpdate('g', 'svc', payload);
    const signal = serializeEnvelope('signal', { group: 'g', from: { userId: 'svc', connectionId: 'c_1' }, kind: 'typing', data: null });
    const bad = [
      `other\n{"roles":["root"]}\n${update('unknown role')}`,
      `other\n{}\n${update('empty filter')}`,
      `other\n{"roles":["admin"]\n${update('not JSON')}`,
      `other\n{"roles":["admin"],"only":["bob"]}\n${update('unknown key')}`,
      `other\n{"users":["bob","bob"]}\n${update('bob twice')}`,
      `other\n{"roles":["admin"]}\n${signal}`, // only data_updates are filtered
    ];
    const pub = redis.client();
    for (const message of bad) await pub.publish('rt:group:g', message);
    await pub.publish('rt:group:g', `other\n{"roles":["admin"]}\n${update('admins')}`);
    await pub.publish('rt:group:g', `other\n${update('sentinel')}`);
    const received = async (c: ProbeClient) =>
      (await c.before((e) => e.type === 'data_update' && e.data!.payload === 'sentinel')).filter((e) => e.type !== 'presence_update').map((e) => [e.type, e.data!.payload]);
    expect(await received(alice)).toEqual([]);
    expect(await received(bob)).toEqual([['data_update', 'admins']]);
    expect(await metric(gw, 'gateway_cluster_invalid_total')).toBe(bad.length);
  });

  it('accepts user-channel messages only as backend data_updates to that user', async () => {
    const redis = await startRedis();
    const gw = await startTestGateway({ GW_REDIS_URL: redis.url, GW_INSTANCE_ID: 'users' });
    const alice = await gw.join('alice', ['g']);
    const pub = redis.client();
    await pub.publish('rt:user:alice', `other\n${serializeEnvelope('data_update', { group: 'g', from: { userId: 'svc', connectionId: null }, payload: 1 })}`);
    await pub.publish('rt:user:alice', `other\n${serializeEnvelope('presence_update', { group: 'g', userId: 'x', status: 'UP', meta: {}, availability: 'online' })}`);
    const emitter = createEmitter({ redisUrl: redis.url, serviceName: 'svc' });
    try {
      await emitter.toUser('alice').publish('for alice');
    } finally {
      await emitter.close();
    }
    expect(await alice.before((e) => e.type === 'data_update' && e.data!.payload === 'for alice')).toEqual([]);
    expect(await metric(gw, 'gateway_cluster_invalid_total')).toBe(2);
  });

  it('ignores control messages that do not parse, and keeps handing sessions over', async () => {
    const redis = await startRedis();
    const lines: string[] = [];
    const a = await startTestGateway({ GW_REDIS_URL: redis.url, GW_INSTANCE_ID: 'ctl-a' }, { logger: createLogger('warn', { write: (l: string) => void lines.push(l) }) });
    const b = await startTestGateway({ GW_REDIS_URL: redis.url, GW_INSTANCE_ID: 'ctl-b' });
    const pub = redis.client();
    const garbage = ['x\n{oops', 'x\n{"op":"claim"}', 'x\n{"op":"state","id":"1","state":{"id":"s"}}', 'x\n"just a string"'];
    for (const message of garbage) await pub.publish('rt:control:ctl-a', message);
    const alice = await a.connect();
    const ready = (await alice.identify(await a.token({ sub: 'alice', groups: ['g'] }), ['g'])).data as { sessionId: string; sessionToken: string };
    alice.socket.terminate();
    await a.connections(0);
    const moved = await b.connect();
    const reply = await moved.request('identify', { token: await b.token({ sub: 'alice', groups: ['g'] }), resume: { sessionId: ready.sessionId, sessionToken: ready.sessionToken, lastSeq: 0 } });
    expect(reply.data).toMatchObject({ resumed: true, sessionId: ready.sessionId });
    expect(lines.filter((l) => l.includes('malformed control message ignored'))).toHaveLength(garbage.length);
    expect(await metric(a, 'gateway_cluster_invalid_total')).toBe(garbage.length);
  });

  it('answers a claim on the claimer’s own channel: an offer for a session it holds, `gone` for one it does not', async () => {
    const redis = await startRedis();
    const gw = await startTestGateway({ GW_REDIS_URL: redis.url, GW_INSTANCE_ID: 'answers' });
    const alice = await gw.connect();
    const ready = (await alice.identify(await gw.token({ sub: 'alice', groups: ['g'] }), ['g'])).data as { sessionId: string };
    const listener = redis.client();
    const heard: { from: string; id: string; op: string; groups?: string[] }[] = [];
    listener.on('message', (_channel: string, message: string) => {
      const cut = message.indexOf('\n');
      heard.push({ from: message.slice(0, cut), ...(JSON.parse(message.slice(cut + 1)) as { id: string; op: string }) });
    });
    await listener.subscribe('rt:control:probe');
    const claim = (id: string, sessionId: string) => `probe\n${JSON.stringify({ op: 'claim', id, sessionId, userId: 'alice' })}`;
    const pub = redis.client();
    expect(await pub.publish('rt:control:answers', claim('nobody', 's_nobody'))).toBe(1);
    expect(await pub.publish('rt:control:answers', claim('held', ready.sessionId))).toBe(1);
    await vi.waitFor(() => expect(heard.map(({ id, op }) => [id, op])).toEqual([['nobody', 'gone'], ['held', 'offer']]));
    expect(heard[1]).toMatchObject({ from: 'answers', groups: ['g'] });
    // Nobody listens on a stopped instance's channel: that is how a claimer knows at once that it is gone.
    expect(await pub.publish('rt:control:stopped-long-ago', claim('late', ready.sessionId))).toBe(0);
  });

  for (const instances of [1, 2]) {
    it(`answers a resume no instance can serve at once (${instances} instance${instances > 1 ? 's' : ''}), not after the handoff timeout`, async () => {
      const redis = await startRedis();
      const gws = await Promise.all(Array.from({ length: instances }, (_, i) => startTestGateway({ GW_REDIS_URL: redis.url, GW_INSTANCE_ID: `none-${i}` })));
      const first = gws[0]!;
      const alice = await first.connect();
      const ready = (await alice.identify(await first.token({ sub: 'alice', groups: ['g'] }), ['g'])).data as { sessionId: string; sessionToken: string };
      await alice.close(1000);
      await first.connections(0);
      const back = await gws.at(-1)!.connect();
      const started = Date.now();
      const reply = await back.request('identify', { token: await first.token({ sub: 'alice', groups: ['g'] }), resume: { sessionId: ready.sessionId, sessionToken: ready.sessionToken, lastSeq: 0 } });
      const elapsed = Date.now() - started;
      expect(reply.data!.resumed).toBe(false);
      // Every instance that heard the claim said it does not hold the session; the regression waited the whole timeout.
      expect(elapsed).toBeLessThan(timings.handoffTimeoutMs / 2);
    });
  }
});
