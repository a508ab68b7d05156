// `yarn bench`: the gateway against a raw `ws` baseline and what users would pick instead (Socket.IO 4,
// uWebSockets.js) on the same machine, same parameters, interleaved. Servers run pinned to core 0, load generators to
// core 1. Figures: deliveries per server CPU-second, fraction delivered, publish→deliver latency, RSS per idle
// connection, idle CPU, a 2-instance Redis run, and publishes through the server API against a client's.
// Every server runs as compiled JavaScript, as production does: the gateway from dist/ after the same
// `tsc -p tsconfig.build.json` as `yarn build` (what the Dockerfile runs), the others transpiled by esbuild.
// Results go to bench/out/ (git-ignored); only --write-docs touches tracked files (bench/results/, docs/performance.md).
// Options: see USAGE below (`yarn bench --help`).
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { buildSync } from 'esbuild';
import { cpus } from 'node:os';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import WebSocket from 'ws';
import { mintToken } from '../src/auth/jwt';
import { integerOption, listOption, parseCommandLine, positiveOption, run, UsageError } from '../src/cli/args';
import { heapPerConnection, heapTable, type HeapGroup } from './heapSummary';
import { coreBusySeconds, cpuSeconds, freePort, mainThreadCpuSeconds, rssBytes } from './proc';
import { percentile } from './stats';
import { WS_PATHS, type ServerKind, type SubscriberCommand, type SubscriberStats } from './subscribers';

const root = join(__dirname, '..');
const SECRET = 'bench-secret-that-is-at-least-32-bytes-long';
const PAD = 'x'.repeat(60);
const SERVER_CORE = '0';
const CLIENT_CORE = '1';
const TS_NODE = ['-r', 'ts-node/register/transpile-only'];
const GATEWAY_JS = join(root, 'dist', 'server.js');
const BUILD_DIR = join(root, 'bench', '.build');
/** The servers the gateway is compared with, each a script of bench/ compiled into bench/.build/. */
const COMPETITOR_JS = { baseline: 'baselineServer.js', socketio: 'socketioServer.js', uws: 'uwsServer.js' } as const;
type Competitor = keyof typeof COMPETITOR_JS;
/** Every server runs with a full collection on SIGUSR2 and heap snapshots on request (bench/gcOnSignal.ts). */
const SERVER_FLAGS = ['--expose-gc', '-r', join(BUILD_DIR, 'gcOnSignal.js')];
/**
 * ws (under the baseline, the gateway and Socket.IO) picks up the native bufferutil and utf-8-validate when installed;
 * uWebSockets.js's package pulls them into node_modules, and the gateway's production image has neither: every server
 * runs without them.
 */
const SERVER_ENV = { WS_NO_BUFFER_UTIL: '1', WS_NO_UTF_8_VALIDATE: '1' };
/** Names in the output and the docs. */
export const SERVER_NAMES: Record<ServerKind, string> = { baseline: 'ws', socketio: 'Socket.IO', uws: 'uWS', gateway: 'gateway' };
const SERVER_KINDS = Object.keys(SERVER_NAMES) as ServerKind[];
/** How often subscribers heartbeat with --liveness sdk: the SDK's interval, the gateway's default heartbeatIntervalMs. */
const SDK_HEARTBEAT_MS = 10_000;
/** The server API's key in the api workload (GW_API_KEY: at least 32 printable characters). */
const API_KEY = 'bench-api-key-that-is-at-least-32-chars';
/** Requests the API load generator keeps in flight at most, one keep-alive connection each; later ones queue in its agent. */
const API_IN_FLIGHT = 16;
/** Publishes per second into a group with no other member (api workload): enough CPU per window to read it in /proc's 10 ms ticks. */
const BARE_RATE = 1000;
const BARE_GROUP = 'bench-bare';
/** How long a window waits for the replies still due after its last publish; the rest count as failures. */
const REPLY_WAIT_MS = 30_000;

/** Compiles every server: the gateway exactly as `yarn build` does, the others into bench/.build/. */
export function buildServers(): void {
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
  buildSync({ entryPoints: ['baselineServer.ts', 'socketioServer.ts', 'uwsServer.ts', 'gcOnSignal.ts'].map((f) => join(__dirname, f)), outdir: BUILD_DIR, platform: 'node', format: 'cjs', target: 'node20', logLevel: 'warning' });
}

/**
 * What the subscribers do to stay connected. `sdk`: heartbeat every 10 s as the SDK does (to ws and uWS the same text,
 * which they ignore), the gateway with its default timings; `pings`: nothing, the gateway pings connections silent
 * for its 10 s interval (its heartbeat timeout raised so they stay); `none`: nothing, and the gateway neither pings nor
 * times out. Socket.IO pings every 25 s in every mode, as it always does.
 */
export type Liveness = 'sdk' | 'pings' | 'none';

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
  /** Also write bench/results/<date>.json (<date>-api.json) and the generated blocks of docs/performance.md (tracked files). */
  writeDocs: boolean;
  /** Where the JSON results go (default bench/out/, git-ignored). */
  outDir?: string;
  /** Run the fan-out, api, idle, hand-over and join-storm gateways with --cpu-prof, profiles in bench/profiles/. */
  profile: boolean;
  /** Node.js flags for every server (diagnostics such as --trace-gc); their output is forwarded to stderr. */
  nodeFlags?: string[];
  /** The servers of the fan-out and idle workloads (default: all four; uWS is left out when it cannot load). */
  servers?: ServerKind[];
  /** See Liveness (default: sdk). */
  liveness?: Liveness;
  /** Subscribers JSON.parse every message as real clients do (default: true); false: they only find the timestamp. */
  parse?: boolean;
  /** After connecting, a full collection and this many seconds of publishing on every server before the measured windows (default: 5). */
  warmup?: number;
  /** Heap snapshots of every idle server before and after connecting, in bench/profiles/, summarized per connection. */
  heapSnapshot?: boolean;
}

export interface FanoutResult {
  workload: 'fanout' | 'redis' | 'api';
  /** The repetition; results of every server with the same rep and rate are a set of adjacent windows. */
  rep?: number;
  server: ServerKind;
  rate: number;
  subscribers: number;
  deliveries: number;
  fraction: number;
  /** Every thread of the server processes (/proc/<pid>/stat utime + stime). */
  serverCpuSec: number;
  deliveriesPerServerCpuSec: number;
  /** The main thread only (/proc/<pid>/task/<pid>/stat): without V8's GC helper and compiler threads. */
  mainThreadCpuSec: number;
  deliveriesPerMainThreadCpuSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  serverRssMiB: number;
  clientCpuPct: number;
  redisCpuSec?: number;
  /** CPU that processes other than the servers measured (and their Redis) took on the servers' core during the window: another user of the machine. */
  othersOnServerCorePct: number;
  /** From a publisher that waits for a reply to each publish (the api workload's). */
  replies?: Replies;
}

/** What a publisher that asks for a reply to each publish got: HTTP statuses from the API, acks from the gateway. */
export interface Replies {
  sent: number;
  /** 200s from the API, acks from the gateway. */
  ok: number;
  /** The other outcomes by HTTP status, error code or socket error ("429", "FORBIDDEN", "ECONNRESET", "no reply"). */
  failed: Record<string, number>;
  /** Successful replies per second, from the first to the last: the publish rate the server kept up with. */
  perSec: number;
  /** From the publish to its reply. */
  p50Ms: number;
  p99Ms: number;
}

/** How the api workload publishes: through the server API, or as an identified client. */
export type Via = 'api' | 'client';
const VIAS: readonly Via[] = ['api', 'client'];
const VIA_NAMES: Record<Via, string> = { api: 'API', client: 'client' };

/**
 * One window of the api workload: one gateway, one group of `subscribers` (0: a group with no other member), publishes
 * at `rate` through the server API (POST /api/publish over keep-alive connections) or from a client (data_update with
 * an id, acknowledged, as the SDK sends it). With no recipients, `fraction` is NaN.
 */
export interface ApiPublishResult extends FanoutResult {
  workload: 'api';
  via: Via;
  replies: Replies;
  deliveriesPerSec: number;
  serverCpuMsPerPublish: number;
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
  server: ServerKind;
  connections: number;
  connected: number;
  disconnects: number;
  rssPerConnectionKiB: number;
  idleCpuPctOfCore: number;
  seconds: number;
  /** With --heap-snapshot: what the connections added to the heap, per connection (see bench/heapSummary.ts). */
  heap?: HeapGroup[];
}


let nodeFlags: string[] = [];
/** Every process the benchmark starts, so an interrupted run (Ctrl-C, SIGTERM) takes them all down with it. */
const children = new Set<ChildProcess>();
function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}
/**
 * The benchmark's processes run at a higher priority than anything else on the machine (nice -10, where allowed):
 * on a shared machine another user's tests otherwise take turns with the server on its core, and its figures then
 * describe the queueing, not the server. Without the right to raise it, the priority stays as it was.
 */
function prioritize(pid: number): void {
  try {
    execFileSync('renice', ['-n', '-10', '-p', String(pid)], { stdio: 'ignore' });
  } catch {
    // Not root: the run goes on at normal priority, and the others-on-the-core figure shows what that cost.
  }
}
const pinned = (core: string, args: string[], env: NodeJS.ProcessEnv = process.env) => {
  const child = track(spawn('taskset', ['-c', core, ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] }));
  prioritize(child.pid!);
  return child;
};
const pin = (pid: number, core: string) => {
  execFileSync('taskset', ['-cp', core, String(pid)], { stdio: 'ignore' });
  prioritize(pid);
};
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

/** Starts a competitor server; a string says why it could not (uWS without a binary for this Node.js). */
async function startCompetitor(kind: Competitor): Promise<Server | string> {
  const proc = pinned(SERVER_CORE, [process.execPath, ...SERVER_FLAGS, ...nodeFlags, join(BUILD_DIR, COMPETITOR_JS[kind])], { ...process.env, ...SERVER_ENV });
  proc.stdout!.on('data', (d: Buffer) => process.stderr.write(d));
  const m = await new Promise<{ port?: number; unavailable?: string }>((resolve) => {
    proc.once('message', resolve);
    proc.once('exit', (code) => resolve({ unavailable: `exited ${code} before listening` }));
  });
  if (m.port === undefined) {
    await stopper(proc)();
    return m.unavailable ?? 'did not start';
  }
  return { proc, port: m.port, stop: stopper(proc) };
}

/** Starts each server of `kinds`; one that cannot start is reported and left out, the gateway and ws must start. */
async function startServers(kinds: ServerKind[], gateway: () => Promise<Server>): Promise<Partial<Record<ServerKind, Server>>> {
  const servers: Partial<Record<ServerKind, Server>> = {};
  for (const kind of kinds) {
    const s = kind === 'gateway' ? await gateway() : await startCompetitor(kind);
    if (typeof s !== 'string') servers[kind] = s;
    else if (kind === 'uws') console.log(`uWebSockets.js is not available here (${s}): going on without it`);
    else throw new Error(`${SERVER_NAMES[kind]} did not start: ${s}`);
  }
  return servers;
}

async function startGateway(env: Record<string, string>, profile = false): Promise<Server & { internalPort: number }> {
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
      const { port, internalPort } = JSON.parse(line) as { port: number; internalPort: number };
      resolve({ proc, port, internalPort, stop: stopper(proc) });
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
    GW_INTERNAL_PORT: '0',
    GW_HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    GW_RATE_CONN_PER_MIN: '1000000',
    GW_RATE_MSG_PER_10S: '1000000',
    GW_MAX_CONNECTIONS_PER_USER: '1000',
    ...SERVER_ENV,
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

/** Resolves when `ws` receives a text message that starts with `prefix`. */
function reply(ws: WebSocket, prefix: string): Promise<void> {
  return new Promise((resolve) => {
    const on = (m: WebSocket.RawData) => {
      if (!String(m).startsWith(prefix)) return;
      ws.off('message', on);
      resolve();
    };
    ws.on('message', on);
  });
}

/** A ~100-byte payload carrying its send time, on a clock every process on the machine shares. */
const timedPayload = () => `{"t":${(performance.timeOrigin + performance.now()).toFixed(3)},"pad":"${PAD}"}`;

interface Publisher {
  publish(): void;
  /** Resolves once every publish sent has its reply (or REPLY_WAIT_MS passed); null for a publisher that asks for none. */
  replies(): Promise<Replies | null>;
  close(): void;
}

/** Counts and times the replies a publisher asked for, each publish by its number. */
class ReplyTally {
  private readonly sentAt: number[] = [];
  private readonly settled: boolean[] = [];
  private readonly latencies: number[] = [];
  private readonly failed: Record<string, number> = {};
  private ok = 0;
  private answered = 0;
  private firstOkAt = 0;
  private lastOkAt = 0;
  private wake: (() => void) | null = null;

  /** A publish goes out now: its number. */
  sent(): number {
    this.sentAt.push(performance.now());
    return this.sentAt.length - 1;
  }

  /** The reply to publish `n`: `failure` null for a 200 or an ack, else what came instead. Only the first counts. */
  settle(n: number, failure: string | null): void {
    if (!(n >= 0 && n < this.sentAt.length) || this.settled[n]) return;
    this.settled[n] = true;
    const at = performance.now();
    if (failure === null) {
      if (this.ok++ === 0) this.firstOkAt = at;
      this.lastOkAt = at;
      this.latencies.push(at - this.sentAt[n]!);
    } else {
      this.failed[failure] = (this.failed[failure] ?? 0) + 1;
    }
    if (++this.answered === this.sentAt.length) this.wake?.();
  }

  async done(): Promise<Replies> {
    if (this.answered < this.sentAt.length) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, REPLY_WAIT_MS);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    const missing = this.sentAt.length - this.answered;
    const sorted = Float64Array.from(this.latencies).sort();
    return {
      sent: this.sentAt.length,
      ok: this.ok,
      failed: missing > 0 ? { ...this.failed, 'no reply': missing } : { ...this.failed },
      perSec: this.ok > 1 ? ((this.ok - 1) * 1000) / (this.lastOkAt - this.firstOkAt) : 0,
      p50Ms: percentile(sorted, 0.5),
      p99Ms: percentile(sorted, 0.99),
    };
  }
}

/**
 * One publisher connection; `publish` sends a ~100-byte payload carrying its send time. `acked` (the gateway only):
 * each data_update carries an id, as the SDK sends them, and `replies` counts the acks.
 */
async function publisher(kind: ServerKind, port: number, group: string, acked = false): Promise<Publisher> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${WS_PATHS[kind]}`);
  const opened = kind === 'socketio' ? reply(ws, '0{') : null;
  await new Promise((r, j) => ws.once('open', r).once('error', j));
  if (kind === 'gateway') {
    const token = await mintToken({ sub: 'publisher', groups: [group] }, new TextEncoder().encode(SECRET));
    const ready = reply(ws, '{"type":"ready"');
    ws.send(JSON.stringify({ type: 'identify', data: { token, groups: [group] } }));
    await ready;
  } else if (kind === 'socketio') {
    await opened;
    const connected = reply(ws, '40');
    ws.send('40');
    await connected;
    ws.on('message', (m) => String(m) === '2' && ws.send('3'));
  }
  const tally = acked ? new ReplyTally() : null;
  if (tally) {
    ws.on('message', (m) => {
      const reply = JSON.parse(String(m)) as { type: string; replyTo?: string; data?: { code?: string } };
      if (reply.replyTo !== undefined) tally.settle(Number(reply.replyTo), reply.type === 'ack' ? null : (reply.data?.code ?? reply.type));
    });
  }
  const message: Record<ServerKind, (payload: string) => string> = {
    baseline: (payload) => `pub ${group} ${payload}`,
    uws: (payload) => `pub ${group} ${payload}`,
    socketio: (payload) => `42["pub","${group}",${payload}]`,
    gateway: (payload) => `{"type":"data_update",${tally ? `"id":"${tally.sent()}",` : ''}"data":{"group":"${group}","payload":${payload}}}`,
  };
  return {
    publish: () => ws.send(message[kind](timedPayload())),
    replies: async () => (tally ? await tally.done() : null),
    close: () => ws.close(),
  };
}

/**
 * A backend publishing through the server API: `POST /api/publish` on the internal listener over keep-alive
 * connections, at most API_IN_FLIGHT requests at once (more wait in the agent's queue, so a server that falls behind
 * shows as a lower rate of replies, not as more connections), each reply counted by its status.
 */
function apiPublisher(port: number, group: string): Publisher {
  const agent = new Agent({ keepAlive: true, maxSockets: API_IN_FLIGHT });
  const tally = new ReplyTally();
  return {
    publish: () => {
      const n = tally.sent();
      const body = `{"group":"${group}","payload":${timedPayload()}}`;
      const headers = { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
      const req = request({ agent, host: '127.0.0.1', port, path: '/api/publish', method: 'POST', headers }, (res) => {
        res.resume();
        res.once('end', () => tally.settle(n, res.statusCode === 200 ? null : String(res.statusCode)));
      });
      req.once('error', (err: NodeJS.ErrnoException) => tally.settle(n, err.code ?? err.message));
      req.end(body);
    },
    replies: () => tally.done(),
    close: () => agent.destroy(),
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
  workload: FanoutResult['workload'];
  server: ServerKind;
  ports: number[];
  pids: number[];
  redisPid?: number;
  rate: number;
  subscribers: Subscribers;
  count: number;
  seconds: number;
  /** Default: a client of `server` publishing to the group "bench" without asking for replies. */
  publisher?: () => Publisher | Promise<Publisher>;
}): Promise<FanoutResult> {
  const pub = await (o.publisher ?? (() => publisher(o.server, o.ports[0]!, 'bench')))();
  await sleep(300);
  await o.subscribers.start();
  const cpu0 = o.pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const main0 = o.pids.reduce((sum, pid) => sum + mainThreadCpuSeconds(pid), 0);
  const core0 = coreBusySeconds(Number(SERVER_CORE));
  const redis0 = o.redisPid ? cpuSeconds(o.redisPid) : 0;
  const started = performance.now();
  const sent = await openLoop(pub.publish, o.rate, o.seconds);
  const replies = await pub.replies();
  await sleep(500);
  const elapsed = (performance.now() - started) / 1000;
  const serverCpuSec = o.pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0) - cpu0;
  const mainThreadCpuSec = o.pids.reduce((sum, pid) => sum + mainThreadCpuSeconds(pid), 0) - main0;
  const redisCpuSec = o.redisPid ? cpuSeconds(o.redisPid) - redis0 : undefined;
  const others = coreBusySeconds(Number(SERVER_CORE)) - core0 - serverCpuSec - (redisCpuSec ?? 0);
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
    mainThreadCpuSec,
    deliveriesPerMainThreadCpuSec: Math.round(stats.deliveries / Math.max(mainThreadCpuSec, 0.01)),
    p50Ms: stats.p50Ms,
    p99Ms: stats.p99Ms,
    maxMs: stats.maxMs,
    serverRssMiB: o.pids.reduce((sum, pid) => sum + rssBytes(pid), 0) / 2 ** 20,
    clientCpuPct: (100 * stats.clientCpuSec) / elapsed,
    ...(redisCpuSec !== undefined ? { redisCpuSec } : {}),
    othersOnServerCorePct: Math.max(0, (100 * others) / elapsed),
    ...(replies ? { replies } : {}),
  };
}

/** The gateway's heartbeat settings for a Liveness mode (see Liveness). */
function livenessEnv(liveness: Liveness): Record<string, string> {
  if (liveness === 'sdk') return {};
  if (liveness === 'pings') return { GW_HEARTBEAT_TIMEOUT_MS: '600000' };
  return { GW_HEARTBEAT_INTERVAL_MS: '300000', GW_HEARTBEAT_TIMEOUT_MS: '600000' };
}

/**
 * Fan-out on one instance. Every server and its subscribers stay up for the whole workload; after a full collection
 * and a warm-up each, they take turns in sets of adjacent windows (same rate, seconds apart, order rotated every set),
 * so the machine's slow drifts hit every server of a set alike.
 */
async function fanout(opts: BenchOptions): Promise<FanoutResult[]> {
  const results: FanoutResult[] = [];
  const liveness = opts.liveness ?? 'sdk';
  const warmup = opts.warmup ?? 5;
  const servers = await startServers(opts.servers ?? SERVER_KINDS, () => startGateway(gatewayEnv({ ...livenessEnv(liveness), GW_SHUTDOWN_GRACE_MS: '100' }), opts.profile));
  const kinds = SERVER_KINDS.filter((k) => servers[k]);
  const subscribers: Partial<Record<ServerKind, Subscribers>> = {};
  try {
    for (const kind of kinds) {
      const subs = (subscribers[kind] = new Subscribers());
      const c = await subs.connect({ kind, ports: [servers[kind]!.port], count: opts.subscribers, group: 'bench', secret: SECRET, heartbeatMs: liveness === 'sdk' ? SDK_HEARTBEAT_MS : undefined, parse: opts.parse ?? true });
      if (c.failed > 0) throw new Error(`${c.failed} subscribers failed to connect to ${SERVER_NAMES[kind]}`);
    }
    if (warmup > 0) {
      // What a long-running server has long since done: collected what connecting left, and compiled its hot path.
      for (const kind of kinds) {
        await settledRss(servers[kind]!.proc);
        const pub = await publisher(kind, servers[kind]!.port, 'bench');
        await openLoop(pub.publish, Math.max(...opts.rates), warmup);
        pub.close();
      }
    }
    let set = 0;
    for (let rep = 0; rep < opts.repeat; rep++) {
      for (const rate of opts.rates) {
        const shift = set++ % kinds.length;
        for (const server of [...kinds.slice(shift), ...kinds.slice(0, shift)]) {
          const s = servers[server]!;
          const r = await measureFanout({ workload: 'fanout', server, ports: [s.port], pids: [s.proc.pid!], rate, subscribers: subscribers[server]!, count: opts.subscribers, seconds: opts.seconds });
          results.push({ ...r, rep });
          log(r);
        }
      }
    }
  } finally {
    for (const kind of SERVER_KINDS) {
      await subscribers[kind]?.exit();
      await servers[kind]?.stop();
    }
  }
  return results;
}

/**
 * Publishes through the server API against publishes from an identified client, on one gateway with the fan-out's
 * subscribers in one group: for each repetition and rate a set of two adjacent windows (the order swapped every set),
 * the same payloads at the same offered rate, each publish answered (a 200, an ack). Then sets at BARE_RATE into a
 * group with no other member: what a publish costs the server apart from its deliveries.
 */
async function apiPublish(opts: BenchOptions): Promise<ApiPublishResult[]> {
  const results: ApiPublishResult[] = [];
  const liveness = opts.liveness ?? 'sdk';
  const warmup = opts.warmup ?? 5;
  // The API's own rate limit (1000 requests per second by default) must not be what the windows measure.
  const server = await startGateway(gatewayEnv({ ...livenessEnv(liveness), GW_SHUTDOWN_GRACE_MS: '100', GW_API_KEY: API_KEY, GW_API_RATE_PER_SEC: '1000000' }), opts.profile);
  const publishers = (group: string): Record<Via, () => Publisher | Promise<Publisher>> => ({
    api: () => apiPublisher(server.internalPort, group),
    client: () => publisher('gateway', server.port, group, true),
  });
  const subs = new Subscribers();
  try {
    const c = await subs.connect({ kind: 'gateway', ports: [server.port], count: opts.subscribers, group: 'bench', secret: SECRET, heartbeatMs: liveness === 'sdk' ? SDK_HEARTBEAT_MS : undefined, parse: opts.parse ?? true });
    if (c.failed > 0) throw new Error(`${c.failed} subscribers failed to connect to the gateway`);
    if (warmup > 0) {
      // Both paths compiled, as on a long-running server. At the fan-out's rates a request path runs a few hundred
      // times against the fan-out loop's hundreds of thousands of deliveries, so each also warms up at BARE_RATE.
      await settledRss(server.proc);
      for (const [rate, group] of [[Math.max(...opts.rates), 'bench'], [BARE_RATE, BARE_GROUP]] as const) {
        for (const via of VIAS) {
          const pub = await publishers(group)[via]();
          await openLoop(pub.publish, rate, warmup);
          await pub.replies();
          pub.close();
        }
      }
    }
    const windows = [...opts.rates.map((rate) => ({ rate, group: 'bench', count: opts.subscribers })), { rate: BARE_RATE, group: BARE_GROUP, count: 0 }];
    let set = 0;
    for (let rep = 0; rep < opts.repeat; rep++) {
      for (const w of windows) {
        for (const via of set++ % 2 === 0 ? VIAS : [...VIAS].reverse()) {
          const r = await measureFanout({ workload: 'api', server: 'gateway', ports: [server.port], pids: [server.proc.pid!], rate: w.rate, subscribers: subs, count: w.count, seconds: opts.seconds, publisher: publishers(w.group)[via] });
          const replies = r.replies!;
          const result: ApiPublishResult = { ...r, workload: 'api', rep, via, replies, deliveriesPerSec: r.deliveries / opts.seconds, serverCpuMsPerPublish: (1000 * r.serverCpuSec) / replies.sent };
          results.push(result);
          log(result, VIA_NAMES[via]);
          const failed = Object.entries(replies.failed).map(([what, n]) => `${n} × ${what}`);
          console.log(
            `api      ${VIA_NAMES[via].padEnd(9)} ${replies.ok} of ${replies.sent} answered ${via === 'api' ? '200' : 'ack'}${failed.length > 0 ? ` (else: ${failed.join(', ')})` : ''}, ` +
              `${replies.perSec.toFixed(1)} publishes/s, reply p50 ${replies.p50Ms.toFixed(2)} ms, p99 ${replies.p99Ms.toFixed(2)} ms, server CPU ${(1000 * result.serverCpuMsPerPublish).toFixed(0)} µs per publish`,
          );
        }
      }
    }
  } finally {
    await subs.exit();
    await server.stop();
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

/** Asks a server (through bench/gcOnSignal.ts) for a heap snapshot written to `file`; resolves when it is written. */
function heapSnapshot(proc: ChildProcess, file: string): Promise<void> {
  return new Promise((resolve) => {
    const on = (m: { snapshot?: string }) => {
      if (!m.snapshot) return;
      proc.off('message', on);
      resolve();
    };
    proc.on('message', on);
    proc.send({ heapSnapshot: file });
  });
}

async function idle(opts: BenchOptions): Promise<IdleResult[]> {
  const results: IdleResult[] = [];
  const snapshots = join(root, 'bench', 'profiles');
  if (opts.heapSnapshot) mkdirSync(snapshots, { recursive: true });
  for (const server of opts.servers ?? SERVER_KINDS) {
    const s = (await startServers([server], () => startGateway(gatewayEnv(), opts.profile)))[server];
    if (!s) continue;
    const subs = new Subscribers();
    const snapshot = (when: string) => join(snapshots, `idle-${server}-${opts.idle}-${when}.heapsnapshot`);
    try {
      await sleep(1000);
      const before = await settledRss(s.proc);
      if (opts.heapSnapshot) await heapSnapshot(s.proc, snapshot('before'));
      const c = await subs.connect({ kind: server, ports: [s.port], count: opts.idle, group: 'idle', secret: SECRET, heartbeatMs: SDK_HEARTBEAT_MS, parse: opts.parse ?? true, groupSize: 10 });
      await sleep(3000);
      const after = await settledRss(s.proc);
      if (opts.heapSnapshot) await heapSnapshot(s.proc, snapshot('after'));
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
        ...(opts.heapSnapshot ? { heap: heapPerConnection(snapshot('before'), snapshot('after'), Math.max(1, c.connected)) } : {}),
      };
      results.push(r);
      const name = SERVER_NAMES[server].padEnd(9);
      console.log(`idle     ${name} close codes ${JSON.stringify(stats.closeCodes)}`);
      console.log(`idle     ${name} ${r.connected} connected, ${r.disconnects} disconnects, ${r.rssPerConnectionKiB.toFixed(2)} KiB/connection, idle CPU ${r.idleCpuPctOfCore.toFixed(2)} % of a core`);
      if (r.heap) console.log(`\nheap of ${SERVER_NAMES[server]}, what ${r.connected} idle connections added (snapshots in bench/profiles/):\n${heapTable(r.heap, 15)}\n`);
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

function log(r: FanoutResult, label: string = SERVER_NAMES[r.server]): void {
  console.log(
    `${r.workload.padEnd(8)} ${label.padEnd(9)} ${String(r.rate).padStart(3)} msg/s × ${r.subscribers}: ${(r.fraction * 100).toFixed(1)} % delivered, ` +
      `${r.deliveriesPerServerCpuSec} deliveries/server-CPU-s (main thread: ${r.deliveriesPerMainThreadCpuSec}), p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms, max ${r.maxMs.toFixed(1)} ms, ` +
      `RSS ${r.serverRssMiB.toFixed(0)} MiB, client CPU ${r.clientCpuPct.toFixed(0)} %, others on core ${SERVER_CORE} ${r.othersOnServerCorePct.toFixed(0)} %`,
  );
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length === 0 ? 0 : sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * A set of windows during which other processes (another user of this shared machine) took more than this share of
 * the servers' core: its ratios say more about them than about the servers, and are left out while quiet sets exist.
 */
const BUSY_CORE_PCT = 10;

/** The repetitions whose windows all had the servers' core to themselves (all of them if none did), and how many were quiet. */
function quietReps(results: FanoutResult[]): { reps: Set<number | undefined>; quiet: number } {
  const all = new Set(results.map((r) => r.rep));
  const quiet = new Set([...all].filter((rep) => results.every((r) => r.rep !== rep || r.othersOnServerCorePct <= BUSY_CORE_PCT)));
  return { reps: quiet.size > 0 ? quiet : all, quiet: quiet.size };
}

/**
 * `compare(window, reference)` for each window `of` takes whose repetition has a `reference` window too (the windows of
 * a set are adjacent in time), over the quiet sets (see quietReps); null leaves a set out.
 */
function perSet<R extends FanoutResult>(results: R[], of: (r: R) => boolean, reference: (r: R) => boolean, compare: (r: R, ref: R) => number | null): number[] {
  const values: number[] = [];
  const { reps } = quietReps(results);
  for (const r of results.filter((x) => of(x) && reps.has(x.rep))) {
    const ref = results.find((x) => reference(x) && x.rep === r.rep);
    const value = ref ? compare(r, ref) : null;
    if (value !== null) values.push(value);
  }
  return values;
}

/** `server` / the ws baseline for each repetition that has both. */
export function pairRatios(results: FanoutResult[], server: ServerKind, f: (r: FanoutResult) => number): number[] {
  return perSet(results, (r) => r.server === server, (r) => r.server === 'baseline', (r, b) => (f(b) > 0 ? f(r) / f(b) : null));
}

/** Ratios per set as "median × (min–max)". */
function ratioRange(xs: number[]): string {
  return xs.length === 0 ? '' : `${median(xs).toFixed(2)} × (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`;
}

/** How many sets the ratios of `at` (one rate) are over, and whether they had the servers' core to themselves. */
function setsNote(at: FanoutResult[]): string {
  const { reps, quiet } = quietReps(at);
  const all = new Set(at.map((r) => r.rep)).size;
  return quiet === all ? `${all}` : quiet > 0 ? `${quiet} of ${all}: those with core ${SERVER_CORE} to themselves` : `${reps.size}, none with core ${SERVER_CORE} to themselves`;
}

/** The fan-out and idle figures of every server side by side, with the ratios to ws per set of adjacent windows. */
function competitorTable(fan: FanoutResult[], idleResults: IdleResult[]): string[] {
  const kinds = SERVER_KINDS.filter((k) => fan.some((r) => r.server === k) || idleResults.some((r) => r.server === k));
  if (kinds.length === 0) return [];
  const rows = [`| figure | ${kinds.map((k) => SERVER_NAMES[k]).join(' | ')} |`, `|---|${kinds.map(() => '---|').join('')}`];
  const row = (name: string, cell: (k: ServerKind) => string) => rows.push(`| ${name} | ${kinds.map(cell).join(' | ')} |`);
  for (const rate of [...new Set(fan.map((r) => r.rate))]) {
    const at = fan.filter((r) => r.rate === rate);
    const pick = (k: ServerKind, f: (r: FanoutResult) => number, digits: number) => {
      const xs = at.filter((r) => r.server === k).map(f);
      return xs.length === 0 ? '' : median(xs).toFixed(digits);
    };
    const line = (name: string, f: (r: FanoutResult) => number, digits = 0) => row(name, (k) => pick(k, f, digits));
    line(`fanout ${rate} msg/s × ${at[0]!.subscribers}: deliveries per server CPU-second`, (r) => r.deliveriesPerServerCpuSec);
    row(`fanout ${rate} msg/s: the same relative to ws, per set of adjacent windows (${setsNote(at)}): median (range)`, (k) => (k === 'baseline' ? '1 ×' : ratioRange(pairRatios(at, k, (r) => r.deliveriesPerServerCpuSec))));
    row(`fanout ${rate} msg/s: main thread only, relative to ws per set: median (range)`, (k) => (k === 'baseline' ? '1 ×' : ratioRange(pairRatios(at, k, (r) => r.deliveriesPerMainThreadCpuSec))));
    line(`fanout ${rate} msg/s: fraction delivered`, (r) => r.fraction, 4);
    line(`fanout ${rate} msg/s: p50 latency (ms)`, (r) => r.p50Ms, 2);
    line(`fanout ${rate} msg/s: p99 latency (ms)`, (r) => r.p99Ms, 2);
    line(`fanout ${rate} msg/s: max latency (ms)`, (r) => r.maxMs, 1);
    line(`fanout ${rate} msg/s: server RSS (MiB)`, (r) => r.serverRssMiB, 0);
    line(`fanout ${rate} msg/s: subscriber-process CPU (% of a core)`, (r) => r.clientCpuPct, 0);
  }
  const idleOf = (k: ServerKind) => idleResults.find((r) => r.server === k);
  const first = idleResults[0];
  if (first) {
    row(`idle ${first.connections} connections, ${first.seconds} s: RSS per connection (KiB)`, (k) => idleOf(k)?.rssPerConnectionKiB.toFixed(2) ?? '');
    row('idle: CPU (% of a core)', (k) => idleOf(k)?.idleCpuPctOfCore.toFixed(2) ?? '');
    row('idle: disconnects', (k) => String(idleOf(k)?.disconnects ?? ''));
  }
  return rows;
}

export function summarize(fan: FanoutResult[], idleResults: IdleResult[], redisResults: FanoutResult[], resume: ResumeResult | null, handover: HandoverResult[], joins: JoinStormResult[], presence: PresenceLatencyResult[]): string {
  const competitors = competitorTable(fan, idleResults);
  const rows: string[] = ['| figure | reference | gateway | gateway / reference |', '|---|---|---|---|'];
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
  return [competitors.join('\n'), rows.length > 2 ? rows.join('\n') : ''].filter(Boolean).join('\n\n');
}

/**
 * The api workload: the API's figures beside the client's (medians over the windows), the ratio per set of adjacent
 * windows where it says something, and what a publish with no recipients costs each.
 */
export function apiSummary(results: ApiPublishResult[]): string {
  if (results.length === 0) return '';
  const rows = ['| figure | API (HTTP keep-alive) | client (WebSocket) | API / client per set of adjacent windows: median (range) |', '|---|---|---|---|'];
  const of = (via: Via) => (r: ApiPublishResult) => r.via === via;
  const section = (title: string, at: ApiPublishResult[]) => {
    const value = (via: Via, f: (r: ApiPublishResult) => number, digits: number) => median(at.filter(of(via)).map(f)).toFixed(digits);
    const ratio = (f: (r: ApiPublishResult) => number) => ratioRange(perSet(at, of('api'), of('client'), (a, c) => (f(c) > 0 ? f(a) / f(c) : null)));
    const failures = (via: Via) => {
      const counts = new Map<string, number>();
      for (const r of at.filter(of(via))) for (const [what, n] of Object.entries(r.replies.failed)) counts.set(what, (counts.get(what) ?? 0) + n);
      const total = [...counts.values()].reduce((sum, n) => sum + n, 0);
      return total === 0 ? '0' : `${total} (${[...counts].map(([what, n]) => `${n} × ${what}`).join(', ')})`;
    };
    return {
      row: (name: string, f: (r: ApiPublishResult) => number, digits: number, compared = false) =>
        rows.push(`| ${title}: ${name} | ${value('api', f, digits)} | ${value('client', f, digits)} | ${compared ? ratio(f) : ''} |`),
      /** What the API costs over the client, per set: a difference of `f`, in the API's column. */
      extra: (name: string, f: (r: ApiPublishResult) => number, digits: number) => {
        const xs = perSet(at, of('api'), of('client'), (a, c) => f(a) - f(c));
        if (xs.length > 0) rows.push(`| ${title}: ${name}, per set: median (range) | ${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}) | | |`);
      },
      latency: (name: string, p50: (r: ApiPublishResult) => number, p99: (r: ApiPublishResult) => number) =>
        rows.push(`| ${title}: ${name} p50 / p99 (ms) | ${value('api', p50, 2)} / ${value('api', p99, 2)} | ${value('client', p50, 2)} / ${value('client', p99, 2)} | |`),
      failures: () => rows.push(`| ${title}: replies other than 200 / ack, every window | ${failures('api')} | ${failures('client')} | |`),
    };
  };
  const fanned = results.filter((r) => r.subscribers > 0);
  for (const rate of [...new Set(fanned.map((r) => r.rate))]) {
    const at = fanned.filter((r) => r.rate === rate);
    const s = section(`api ${rate} msg/s × ${at[0]!.subscribers}`, at);
    s.row('publishes per second achieved', (r) => r.replies.perSec, 1);
    s.row('deliveries per second', (r) => r.deliveriesPerSec, 0);
    s.row(`deliveries per server CPU-second (sets: ${setsNote(at)})`, (r) => r.deliveriesPerServerCpuSec, 0, true);
    s.row('server CPU per publish (ms)', (r) => r.serverCpuMsPerPublish, 2, true);
    s.extra("the API's server CPU per publish over the client's (ms)", (r) => r.serverCpuMsPerPublish, 2);
    s.row('fraction delivered', (r) => r.fraction, 4);
    s.latency('publish → delivery', (r) => r.p50Ms, (r) => r.p99Ms);
    s.latency('publish → reply (200, ack)', (r) => r.replies.p50Ms, (r) => r.replies.p99Ms);
    s.failures();
  }
  const bare = results.filter((r) => r.subscribers === 0);
  if (bare.length > 0) {
    const s = section(`api ${bare[0]!.rate} msg/s, no recipients`, bare);
    s.row('publishes per second achieved', (r) => r.replies.perSec, 1);
    s.row(`server CPU per publish (µs; sets: ${setsNote(bare)})`, (r) => 1000 * r.serverCpuMsPerPublish, 0, true);
    s.extra("the API's server CPU per publish over the client's (µs)", (r) => 1000 * r.serverCpuMsPerPublish, 0);
    s.latency('publish → reply (200, ack)', (r) => r.replies.p50Ms, (r) => r.replies.p99Ms);
    s.failures();
  }
  return rows.join('\n');
}

export async function runBench(opts: BenchOptions) {
  buildServers();
  nodeFlags = opts.nodeFlags ?? [];
  pin(process.pid, CLIENT_CORE);
  const fan = opts.skip.includes('fanout') ? [] : await fanout(opts);
  const apiResults = opts.skip.includes('api') ? [] : await apiPublish(opts);
  const idleResults = opts.skip.includes('idle') || opts.idle === 0 ? [] : await idle(opts);
  const redisResults = opts.skip.includes('redis') ? [] : await redis(opts, opts.rates[Math.floor(opts.rates.length / 2)]!);
  const resumeResult = opts.skip.includes('resume') ? null : await resumeLatency(RESUME_SAMPLES);
  const handoverResults = opts.skip.includes('handover') ? [] : await handover(opts.handover, opts.profile);
  const joinResults = opts.skip.includes('joinstorm') ? [] : await joinStorm(opts.joinStorm, opts.profile);
  const presenceResults = opts.skip.includes('presence') ? [] : await presenceLatency();
  const table = summarize(fan, idleResults, redisResults, resumeResult, handoverResults, joinResults, presenceResults);
  const apiTable = apiSummary(apiResults);
  const machine = { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown', node: process.version, date: new Date().toISOString() };
  const json = JSON.stringify({ machine, options: opts, fanout: fan, api: apiResults, idle: idleResults, redis: redisResults, resume: resumeResult, handover: handoverResults, joinStorm: joinResults, presence: presenceResults }, null, 2);
  const outDir = opts.outDir ?? join(root, 'bench', 'out');
  mkdirSync(outDir, { recursive: true });
  const outFile = join(outDir, `${machine.date.replace(/:/g, '-')}.json`);
  writeFileSync(outFile, json);
  console.log(`\nwrote ${outFile}`);
  if (opts.writeDocs) {
    const dir = join(root, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    const docs = join(root, 'docs', 'performance.md');
    let text = readFileSync(docs, 'utf8');
    const invocation = ['yarn bench', ...process.argv.slice(2)].join(' ');
    const day = machine.date.slice(0, 10);
    // Each generated block cites its own results file, and a run that has nothing for a block leaves it and its file
    // alone: a run of the api workload alone must not empty the main table or overwrite the file that table cites.
    for (const { marker, name, summary } of [
      { marker: 'bench', name: `${day}.json`, summary: table },
      { marker: 'bench:api', name: `${day}-api.json`, summary: apiTable },
    ]) {
      if (summary === '') continue;
      const generated = new RegExp(`<!-- ${marker}:start -->[\\s\\S]*<!-- ${marker}:end -->`);
      if (!generated.test(text)) throw new Error(`docs/performance.md has no <!-- ${marker}:start --> … <!-- ${marker}:end --> block to write`);
      writeFileSync(join(dir, name), json);
      const block = `<!-- ${marker}:start -->\nMeasured ${machine.date} on ${machine.cpus} × ${machine.model}, Node ${machine.node}, with \`${invocation}\` (results: \`bench/results/${name}\`).\n\n${summary}\n<!-- ${marker}:end -->`;
      text = text.replace(generated, () => block);
      console.log(`\nwrote bench/results/${name} and its summary in docs/performance.md`);
    }
    writeFileSync(docs, text);
  }
  console.log(`\n${[table, apiTable].filter(Boolean).join('\n\n')}`);
  return { fanout: fan, api: apiResults, idle: idleResults, redis: redisResults, resume: resumeResult, handover: handoverResults, joinStorm: joinResults, presence: presenceResults, file: outFile };
}

const WORKLOADS = ['fanout', 'api', 'idle', 'redis', 'resume', 'handover', 'joinstorm', 'presence'] as const;
const SERVER_OPTIONS = ['ws', 'socketio', 'uws', 'gateway'] as const;
const LIVENESS: readonly Liveness[] = ['sdk', 'pings', 'none'];

function livenessOption(value: string): Liveness {
  const mode = LIVENESS.find((m) => m === value);
  if (!mode) throw new UsageError(`--liveness must be one of ${LIVENESS.join(', ')} (got "${value}")`);
  return mode;
}
/** Samples of each kind in the resume workload. */
const RESUME_SAMPLES = 200;

const USAGE = `usage: yarn bench [options]

Benchmarks the gateway against a raw ws baseline, Socket.IO 4 and uWebSockets.js on this machine (fan-out, idle
connections), publishes through the server API against a client's (api), and 2 gateway instances on Redis against
one, every server compiled first; times resumes (local, remote, unknown) against a plain identify, the hand-over of
every session on SIGTERM, and a join storm into one group. Needs taskset and redis-server (bash scripts/setup.sh
--test). Prints the summary tables and writes every figure to bench/out/<time>.json (git-ignored); only --write-docs
changes tracked files.

Options:
  --subscribers <n>      subscribers in the fan-out, api and Redis workloads (default: 1000)
  --rates <list>         publishes per second, comma-separated, in the fan-out and api workloads (default: 10,25,50)
  --seconds <s>          length of one fan-out or api window (default: 10)
  --repeat <n>           sets of adjacent windows per rate (and, in the api workload, at 1000 msg/s with no
                         recipients); medians reported (default: 1)
  --servers <list>       servers of the fan-out and idle workloads: ws, socketio, uws, gateway (default: all)
  --liveness <mode>      sdk: subscribers heartbeat every 10 s as the SDK does, gateway default timings;
                         pings: they send nothing and the gateway pings them when silent for 10 s;
                         none: nothing, the gateway neither pings nor times out (default: sdk)
  --lean                 subscribers only look for the timestamp instead of parsing every message
  --warmup <s>           after connecting, a full collection and this long publishing on every server before
                         the measured windows; 0: windows right after connecting (default: 5)
  --idle <n>             idle connections; 0 skips the idle workload (default: 10000)
  --idle-seconds <s>     how long the idle connections are measured (default: 60)
  --handover <list>      sessions held by the instance that gets SIGTERM, one run each (default: 1000,10000)
  --join-storm <list>    users identifying into one group, 100 at a time, one run each (default: 1000,5000,10000)
  --skip <list>          workloads to skip, comma-separated: fanout, api, idle, redis, resume, handover, joinstorm, presence
  --profile              CPU profiles of the fan-out, api, idle, hand-over and join-storm gateways, in bench/profiles/ (see yarn bench:profile)
  --heap-snapshot        heap snapshots of every idle server before and after connecting, in bench/profiles/,
                         summarized per connection (see yarn bench:heap)
  --node-flags=<flags>   Node.js flags for every server, space-separated, e.g. --node-flags=--trace-gc
                         (their output then goes to stderr)
  --write-docs           also write bench/results/<date>.json (<date>-api.json for the api workload) and the
                         generated blocks of docs/performance.md
  -h, --help             this text

Exit status: 0 done, 1 the benchmark failed, 2 wrong command line.`;

const command = {
  name: 'bench',
  usage: USAGE,
  options: {
    subscribers: { type: 'string', default: '1000' },
    rates: { type: 'string', default: '10,25,50' },
    seconds: { type: 'string', default: '10' },
    repeat: { type: 'string', default: '1' },
    idle: { type: 'string', default: '10000' },
    'idle-seconds': { type: 'string', default: '60' },
    handover: { type: 'string', default: '1000,10000' },
    'join-storm': { type: 'string', default: '1000,5000,10000' },
    servers: { type: 'string', default: 'ws,socketio,uws,gateway' },
    liveness: { type: 'string', default: 'sdk' },
    lean: { type: 'boolean', default: false },
    warmup: { type: 'string', default: '5' },
    skip: { type: 'string', default: '' },
    profile: { type: 'boolean', default: false },
    'heap-snapshot': { type: 'boolean', default: false },
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
      servers: listOption('--servers', values.servers, SERVER_OPTIONS).map((name) => (name === 'ws' ? 'baseline' : (name as ServerKind))),
      liveness: livenessOption(values.liveness),
      parse: !values.lean,
      warmup: integerOption('--warmup', values.warmup, 0),
      heapSnapshot: values['heap-snapshot'],
      nodeFlags: values['node-flags'].split(' ').filter(Boolean),
    });
    // Pinned children and sockets are gone; do not wait for stray handles.
    process.exit(0);
  });
}
