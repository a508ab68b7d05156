// MemoryBroker: the embedded default. Instances sharing one MemoryBus (same process) act as one gateway;
// each gateway gets its own bus unless told otherwise. Not for several processes: use RedisBroker.
import type { Relayed } from '../types/signals';
import type { Broker, BrokerHandlers, ChannelKind, ControlHandlers } from './Broker';

/** In-process meeting point of MemoryBrokers. */
export class MemoryBus {
  readonly brokers = new Set<MemoryBroker>();
}

export class MemoryBroker implements Broker {
  private handlers: BrokerHandlers | null = null;
  private control: ControlHandlers | null = null;
  private readonly interest = new Set<string>();
  readonly dropped = 0;
  /** Envelopes never leave the process, so there is nothing to validate. */
  readonly invalid = 0;

  constructor(
    readonly instanceId: string,
    private readonly bus: MemoryBus = new MemoryBus(),
  ) {}

  async start(handlers: BrokerHandlers): Promise<void> {
    this.handlers = handlers;
    this.bus.brokers.add(this);
  }

  async listenControl(handlers: ControlHandlers): Promise<void> {
    this.control = handlers;
  }

  async publishControl(message: string): Promise<number> {
    let heard = 0;
    for (const other of this.bus.brokers) {
      if (other === this || !other.control) continue;
      heard++;
      other.control.onControl(message);
    }
    return heard;
  }

  publish(kind: ChannelKind, name: string, envelope: Relayed): void {
    const key = `${kind}:${name}`;
    for (const other of this.bus.brokers) {
      if (other !== this && other.interest.has(key)) other.handlers?.onRelayed(kind, name, envelope);
    }
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
