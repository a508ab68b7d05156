// Subscriber load generator (a child process of bench/run.ts, pinned to its own core): holds N lean connections,
// identifies them (gateway) or joins them (baseline), heartbeats, and measures deliveries and publish→deliver latency.
import { mintToken } from '../src/auth/jwt';
import { LeanSocket } from './lean';
import { cpuSeconds } from './proc';
import { percentile } from './stats';

export type SubscriberCommand =
  | { cmd: 'connect'; kind: 'gateway' | 'baseline'; ports: number[]; count: number; group: string; secret?: string; heartbeatMs?: number; groupSize?: number; concurrency?: number }
  | { cmd: 'start' }
  | { cmd: 'stop' }
  | { cmd: 'exit' };

export interface SubscriberStats {
  deliveries: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  clientCpuSec: number;
  closes: number;
  closeCodes: Record<number, number>;
}

const sockets: LeanSocket[] = [];
let latencies = new Float64Array(1 << 22);
let count = 0;
let closes = 0;
let measuring = false;
let cpuAtStart = 0;
let heartbeat: NodeJS.Timeout | null = null;
/** Close codes received in close frames, for reporting why connections ended. */
const closeCodes = new Map<number, number>();
const MARK = Buffer.from('"t":');

const now = () => performance.timeOrigin + performance.now();

function onDelivery(data: Buffer, start: number, end: number): void {
  if (!measuring) return;
  const at = data.indexOf(MARK, start);
  if (at < 0 || at >= end) return;
  const t = parseFloat(data.toString('latin1', at + 4, Math.min(end, at + 30)));
  if (count < latencies.length) latencies[count] = now() - t;
  count++;
}

/** What connecting took: from the first connection to the last `ready` (tokens minted before), and this process's CPU. */
interface Connected {
  failed: number;
  ms: number;
  cpuSec: number;
}

async function connectAll(c: Extract<SubscriberCommand, { cmd: 'connect' }>): Promise<Connected> {
  const secret = c.secret ? new TextEncoder().encode(c.secret) : null;
  // With groupSize, connections fill groups of that many ("idle-0", "idle-1", …); without, all share one group.
  const groupOf = (i: number) => (c.groupSize ? `${c.group}-${Math.floor(i / c.groupSize)}` : c.group);
  // Tokens come from the platform's HTTP API, not from the gateway: minted before the clock starts.
  const tokens = secret ? await Promise.all(Array.from({ length: c.count }, (_, i) => mintToken({ sub: `user-${i}`, groups: [groupOf(i)] }, secret))) : [];
  const started = performance.now();
  const cpuBefore = cpuSeconds();
  let failed = 0;
  let next = 0;
  const one = async (i: number) => {
    const port = c.ports[i % c.ports.length]!;
    const group = groupOf(i);
    // Spread over 250 local addresses: a bind() to one address searches its ports, and with tens of thousands bound
    // or in TIME_WAIT from earlier workloads that search made connecting the slowest part of the run.
    const socket = await LeanSocket.open(port, c.kind === 'gateway' ? '/rt' : '/', `127.0.0.${2 + (i % 250)}`);
    socket.onClose = () => closes++;
    if (c.kind === 'baseline') {
      socket.onFrame = (opcode, _fin, data, start, end) => {
        if (opcode === 0x1) onDelivery(data, start, end);
      };
      socket.sendText(`join ${group}`);
    } else {
      const token = tokens[i]!;
      await new Promise<void>((resolve, reject) => {
        socket.onFrame = (_op, _fin, data, start, end) => {
          const text = data.toString('utf8', start, end);
          if (text.startsWith('{"type":"ready"')) resolve();
          else if (text.startsWith('{"type":"error"')) reject(new Error(text));
        };
        socket.sendText(JSON.stringify({ type: 'identify', data: { token, groups: [group], presence: 'diffs' } }));
      });
      socket.onFrame = (opcode, _fin, data, start, end) => {
        if (opcode === 0x1) onDelivery(data, start, end);
        else if (opcode === 0x8 && end - start >= 2) closeCodes.set(data.readUInt16BE(start), (closeCodes.get(data.readUInt16BE(start)) ?? 0) + 1);
      };
    }
    sockets.push(socket);
  };
  const worker = async () => {
    while (next < c.count) {
      const i = next++;
      await one(i).catch(() => failed++);
    }
  };
  if (c.heartbeatMs) {
    // Heartbeats start with the first connection (identifying thousands takes longer than the heartbeat timeout),
    // spread over the interval as independent clients would be.
    let cursor = 0;
    const perTick = Math.max(1, Math.ceil(c.count / (c.heartbeatMs / 100)));
    heartbeat = setInterval(() => {
      // In order, wrapping to the start: sockets added meanwhile wait at most one pass (a modulo over the growing
      // array would starve the oldest while connections are still being opened).
      for (let k = 0; k < perTick && sockets.length > 0; k++) {
        if (cursor >= sockets.length) cursor = 0;
        const s = sockets[cursor++]!;
        if (!s.closed) s.sendText('{"type":"heartbeat"}');
      }
    }, 100);
  }
  await Promise.all(Array.from({ length: c.concurrency ?? 64 }, worker));
  return { failed, ms: performance.now() - started, cpuSec: cpuSeconds() - cpuBefore };
}

process.on('message', (message: SubscriberCommand) => {
  switch (message.cmd) {
    case 'connect':
      void connectAll(message).then((done) => process.send!({ ev: 'connected', connected: sockets.length, ...done, bytes: sockets.reduce((sum, s) => sum + s.bytesReceived, 0) }));
      return;
    case 'start':
      count = 0;
      closes = 0;
      measuring = true;
      cpuAtStart = cpuSeconds();
      process.send!({ ev: 'started' });
      return;
    case 'stop': {
      measuring = false;
      const sorted = latencies.slice(0, Math.min(count, latencies.length)).sort();
      const stats: SubscriberStats = {
        deliveries: count,
        p50Ms: percentile(sorted, 0.5),
        p99Ms: percentile(sorted, 0.99),
        maxMs: sorted.length ? sorted[sorted.length - 1]! : 0,
        clientCpuSec: cpuSeconds() - cpuAtStart,
        closes,
        closeCodes: Object.fromEntries(closeCodes),
      };
      latencies = new Float64Array(latencies.length);
      process.send!({ ev: 'stats', stats });
      return;
    }
    case 'exit':
      if (heartbeat) clearInterval(heartbeat);
      for (const s of sockets) s.close();
      process.exit(0);
  }
});
