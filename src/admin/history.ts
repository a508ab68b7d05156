// What the overview plots: the `info` readings of the last minutes, turned into one series per instance for each
// metric. Rates come from the monotonic totals `info` reports (traffic): the difference of two readings of the same
// instance over the difference of its own clock, so neither the poll's timing nor clock skew between instances
// distorts them. A total that went down means the instance restarted: no rate for that step.
import type { ApiResult } from './api';

export type Info = ApiResult<'info'>;
export type InstanceReport = Info['instances'][number];
/** An instance that answered (not `unknown`). */
export type DescribedInstance = Extract<InstanceReport, { version: string }>;
type Traffic = NonNullable<DescribedInstance['traffic']>;

/** One instance at one reading. */
export interface Reading {
  connections: number;
  sessions: number;
  /** Frames received per second since the previous reading; null without one. */
  inPerSec: number | null;
  /** Envelopes written per second since the previous reading. */
  outPerSec: number | null;
  /** Mean time of the fan-outs since the previous reading, in milliseconds; null when there was none. */
  fanoutMs: number | null;
}

export type Metric = keyof Reading;

/** Timestamps (seconds) and one series per instance, as uPlot takes them; null where an instance had no reading. */
export type Series = [number[], ...(number | null)[][]];

export class History {
  private readonly times: number[] = [];
  private readonly rows: Map<string, Reading>[] = [];
  private readonly previous = new Map<string, Traffic>();

  constructor(private readonly windowMs: number) {}

  /** Adds the reading `info` gave at `nowMs` (the page's clock), and forgets readings older than the window. */
  add(info: Info, nowMs: number): void {
    const row = new Map<string, Reading>();
    for (const instance of info.instances) {
      if (!('version' in instance)) continue;
      const traffic = instance.traffic;
      row.set(instance.id, { connections: instance.connections, sessions: instance.sessions, ...rates(this.previous.get(instance.id), traffic) });
      if (traffic) this.previous.set(instance.id, traffic);
      else this.previous.delete(instance.id);
    }
    for (const id of this.previous.keys()) if (!row.has(id)) this.previous.delete(id);
    this.times.push(nowMs / 1000);
    this.rows.push(row);
    while (this.times.length > 0 && this.times[0]! < (nowMs - this.windowMs) / 1000) {
      this.times.shift();
      this.rows.shift();
    }
  }

  /** Every instance with a reading in the window, by id. */
  instances(): string[] {
    const ids = new Set<string>();
    for (const row of this.rows) for (const id of row.keys()) ids.add(id);
    return [...ids].sort();
  }

  /** The latest reading of `id`, if the newest reading has it. */
  latest(id: string): Reading | undefined {
    return this.rows[this.rows.length - 1]?.get(id);
  }

  /** `metric` over the window for each of `ids`, in that order. */
  series(metric: Metric, ids: string[]): Series {
    return [[...this.times], ...ids.map((id) => this.rows.map((row) => row.get(id)?.[metric] ?? null))];
  }
}

function rates(before: Traffic | undefined, after: Traffic | undefined): Pick<Reading, 'inPerSec' | 'outPerSec' | 'fanoutMs'> {
  const none = { inPerSec: null, outPerSec: null, fanoutMs: null };
  if (!before || !after || after.at <= before.at || after.messagesIn < before.messagesIn || after.messagesOut < before.messagesOut || after.fanouts < before.fanouts) return none;
  const seconds = (after.at - before.at) / 1000;
  const fanouts = after.fanouts - before.fanouts;
  return {
    inPerSec: (after.messagesIn - before.messagesIn) / seconds,
    outPerSec: (after.messagesOut - before.messagesOut) / seconds,
    fanoutMs: fanouts === 0 ? null : ((after.fanoutSeconds - before.fanoutSeconds) / fanouts) * 1000,
  };
}
