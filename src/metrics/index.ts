// Prometheus metrics (prom-client), one registry per gateway. Gauges read live state when scraped. Counters on hot
// paths (every frame in, every envelope out) add to plain numbers that are handed to prom-client when scraped, so
// no label set is hashed per message; fan-out counts each delivery batch once, not per recipient. Every label value
// comes from a fixed list (the protocol's envelope types), never from input. The same counts are also kept as totals
// since start (`traffic()`), which the server API's `info` reports so a caller can compute rates between two readings.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { clientSignals, type ServerSignalType } from '../types/signals';

/** Live values read at scrape time. */
export interface MetricSources {
  connections(): number;
  sessions(): number;
  groups(): number;
  /** undefined without Redis. */
  redis(): 'up' | 'down' | undefined;
  /** Cross-instance messages dropped while Redis was down (monotonic). */
  dropped(): number;
  /** Messages from Redis dropped because they were not gateway envelopes for their channel (monotonic). */
  invalid(): number;
}

const IN_TYPES = [...Object.keys(clientSignals), 'invalid'] as const;
/** What `gateway_messages_out_total` counts: every server envelope type, and `replay` for envelopes re-sent on resume. */
export type OutType = ServerSignalType | 'replay';
const OUT_TYPES = Object.keys({
  hello: true, ready: true, heartbeat_ack: true, refreshed: true, subscribed: true, unsubscribed: true, ack: true,
  data_update: true, signal: true, presence_update: true, presence_diff: true, presence_count: true, members: true,
  error: true, shutdown: true, replay: true,
} satisfies Record<OutType, true>) as OutType[];

/** Monotonic totals since this instance started: a rate is the difference of two readings over the time between them. */
export interface Traffic {
  /** Frames received, every type (invalid ones included). */
  messagesIn: number;
  /** Envelopes written to sockets, every type (a fan-out counts once per recipient). */
  messagesOut: number;
  /** Fan-outs timed (deliveries to a group's or user's local sessions, presence batches included). */
  fanouts: number;
  /** Their summed duration, in seconds: divided by `fanouts`, the mean time of one. */
  fanoutSeconds: number;
}

export class Metrics {
  readonly registry = new Registry();
  /** Counts by envelope type since the last scrape. */
  private readonly inByType = new Map<string, number>();
  private readonly outByType = new Map<OutType, number>();
  private readonly totals: Traffic = { messagesIn: 0, messagesOut: 0, fanouts: 0, fanoutSeconds: 0 };
  readonly rateLimited: Counter;
  readonly slowConsumers: Counter;
  private readonly fanoutSeconds: Histogram;
  /** Sessions moved between instances (`in`: to this one; `out`: away from it), or handoffs that failed and left them where they were. */
  readonly handoffs: Counter<'direction' | 'result'>;
  /** Server API requests, by method and HTTP status (refusals included: 401, 429…). */
  readonly apiRequests: Counter<'method' | 'status'>;

  constructor(sources: MetricSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    new Gauge({ name: 'gateway_connections', help: 'Open WebSocket connections.', registers, collect() { this.set(sources.connections()); } });
    new Gauge({ name: 'gateway_sessions', help: 'Sessions held: attached to a connection or orphaned within GW_ORPHAN_SESSION_TTL_MS.', registers, collect() { this.set(sources.sessions()); } });
    new Gauge({ name: 'gateway_groups', help: 'Groups with at least one local connection.', registers, collect() { this.set(sources.groups()); } });
    if (sources.redis() !== undefined) {
      new Gauge({ name: 'gateway_redis_up', help: '1 when the Redis connection is ready, else 0.', registers, collect() { this.set(sources.redis() === 'up' ? 1 : 0); } });
    }
    monotonic(registers, 'gateway_cluster_dropped_total', 'Cross-instance messages dropped because Redis was down.', sources.dropped);
    monotonic(registers, 'gateway_cluster_invalid_total', 'Messages from Redis dropped because they were not gateway envelopes for their channel.', sources.invalid);
    const inByType = this.inByType;
    const outByType = this.outByType;
    for (const type of IN_TYPES) inByType.set(type, 0);
    for (const type of OUT_TYPES) outByType.set(type, 0);
    new Counter({
      name: 'gateway_messages_in_total',
      help: 'Frames received, by envelope type (invalid: did not parse as a known envelope).',
      labelNames: ['type'],
      registers,
      collect() {
        flush(this, inByType);
      },
    });
    new Counter({
      name: 'gateway_messages_out_total',
      help: 'Envelopes written to sockets, by type (a fan-out counts once per recipient).',
      labelNames: ['type'],
      registers,
      collect() {
        flush(this, outByType);
      },
    });
    this.rateLimited = new Counter({ name: 'gateway_rate_limited_total', help: 'Frames refused RATE_LIMITED.', registers });
    this.slowConsumers = new Counter({ name: 'gateway_slow_consumers_total', help: 'Connections cut off as slow consumers (close 4010).', registers });
    this.handoffs = new Counter({
      name: 'gateway_session_handoffs_total',
      help: 'Session handoffs between instances, by direction (in, out) and result (moved, failed: the session stayed where it was).',
      labelNames: ['direction', 'result'],
      registers,
    });
    this.apiRequests = new Counter({
      name: 'gateway_api_requests_total',
      help: 'Server API requests, by method (openapi for the document, unknown for a path naming no method) and HTTP status.',
      labelNames: ['method', 'status'],
      registers,
    });
    this.fanoutSeconds = new Histogram({
      name: 'gateway_fanout_seconds',
      help: 'Time to hand one message to every local recipient socket.',
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
      registers,
    });
  }

  received(type: string): void {
    const key = this.inByType.has(type) ? type : 'invalid';
    this.inByType.set(key, this.inByType.get(key)! + 1);
    this.totals.messagesIn++;
  }

  sent(type: OutType, count = 1): void {
    this.outByType.set(type, this.outByType.get(type)! + count);
    this.totals.messagesOut += count;
  }

  /** One fan-out took `seconds`: into the histogram and the totals. */
  fannedOut(seconds: number): void {
    this.fanoutSeconds.observe(seconds);
    this.totals.fanouts++;
    this.totals.fanoutSeconds += seconds;
  }

  /** The totals since start, as they are now (a copy). */
  traffic(): Traffic {
    return { ...this.totals };
  }
}

/** A counter that follows a monotonic number kept elsewhere, read at scrape time. */
function monotonic(registers: Registry[], name: string, help: string, read: () => number): void {
  let seen = 0;
  new Counter({
    name,
    help,
    registers,
    collect() {
      const now = read();
      this.inc(now - seen);
      seen = now;
    },
  });
}

/** Adds what was counted since the last scrape to the counter (every type appears, 0 included) and starts over. */
function flush(counter: Counter<'type'>, counts: Map<string, number>): void {
  for (const [type, count] of counts) {
    counter.inc({ type }, count);
    counts.set(type, 0);
  }
}
