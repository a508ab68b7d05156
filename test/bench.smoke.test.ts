// A tiny run of `yarn bench` and of `yarn bench:redis` (one redis-server, then a six-node cluster with classic and with
// sharded pub/sub) through the real harness (pinned processes, lean subscribers, the ws baseline, Socket.IO,
// uWebSockets.js where its binary loads, the gateway, Redis):
// it proves the benchmark works and that without --write-docs it leaves tracked files alone; the figures themselves
// are not asserted (benchmarks are not tests).
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MODES, runRedisBench } from '../bench/redisCapacity';
import { runBench } from '../bench/run';
import { tempDir } from './helpers/children';
import { hasRedis } from './helpers/redis';

const root = join(__dirname, '..');
/** Whether uWebSockets.js has a binary for this Node.js (the benchmark goes on without it otherwise). */
const uwsLoads = (() => {
  try {
    createRequire(__filename)(`@trufflesuite/uws-js-unofficial/binaries/uws_${process.platform}_${process.arch}_${process.versions.modules}.node`);
    return true;
  } catch {
    return false;
  }
})();
const servers = ['baseline', 'socketio', ...(uwsLoads ? ['uws'] : []), 'gateway'];

describe('yarn bench (smoke)', () => {
  it('delivers everything on ws, Socket.IO, uWS, the gateway (published by a client and through the server API) and two Redis-backed instances, holds idle connections with heap snapshots, times resumes, a hand-over and a join storm, and writes only its own results', async () => {
    const docs = join(root, 'docs', 'performance.md');
    const docsBefore = readFileSync(docs);
    const resultsBefore = readdirSync(join(root, 'bench', 'results'));
    const outDir = tempDir('gw-bench-out-');
    const result = await runBench({ subscribers: 20, rates: [20], seconds: 1, repeat: 1, warmup: 1, idle: 20, idleSeconds: 1, heapSnapshot: true, handover: [50], joinStorm: [30], skip: hasRedis ? [] : ['redis', 'resume', 'handover'], writeDocs: false, profile: false, outDir });
    // Every server in one set of adjacent windows, each subscriber parsing what it gets as a real client does.
    expect(result.fanout.map((r) => [r.server, r.fraction])).toEqual(servers.map((s) => [s, 1]));
    // API and client publishes in adjacent windows (their order swapped every set): into the subscribers' group, where
    // every publish must reach every subscriber, then into a group with no other member, where nobody gets anything;
    // every publish answered, a 200 from the API and an ack to the client.
    expect(result.api.map((r) => [r.via, r.subscribers, r.replies.sent, r.replies.ok, r.replies.failed, r.subscribers > 0 ? r.fraction : r.deliveries])).toEqual([
      ['api', 20, 20, 20, {}, 1],
      ['client', 20, 20, 20, {}, 1],
      ['client', 0, 1000, 1000, {}, 0],
      ['api', 0, 1000, 1000, {}, 0],
    ]);
    expect(result.idle.map((r) => [r.server, r.connected, r.disconnects])).toEqual(servers.map((s) => [s, 20, 0]));
    // The heap summary starts with the total of what the connections added.
    for (const r of result.idle) expect(r.heap?.[0]?.name).toBe('(total)');
    if (hasRedis) expect(result.redis.map((r) => r.fraction)).toEqual([1, 1]);
    // Every sample of the resume workload was a resume the gateway refused (the harness throws otherwise).
    expect(result.resume?.samples).toBe(hasRedis ? 200 : undefined);
    if (hasRedis) expect(result.handover.map((h) => [h.sessions, h.handedOver, h.kept])).toEqual([[50, 50, 0]]);
    expect(result.joinStorm.map((j) => [j.users, j.groups, j.readyMs !== null])).toEqual([
      [30, 'own', true],
      [30, 'one', true],
    ]);
    // Every sample saw the UP and the DOWN (the harness waits for each), with batching off and at the default.
    expect(result.presence.map((p) => [p.batchMs, p.samples])).toEqual([
      [0, 100],
      [50, 100],
    ]);
    expect(readFileSync(docs).equals(docsBefore)).toBe(true);
    expect(readdirSync(join(root, 'bench', 'results'))).toEqual(resultsBefore);
    expect(readdirSync(outDir)).toEqual([result.file.slice(outDir.length + 1)]);
    expect((JSON.parse(readFileSync(result.file, 'utf8')) as { fanout: unknown }).fanout).toEqual(result.fanout);
  }, 300_000);
});

describe('yarn bench:redis (smoke)', () => {
  it('runs the same load through one redis-server, the cluster with classic pub/sub and with sharded pub/sub, delivers everything, and writes its JSON', async () => {
    const outDir = tempDir('gw-bench-redis-out-');
    const result = await runRedisBench({ seconds: 0.5, instances: 2, publishers: 1, groups: 30, rates: [400], modes: [...MODES], outDir });
    expect(result.modes.map((m) => m.mode)).toEqual(['single', 'classic', 'sharded']);
    if (!hasRedis) {
      for (const m of result.modes) expect(m.skipped).toMatch(/not installed/);
      return;
    }
    for (const m of result.modes) {
      expect(m.skipped).toBeUndefined();
      // Every published message reached both instances, at the fixed rate and at the publishers' fastest.
      expect(m.phases.map((p) => [p.phase, p.offeredPerSec, p.published > 0, p.deliveredFraction])).toEqual([
        ['fixed', 400, true, 1],
        ['max', null, true, 1],
      ]);
      const cluster = m.mode !== 'single';
      for (const p of m.phases) {
        // Six processes (three masters, three replicas) read for the cluster, one for the single server.
        expect(p.nodes.map((n) => n.role)).toEqual(cluster ? ['master', 'master', 'master', 'replica', 'replica', 'replica'] : ['single']);
        expect(p.redisCpuPerMillion).toBeGreaterThanOrEqual(p.redisCpuPerMillionAboveIdle);
        if (!cluster) {
          expect(p.shards).toBeUndefined();
          continue;
        }
        // Each shard is one master, and every channel belongs to exactly one of them.
        expect(p.shards!.map((s) => s.master)).toEqual(p.nodes.slice(0, 3).map((n) => n.port));
        expect(p.shards!.reduce((sum, s) => sum + s.channels, 0)).toBeCloseTo(1, 2);
      }
    }
    expect(readdirSync(outDir)).toEqual([result.file.slice(outDir.length + 1)]);
    expect((JSON.parse(readFileSync(result.file, 'utf8')) as { modes: unknown }).modes).toEqual(result.modes);
  }, 60_000);
});
