// docs/server-api.md's examples run as written against a real gateway: every curl command (with curl) and the Python
// snippets, joined into one script in their order (with the standard library of /usr/bin/python3), while real clients
// receive what they publish. Without curl or /usr/bin/python3 the suite skips locally (with a message) but fails under
// CI=true, where scripts/setup.sh --test must have installed them.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { API_ENV, API_KEY } from './helpers/api';
import { childEnv } from './helpers/children';
import { startTestGateway, type TestGateway } from './helpers/gateway';
import type { ProbeClient } from './helpers/ProbeClient';

const PYTHON = '/usr/bin/python3';
/** The internal listener's address in the examples (the default for GW_PORT 4100). */
const DOCUMENTED_URL = 'http://127.0.0.1:14100';
const doc = readFileSync(join(__dirname, '..', 'docs', 'server-api.md'), 'utf8');

const missing = spawnSync('curl', ['--version']).status !== 0 ? 'curl is not installed' : !existsSync(PYTHON) ? `${PYTHON} is not installed` : null;
if (missing) {
  if (process.env.CI === 'true') throw new Error(`${missing}: CI must install it (scripts/setup.sh --test)`);
  console.warn(`skipping the server API examples: ${missing} (bash scripts/setup.sh --test installs it)`);
}

/** The fenced blocks of `language` in the document, in order. */
const blocks = (language: string) => [...doc.matchAll(/^```(\w+)\n([\s\S]*?)^```$/gm)].filter((m) => m[1] === language).map((m) => m[2]!);

/** Runs a program with the API key in its environment, `input` on its stdin. */
function run(command: string, args: string[], input = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(command, args, { env: childEnv({ GW_API_KEY: API_KEY }) });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += String(d)));
  child.stderr.on('data', (d: Buffer) => (stderr += String(d)));
  child.stdin.end(input);
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** alice in team-red, bob in team-blue and carol in no group, the examples' audience. */
async function audience(gw: TestGateway): Promise<{ alice: ProbeClient; bob: ProbeClient; carol: ProbeClient }> {
  return { alice: await gw.join('alice', ['team-red']), bob: await gw.join('bob', ['team-blue']), carol: await gw.join('carol', []) };
}

/** What the unsubscribe and disconnect examples do: bob leaves team-blue, carol is disconnected for good. */
async function expectRevoked(bob: ProbeClient, carol: ProbeClient): Promise<void> {
  expect((await bob.next('unsubscribed')).data).toEqual({ group: 'team-blue', reason: 'server' });
  expect((await carol.next('error')).data).toEqual({ code: 'REVOKED', message: 'account closed' });
  expect(await carol.closed).toEqual({ code: 4005, reason: 'account closed' });
}

const payloads = async (c: ProbeClient) => (await c.barrier()).filter((e) => e.type === 'data_update').map((e) => e.data!.payload);

/** What alice receives from each set of examples (publish to team-red, to alice, the filtered publish, the broadcast, the batch's two). */
const ALICE_GETS = [{ text: 'build 1042 passed' }, { notice: 'your export is ready' }, { text: 'dana edited the plan' }, { text: 'deploy at 18:00' }, 1, 2];

describe.skipIf(missing !== null)('docs/server-api.md examples', () => {
  it('every curl command answers as the document says', async () => {
    const gw = await startTestGateway(API_ENV);
    const url = `http://127.0.0.1:${gw.gateway.internalPort}`;
    const { alice, bob, carol } = await audience(gw);
    const commands = blocks('sh').filter((b) => b.startsWith('curl '));
    expect(commands.length).toBeGreaterThanOrEqual(12);
    const answers = [];
    for (const command of commands) {
      const done = await run('/bin/sh', ['-c', command.replaceAll(DOCUMENTED_URL, url)]);
      expect([done.code, done.stderr], command).toEqual([0, '']);
      answers.push(JSON.parse(done.stdout) as { ok?: boolean; openapi?: string; data?: { replies?: unknown[]; user?: string; instances?: unknown[]; groups?: unknown[] } });
    }
    expect(answers[0]!.openapi).toBe('3.1.0');
    for (const answer of answers.slice(1)) expect(answer.ok, JSON.stringify(answer)).toBe(true);
    expect(answers.at(-1)!.data!.replies).toEqual([{ result: {} }, { error: expect.objectContaining({ code: 'INVALID_REQUEST', field: 'group' }) }, { result: {} }]);
    expect(answers.map((a) => a.data).filter((data) => data && Object.keys(data).join() === 'sessions')).toEqual([{ sessions: 1 }, { sessions: 1 }]);
    expect(answers.find((a) => a.data?.user !== undefined)!.data).toEqual({ user: 'alice', sessions: [expect.objectContaining({ groups: ['team-red'], state: 'attached' })] });
    expect(answers.find((a) => a.data?.instances !== undefined)!.data).toEqual({ instances: [expect.objectContaining({ connections: 3, sessions: 3, state: 'up' })] });
    expect(answers.find((a) => a.data?.groups !== undefined)!.data).toEqual({ groups: [{ group: 'team-blue', users: 1, sessions: 1 }, { group: 'team-red', users: 1, sessions: 1 }] });
    await expectRevoked(bob, carol);
    expect(await payloads(alice)).toEqual(ALICE_GETS);
    expect(await payloads(bob)).toEqual([{ text: 'deploy at 18:00' }]);
  });

  it('the Python snippets, in order, print what the document says', async () => {
    const gw = await startTestGateway(API_ENV);
    const url = `http://127.0.0.1:${gw.gateway.internalPort}`;
    const { alice, bob, carol } = await audience(gw);
    const done = await run(PYTHON, ['-'], blocks('python').join('\n').replaceAll(DOCUMENTED_URL, url));
    expect(done.stdout.trimEnd().split('\n'), done.stderr).toEqual([
      '{}',
      '{}',
      '400 INVALID_REQUEST group',
      '{}',
      '{}',
      "1 ['alice']",
      "{'group': 'team-red', 'users': 1, 'sessions': 1}",
      "[('attached', ['team-red'])]",
      "[('up', 3, 3)]",
      '0.0 messages out per second',
      "[('team-blue', 1, 1), ('team-red', 1, 1)]",
      "{'sessions': 1}",
      "{'sessions': 1}",
      "['ok', 'group', 'ok']",
    ]);
    expect([done.code, done.stderr]).toEqual([0, '']);
    await expectRevoked(bob, carol);
    expect(await payloads(alice)).toEqual(ALICE_GETS);
    expect(await payloads(bob)).toEqual([{ text: 'deploy at 18:00' }]);
  });
});
