// Prometheus metrics (prom-client), one registry per gateway. Gauges read live state when scraped; counters on
// hot paths use pre-bound label children, and fan-out counts each delivery batch once, not per recipient.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { clientSignals } from '../types/signals';

/** Live values read at scrape time. */
export interface MetricSources {
  connections(): number;
  sessions(): number;
  groups(): number;
  /** undefined without Redis. */
  redis(): 'up' | 'down' | undefined;
  /** Cross-instance messages dropped while Redis was down (monotonic). */
  dropped(): number;
}

const IN_TYPES = [...Object.keys(clientSignals), 'invalid'] as const;

export class Metrics {
  readonly registry = new Registry();
  private readonly messagesIn: Counter<'type'>;
  private readonly messagesOut: Counter<'type'>;
  private readonly inByType = new Map<string, Counter.Internal>();
  private readonly outByType = new Map<string, Counter.Internal>();
  readonly rateLimited: Counter;
  readonly slowConsumers: Counter;
  readonly fanoutSeconds: Histogram;

  constructor(sources: MetricSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    new Gauge({ name: 'gateway_connections', help: 'Open WebSocket connections.', registers, collect() { this.set(sources.connections()); } });
    new Gauge({ name: 'gateway_sessions', help: 'Sessions held: attached to a connection or orphaned within GW_ORPHAN_SESSION_TTL_MS.', registers, collect() { this.set(sources.sessions()); } });
    new Gauge({ name: 'gateway_groups', help: 'Groups with at least one local connection.', registers, collect() { this.set(sources.groups()); } });
    if (sources.redis() !== undefined) {
      new Gauge({ name: 'gateway_redis_up', help: '1 when the Redis connection is ready, else 0.', registers, collect() { this.set(sources.redis() === 'up' ? 1 : 0); } });
    }
    let droppedSeen = 0;
    new Counter({
      name: 'gateway_cluster_dropped_total',
      help: 'Cross-instance messages dropped because Redis was down.',
      registers,
      collect() {
        const now = sources.dropped();
        this.inc(now - droppedSeen);
        droppedSeen = now;
      },
    });
    this.messagesIn = new Counter({ name: 'gateway_messages_in_total', help: 'Frames received, by envelope type (invalid: did not parse as a known envelope).', labelNames: ['type'], registers });
    this.messagesOut = new Counter({ name: 'gateway_messages_out_total', help: 'Envelopes written to sockets, by type (a fan-out counts once per recipient).', labelNames: ['type'], registers });
    for (const type of IN_TYPES) this.inByType.set(type, this.messagesIn.labels(type));
    this.rateLimited = new Counter({ name: 'gateway_rate_limited_total', help: 'Frames refused RATE_LIMITED.', registers });
    this.slowConsumers = new Counter({ name: 'gateway_slow_consumers_total', help: 'Connections cut off as slow consumers (close 4010).', registers });
    this.fanoutSeconds = new Histogram({
      name: 'gateway_fanout_seconds',
      help: 'Time to hand one message to every local recipient socket.',
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
      registers,
    });
  }

  received(type: string): void {
    (this.inByType.get(type) ?? this.inByType.get('invalid')!).inc();
  }

  sent(type: string, count = 1): void {
    let child = this.outByType.get(type);
    if (!child) {
      child = this.messagesOut.labels(type);
      this.outByType.set(type, child);
    }
    child.inc(count);
  }
}
