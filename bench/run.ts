// `yarn bench`: the gateway against a raw `ws` baseline on the same machine, same parameters, interleaved.
// Servers run pinned to core 0, load generators to core 1. Figures: deliveries per server CPU-second, fraction
// delivered, publish→deliver latency, RSS per idle connection, idle CPU, and a 2-instance Redis run.
// Both servers run as compiled JavaScript, as production does: the gateway from dist/ after the same
// `tsc -p tsconfig.build.json` as `yarn build` (what the Dockerfile runs), the baseline transpiled by esbuild.
// Results go to bench/out/ (git-ignored); only --write-docs touches tracked files (bench/results/, docs/performance.md).
// Options: see USAGE below (`yarn bench --help`).
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { buildSync } from 'esbuild';
import { cpus } from 'node:os';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import WebSocket from 'ws';
import { mintToken } from '../src/auth/jwt';
import { integerOption, listOption, parseCommandLine, positiveOption, run, UsageError } from '../src/cli/args';
import { cpuSeconds, freePort, rssBytes } from './proc';
import { percentile } from './stats';
import type { SubscriberCommand, SubscriberStats } from './subscribers';

const root = join(__dirname, '..');
const SECRET = 'bench-secret-that-is-at-least-32-bytes-long';
const PAD = 'x'.repeat(60);
const SERVER_CORE = '0';
const CLIENT_CORE = '1';
const TS_NODE = ['-r', 'ts-node/register/transpile-only'];
const GATEWAY_JS = join(root, 'dist', 'server.js');
const BASELINE_JS = join(root, 'bench', '.build', 'baselineServer.js');
/** Both servers run with a full collection on SIGUSR2 (bench/gcOnSignal.ts), for the idle workload's RSS figures. */
const SERVER_FLAGS = ['--expose-gc', '-r', join(root, 'bench', '.build', 'gcOnSignal.js')];

/** Compiles both servers: the gateway exactly as `yarn build` does, the baseline into bench/.build/. */
export function buildServers(): void {
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
  buildSync({ entryPoints: ['baselineServer.ts', 'gcOnSignal.ts'].map((f) => join(__dirname, f)), outdir: dirname(BASELINE_JS), platform: 'node', format: 'cjs', target: 'node20', logLevel: 'warning' });
}

export interface BenchOptions {
  subscribers: number;
  rates: number[];
  seconds: number;
  repeat: number;
  idle: number;
  idleSeconds: number;
  /** Sessions held by the instance that gets SIGTERM in the hand-over workload, one run per count. */
  handover: number[];
  /** Users identifying into one group (and, as the baseline, each into a group of their own) in the join-storm workload. */
  joinStorm: number[];
  skip: string[];
  /** Also write bench/results/<date>.json and the generated block of docs/performance.md (tracked files). */
  writeDocs: boolean;
  /** Where the JSON results go (default bench/out/, git-ignored). */
  outDir?: string;
  /** Run the fan-out, idle and hand-over gateways with --cpu-prof, profiles in bench/profiles/. */
  profile: boolean;
  /** Node.js flags for both servers (diagnostics such as --trace-gc); their output is forwarded to stderr. */
  nodeFlags?: string[];
}

export interface FanoutResult {
  workload: 'fanout' | 'redis';
  /** The repetition; a baseline and a gateway result with the same rep and rate are a pair of adjacent windows. */
  rep?: number;
  server: 'baseline' | 'gateway';
  rate: number;
  subscribers: number;
  deliveries: number;
  fraction: number;
  serverCpuSec: number;
  deliveriesPerServerCpuSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  serverRssMiB: number;
  clientCpuPct: number;
  redisCpuSec?: number;
}

/**
 * Time from sending `identify` to its `ready`, two instances on Redis: a plain identify, and resumes of a session held
 * by the same instance (local), by the other one (remote, a handoff), and by nobody (unknown).
 */
export interface ResumeResult {
  samples: number;
  identifyP50Ms: number;
  identifyP99Ms: number;
  localResumeP50Ms: number;
  localResumeP99Ms: number;
  remoteResumeP50Ms: number;
  remoteResumeP99Ms: number;
  unknownResumeP50Ms: number;
  unknownResumeP99Ms: number;
}

/** A gateway holding `sessions` gets SIGTERM with one other instance alive: how long until they were all handed over. */
export interface HandoverResult {
  sessions: number;
  handedOver: number;
  kept: number;
  /** From SIGTERM to the gateway's log of the completed hand-over. */
  handoverMs: number;
  /** From SIGTERM to the process's exit (connections closed, Redis left). */
  exitMs: number;
}

/** N distinct users identifying at once (100 at a time) into one group, or each into a group of their own. */
export interface JoinStormResult {
  users: number;
  groups: 'one' | 'own';
  /** Until every user had its `ready`; null when that took longer than the run's limit. */
  readyMs: number | null;
  /** Gateway CPU over the run (the whole cut-off window when not all were ready). */
  gatewayCpuSec: number;
  /** NaN when the run was cut off. */
  gatewayCpuMsPerIdentify: number;
  /** Bytes each client had received when the last one was ready; NaN when the run was cut off. */
  bytesPerClient: number;
  /** CPU of the process holding the clients meanwhile (one core: when it nears readyMs, the clients were the limit). */
  clientCpuSec: number;
}

/** How long a member waits to hear that another user came UP or went DOWN, for one GW_PRESENCE_BATCH_MS. */
export interface PresenceLatencyResult {
  batchMs: number;
  samples: number;
  /** From the other user's `identify` sent to the member's presence_update UP. */
  upP50Ms: number;
  upP99Ms: number;
  /** From the other user's close to the member's presence_update DOWN. */
  downP50Ms: number;
  downP99Ms: number;
}

export interface IdleResult {
  server: 'baseline' | 'gateway';
  connections: number;
  connected: number;
  disconnects: number;
  rssPerConnectionKiB: number;
  idleCpuPctOfCore: number;
  seconds: number;
}


let nodeFlags: string[] = [];
/** Every process the benchmark starts, so an interrupted run (Ctrl-C, SIGTERM) takes them all down with it. */
const children = new Set<ChildProcess>();
function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}
const pinned = (core: string, args: string[], env: NodeJS.ProcessEnv = process.env) => track(spawn('taskset', ['-c', core, ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] }));
const pin = (pid: number, core: string) => execFileSync('taskset', ['-cp', core, String(pid)], { stdio: 'ignore' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Server {
  proc: ChildProcess;
  port: number;
  stop(): Promise<void>;
}

/** SIGTERM first (a profiled gateway writes its profile on a clean exit), SIGKILL after 5 s. */
function stopper(proc: ChildProcess) {
  return async () => {
    if (proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
}

async function startBaseline(): Promise<Server> {
  const proc = pinned(SERVER_CORE, [process.execPath, ...SERVER_FLAGS, ...nodeFlags, BASELINE_JS]);
  proc.stdout!.on('data', (d: Buffer) => process.stderr.write(d));
  const port = await new Promise<number>((resolve) => proc.once('message', (m: { port: number }) => resolve(m.port)));
  return { proc, port, stop: stopper(proc) };
}

async function startGateway(env: Record<string, string>, profile = false): Promise<Server> {
  const prof = profile ? ['--cpu-prof', `--cpu-prof-dir=${join(root, 'bench', 'profiles')}`] : [];
  const proc = pinned(SERVER_CORE, [process.execPath, ...SERVER_FLAGS, ...nodeFlags, ...prof, GATEWAY_JS], env);
  return await new Promise((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += String(d);
      const line = out.split('\n').find((l) => l.includes('gateway listening'));
      if (!line) return;
      // Keep draining the gateway's log (one line per identify) without holding on to it.
      proc.stdout!.off('data', onData);
      proc.stdout!.on('data', (d: Buffer) => nodeFlags.length > 0 && process.stderr.write(d));
      resolve({ proc, port: (JSON.parse(line) as { port: number }).port, stop: stopper(proc) });
    };
    proc.stdout!.on('data', onData);
    proc.once('exit', (code) => reject(new Error(`gateway exited ${code}: ${out}`)));
  });
}

function gatewayEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    NODE_ENV: 'production',
    GW_JWT_SECRET: SECRET,
    GW_PORT: '0',
    GW_METRICS_PORT: '0',
    GW_HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    GW_RATE_CONN_PER_MIN: '1000000',
    GW_RATE_MSG_PER_10S: '1000000',
    GW_MAX_CONNECTIONS_PER_USER: '1000',
    ...extra,
  };
}

class Subscribers {
  private readonly proc: ChildProcess;
  constructor() {
    this.proc = track(fork(join(__dirname, 'subscribers.ts'), { execArgv: TS_NODE, cwd: root }));
    pin(this.proc.pid!, CLIENT_CORE);
  }
  private ask<T>(command: SubscriberCommand, ev: string): Promise<T> {
    return new Promise((resolve) => {
      const on = (m: { ev: string }) => {
        if (m.ev !== ev) return;
        this.proc.off('message', on);
        resolve(m as T);
      };
      this.proc.on('message', on);
      this.proc.send(command);
    });
  }
  connect(c: Omit<Extract<SubscriberCommand, { cmd: 'connect' }>, 'cmd'>) {
    return this.ask<{ connected: number; failed: number; bytes: number; ms: number; cpuSec: number }>({ cmd: 'connect', ...c }, 'connected');
  }
  start() {
    return this.ask<unknown>({ cmd: 'start' }, 'started');
  }
  async stop(): Promise<SubscriberStats> {
    return (await this.ask<{ stats: SubscriberStats }>({ cmd: 'stop' }, 'stats')).stats;
  }
  async exit(): Promise<void> {
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.send({ cmd: 'exit' });
    await exited;
  }
  /** For a load generator too busy to read its commands. */
  async kill(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.kill('SIGKILL');
    await exited;
  }
}

/** One publisher connection; `publish` sends a ~100-byte payload carrying its send time. */
async function publisher(kind: 'baseline' | 'gateway', port: number, group: string): Promise<{ publish(): void; close(): void }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${kind === 'gateway' ? '/rt' : '/'}`);
  await new Promise((r, j) => ws.once('open', r).once('error', j));
  if (kind === 'gateway') {
    const token = await mintToken({ sub: 'publisher', groups: [group] }, new TextEncoder().encode(SECRET));
    await new Promise<void>((resolve) => {
      ws.on('message', (m) => {
        if (String(m).startsWith('{"type":"ready"')) resolve();
      });
      ws.send(JSON.stringify({ type: 'identify', data: { token, groups: [group] } }));
    });
  }
  const now = () => performance.timeOrigin + performance.now();
  return {
    publish: () => {
      const payload = `{"t":${now().toFixed(3)},"pad":"${PAD}"}`;
      ws.send(kind === 'gateway' ? `{"type":"data_update","data":{"group":"${group}","payload":${payload}}}` : `pub ${group} ${payload}`);
    },
    close: () => ws.close(),
  };
}

/** Open loop: `rate` publishes per second for `seconds`, on schedule whatever the replies. */
async function openLoop(publish: () => void, rate: number, seconds: number): Promise<number> {
  const total = Math.round(rate * seconds);
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    publish();
  }
  return total;
}

async function measureFanout(o: {
  workload: 'fanout' | 'redis';
  server: 'baseline' | 'gateway';
  ports: number[];
  pids: number[];
  redisPid?: number;
  rate: number;
  subscribers: Subscribers;
  count: number;
  seconds: number;
}): Promise<FanoutResult> {
  const pub = await publisher(o.server, o.ports[0]!, 'bench');
  await sleep(300);
  await o.subscribers.start();
  const cpu0 = o.pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const redis0 = o.redisPid ? cpuSeconds(o.redisPid) : 0;
  const started = performance.now();
  const sent = await openLoop(pub.publish, o.rate, o.seconds);
  await sleep(500);
  const elapsed = (performance.now() - started) / 1000;
  const serverCpuSec = o.pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0) - cpu0;
  const redisCpuSec = o.redisPid ? cpuSeconds(o.redisPid) - redis0 : undefined;
  const stats = await o.subscribers.stop();
  pub.close();
  return {
    workload: o.workload,
    server: o.server,
    rate: o.rate,
    subscribers: o.count,
    deliveries: stats.deliveries,
    fraction: stats.deliveries / (sent * o.count),
    serverCpuSec,
    deliveriesPerServerCpuSec: Math.round(stats.deliveries / Math.max(serverCpuSec, 0.01)),
    p50Ms: stats.p50Ms,
    p99Ms: stats.p99Ms,
    maxMs: stats.maxMs,
    serverRssMiB: o.pids.reduce((sum, pid) => sum + rssBytes(pid), 0) / 2 ** 20,
    clientCpuPct: (100 * stats.clientCpuSec) / elapsed,
    ...(redisCpuSec !== undefined ? { redisCpuSec } : {}),
  };
}

/**
 * Fan-out on one instance. Both servers and their subscribers stay up for the whole workload and take turns in paired
 * windows (same rate, seconds apart, order swapped every pair), so the machine's slow drifts hit both sides of a pair.
 */
async function fanout(opts: BenchOptions): Promise<FanoutResult[]> {
  const results: FanoutResult[] = [];
  const servers = { baseline: await startBaseline(), gateway: await startGateway(gatewayEnv({ GW_HEARTBEAT_INTERVAL_MS: '300000', GW_HEARTBEAT_TIMEOUT_MS: '600000', GW_SHUTDOWN_GRACE_MS: '100' }), opts.profile) };
  const subscribers = { baseline: new Subscribers(), gateway: new Subscribers() };
  try {
    for (const server of ['baseline', 'gateway'] as const) {
      const c = await subscribers[server].connect({ kind: server, ports: [servers[server].port], count: opts.subscribers, group: 'bench', secret: SECRET });
      if (c.failed > 0) throw new Error(`${c.failed} subscribers failed to connect to the ${server}`);
    }
    let pair = 0;
    for (let rep = 0; rep < opts.repeat; rep++) {
      for (const rate of opts.rates) {
        const order = pair++ % 2 === 0 ? (['baseline', 'gateway'] as const) : (['gateway', 'baseline'] as const);
        for (const server of order) {
          const s = servers[server];
          const r = await measureFanout({ workload: 'fanout', server, ports: [s.port], pids: [s.proc.pid!], rate, subscribers: subscribers[server], count: opts.subscribers, seconds: opts.seconds });
          results.push({ ...r, rep });
          log(r);
        }
      }
    }
  } finally {
    for (const server of ['baseline', 'gateway'] as const) {
      await subscribers[server].exit();
      await servers[server].stop();
    }
  }
  return results;
}

/** The server's RSS right after a full collection, so garbage not yet collected does not count. */
async function settledRss(proc: ChildProcess): Promise<number> {
  const collected = new Promise<void>((resolve) => {
    const on = (m: { gc?: boolean }) => {
      if (!m.gc) return;
      proc.off('message', on);
      resolve();
    };
    proc.on('message', on);
  });
  proc.kill('SIGUSR2');
  await collected;
  await sleep(200);
  return rssBytes(proc.pid!);
}

async function idle(opts: BenchOptions): Promise<IdleResult[]> {
  const results: IdleResult[] = [];
  for (const server of ['baseline', 'gateway'] as const) {
    const s = server === 'baseline' ? await startBaseline() : await startGateway(gatewayEnv(), opts.profile);
    const subs = new Subscribers();
    try {
      await sleep(1000);
      const before = await settledRss(s.proc);
      const c = await subs.connect({ kind: server, ports: [s.port], count: opts.idle, group: 'idle', secret: SECRET, heartbeatMs: 10_000, groupSize: 10 });
      await sleep(3000);
      const after = await settledRss(s.proc);
      await subs.start();
      const cpu0 = cpuSeconds(s.proc.pid!);
      await sleep(opts.idleSeconds * 1000);
      const cpu = cpuSeconds(s.proc.pid!) - cpu0;
      const stats = await subs.stop();
      const r: IdleResult = {
        server,
        connections: opts.idle,
        connected: c.connected,
        disconnects: stats.closes,
        rssPerConnectionKiB: (after - before) / Math.max(1, c.connected) / 1024,
        idleCpuPctOfCore: (100 * cpu) / opts.idleSeconds,
        seconds: opts.idleSeconds,
      };
      results.push(r);
      console.log(`idle     ${server.padEnd(8)} close codes ${JSON.stringify(stats.closeCodes)}`);
      console.log(`idle     ${server.padEnd(8)} ${r.connected} connected, ${r.disconnects} disconnects, ${r.rssPerConnectionKiB.toFixed(2)} KiB/connection, idle CPU ${r.idleCpuPctOfCore.toFixed(2)} % of a core`);
    } finally {
      await subs.exit();
      await s.stop();
    }
  }
  return results;
}

/** A redis-server on a free port, pinned with the servers. */
async function benchRedis(): Promise<{ url: string; proc: ChildProcess }> {
  const port = await freePort();
  const proc = pinned(SERVER_CORE, ['redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
  await sleep(500);
  return { url: `redis://127.0.0.1:${port}`, proc };
}

/** One connection's identify, timed from send to its reply; `resume` names a session for the gateway to look for. */
async function timedIdentify(
  port: number,
  token: string,
  resume?: { sessionId: string; sessionToken: string },
  closeCode = 1000,
): Promise<{ ms: number; ready: { sessionId: string; sessionToken: string; resumed: boolean } }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/rt`);
  const replies: { type: string; data: Record<string, unknown> }[] = [];
  let wake: (() => void) | null = null;
  ws.on('message', (m) => {
    replies.push(JSON.parse(String(m)) as { type: string; data: Record<string, unknown> });
    wake?.();
  });
  const next = async () => {
    while (replies.length === 0) await new Promise<void>((r) => (wake = r));
    return replies.shift()!;
  };
  await new Promise((r, j) => ws.once('open', r).once('error', j));
  await next();
  const started = performance.now();
  ws.send(JSON.stringify({ type: 'identify', id: '1', data: { token, groups: ['resume'], resume: resume && { ...resume, lastSeq: 0 } } }));
  const reply = await next();
  const ms = performance.now() - started;
  // 1000 ends the session at once, so sessions do not pile up; 4100 (resume later) keeps it for the next sample.
  const closed = new Promise((r) => ws.once('close', r));
  ws.close(closeCode);
  await closed;
  if (reply.type !== 'ready') throw new Error(`identify answered ${reply.type}: ${JSON.stringify(reply.data)}`);
  return { ms, ready: reply.data as { sessionId: string; sessionToken: string; resumed: boolean } };
}

/**
 * Resume latency on two compiled instances sharing a redis-server, alternating samples, each on a fresh connection:
 * a plain identify; a resume of a session the same instance holds (orphaned by a 4100 close); of one the other
 * instance holds (pulled through a handoff); and of one nobody holds (answered at once: the directory has no owner).
 */
async function resumeLatency(samples: number): Promise<ResumeResult> {
  const redisServer = await benchRedis();
  const servers = [
    await startGateway(gatewayEnv({ GW_REDIS_URL: redisServer.url, GW_INSTANCE_ID: 'resume-a' })),
    await startGateway(gatewayEnv({ GW_REDIS_URL: redisServer.url, GW_INSTANCE_ID: 'resume-b' })),
  ] as const;
  const [a, b] = servers;
  try {
    const token = await mintToken({ sub: 'resumer', groups: ['resume'] }, new TextEncoder().encode(SECRET));
    const times = { plain: [] as number[], local: [] as number[], remote: [] as number[], unknown: [] as number[] };
    const expect = (what: string, resumed: boolean, wanted: boolean) => {
      if (resumed !== wanted) throw new Error(`${what} resume answered resumed: ${resumed}`);
    };
    for (let i = 0; i < samples; i++) {
      times.plain.push((await timedIdentify(a.port, token)).ms);
      const kept = (await timedIdentify(a.port, token, undefined, 4100)).ready;
      const local = await timedIdentify(a.port, token, kept, 4100);
      expect('a local', local.ready.resumed, true);
      times.local.push(local.ms);
      const remote = await timedIdentify(b.port, token, kept);
      expect('a remote', remote.ready.resumed, true);
      times.remote.push(remote.ms);
      const unknown = await timedIdentify(b.port, token, kept);
      expect('an unknown', unknown.ready.resumed, false);
      times.unknown.push(unknown.ms);
    }
    for (const xs of Object.values(times)) xs.sort((x, y) => x - y);
    const r: ResumeResult = {
      samples,
      identifyP50Ms: percentile(times.plain, 0.5),
      identifyP99Ms: percentile(times.plain, 0.99),
      localResumeP50Ms: percentile(times.local, 0.5),
      localResumeP99Ms: percentile(times.local, 0.99),
      remoteResumeP50Ms: percentile(times.remote, 0.5),
      remoteResumeP99Ms: percentile(times.remote, 0.99),
      unknownResumeP50Ms: percentile(times.unknown, 0.5),
      unknownResumeP99Ms: percentile(times.unknown, 0.99),
    };
    const f = (p50: number, p99: number) => `p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms`;
    console.log(
      `resume   2 inst.  ${samples} samples each: identify ${f(r.identifyP50Ms, r.identifyP99Ms)}; local resume ${f(r.localResumeP50Ms, r.localResumeP99Ms)}; ` +
        `remote ${f(r.remoteResumeP50Ms, r.remoteResumeP99Ms)}; unknown ${f(r.unknownResumeP50Ms, r.unknownResumeP99Ms)}`,
    );
    return r;
  } finally {
    for (const s of servers) await s.stop();
    redisServer.proc.kill('SIGKILL');
  }
}

/** Resolves with the first line of `proc`'s log that contains `text`, parsed. */
function logLine<T>(proc: ChildProcess, text: string): Promise<T> {
  return new Promise((resolve) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += String(d);
      const line = out.split('\n').find((l) => l.includes(text));
      if (!line) return;
      proc.stdout!.off('data', onData);
      resolve(JSON.parse(line) as T);
    };
    proc.stdout!.on('data', onData);
  });
}

const JOIN_STORM_CONCURRENCY = 100;
const JOIN_STORM_LIMIT_MS = 60_000;

/**
 * A join storm: N distinct users identify into one group, 100 at a time, on a fresh compiled gateway; the same N each
 * into a group of their own is the baseline. Time until all are ready, gateway CPU per identify, bytes each client
 * received (the member lists and the presence updates). A run that takes longer than 60 s is cut off and reported so.
 */
async function joinStorm(counts: number[], profile: boolean): Promise<JoinStormResult[]> {
  const results: JoinStormResult[] = [];
  for (const users of counts) {
    for (const groups of ['own', 'one'] as const) {
      const server = await startGateway(gatewayEnv({ GW_MAX_CONNECTIONS_PER_USER: '1', GW_HEARTBEAT_INTERVAL_MS: '300000', GW_HEARTBEAT_TIMEOUT_MS: '600000', GW_SHUTDOWN_GRACE_MS: '100' }), profile);
      const subs = new Subscribers();
      try {
        const cpuBefore = cpuSeconds(server.proc.pid!);
        const connecting = subs.connect({ kind: 'gateway', ports: [server.port], count: users, group: 'storm', secret: SECRET, groupSize: groups === 'own' ? 1 : undefined, concurrency: JOIN_STORM_CONCURRENCY });
        const done = await Promise.race([connecting, sleep(JOIN_STORM_LIMIT_MS).then(() => null)]);
        const readyMs = done ? done.ms : null;
        if (done && done.failed > 0) throw new Error(`${done.failed} users failed to identify`);
        const gatewayCpuSec = cpuSeconds(server.proc.pid!) - cpuBefore;
        const r: JoinStormResult = {
          users,
          groups,
          readyMs,
          gatewayCpuSec,
          gatewayCpuMsPerIdentify: done ? (gatewayCpuSec * 1000) / users : Number.NaN,
          bytesPerClient: done ? done.bytes / users : Number.NaN,
          clientCpuSec: done ? done.cpuSec : Number.NaN,
        };
        const what = done
          ? `all ready in ${(readyMs! / 1000).toFixed(2)} s, gateway CPU ${r.gatewayCpuMsPerIdentify.toFixed(2)} ms per identify, ${(r.bytesPerClient / 1024).toFixed(1)} KiB per client, client process CPU ${r.clientCpuSec.toFixed(1)} s`
          : `not all ready within ${JOIN_STORM_LIMIT_MS / 1000} s (cut off; gateway CPU ${gatewayCpuSec.toFixed(1)} s meanwhile)`;
        console.log(`joinstorm ${users} users, ${groups === 'one' ? 'one group' : 'a group each'}: ${what}`);
        results.push(r);
      } finally {
        await subs.kill();
        await server.stop();
      }
    }
  }
  return results;
}

const PRESENCE_SAMPLES = 100;

/**
 * Presence latency in a two-person group: a member watches while another user comes UP (identify) and goes DOWN
 * (close) again, PRESENCE_SAMPLES times, once with the default batch interval and once with batching off (0), on a
 * fresh compiled gateway each: the difference is what batching adds.
 */
async function presenceLatency(): Promise<PresenceLatencyResult[]> {
  const results: PresenceLatencyResult[] = [];
  for (const batchMs of [0, 50]) {
    const server = await startGateway(gatewayEnv({ GW_PRESENCE_BATCH_MS: String(batchMs) }));
    const url = `ws://127.0.0.1:${server.port}/rt`;
    const open = async (user: string) => {
      const ws = new WebSocket(url);
      const frames: { type: string; data: { userId?: string; status?: string } }[] = [];
      const waiters: (() => void)[] = [];
      ws.on('message', (raw) => {
        frames.push(JSON.parse(String(raw)) as (typeof frames)[number]);
        for (const w of waiters.splice(0)) w();
      });
      const next = async (match: (f: (typeof frames)[number]) => boolean) => {
        for (;;) {
          const at = frames.findIndex(match);
          if (at >= 0) return frames.splice(0, at + 1)[at]!;
          await new Promise<void>((r) => waiters.push(r));
        }
      };
      await next((f) => f.type === 'hello');
      const token = await mintToken({ sub: user, groups: ['pair'] }, new TextEncoder().encode(SECRET));
      const sent = performance.now();
      ws.send(JSON.stringify({ type: 'identify', data: { token, groups: ['pair'] } }));
      await next((f) => f.type === 'ready');
      return { ws, next, sent };
    };
    try {
      const member = await open('member');
      const up: number[] = [];
      const down: number[] = [];
      for (let i = 0; i < PRESENCE_SAMPLES; i++) {
        const other = await open('other');
        await member.next((f) => f.type === 'presence_update' && f.data.status === 'UP');
        up.push(performance.now() - other.sent);
        const closed = performance.now();
        other.ws.close();
        await member.next((f) => f.type === 'presence_update' && f.data.status === 'DOWN');
        down.push(performance.now() - closed);
      }
      member.ws.close();
      for (const values of [up, down]) values.sort((a, b) => a - b);
      const r: PresenceLatencyResult = {
        batchMs,
        samples: PRESENCE_SAMPLES,
        upP50Ms: percentile(up, 0.5),
        upP99Ms: percentile(up, 0.99),
        downP50Ms: percentile(down, 0.5),
        downP99Ms: percentile(down, 0.99),
      };
      console.log(`presence GW_PRESENCE_BATCH_MS=${batchMs}: UP p50 ${r.upP50Ms.toFixed(1)} / p99 ${r.upP99Ms.toFixed(1)} ms, DOWN p50 ${r.downP50Ms.toFixed(1)} / p99 ${r.downP99Ms.toFixed(1)} ms`);
      results.push(r);
    } finally {
      await server.stop();
    }
  }
  return results;
}

/** The hand-over on SIGTERM: `sessions` identified on one instance (groups of 100), one other instance alive. */
async function handover(counts: number[], profile: boolean): Promise<HandoverResult[]> {
  const results: HandoverResult[] = [];
  for (const sessions of counts) {
    const redisServer = await benchRedis();
    const env = (id: string) => gatewayEnv({ GW_REDIS_URL: redisServer.url, GW_INSTANCE_ID: id, GW_HEARTBEAT_INTERVAL_MS: '300000', GW_HEARTBEAT_TIMEOUT_MS: '600000' });
    const stopping = await startGateway(env(`handover-${sessions}-a`), profile);
    const staying = await startGateway(env(`handover-${sessions}-b`), profile);
    const subs = new Subscribers();
    try {
      const c = await subs.connect({ kind: 'gateway', ports: [stopping.port], count: sessions, group: 'handover', secret: SECRET, groupSize: 100 });
      if (c.failed > 0) throw new Error(`${c.failed} sessions failed to identify`);
      const done = logLine<{ handedOver: number; kept: number }>(stopping.proc, 'sessions handed over to surviving instances');
      const exited = new Promise((r) => stopping.proc.once('exit', r));
      const started = performance.now();
      stopping.proc.kill('SIGTERM');
      const logged = await done;
      const handoverMs = performance.now() - started;
      await exited;
      const r: HandoverResult = { sessions, handedOver: logged.handedOver, kept: logged.kept, handoverMs, exitMs: performance.now() - started };
      console.log(`handover ${sessions} sessions: ${r.handedOver} handed over, ${r.kept} kept, in ${r.handoverMs.toFixed(0)} ms; exited after ${r.exitMs.toFixed(0)} ms`);
      results.push(r);
    } finally {
      await subs.exit();
      await stopping.stop();
      await staying.stop();
      redisServer.proc.kill('SIGKILL');
    }
  }
  return results;
}

/** Fan-out with subscribers spread over 2 gateway instances on one redis-server, against 1 instance, same run. */
async function redis(opts: BenchOptions, rate: number): Promise<FanoutResult[]> {
  const { url, proc: redisProc } = await benchRedis();
  const results: FanoutResult[] = [];
  try {
    for (const instances of [1, 2]) {
      const servers: Server[] = [];
      for (let i = 0; i < instances; i++) {
        servers.push(await startGateway(gatewayEnv({ GW_REDIS_URL: url, GW_INSTANCE_ID: `bench-${instances}-${i}`, GW_HEARTBEAT_INTERVAL_MS: '300000', GW_HEARTBEAT_TIMEOUT_MS: '600000' })));
      }
      const subs = new Subscribers();
      try {
        const c = await subs.connect({ kind: 'gateway', ports: servers.map((s) => s.port), count: opts.subscribers, group: 'bench', secret: SECRET });
        if (c.failed > 0) throw new Error(`${c.failed} subscribers failed to connect`);
        const r = await measureFanout({ workload: 'redis', server: 'gateway', ports: servers.map((s) => s.port), pids: servers.map((s) => s.proc.pid!), redisPid: redisProc.pid!, rate, subscribers: subs, count: opts.subscribers, seconds: opts.seconds });
        results.push(r);
        log(r, `${instances} inst.`);
      } finally {
        await subs.exit();
        for (const s of servers) await s.stop();
      }
    }
  } finally {
    redisProc.kill('SIGKILL');
  }
  return results;
}

function log(r: FanoutResult, label: string = r.server): void {
  console.log(
    `${r.workload.padEnd(8)} ${label.padEnd(8)} ${String(r.rate).padStart(3)} msg/s × ${r.subscribers}: ${(r.fraction * 100).toFixed(1)} % delivered, ` +
      `${r.deliveriesPerServerCpuSec} deliveries/server-CPU-s, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms, max ${r.maxMs.toFixed(1)} ms, ` +
      `RSS ${r.serverRssMiB.toFixed(0)} MiB, client CPU ${r.clientCpuPct.toFixed(0)} %`,
  );
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length === 0 ? 0 : sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** gateway / baseline for each repetition that has both (the two windows of a pair are adjacent in time). */
function pairRatios(results: FanoutResult[], f: (r: FanoutResult) => number): number[] {
  const ratios: number[] = [];
  for (const g of results.filter((r) => r.server === 'gateway')) {
    const b = results.find((r) => r.server === 'baseline' && r.rep === g.rep);
    if (b && f(b) > 0) ratios.push(f(g) / f(b));
  }
  return ratios;
}

export function summarize(fan: FanoutResult[], idleResults: IdleResult[], redisResults: FanoutResult[], resume: ResumeResult | null, handover: HandoverResult[], joins: JoinStormResult[], presence: PresenceLatencyResult[]): string {
  const rows: string[] = ['| figure | baseline | gateway | gateway / baseline |', '|---|---|---|---|'];
  for (const rate of [...new Set(fan.map((r) => r.rate))]) {
    const pick = (server: string, f: (r: FanoutResult) => number) => median(fan.filter((r) => r.rate === rate && r.server === server).map(f));
    const line = (name: string, f: (r: FanoutResult) => number, digits = 0) => {
      const b = pick('baseline', f);
      const g = pick('gateway', f);
      rows.push(`| ${name} | ${b.toFixed(digits)} | ${g.toFixed(digits)} | ${(g / b).toFixed(2)} × |`);
    };
    const subs = fan[0]?.subscribers ?? 0;
    line(`fanout ${rate} msg/s × ${subs}: deliveries per server CPU-second`, (r) => r.deliveriesPerServerCpuSec);
    const paired = pairRatios(fan.filter((r) => r.rate === rate), (r) => r.deliveriesPerServerCpuSec);
    if (paired.length > 1) {
      rows.push(`| fanout ${rate} msg/s: the same, per pair of adjacent windows (${paired.length} pairs) | | | median ${median(paired).toFixed(2)} × (${Math.min(...paired).toFixed(2)}–${Math.max(...paired).toFixed(2)}) |`);
    }
    line(`fanout ${rate} msg/s: fraction delivered`, (r) => r.fraction, 4);
    line(`fanout ${rate} msg/s: p50 latency (ms)`, (r) => r.p50Ms, 2);
    line(`fanout ${rate} msg/s: p99 latency (ms)`, (r) => r.p99Ms, 2);
    line(`fanout ${rate} msg/s: max latency (ms)`, (r) => r.maxMs, 1);
    line(`fanout ${rate} msg/s: server RSS (MiB)`, (r) => r.serverRssMiB, 0);
    line(`fanout ${rate} msg/s: subscriber-process CPU (% of a core)`, (r) => r.clientCpuPct, 0);
  }
  const ib = idleResults.find((r) => r.server === 'baseline');
  const ig = idleResults.find((r) => r.server === 'gateway');
  if (ib && ig) {
    rows.push(`| idle ${ig.connections} connections, ${ig.seconds} s: RSS per connection (KiB) | ${ib.rssPerConnectionKiB.toFixed(2)} | ${ig.rssPerConnectionKiB.toFixed(2)} | +${(ig.rssPerConnectionKiB - ib.rssPerConnectionKiB).toFixed(2)} KiB |`);
    rows.push(`| idle: CPU (% of a core) | ${ib.idleCpuPctOfCore.toFixed(2)} | ${ig.idleCpuPctOfCore.toFixed(2)} | |`);
    rows.push(`| idle: disconnects | ${ib.disconnects} | ${ig.disconnects} | |`);
  }
  const [one, two] = redisResults;
  if (one && two) {
    rows.push(`| redis ${two.rate} msg/s × ${two.subscribers}: deliveries per gateway CPU-second, 1 vs 2 instances | ${one.deliveriesPerServerCpuSec} (1 inst.) | ${two.deliveriesPerServerCpuSec} (2 inst.) | ${(two.deliveriesPerServerCpuSec / one.deliveriesPerServerCpuSec).toFixed(2)} × |`);
    rows.push(`| redis: fraction delivered, p99 (ms) | ${one.fraction.toFixed(4)}, ${one.p99Ms.toFixed(2)} | ${two.fraction.toFixed(4)}, ${two.p99Ms.toFixed(2)} | |`);
  }
  if (resume) {
    for (const [name, p50, p99] of [
      ['the same instance (local)', resume.localResumeP50Ms, resume.localResumeP99Ms],
      ['the other instance (remote, a handoff)', resume.remoteResumeP50Ms, resume.remoteResumeP99Ms],
      ['nobody (unknown)', resume.unknownResumeP50Ms, resume.unknownResumeP99Ms],
    ] as const) {
      rows.push(`| resume of a session held by ${name} vs a plain identify, p50 / p99 (ms), ${resume.samples} each | ${resume.identifyP50Ms.toFixed(2)} / ${resume.identifyP99Ms.toFixed(2)} (identify) | ${p50.toFixed(2)} / ${p99.toFixed(2)} | ${(p50 / resume.identifyP50Ms).toFixed(2)} × |`);
    }
  }
  for (const users of [...new Set(joins.map((j) => j.users))]) {
    const own = joins.find((j) => j.users === users && j.groups === 'own');
    const one = joins.find((j) => j.users === users && j.groups === 'one');
    if (!own || !one) continue;
    const cell = (j: JoinStormResult) =>
      j.readyMs === null
        ? `not within ${JOIN_STORM_LIMIT_MS / 1000} s (${j.gatewayCpuSec.toFixed(1)} CPU-s meanwhile)`
        : `${(j.readyMs / 1000).toFixed(2)} s; ${j.gatewayCpuMsPerIdentify.toFixed(2)}; ${(j.bytesPerClient / 1024).toFixed(1)}`;
    const ratio = one.readyMs === null || own.readyMs === null ? '' : `${(one.gatewayCpuMsPerIdentify / own.gatewayCpuMsPerIdentify).toFixed(2)} × CPU`;
    rows.push(`| join storm, ${users} users 100 at a time: all ready; CPU ms per identify; KiB per client | ${cell(own)} (a group each) | ${cell(one)} (one group) | ${ratio} |`);
  }
  const [unbatched, batched] = presence;
  if (unbatched && batched) {
    const cell = (r: PresenceLatencyResult) => `${r.upP50Ms.toFixed(1)} / ${r.upP99Ms.toFixed(1)}; ${r.downP50Ms.toFixed(1)} / ${r.downP99Ms.toFixed(1)}`;
    rows.push(`| presence in a two-person group, ${batched.samples} samples: UP p50 / p99; DOWN p50 / p99 (ms), batching off vs GW_PRESENCE_BATCH_MS=${batched.batchMs} | ${cell(unbatched)} (off) | ${cell(batched)} | +${(batched.upP50Ms - unbatched.upP50Ms).toFixed(1)} / +${(batched.downP50Ms - unbatched.downP50Ms).toFixed(1)} ms at p50 |`);
  }
  for (const h of handover) {
    rows.push(`| SIGTERM with ${h.sessions} sessions, one other instance alive: all handed over (ms); process exit (ms) | | ${h.handoverMs.toFixed(0)}; ${h.exitMs.toFixed(0)} (${h.handedOver} moved, ${h.kept} kept) | |`);
  }
  return rows.join('\n');
}

export async function runBench(opts: BenchOptions) {
  buildServers();
  nodeFlags = opts.nodeFlags ?? [];
  pin(process.pid, CLIENT_CORE);
  const fan = opts.skip.includes('fanout') ? [] : await fanout(opts);
  const idleResults = opts.skip.includes('idle') || opts.idle === 0 ? [] : await idle(opts);
  const redisResults = opts.skip.includes('redis') ? [] : await redis(opts, opts.rates[Math.floor(opts.rates.length / 2)]!);
  const resumeResult = opts.skip.includes('resume') ? null : await resumeLatency(RESUME_SAMPLES);
  const handoverResults = opts.skip.includes('handover') ? [] : await handover(opts.handover, opts.profile);
  const joinResults = opts.skip.includes('joinstorm') ? [] : await joinStorm(opts.joinStorm, opts.profile);
  const presenceResults = opts.skip.includes('presence') ? [] : await presenceLatency();
  const table = summarize(fan, idleResults, redisResults, resumeResult, handoverResults, joinResults, presenceResults);
  const machine = { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown', node: process.version, date: new Date().toISOString() };
  const json = JSON.stringify({ machine, options: opts, fanout: fan, idle: idleResults, redis: redisResults, resume: resumeResult, handover: handoverResults, joinStorm: joinResults, presence: presenceResults }, null, 2);
  const outDir = opts.outDir ?? join(root, 'bench', 'out');
  mkdirSync(outDir, { recursive: true });
  const outFile = join(outDir, `${machine.date.replace(/:/g, '-')}.json`);
  writeFileSync(outFile, json);
  console.log(`\nwrote ${outFile}`);
  if (opts.writeDocs) {
    const dir = join(root, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${machine.date.slice(0, 10)}.json`);
    writeFileSync(file, json);
    const docs = join(root, 'docs', 'performance.md');
    const text = readFileSync(docs, 'utf8');
    const invocation = ['yarn bench', ...process.argv.slice(2)].join(' ');
    const block = `<!-- bench:start -->\nMeasured ${machine.date} on ${machine.cpus} × ${machine.model}, Node ${machine.node}, with \`${invocation}\` (results: \`bench/results/${machine.date.slice(0, 10)}.json\`).\n\n${table}\n<!-- bench:end -->`;
    writeFileSync(docs, text.replace(/<!-- bench:start -->[\s\S]*<!-- bench:end -->/, block));
    console.log(`\nwrote ${file} and the summary in docs/performance.md`);
  }
  console.log(`\n${table}`);
  return { fanout: fan, idle: idleResults, redis: redisResults, resume: resumeResult, handover: handoverResults, joinStorm: joinResults, presence: presenceResults, file: outFile };
}

const WORKLOADS = ['fanout', 'idle', 'redis', 'resume', 'handover', 'joinstorm', 'presence'] as const;
/** Samples of each kind in the resume workload. */
const RESUME_SAMPLES = 200;

const USAGE = `usage: yarn bench [options]

Benchmarks the gateway against a raw ws baseline on this machine (fan-out, idle connections, 2 instances on Redis),
both compiled first; times resumes (local, remote, unknown) against a plain identify, the hand-over of every
session on SIGTERM, and a join storm into one group. Needs taskset and redis-server (bash scripts/setup.sh --test). Prints the summary table and
writes every figure to bench/out/<time>.json (git-ignored); only --write-docs changes tracked files.

Options:
  --subscribers <n>      subscribers in the fan-out and Redis workloads (default: 1000)
  --rates <list>         publishes per second, comma-separated (default: 10,25,40)
  --seconds <s>          length of one fan-out window (default: 10)
  --repeat <n>           pairs of windows per rate; medians reported (default: 1)
  --idle <n>             idle connections; 0 skips the idle workload (default: 10000)
  --idle-seconds <s>     how long the idle connections are measured (default: 60)
  --handover <list>      sessions held by the instance that gets SIGTERM, one run each (default: 1000,10000)
  --join-storm <list>    users identifying into one group, 100 at a time, one run each (default: 1000,5000,10000)
  --skip <list>          workloads to skip, comma-separated: fanout, idle, redis, resume, handover, joinstorm, presence
  --profile              CPU profiles of the fan-out, idle, hand-over and join-storm gateways, in bench/profiles/ (see yarn bench:profile)
  --node-flags=<flags>   Node.js flags for both servers, space-separated, e.g. --node-flags=--trace-gc
                         (their output then goes to stderr)
  --write-docs           also write bench/results/<date>.json and the generated block of docs/performance.md
  -h, --help             this text

Exit status: 0 done, 1 the benchmark failed, 2 wrong command line.`;

const command = {
  name: 'bench',
  usage: USAGE,
  options: {
    subscribers: { type: 'string', default: '1000' },
    rates: { type: 'string', default: '10,25,40' },
    seconds: { type: 'string', default: '10' },
    repeat: { type: 'string', default: '1' },
    idle: { type: 'string', default: '10000' },
    'idle-seconds': { type: 'string', default: '60' },
    handover: { type: 'string', default: '1000,10000' },
    'join-storm': { type: 'string', default: '1000,5000,10000' },
    skip: { type: 'string', default: '' },
    profile: { type: 'boolean', default: false },
    'node-flags': { type: 'string', default: '' },
    'write-docs': { type: 'boolean', default: false },
  },
} as const;

if (require.main === module) {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      // A profiling gateway may not exit on SIGTERM while it writes its profile: nothing is kept from a cut run.
      for (const child of children) child.kill('SIGKILL');
      console.error(`bench: interrupted (${signal}); every process it started was stopped`);
      process.exit(130);
    });
  }
  run(command, async () => {
    const { values } = parseCommandLine(command);
    const rates = listOption('--rates', values.rates).map((rate) => positiveOption('--rates', rate));
    if (rates.length === 0) throw new UsageError('--rates needs at least one rate');
    await runBench({
      subscribers: integerOption('--subscribers', values.subscribers),
      rates,
      seconds: positiveOption('--seconds', values.seconds),
      repeat: integerOption('--repeat', values.repeat),
      idle: integerOption('--idle', values.idle, 0),
      idleSeconds: positiveOption('--idle-seconds', values['idle-seconds']),
      handover: listOption('--handover', values.handover).map((n) => positiveOption('--handover', n)),
      joinStorm: listOption('--join-storm', values['join-storm']).map((n) => positiveOption('--join-storm', n)),
      skip: listOption('--skip', values.skip, WORKLOADS),
      writeDocs: values['write-docs'],
      profile: values.profile,
      nodeFlags: values['node-flags'].split(' ').filter(Boolean),
    });
    // Pinned children and sockets are gone; do not wait for stray handles.
    process.exit(0);
  });
}
