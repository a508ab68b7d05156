// Backends on a real Redis Cluster: the emitter (SPUBLISH with `clusterNodes`), `yarn emit` with
// GW_REDIS_CLUSTER_NODES, and the server API of one instance, each reaching clients on both instances, to groups and
// to users, filters included; and the `rt:events` stream and the API's cluster-wide reads.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createEmitter } from '../src/emitter';
import { API_ENV, apiClient } from './helpers/api';
import { childEnv } from './helpers/children';
import { startTestGateway } from './helpers/gateway';
import type { ProbeClient } from './helpers/ProbeClient';
import { hasRedis, useRedisCluster } from './helpers/redisCluster';

const payloadOf = (c: ProbeClient, match: unknown) => c.next((e) => e.type === 'data_update' && JSON.stringify(e.data!.payload) === JSON.stringify(match));

describe.skipIf(!hasRedis)('backends on a redis cluster', () => {
  const cluster = useRedisCluster();
  const pair = () => Promise.all(['rb-a', 'rb-b'].map((id) => startTestGateway({ GW_REDIS_CLUSTER_NODES: cluster.server.seeds, GW_INSTANCE_ID: id, ...API_ENV })));

  it('the emitter publishes to groups and users on every instance, with filters', async () => {
    const [a, b] = await pair();
    const onA = await a!.join('alice', ['g']);
    const onB = await b!.join('bob', ['g']);
    const emitter = createEmitter({ clusterNodes: cluster.server.seeds, serviceName: 'ai-worker' });
    try {
      expect(await emitter.toGroup('g').publish({ summary: 'done' })).toBe(2);
      for (const c of [onA, onB]) expect((await payloadOf(c, { summary: 'done' })).data).toEqual({ group: 'g', from: { userId: 'ai-worker', connectionId: null }, payload: { summary: 'done' } });
      expect(await emitter.toUser('bob').publish('just bob')).toBe(1);
      expect((await payloadOf(onB, 'just bob')).data).toMatchObject({ group: null });
      await emitter.toGroup('g', { exceptUsers: ['alice'] }).publish('not alice');
      await emitter.toGroup('g').publish('end');
      // On the group's one channel, 'end' follows 'not alice': alice got nothing before it.
      expect((await onA.before((e) => e.type === 'data_update' && e.data!.payload === 'end')).filter((e) => e.type === 'data_update')).toEqual([]);
      await payloadOf(onB, 'not alice');
    } finally {
      await emitter.close();
    }
  });

  it('yarn emit publishes through GW_REDIS_CLUSTER_NODES', async () => {
    const [, b] = await pair();
    const onB = await b!.join('bob', ['g']);
    const root = join(__dirname, '..');
    const cli = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', join(root, 'src/cli/emit.ts'), '--group', 'g', '--payload', '{"x":1}', '--service', 'ops'], {
      cwd: root,
      env: childEnv({ NODE_ENV: 'development', GW_REDIS_CLUSTER_NODES: cluster.server.seeds, TS_NODE_PROJECT: join(root, 'tsconfig.json') }),
    });
    let out = '';
    cli.stdout.on('data', (d: Buffer) => (out += String(d)));
    const exited = new Promise<number | null>((done) => cli.once('exit', done));
    onTestFinished(async () => {
      if (cli.exitCode === null && cli.signalCode === null) cli.kill('SIGKILL');
      await exited;
    });
    expect(await exited).toBe(0);
    expect(out).toBe('published to group g: 1 gateway instance(s) listening\n');
    expect((await payloadOf(onB, { x: 1 })).data).toEqual({ group: 'g', from: { userId: 'ops', connectionId: null }, payload: { x: 1 } });
  });

  it('the server API of one instance publishes to clients of both, and reads presence, users and events cluster-wide', async () => {
    const [a, b] = await pair();
    const onA = await a!.join('alice', ['g']);
    const onB = await b!.join('bob', ['g']);
    const api = apiClient(a!);
    expect(await api.ok('publish', { group: 'g', payload: 'from the api' })).toBeDefined();
    for (const c of [onA, onB]) await payloadOf(c, 'from the api');
    await api.ok('publish', { user: 'bob', payload: 'to bob' });
    await payloadOf(onB, 'to bob');
    await expect.poll(async () => ((await api.ok('presence', { group: 'g' })) as { members: { userId: string }[] }).members.map((m) => m.userId).sort()).toEqual(['alice', 'bob']);
    const bob = (await api.ok('user', { user: 'bob' })) as { sessions: { instance: string }[] };
    expect(bob.sessions.map((s) => s.instance)).toEqual(['rb-b']);
    const events = ((await cluster.server.client().xrange('rt:events', '-', '+')) as [string, string[]][]).map(([, f]) => `${f[1]} ${f[3]}`);
    expect(events.sort()).toEqual(['online alice', 'online bob']);
  });
});
