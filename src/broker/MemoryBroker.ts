// MemoryBroker: the embedded default. Instances sharing one MemoryBus (same process) act as one gateway;
// each gateway gets its own bus unless told otherwise. Not for several processes: use RedisBroker.
import type { Filter } from '../types/filter';
import type { Relayed } from '../types/signals';
import type { Broker, BrokerHandlers, ChannelKind, ControlHandlers } from './Broker';
import { channelName } from './wire';

/**
 * Decides the fate of one control message on a bus (tests inject faults): deliver it, drop it, deliver it twice, or
 * hold it until the promise resolves.
 */
export type ControlFault = (message: { from: string; to: string; body: string }) => 'deliver' | 'drop' | 'twice' | Promise<void>;

/** In-process meeting point of MemoryBrokers. */
export class MemoryBus {
  readonly brokers = new Set<MemoryBroker>();
  /** For fault-injection tests only. */
  fault: ControlFault | null = null;
}

export interface MemoryBrokerOptions {
  /**
   * False: act as on a Redis Cluster (Broker.singleOrder false), so session handoffs cut each channel on its own (for
   * tests of that path; delivery is in one order all the same).
   */
  singleOrder?: boolean;
}

export class MemoryBroker implements Broker {
  readonly singleOrder: boolean;
  private echoes = 0;
  private handlers: BrokerHandlers | null = null;
  private control: ControlHandlers | null = null;
  private readonly interest = new Set<string>();
  readonly dropped = 0;
  /** Envelopes never leave the process, so there is nothing to validate. */
  readonly invalid = 0;

  constructor(
    readonly instanceId: string,
    private readonly bus: MemoryBus = new MemoryBus(),
    options: MemoryBrokerOptions = {},
  ) {
    this.singleOrder = options.singleOrder ?? true;
  }

  async start(handlers: BrokerHandlers): Promise<void> {
    this.handlers = handlers;
    this.bus.brokers.add(this);
  }

  async listenControl(handlers: ControlHandlers): Promise<void> {
    this.control = handlers;
  }

  /** Delivery is synchronous, so the mark is handed to this instance first: nothing can come between it and the message. */
  async sendControl(to: string, message: string, mark?: string): Promise<boolean> {
    const target = [...this.bus.brokers].find((b) => b.instanceId === to && b.control);
    if (!target) return false;
    if (mark !== undefined) this.control?.onControl(mark, this.instanceId);
    const fate = this.bus.fault?.({ from: this.instanceId, to, body: message }) ?? 'deliver';
    const deliver = () => target.control?.onControl(message, this.instanceId);
    if (fate === 'deliver' || fate === 'twice') deliver();
    if (fate === 'twice') deliver();
    if (fate instanceof Promise) void fate.then(deliver);
    return true;
  }

  async peers(): Promise<string[]> {
    return [...this.bus.brokers].filter((b) => b !== this && b.control).map((b) => b.instanceId);
  }

  publish(kind: ChannelKind, name: string, envelope: Relayed, filter?: Filter): void {
    const key = `${kind}:${name}`;
    for (const other of this.bus.brokers) {
      if (other !== this && other.interest.has(key)) other.handlers?.onRelayed(kind, name, envelope, this.instanceId, filter);
    }
    if (this.echoes > 0 && this.interest.has(key)) this.handlers?.onEcho?.(kind, name, envelope, filter);
  }

  markChannel(kind: ChannelKind, name: string, mark: string): void {
    const key = `${kind}:${name}`;
    const channel = channelName(kind, name);
    for (const broker of this.bus.brokers) if (broker.interest.has(key)) broker.control?.onMark?.(channel, mark, this.instanceId);
  }

  wantEchoes(on: boolean): void {
    this.echoes = Math.max(0, this.echoes + (on ? 1 : -1));
  }

  async subscribe(kind: ChannelKind, name: string): Promise<void> {
    this.interest.add(`${kind}:${name}`);
  }

  unsubscribe(kind: ChannelKind, name: string): void {
    this.interest.delete(`${kind}:${name}`);
  }

  async stop(): Promise<void> {
    this.bus.brokers.delete(this);
    this.handlers = null;
    this.control = null;
  }
}
