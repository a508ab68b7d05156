// Subscriber load generator (a child process of bench/run.ts, pinned to its own core): holds N lean connections to
// one kind of server, identifies them (gateway), joins them (ws, uWS) or does the Engine.IO and Socket.IO handshake
// and a join (Socket.IO), and measures deliveries and publish→deliver latency. With `parse`, every message is parsed
// as a real client parses it; with `heartbeatMs`, the connections heartbeat spread over that interval (to the gateway
// as the SDK does, a request it answers with `heartbeat_ack`). Pings are answered: WebSocket pings by LeanSocket,
// Engine.IO's "2" with "3".
import { mintToken } from '../src/auth/jwt';
import { LeanSocket } from './lean';
import { cpuSeconds } from './proc';
import { percentile } from './stats';

/** The servers the benchmark compares: the raw `ws` baseline, Socket.IO 4, uWebSockets.js, and the gateway. */
export type ServerKind = 'baseline' | 'socketio' | 'uws' | 'gateway';

/** Where each kind of server accepts WebSocket upgrades. */
export const WS_PATHS: Record<ServerKind, string> = { baseline: '/', socketio: '/socket.io/?EIO=4&transport=websocket', uws: '/', gateway: '/rt' };

export type SubscriberCommand =
  | { cmd: 'connect'; kind: ServerKind; ports: number[]; count: number; group: string; secret?: string; heartbeatMs?: number; parse?: boolean; groupSize?: number; concurrency?: number }
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
/** Engine.IO packet types: "2" ping, "4" message; Socket.IO's "2" event follows the "4". */
const EIO_PING = 0x32;
const EIO_MESSAGE = 0x34;
const SIO_EVENT = 0x32;

const now = () => performance.timeOrigin + performance.now();

function record(sentAt: number): void {
  if (count < latencies.length) latencies[count] = now() - sentAt;
  count++;
}

/** The lean way: the send time found by its marker, nothing else read. */
function leanDelivery(data: Buffer, start: number, end: number): void {
  if (!measuring) return;
  const at = data.indexOf(MARK, start);
  if (at < 0 || at >= end) return;
  record(parseFloat(data.toString('latin1', at + 4, Math.min(end, at + 30))));
}

interface Delivered {
  payload?: { t?: unknown };
}

/** As a real client: the whole message parsed (a Socket.IO event is an array: name, then data). */
function parsedDelivery(text: string, socketio: boolean): void {
  const message = JSON.parse(text) as { type?: string; data?: Delivered } | [string, Delivered];
  const data = socketio ? (message as [string, Delivered])[1] : (message as { type?: string; data?: Delivered }).type === 'data_update' ? (message as { data?: Delivered }).data : undefined;
  const sentAt = data?.payload?.t;
  if (measuring && typeof sentAt === 'number') record(sentAt);
}

/** Resolves with the first text message `accept` takes (a rejection from it fails the connection). */
function nextText(socket: LeanSocket, accept: (text: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    socket.onFrame = (opcode, _fin, data, start, end) => {
      if (opcode !== 0x1) return;
      const text = data.toString('utf8', start, end);
      try {
        if (accept(text)) resolve(text);
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    };
    socket.onClose = () => reject(new Error('closed during the handshake'));
  });
}

async function handshake(c: Extract<SubscriberCommand, { cmd: 'connect' }>, socket: LeanSocket, group: string, token: string | undefined): Promise<void> {
  switch (c.kind) {
    case 'baseline':
    case 'uws':
      socket.sendText(`join ${group}`);
      return;
    case 'socketio':
      // Engine.IO open packet, then the Socket.IO connect to the main namespace, then a join the server acknowledges.
      await nextText(socket, (t) => t.startsWith('0{'));
      socket.sendText('40');
      await nextText(socket, (t) => t.startsWith('40'));
      socket.sendText(`420${JSON.stringify(['join', group])}`);
      await nextText(socket, (t) => t.startsWith('430'));
      return;
    case 'gateway': {
      const ready = nextText(socket, (t) => {
        if (t.startsWith('{"type":"error"')) throw new Error(t);
        return t.startsWith('{"type":"ready"');
      });
      socket.sendText(JSON.stringify({ type: 'identify', data: { token, groups: [group], presence: 'diffs' } }));
      await ready;
    }
  }
}

function onMessages(c: Extract<SubscriberCommand, { cmd: 'connect' }>, socket: LeanSocket): void {
  const socketio = c.kind === 'socketio';
  socket.onClose = () => closes++;
  socket.onFrame = (opcode, _fin, data, start, end) => {
    if (opcode === 0x8) {
      if (end - start >= 2) closeCodes.set(data.readUInt16BE(start), (closeCodes.get(data.readUInt16BE(start)) ?? 0) + 1);
      return;
    }
    if (opcode !== 0x1) return;
    if (socketio) {
      if (end - start === 1 && data[start] === EIO_PING) return socket.sendText('3');
      if (data[start] !== EIO_MESSAGE || data[start + 1] !== SIO_EVENT) return;
      start += 2;
    }
    if (c.parse) parsedDelivery(data.toString('utf8', start, end), socketio);
    else leanDelivery(data, start, end);
  };
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
    const socket = await LeanSocket.open(port, WS_PATHS[c.kind], `127.0.0.${2 + (i % 250)}`);
    await handshake(c, socket, group, tokens[i]);
    onMessages(c, socket);
    sockets.push(socket);
  };
  const worker = async () => {
    while (next < c.count) {
      const i = next++;
      await one(i).catch(() => failed++);
    }
  };
  // Socket.IO clients send nothing of their own: the server pings them.
  if (c.heartbeatMs && c.kind !== 'socketio') {
    // Heartbeats start with the first connection (identifying thousands takes longer than the heartbeat timeout),
    // spread over the interval as independent clients would be.
    let cursor = 0;
    let id = 0;
    const perTick = Math.max(1, Math.ceil(c.count / (c.heartbeatMs / 100)));
    heartbeat = setInterval(() => {
      // In order, wrapping to the start: sockets added meanwhile wait at most one pass (a modulo over the growing
      // array would starve the oldest while connections are still being opened).
      for (let k = 0; k < perTick && sockets.length > 0; k++) {
        if (cursor >= sockets.length) cursor = 0;
        const s = sockets[cursor++]!;
        if (!s.closed) s.sendText(`{"type":"heartbeat","id":"${id++}","data":{}}`);
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
