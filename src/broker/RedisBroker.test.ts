// The Broker contract over a real redis-server: each instance has its own publishing connection, as in cluster.ts,
// and a slow link, when asked for, carries its subscriber connection.
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe } from 'vitest';
import { hasRedis, startRedis, stopAllRedis, type RedisServer } from '../../test/helpers/redis';
import { closeRedis, createRedis, type RedisClient } from '../redis/connection';
import { createLogger } from '../utils/logger';
import { brokerContract } from './Broker.contract';
import { RedisBroker } from './RedisBroker';

const log = createLogger('silent');

/** How long the slow link holds each chunk, each way: far above loopback jitter. */
const SLOW_LINK_DELAY_MS = 50;

/** A TCP relay to Redis that passes every chunk on, in order, `delayMs` after it came. */
async function startSlowLink(redisPort: number, delayMs: number): Promise<{ url: string; server: Server; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = createConnection(redisPort, '127.0.0.1');
    for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
      sockets.add(from);
      from.on('data', (chunk) => void setTimeout(() => to.write(chunk), delayMs));
      from.on('close', () => {
        sockets.delete(from);
        setTimeout(() => to.destroy(), delayMs);
      });
      from.on('error', () => undefined);
    }
  });
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('slow link has no port');
  return { url: `redis://127.0.0.1:${address.port}`, server, sockets };
}

describe.skipIf(!hasRedis)('redis', () => {
  let redis: RedisServer;
  let slowLink: Awaited<ReturnType<typeof startSlowLink>>;
  const made: { broker: RedisBroker; pub: RedisClient }[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    slowLink = await startSlowLink(redis.port, SLOW_LINK_DELAY_MS);
  });
  beforeEach(async () => {
    await redis.client().flushall();
  });
  afterEach(async () => {
    // Each broker first (it closes its subscriber connection), then the connection it was given.
    for (const { broker, pub } of made.splice(0)) {
      await broker.stop();
      await closeRedis(pub);
    }
  });
  afterAll(async () => {
    for (const s of slowLink.sockets) s.destroy();
    await new Promise((closed) => slowLink.server.close(closed));
    await stopAllRedis();
  });

  brokerContract('redis', () => async (instanceId, options = {}) => {
    const pub = createRedis({ url: redis.url }, `test:${instanceId}`, log);
    // The subscriber connection is the broker's own, opened on the URL it is given: the slow link's, when asked.
    const broker = new RedisBroker(instanceId, pub, { url: options.slowLink ? slowLink.url : redis.url }, log);
    made.push({ broker, pub });
    // The broker publishes only while its connection is ready (it drops, never queues): wait for it.
    await new Promise((ready) => pub.once('ready', ready));
    return broker;
  });
});
