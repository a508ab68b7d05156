// `yarn readme`: runs the README's marked code blocks as they are written, the way a newcomer would, and checks that
// they do what the README says. A block is marked by the HTML comment right above it, `<!-- ci: <name> [args] -->`;
// .ci/run calls this after the tests, so a README change that breaks a command breaks CI.
//
// Shell blocks run in one long-lived bash (exports and `&` jobs carry over from block to block, as in a terminal)
// with `set -e`, so any failing command fails the run. The quick start's `yarn dev` runs in a process group of its
// own, as in a second terminal. The README uses the default ports, so they must be free; everything started here is
// stopped at the end, the Redis the README starts included.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import { ProbeClient, type ServerEnvelope } from '../test/helpers/ProbeClient';

const root = join(__dirname, '..');
const work = join(root, 'test-output', 'readme');
const PORTS = [4100, 4101, 4102, 14100, 14101, 14102, 6379];
const REDIS_PORT = 6379;
const WAIT_MS = 5_000;

interface Block {
  name: string;
  args: string[];
  lang: string;
  code: string;
}

function readBlocks(): Map<string, Block> {
  const text = readFileSync(join(root, 'README.md'), 'utf8');
  const found = new Map<string, Block>();
  for (const m of text.matchAll(/<!-- ci: (\S+)((?: \S+)*) -->\n```(\w+)\n([\s\S]*?)\n```/g)) {
    found.set(m[1]!, { name: m[1]!, args: m[2]!.trim().split(' ').filter(Boolean), lang: m[3]!, code: m[4]! });
  }
  return found;
}

const log = (line: string) => console.log(`readme: ${line}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function waitForHttp(url: string, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await fetch(url).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return;
    if (Date.now() > deadline) throw new Error(`${what}: ${url} did not answer 200 within ${timeoutMs / 1000} s (last: ${status || 'no answer'})`);
    await sleep(200);
  }
}

/** An environment as a fresh terminal has it: none of this machine's gateway settings leak in. */
function freshEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GW_') && k !== 'NODE_ENV' && k !== 'LOG_LEVEL'));
}

/** One bash fed block after block on stdin, like a terminal session. */
class Shell {
  private readonly proc: ChildProcess;
  private output = '';
  private exited: number | null = null;
  private waiter: (() => void) | null = null;
  private count = 0;

  constructor() {
    this.proc = spawn('bash', ['--noprofile', '--norc'], { cwd: root, env: freshEnv(), detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    const onData = (d: Buffer) => {
      process.stdout.write(String(d).replace(/^__readme_block_\d+_done__\n/gm, ''));
      this.output += String(d);
      this.waiter?.();
    };
    this.proc.stdout!.on('data', onData);
    this.proc.stderr!.on('data', (d: Buffer) => process.stderr.write(d));
    this.proc.on('exit', (code) => {
      this.exited = code ?? 1;
      this.waiter?.();
    });
    this.proc.stdin!.write('set -eo pipefail\n');
  }

  get pid(): number {
    return this.proc.pid!;
  }

  /** Runs `code` as written; with `captureTo`, its stdout goes to that file instead of the log. */
  async run(name: string, code: string, captureTo?: string, timeoutMs = 300_000): Promise<void> {
    const marker = `__readme_block_${++this.count}_done__`;
    this.proc.stdin!.write(`{\n${code}\n}${captureTo ? ` >'${captureTo}'` : ''}\necho ${marker}\n`);
    const deadline = Date.now() + timeoutMs;
    while (!this.output.includes(marker)) {
      if (this.exited !== null) throw new Error(`block "${name}" failed: a command exited with a non-zero status (the shell stopped with ${this.exited})`);
      if (Date.now() > deadline) throw new Error(`block "${name}" did not finish within ${timeoutMs / 1000} s`);
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        setTimeout(resolve, 500);
      });
    }
    this.waiter = null;
  }
}

/** A probe connected to `url` and identified with `token` into `groups`. */
async function identified(url: string, token: string, groups: string[]): Promise<ProbeClient> {
  const probe = await ProbeClient.connect(url);
  await probe.next('hello');
  const reply = await probe.identify(token, groups);
  if (reply.type !== 'ready') throw new Error(`identify on ${url} was answered ${reply.type}: ${JSON.stringify(reply.data)}`);
  return probe;
}

const isJwt = (token: string) => /^[\w-]+\.[\w-]+\.[\w-]+$/.test(token);

async function main(): Promise<void> {
  const blocks = readBlocks();
  const block = (name: string) => {
    const b = blocks.get(name);
    if (!b) throw new Error(`README.md has no block marked <!-- ci: ${name} -->`);
    return b;
  };
  const busy = [];
  for (const port of PORTS) if (await portInUse(port)) busy.push(port);
  if (busy.length > 0) throw new Error(`port ${busy.join(', ')} in use: the README's commands use the default ports; stop what listens there first`);

  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const probes: ProbeClient[] = [];
  const keep = (p: ProbeClient) => {
    probes.push(p);
    return p;
  };
  let dev: ChildProcess | null = null;
  const shell = new Shell();
  try {
    const quick = block('quick-start');
    log(`[quick-start] ${quick.code}   (in the background, as in a second terminal)`);
    dev = spawn('bash', ['-c', quick.code], { cwd: root, env: freshEnv(), detached: true, stdio: ['ignore', 'ignore', 'inherit'] });
    await waitForHttp('http://127.0.0.1:4100/health', 300_000, 'the quick start');
    await waitForHttp('http://127.0.0.1:14100/metrics', WAIT_MS, 'the quick start metrics');
    log('[quick-start] the gateway answers /health on 4100 and /metrics on 14100');

    const token = await capture(shell, block('token'));
    const envelopes = block('envelopes');
    const client = keep(await ProbeClient.connect(envelopes.args[0]!));
    await client.next('hello');
    for (const line of envelopes.code.split('\n').filter((l) => l.trim())) {
      client.sendRaw(line.replace('<the token>', token));
      const id = (JSON.parse(line) as { id?: string }).id;
      if (id === undefined) continue;
      const reply = await client.next((e) => e.replyTo === id, WAIT_MS);
      if (reply.type === 'error') throw new Error(`[envelopes] line ${id} was refused: ${JSON.stringify(reply.data)}`);
      log(`[envelopes] id ${id} → ${reply.type}`);
    }
    await client.next('data_update');

    await runBlock(shell, block('echo'));

    const cluster = block('cluster-start');
    await runBlock(shell, cluster);
    for (const url of cluster.args) await waitForHttp(url, 60_000, 'cluster-start');
    log('[cluster-start] both instances answer /health');

    const clusterToken = block('cluster-token');
    const aliceToken = await capture(shell, clusterToken);
    const [first, second] = await Promise.all(clusterToken.args.map(async (url) => keep(await identified(url, aliceToken, ['group-1']))));
    await first!.request('data_update', { group: 'group-1', payload: 'across instances' });
    await second!.next((e) => e.type === 'data_update' && e.data?.payload === 'across instances', WAIT_MS);
    log('[cluster-token] the token identifies on both instances; a message published on one reaches the other');

    // An observer for the backend blocks: alice in team-red, with a token from this same shell.
    const emitter = block('emitter');
    const observerToken = await capture(shell, { name: 'observer token', args: [], lang: 'sh', code: "yarn -s token --sub alice --groups 'team-red'" });
    const observer = keep(await identified(emitter.args[0]!, observerToken, ['team-red']));
    // Saved inside the checkout, as the README says, so `gateway-strategy/emitter` resolves to its dist/ (a self-reference).
    const script = join(work, 'emitter-demo.mjs');
    writeFileSync(script, `${emitter.code}\n`);
    await runBlock(shell, { ...emitter, code: `node '${script}'` }, `[emitter] the block saved as emitter-demo.mjs, run with node`);
    const fromWorker = (payload: string) => (e: ServerEnvelope) =>
      e.type === 'data_update' && JSON.stringify(e.data?.payload) === payload && (e.data?.from as { userId?: string } | undefined)?.userId === 'ai-worker';
    await observer.next(fromWorker('{"summary":"done"}'), WAIT_MS);
    await observer.next(fromWorker('{"notice":"your export is ready"}'), WAIT_MS);
    log('[emitter] alice received the group and the user message');
    await runBlock(shell, block('emit'));
    await observer.next((e) => e.type === 'data_update' && JSON.stringify(e.data?.payload) === '{"x":1}', WAIT_MS);
    log('[emit] alice received it');
    log(`every marked block ran as written (${blocks.size} blocks)`);
  } finally {
    for (const p of probes) p.socket.terminate();
    await stopGroup(shell.pid);
    if (dev?.pid) await stopGroup(dev.pid);
    if (await portInUse(REDIS_PORT)) spawnSync('redis-cli', ['-p', String(REDIS_PORT), 'shutdown', 'nosave'], { stdio: 'ignore' });
    rmSync(work, { recursive: true, force: true });
    for (const port of PORTS) {
      for (let i = 0; i < 50 && (await portInUse(port)); i++) await sleep(100);
      if (await portInUse(port)) console.error(`readme: port ${port} is still in use after the run`);
    }
  }
}

async function runBlock(shell: Shell, b: Block, title = `[${b.name}] ${b.code}`): Promise<void> {
  log(title);
  await shell.run(b.name, b.code);
}

/** Runs a block whose stdout is a token (yarn token); checks it is one. */
async function capture(shell: Shell, b: Block): Promise<string> {
  log(`[${b.name}] ${b.code}`);
  const file = join(work, `${b.name.replace(/\W/g, '-')}.out`);
  await shell.run(b.name, b.code, file);
  const out = readFileSync(file, 'utf8').trim();
  if (!isJwt(out)) throw new Error(`[${b.name}] stdout is not a token: ${JSON.stringify(out.slice(0, 200))}`);
  return out;
}

/** SIGTERM to a process group, SIGKILL to what is left after 5 s. */
async function stopGroup(pgid: number): Promise<void> {
  const alive = () => {
    try {
      process.kill(-pgid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (!alive()) return;
  process.kill(-pgid, 'SIGTERM');
  for (let i = 0; i < 50 && alive(); i++) await sleep(100);
  if (alive()) process.kill(-pgid, 'SIGKILL');
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`readme: FAILED: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
