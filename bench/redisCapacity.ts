// What Redis costs per gateway message, through one redis-server and through a Redis Cluster (three masters, three
// replicas) with classic pub/sub and with sharded pub/sub, all in one run: the same publish load each time. Subscriber
// connections stand in for gateway instances, each subscribed to the same group channels (`rt:group:<group>`);
// publishers send gateway-format messages (origin + serialized data_update) round-robin over the channels, first at a
// fixed offered rate or two, then as fast as they can. Redis CPU is read from /proc for every redis-server process, summed.
// Run: yarn bench:redis [--seconds 3] [--instances 4] [--rates 5000,20000] (docs/scaling.md)
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { channelName, encodeMessage } from '../src/broker/wire';
import { describeError, integerOption, listOption, parseCommandLine, positiveOption, run } from '../src/cli/args';
import { serializeEnvelope } from '../src/types/envelope';
import { cpuSeconds } from './proc';
import { redisBinariesMissing, startRedisCluster, startRedisServer, type BenchCluster } from './redisCluster';

export const MODES = ['single', 'classic', 'sharded'] as const;
export type Mode = (typeof MODES)[number];

const USAGE = `usage: yarn bench:redis [--seconds 3] [--instances 4] [--publishers 2] [--groups 300] [--rates 5000,20000] [--modes single,classic,sharded] [--out bench/out]

Runs the same publish load through one redis-server (single), a six-node Redis Cluster with classic pub/sub
(PUBLISH/SUBSCRIBE: classic) and the same cluster with sharded pub/sub (SPUBLISH/SSUBSCRIBE: sharded). Subscriber
connections standing in for gateway instances each hold the same group channels; publishers send gateway-format
messages (~200 bytes) round-robin over them, at fixed offered rates, then at the highest rate they reach. Reports
messages/s, deliveries, Redis CPU-seconds per million published messages summed over every redis-server process
(from /proc), and for the cluster each shard's share. Starts its own servers on free ports (needs redis-server and
redis-cli); prints a summary and writes the figures as JSON to the --out folder.

Options:
  --seconds <s>        how long each phase publishes (default: 3)
  --instances <n>      subscriber connections standing in for gateway instances (default: 4)
  --publishers <n>     publishing connections (default: 2)
  --groups <n>         group channels every instance subscribes to (default: 300)
  --rates <list>       offered messages per second of the fixed phases, all publishers together, comma-separated
                       (default: 5000,20000)
  --modes <list>       which modes, comma-separated (default: single,classic,sharded)
  --out <dir>          where the JSON goes (default: bench/out, git-ignored)
  -h, --help           this text

Exit status: 0 measured, 1 the measurement failed, 2 wrong command line.`;

const command = {
  name: 'bench:redis',
  usage: USAGE,
  options: {
    seconds: { type: 'string', default: '3' },
    instances: { type: 'string', default: '4' },
    publishers: { type: 'string', default: '2' },
    groups: { type: 'string', default: '300' },
    rates: { type: 'string', default: '5000,20000' },
    modes: { type: 'string', default: MODES.join(',') },
    out: { type: 'string', default: join(__dirname, 'out') },
  },
} as const;

/** Unanswered publishes per publisher connection: enough to keep the pipe full, bounded so memory stays flat. */
const IN_FLIGHT = 256;
/** How long deliveries may trail the last acknowledged publish before the phase counts what it got. */
const DRAIN_MS = 3_000;

export interface RedisBenchOptions {
  /** Per phase. */
  seconds: number;
  instances: number;
  publishers: number;
  groups: number;
  /** Offered messages per second of each fixed phase, in order; a phase at the publishers' fastest follows. */
  rates: number[];
  modes: Mode[];
  outDir: string;
}

export interface NodeCpu {
  port: number;
  role: 'master' | 'replica' | 'single';
  /** The port of the node's shard master (itself for a master or the single server). */
  shard: number;
  cpuSeconds: number;
}

export interface ShardShare {
  master: number;
  /** Of the group channels, the fraction whose slot this shard serves (so of the messages, sent round-robin). */
  channels: number;
  /** Of the Redis CPU in the phase, the fraction this shard's master used. */
  masterCpu: number;
  /** Of the Redis CPU in the phase, the fraction this shard's master and replica used together. */
  shardCpu: number;
}

export interface PhaseResult {
  phase: 'fixed' | 'max';
  /** Offered messages per second (null: as fast as the publishers go). */
  offeredPerSec: number | null;
  seconds: number;
  published: number;
  publishedPerSec: number;
  /** Messages that reached the instances: ideally published × instances. */
  delivered: number;
  deliveredFraction: number;
  redisCpuSeconds: number;
  /** Redis CPU-seconds, every redis-server process together, per million published messages. */
  redisCpuPerMillion: number;
  /** The same less what the processes spend idle (cluster bus, cron) over the phase's window: the messages' own cost. */
  redisCpuPerMillionAboveIdle: number;
  /** This process's CPU (publishers and subscribers, Node) per million published messages. */
  clientCpuPerMillion: number;
  nodes: NodeCpu[];
  /** Cluster modes only. */
  shards?: ShardShare[];
  /** Cluster modes only: the largest distance of a master's CPU from the masters' mean, as a fraction of the mean. */
  masterSpread?: number;
}

export interface ModeResult {
  mode: Mode;
  /** Set when the mode did not run (no redis-server). */
  skipped?: string;
  /** Redis CPU-seconds per second with the instances subscribed and nothing published, every process together. */
  redisIdleCpuPerSec?: number;
  phases: PhaseResult[];
}

export interface RedisBenchResult {
  machine: { cpus: number; model: string; node: string; redis: string | null; date: string };
  options: Omit<RedisBenchOptions, 'outDir'> & { messageBytes: number };
  modes: ModeResult[];
  file: string;
}

/** One way of reaching Redis: how an instance subscribes, how a publisher publishes, and which processes to watch. */
interface Setup {
  subscribe(channels: string[], onMessage: () => void): Promise<Redis | Cluster>;
  publisher(): Redis | Cluster;
  publish(client: Redis | Cluster, channel: string, message: string): Promise<unknown>;
  nodes: Omit<NodeCpu, 'cpuSeconds'>[];
  pids: Map<number, number>;
  /** Port of the shard master serving each channel (cluster modes). */
  shardOf?: Map<string, number>;
}

function singleSetup(port: number, pid: number): Setup {
  const client = () => new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 3 }).on('error', () => undefined);
  return {
    async subscribe(channels, onMessage) {
      const sub = client();
      sub.on('message', onMessage);
      await sub.subscribe(...channels);
      return sub;
    },
    publisher: client,
    publish: (c, channel, message) => c.publish(channel, message),
    nodes: [{ port, role: 'single', shard: port }],
    pids: new Map([[port, pid]]),
  };
}

async function clusterSetup(cluster: BenchCluster, sharded: boolean, channels: string[]): Promise<Setup> {
  const seeds = cluster.nodes.map((n) => ({ host: '127.0.0.1', port: n.port }));
  const client = () => new Cluster(seeds, { shardedSubscribers: sharded, redisOptions: { maxRetriesPerRequest: 3 } }).on('error', () => undefined);
  const probe = client();
  const slots = (await probe.cluster('SLOTS')) as unknown as [number, number, [string, number]][];
  const shardOf = new Map<string, number>();
  for (const channel of channels) {
    const slot = await probe.cluster('KEYSLOT', channel);
    shardOf.set(channel, slots.find(([from, to]) => slot >= from && slot <= to)![2][1]);
  }
  probe.disconnect();
  return {
    async subscribe(chans, onMessage) {
      const sub = client();
      if (sharded) {
        sub.on('smessage', onMessage);
        // SSUBSCRIBE takes channels of one slot per command: one each.
        await Promise.all(chans.map((c) => sub.ssubscribe(c)));
      } else {
        sub.on('message', onMessage);
        await sub.subscribe(...chans);
      }
      return sub;
    },
    publisher: client,
    publish: (c, channel, message) => (sharded ? c.spublish(channel, message) : c.publish(channel, message)),
    nodes: cluster.nodes.map(({ port, role, shard }) => ({ port, role, shard })),
    pids: new Map(cluster.nodes.map((n) => [n.port, n.pid])),
    shardOf,
  };
}

/** ~200 bytes, as the gateway writes a small data_update for the channel's group. */
function gatewayMessage(group: string): string {
  const frame = serializeEnvelope('data_update', { group, from: { userId: 'user-123', connectionId: 'c_AAAAAAAAAAAAAAAAAAAAAA' }, payload: { text: 'x'.repeat(24), ts: 1 } });
  return encodeMessage('gw-bench-0000', frame);
}

async function measureMode(mode: Mode, setup: Setup, opts: RedisBenchOptions, groups: string[]): Promise<Omit<ModeResult, 'mode'>> {
  const channels = groups.map((g) => channelName('group', g));
  const messages = groups.map(gatewayMessage);
  let received = 0;
  const subs = await Promise.all(Array.from({ length: opts.instances }, () => setup.subscribe(channels, () => received++)));
  const pubs = Array.from({ length: opts.publishers }, () => setup.publisher());
  // Cluster clients learn the slot map before their first command; a ping per publisher keeps that out of the timing.
  await Promise.all(pubs.map((p) => p.ping()));
  const redisCpu = () => [...setup.pids.values()].reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  try {
    const idleFrom = Date.now();
    const idleBefore = redisCpu();
    await new Promise((r) => setTimeout(r, Math.min(opts.seconds, 2) * 1000));
    const idlePerSec = (redisCpu() - idleBefore) / ((Date.now() - idleFrom) / 1000);
    const results: PhaseResult[] = [];
    for (const offered of [...opts.rates, null]) {
      const phase = offered === null ? 'max' : 'fixed';
      received = 0;
      const cpuBefore = [...setup.pids.values()].map((pid) => cpuSeconds(pid));
      const clientBefore = cpuSeconds('self');
      const started = Date.now();
      const deadline = started + opts.seconds * 1000;
      const counts = await Promise.all(pubs.map((pub, p) => pump(setup, pub, p, channels, messages, opts.publishers, offered === null ? null : offered / opts.publishers, started, deadline)));
      const published = counts.reduce((a, b) => a + b, 0);
      const elapsed = (Date.now() - started) / 1000;
      const drainUntil = Date.now() + DRAIN_MS;
      while (received < published * opts.instances && Date.now() < drainUntil) await new Promise((r) => setTimeout(r, 20));
      // Replicas and idle links settle in a moment: read the CPU a little after the last delivery.
      await new Promise((r) => setTimeout(r, 200));
      const cpu = [...setup.pids.values()].map((pid, i) => cpuSeconds(pid) - cpuBefore[i]!);
      const window = (Date.now() - started) / 1000;
      const clientCpu = cpuSeconds('self') - clientBefore;
      const total = cpu.reduce((a, b) => a + b, 0);
      const nodes = setup.nodes.map((n, i) => ({ ...n, cpuSeconds: round(cpu[i]!, 2) }));
      const result: PhaseResult = {
        phase,
        offeredPerSec: offered,
        seconds: round(elapsed, 2),
        published,
        publishedPerSec: Math.round(published / elapsed),
        delivered: received,
        deliveredFraction: round(received / (published * opts.instances), 4),
        redisCpuSeconds: round(total, 2),
        redisCpuPerMillion: round((total / published) * 1e6, 2),
        redisCpuPerMillionAboveIdle: round((Math.max(0, total - idlePerSec * window) / published) * 1e6, 2),
        clientCpuPerMillion: round((clientCpu / published) * 1e6, 2),
        nodes,
      };
      if (setup.shardOf) {
        const masters = setup.nodes.filter((n) => n.role === 'master');
        result.shards = masters.map((m) => ({
          master: m.port,
          channels: round(channels.filter((c) => setup.shardOf!.get(c) === m.port).length / channels.length, 3),
          masterCpu: round(cpu[setup.nodes.indexOf(m)]! / total, 3),
          shardCpu: round(setup.nodes.reduce((sum, n, i) => sum + (n.shard === m.port ? cpu[i]! : 0), 0) / total, 3),
        }));
        const masterCpu = masters.map((m) => cpu[setup.nodes.indexOf(m)]!);
        const mean = masterCpu.reduce((a, b) => a + b, 0) / masterCpu.length;
        result.masterSpread = round(Math.max(...masterCpu.map((c) => Math.abs(c / mean - 1))), 3);
      }
      results.push(result);
      console.error(`bench:redis: ${mode} ${phase}: ${result.publishedPerSec} msgs/s, ${result.redisCpuPerMillion} Redis CPU-s per million`);
    }
    return { redisIdleCpuPerSec: round(idlePerSec, 4), phases: results };
  } finally {
    for (const c of [...subs, ...pubs]) c.disconnect();
  }
}

/**
 * One publisher: round-robin over the channels (publisher p starts at channel p), at `ratePerSec` or as fast as
 * IN_FLIGHT allows (null), until the deadline; resolves with how many publishes Redis acknowledged.
 */
function pump(setup: Setup, pub: Redis | Cluster, p: number, channels: string[], messages: string[], stride: number, ratePerSec: number | null, started: number, deadline: number): Promise<number> {
  let sent = 0;
  let acked = 0;
  let inFlight = 0;
  let i = p;
  return new Promise<number>((done, fail) => {
    let timer: NodeJS.Timeout | null = null;
    const tick = () => {
      timer = null;
      const now = Date.now();
      const due = ratePerSec === null ? Infinity : Math.floor(((now - started) / 1000) * ratePerSec);
      while (sent < due && inFlight < IN_FLIGHT && now < deadline) {
        const k = i % channels.length;
        i += stride;
        sent++;
        inFlight++;
        setup.publish(pub, channels[k]!, messages[k]!).then(() => {
          inFlight--;
          acked++;
          if (ratePerSec === null) tick();
          else if (inFlight === 0 && Date.now() >= deadline) done(acked);
        }, fail);
      }
      if (now >= deadline) {
        if (inFlight === 0) done(acked);
      } else if (ratePerSec !== null && timer === null) {
        timer = setTimeout(tick, 5);
      }
    };
    tick();
  });
}

/**
 * The cluster modes on one cluster: the two pub/sub kinds compared on the same processes, one after the other. A
 * cluster that cannot start (ports, redis-cli) leaves them skipped with the reason; the single mode stands.
 */
async function clusterModes(clustered: Mode[], opts: RedisBenchOptions, groups: string[]): Promise<ModeResult[]> {
  let cluster: BenchCluster;
  try {
    cluster = await startRedisCluster();
  } catch (err) {
    return clustered.map((mode) => ({ mode, skipped: `the cluster did not start: ${describeError(err)}`, phases: [] }));
  }
  try {
    const results: ModeResult[] = [];
    for (const mode of clustered) {
      const setup = await clusterSetup(cluster, mode === 'sharded', groups.map((g) => channelName('group', g)));
      results.push({ mode, ...(await measureMode(mode, setup, opts, groups)) });
    }
    return results;
  } finally {
    await cluster.stop();
  }
}

const round = (n: number, digits: number) => Number(n.toFixed(digits));

export async function runRedisBench(opts: RedisBenchOptions): Promise<RedisBenchResult> {
  const groups = Array.from({ length: opts.groups }, (_, i) => `group-${i}`);
  const missing = redisBinariesMissing();
  const modes: ModeResult[] = [];
  const single = opts.modes.includes('single');
  const clustered = opts.modes.filter((m) => m !== 'single');
  if (missing !== null) {
    for (const mode of opts.modes) modes.push({ mode, skipped: missing, phases: [] });
  } else {
    if (single) {
      const server = await startRedisServer();
      try {
        modes.push({ mode: 'single', ...(await measureMode('single', singleSetup(server.port, server.pid), opts, groups)) });
      } finally {
        await server.stop();
      }
    }
    if (clustered.length > 0) modes.push(...(await clusterModes(clustered, opts, groups)));
  }
  for (const m of modes) if (m.skipped) console.error(`bench:redis: ${m.mode} skipped: ${m.skipped}`);
  const { outDir, ...options } = opts;
  const machine = { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown', node: process.version, redis: redisVersion(), date: new Date().toISOString() };
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `redis-${machine.date.replace(/:/g, '-')}.json`);
  const result: RedisBenchResult = { machine, options: { ...options, messageBytes: Buffer.byteLength(gatewayMessage(groups[0] ?? 'group-0')) }, modes, file };
  writeFileSync(file, JSON.stringify(result, null, 2));
  return result;
}

function redisVersion(): string | null {
  return /v=(\S+)/.exec(spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout ?? '')?.[1] ?? null;
}

/** The summary table: one row per mode and phase, then the shard shares of the cluster modes. */
export function summarize(result: RedisBenchResult): string {
  const lines = ['mode     phase  offered/s  published/s  delivered  Redis CPU-s/M  (above idle)  client CPU-s/M  Redis CPU-s by node'];
  for (const m of result.modes) {
    if (m.skipped) {
      lines.push(`${m.mode.padEnd(8)} skipped: ${m.skipped}`);
      continue;
    }
    for (const p of m.phases) {
      const byNode = p.nodes.map((n) => `${n.role === 'replica' ? 'r' : n.role === 'master' ? 'm' : ''}${n.port}:${n.cpuSeconds}`).join(' ');
      lines.push(
        `${m.mode.padEnd(8)} ${p.phase.padEnd(6)} ${String(p.offeredPerSec ?? 'max').padStart(9)}  ${String(p.publishedPerSec).padStart(11)}  ${(p.deliveredFraction * 100).toFixed(1).padStart(8)}%  ${String(p.redisCpuPerMillion).padStart(13)}  ${String(p.redisCpuPerMillionAboveIdle).padStart(12)}  ${String(p.clientCpuPerMillion).padStart(14)}  ${byNode}`,
      );
    }
  }
  const shards = result.modes.flatMap((m) => m.phases.filter((p) => p.shards).map((p) => ({ mode: m.mode, p })));
  if (shards.length > 0) {
    lines.push('', 'mode    offered per shard (master port: channels / master CPU / master+replica CPU)  master spread');
      for (const { mode, p } of shards) {
      const cells = p.shards!.map((s) => `${s.master}: ${pct(s.channels)} / ${pct(s.masterCpu)} / ${pct(s.shardCpu)}`).join('   ');
      lines.push(`${mode.padEnd(8)} ${String(p.offeredPerSec ?? 'max').padStart(6)} ${cells}   ±${pct(p.masterSpread!)}`);
    }
  }
  const phases = (mode: Mode) => result.modes.find((m) => m.mode === mode)?.phases ?? [];
  const ratios = phases('classic').flatMap((classic) => {
    const sharded = phases('sharded').find((p) => p.offeredPerSec === classic.offeredPerSec);
    if (!sharded) return [];
    const ratio = (f: (p: PhaseResult) => number) => (f(sharded) / f(classic)).toFixed(2);
    return [`  at ${classic.offeredPerSec ?? 'max'}: ${ratio((p) => p.redisCpuPerMillion)} (above idle: ${ratio((p) => p.redisCpuPerMillionAboveIdle)})`];
  });
  if (ratios.length > 0) lines.push('', 'sharded / classic, Redis CPU per message, by offered rate:', ...ratios);
  const idle = result.modes.filter((m) => m.redisIdleCpuPerSec !== undefined).map((m) => `${m.mode} ${m.redisIdleCpuPerSec}`);
  if (idle.length > 0) lines.push(`Redis idle CPU-s per second (subscribed, nothing published): ${idle.join(', ')}`);
  return lines.join('\n');
}

const pct = (f: number) => `${(f * 100).toFixed(1)} %`;

if (require.main === module) {
  run(command, async () => {
    const { values } = parseCommandLine(command);
    const opts: RedisBenchOptions = {
      seconds: positiveOption('--seconds', values.seconds),
      instances: integerOption('--instances', values.instances, 1, 1000),
      publishers: integerOption('--publishers', values.publishers, 1, 1000),
      groups: integerOption('--groups', values.groups, 1, 100_000),
      rates: listOption('--rates', values.rates).map((r) => integerOption('--rates', r, 1, 10_000_000)),
      modes: listOption('--modes', values.modes, MODES) as Mode[],
      outDir: values.out,
    };
    const result = await runRedisBench(opts);
    console.log(summarize(result));
    console.log(`\nwrote ${result.file}`);
  });
}
