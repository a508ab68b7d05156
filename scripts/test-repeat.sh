#!/usr/bin/env bash
# Runs the timing-sensitive suites several times in a row (default 5); the first failing run fails the whole.
# A test that depends on a race shows up here rather than once in a while on someone else's machine.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
suites=(test/client.test.ts test/resume.test.ts test/cluster.memory.test.ts test/cluster.redis.test.ts test/redis.test.ts test/limits.test.ts test/clusterInput.test.ts test/handoff.test.ts src/hub/Handoff.test.ts test/rollingRestart.test.ts test/browser.test.ts test/admin.test.ts test/presence.test.ts test/presence.redis.test.ts test/presenceStatus.test.ts test/expiry.test.ts test/jwks.test.ts test/cluster.rediscluster.test.ts test/rediscluster.faults.test.ts src/redis/health.cluster.test.ts)
for i in $(seq 1 "$runs"); do
  echo "test:repeat: run $i of $runs"
  yarn -s vitest run "${suites[@]}"
done
echo "test:repeat: $runs runs in a row passed"
