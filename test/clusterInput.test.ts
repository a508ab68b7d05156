// What arrives from Redis is checked before it reaches a client: messages on gateway channels that are not gateway
// envelopes for that channel are dropped and counted, control messages that do not parse are ignored, and a resume
// that no instance can answer is answered at once. Against a real redis-server.
import request from 'supertest';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { timings } from '../src/config/timings';
import { createEmitter } from '../src/emitter';
import { serializeEnvelope } from '../src/types/envelope';
import { createLogger } from '../src/utils/logger';
import { startTestGateway, type TestGateway } from './helpers/gateway';
import { hasRedis, startRedis, stopAllRedis } from './helpers/redis';

const metric = async (gw: TestGateway, series: string) => {
  const text = (await request(`http://127.0.0.1:${gw.gateway.metricsPort}`).get('/metrics')).text;
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
    const scraped = (await request(`http://127.0.0.1:${gw.gateway.metricsPort}`).get('/metrics')).text;
    expect(scraped).not.toContain('evil');
  });

  it('accepts user-channel messages only as backend data_updates to that user', async () => {
    const redis = await startRedis();
    const gw = await startTestGateway({ GW_REDIS_URL: redis.url, GW_INSTANCE_ID: 'users' });
    const alice = await gw.join('alice', ['g']);
    const pub = redis.client();
    await pub.publish('rt:user:alice', `other\n${serializeEnvelope('data_update', { group: 'g', from: { userId: 'svc', connectionId: null }, payload: 1 })}`);
    await pub.publish('rt:user:alice', `other\n${serializeEnvelope('presence_update', { group: 'g', userId: 'x', status: 'UP', meta: {} })}`);
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
    for (const garbage of ['x\n{oops', 'x\n{"op":"claim"}', 'x\n{"op":"state","id":"1","from":"x","to":"ctl-a","state":{"id":"s"}}', 'x\n"just a string"']) {
      await pub.publish('rt:control', garbage);
    }
    const alice = await a.connect();
    const ready = (await alice.identify(await a.token({ sub: 'alice', groups: ['g'] }), ['g'])).data as { sessionId: string; sessionToken: string };
    alice.socket.terminate();
    await a.connections(0);
    const moved = await b.connect();
    const reply = await moved.request('identify', { token: await b.token({ sub: 'alice', groups: ['g'] }), resume: { sessionId: ready.sessionId, sessionToken: ready.sessionToken, lastSeq: 0 } });
    expect(reply.data).toMatchObject({ resumed: true, sessionId: ready.sessionId });
    expect(lines.filter((l) => l.includes('malformed control message ignored'))).toHaveLength(4);
  });

  it('answers `none` only to claimers that count it (an earlier version would take it for the answer)', async () => {
    const redis = await startRedis();
    await startTestGateway({ GW_REDIS_URL: redis.url, GW_INSTANCE_ID: 'answers' });
    const listener = redis.client();
    const heard: { id: string; op: string }[] = [];
    listener.on('message', (_channel: string, message: string) => {
      const reply = JSON.parse(message.slice(message.indexOf('\n') + 1)) as { id: string; op: string; to?: string };
      if (reply.to === 'old-version') heard.push({ id: reply.id, op: reply.op });
    });
    await listener.subscribe('rt:control');
    const claim = (id: string, extra: object) => JSON.stringify({ op: 'claim', id, from: 'old-version', sessionId: 's_nobody', userId: 'alice', ...extra });
    const pub = redis.client();
    await pub.publish('rt:control', `old-version\n${claim('without', {})}`);
    // The gateway handles control messages in order: had it answered the first claim, that answer would come first.
    await pub.publish('rt:control', `old-version\n${claim('with', { declines: true })}`);
    await vi.waitFor(() => expect(heard).toEqual([{ id: 'with', op: 'none' }]));
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
