// A tiny run of `yarn bench` through the real harness (pinned processes, lean subscribers, baseline, gateway, Redis):
// it proves the benchmark works; the figures themselves are not asserted (benchmarks are not tests).
import { describe, expect, it } from 'vitest';
import { runBench } from '../bench/run';
import { hasRedis } from './helpers/redis';

describe('yarn bench (smoke)', () => {
  it('delivers everything on the baseline, the gateway and two Redis-backed instances', async () => {
    const result = await runBench({ subscribers: 20, rates: [20], seconds: 1, repeat: 1, idle: 0, idleSeconds: 0, skip: hasRedis ? [] : ['redis'], write: false, profile: false });
    expect(result.fanout.map((r) => [r.server, r.fraction])).toEqual([
      ['baseline', 1],
      ['gateway', 1],
    ]);
    if (hasRedis) expect(result.redis.map((r) => r.fraction)).toEqual([1, 1]);
  }, 120_000);
});
