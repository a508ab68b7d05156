// The Python example client (docs/examples/python_client.py) plays protocol v1 against a real gateway: a client outside
// Node, written from docs/protocol.md alone. Without /usr/bin/python3 and its websockets module the suite skips
// locally (with a message) but fails under CI=true, where scripts/setup.sh --test must have installed them.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { childEnv } from './helpers/children';
import { startTestGateway } from './helpers/gateway';

const PYTHON = '/usr/bin/python3';
const ROOT = join(__dirname, '..');
const SCRIPT = join(ROOT, 'docs', 'examples', 'python_client.py');

const missing = !existsSync(PYTHON)
  ? `${PYTHON} is not installed`
  : spawnSync(PYTHON, ['-c', 'import websockets']).status !== 0
    ? `${PYTHON} cannot import websockets`
    : null;
if (missing) {
  if (process.env.CI === 'true') throw new Error(`${missing}: CI must install python3-websockets (scripts/setup.sh --test)`);
  console.warn(`skipping the Python example suite: ${missing} (bash scripts/setup.sh --test installs python3-websockets)`);
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** Runs the script to its end; one that outlives `timeoutMs` is killed and reported with what it printed. */
function runScript(args: string[], timeoutMs: number): Promise<Run> {
  const child = spawn(PYTHON, [SCRIPT, ...args], { cwd: ROOT, env: childEnv() });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += String(d)));
  child.stderr.on('data', (d: Buffer) => (stderr += String(d)));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr: code === null ? `${stderr}(killed after ${timeoutMs} ms)` : stderr });
    });
  });
}

describe.skipIf(missing !== null)('the Python example client', () => {
  it('plays every step of the scenario against a real gateway: join, subscribe, echo, heartbeat, presence status, token refresh, resume after a drop, close without status code', async () => {
    // Presence goes out at the end of its turn, not up to GW_PRESENCE_BATCH_MS later: bob's UP is out before alice
    // joins (a batch crossing her list read would repeat it to her, and number it before her echo), and the script's
    // request/reply barriers then come after any presence change the steps before them caused.
    const gw = await startTestGateway({ GW_PRESENCE_BATCH_MS: '0' });
    const group = 'group-1';
    const token = await gw.token({ sub: 'alice', groups: [group] });
    const watcherToken = await gw.token({ sub: 'bob', groups: [group] });

    const run = await runScript(['--url', gw.wsUrl, '--token', token, '--watcher-token', watcherToken, '--group', group], 15_000);

    // The transcript first: on a failure its diff names the step, and stderr says the rest.
    expect(run.stdout.trimEnd().split('\n'), run.stderr).toEqual([
      'step 1 ok: watcher bob: hello, ready in group-1',
      'step 2 ok: user alice: hello, ready, subscribed with members bob, alice; watcher saw alice UP',
      'step 3 ok: data_update with echo: own copy (seq 1) and ack; watcher received it',
      'step 4 ok: heartbeat: heartbeat_ack with a sessionToken, kept as the newest',
      'step 5 ok: presence status: watcher saw alice UPDATE to idle, DOWN while invisible (not listed), UP online again',
      "step 6 ok: token refresh: refreshed with the same expiresAt; another user's token refused with AUTH_FAILED, connection kept",
      expect.stringMatching(/^step 7 ok: abrupt drop: resumed s_\S+ from lastSeq 1, replayed seq 2\.\.4 in order$/),
      expect.stringMatching(/^step 8 ok: close without status code: watcher saw alice DOWN after \d+ ms, and no change of alice since the UP$/),
    ]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
  });

  it('passes against a gateway with the default presence batching, as a reader of the README runs it', async () => {
    const gw = await startTestGateway();
    const group = 'group-1';
    const token = await gw.token({ sub: 'alice', groups: [group] });
    const watcherToken = await gw.token({ sub: 'bob', groups: [group] });
    const run = await runScript(['--url', gw.wsUrl, '--token', token, '--watcher-token', watcherToken, '--group', group], 15_000);
    expect(run.stdout.trimEnd().split('\n').map((line) => line.split(':')[0]), run.stderr).toEqual(['step 1 ok', 'step 2 ok', 'step 3 ok', 'step 4 ok', 'step 5 ok', 'step 6 ok', 'step 7 ok', 'step 8 ok']);
    expect(run.code).toBe(0);
  });
});
