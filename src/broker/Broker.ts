// Broker: carries serialized envelopes between gateway instances. Local delivery is the Router's; a broker only reaches the others.
import type { ChannelKind } from './wire';

export type { ChannelKind };

export interface BrokerHandlers {
  /** A frame another instance (or a backend emitter) published on a channel this instance subscribed to. */
  onFrame(kind: ChannelKind, name: string, frame: string): void;
}

/** Instance-to-instance coordination (session handoff): JSON messages on one cluster-wide control channel. */
export interface ControlHandlers {
  /** A control message from another instance (never this instance's own). */
  onControl(message: string): void;
}

export interface Broker {
  readonly instanceId: string;
  start(handlers: BrokerHandlers): Promise<void>;
  /** Starts delivering control messages (the broker subscribes to the control channel). */
  listenControl(handlers: ControlHandlers): Promise<void>;
  /** Sends a control message to every other instance; dropped while the transport is down. */
  publishControl(message: string): void;
  /**
   * Sends a serialized envelope to the other instances with local interest in the channel. Never throws
   * and never queues: while the transport is down the frame is dropped and counted.
   */
  publish(kind: ChannelKind, name: string, frame: string): void;
  /**
   * This instance needs the channel (a local connection joined its audience). Resolves once frames published
   * on it will arrive, so nothing sent after the join is missed; resolves too, without delivery, while the transport is down.
   */
  subscribe(kind: ChannelKind, name: string): Promise<void>;
  /** This instance no longer needs the channel (its last local connection left). */
  unsubscribe(kind: ChannelKind, name: string): void;
  /** Frames dropped because the transport was down. */
  readonly dropped: number;
  stop(): Promise<void>;
}
