// Broker: carries serialized envelopes between gateway instances. Local delivery is Membership's; a broker only reaches the others.
import type { Filter } from '../types/filter';
import type { Relayed } from '../types/signals';
import type { ChannelKind } from './wire';

export type { ChannelKind };

export interface BrokerHandlers {
  /**
   * An envelope another instance (or a backend emitter) published on a channel this instance subscribed to, with the
   * filter a data_update may carry: only the sessions it accepts get it. What arrives from outside the process has been
   * validated (wire.ts `decodeRelayed`), its filter included; what did not pass never gets here.
   */
  onRelayed(kind: ChannelKind, name: string, envelope: Relayed, origin: string, filter?: Filter): void;
  /**
   * An envelope this instance published itself, read back from its channel; only while `wantEchoes` is on (a session
   * arriving here places its own instance's deliveries against a channel's cut, see ChannelCut).
   */
  onEcho?(kind: ChannelKind, name: string, envelope: Relayed, filter?: Filter): void;
}

/** Instance-to-instance coordination (session handoffs): JSON messages addressed to one instance. */
export interface ControlHandlers {
  /** A control message addressed to this instance, or a mark it sent itself (`from` is then its own id). */
  onControl(message: string, from: string): void;
  /** A mark read on an envelope channel this instance listens to (`markChannel`, its own included), with its sender. */
  onMark?(channel: string, mark: string, from: string): void;
}

export interface Broker {
  readonly instanceId: string;
  /**
   * Whether control messages and the messages of every channel share one order, the order every subscriber reads in
   * (in memory; one Redis). A session handoff's cut needs it (see Capture). False on a Redis Cluster, where each
   * channel is ordered by its own shard only.
   */
  readonly singleOrder: boolean;
  start(handlers: BrokerHandlers): Promise<void>;
  /** Starts delivering control messages addressed to this instance (the broker subscribes to its own control channel). */
  listenControl(handlers: ControlHandlers): Promise<void>;
  /**
   * Sends a control message to one instance; resolves true when that instance listens, false when it is gone (or the
   * transport is down: the message is dropped), so a question nobody can answer is not waited on. With `mark`, this
   * instance receives `mark` among its own messages at the point where `to` receives `message` among its messages and
   * envelopes: both are published at once, so the mark splits this instance's stream exactly where `to` read `message`.
   */
  sendControl(to: string, message: string, mark?: string): Promise<boolean>;
  /**
   * Publishes `mark` on an envelope channel, in order with this instance's envelopes there: every instance listening to
   * the channel, this one included, reads it (`onMark`) at that point of the channel's order. Dropped while down.
   */
  markChannel(kind: ChannelKind, name: string, mark: string): void;
  /** Turns `onEcho` on (counted: on while any caller wants it) or off. */
  wantEchoes(on: boolean): void;
  /** The other instances listening for control messages now. */
  peers(): Promise<string[]>;
  /**
   * Sends a serialized envelope to the other instances with local interest in the channel, with its filter (a
   * data_update's only), which they apply. Never throws and never queues: while the transport is down the frame is
   * dropped and counted.
   */
  publish(kind: ChannelKind, name: string, envelope: Relayed, filter?: Filter): void;
  /**
   * This instance needs the channel (a local connection joined its audience). Resolves once frames published
   * on it will arrive, so nothing sent after the join is missed; resolves too, without delivery, while the transport is down.
   */
  subscribe(kind: ChannelKind, name: string): Promise<void>;
  /** This instance no longer needs the channel (its last local connection left). */
  unsubscribe(kind: ChannelKind, name: string): void;
  /** Frames dropped because the transport was down. */
  readonly dropped: number;
  /** Messages received that were not well-formed gateway envelopes for their channel (or whose filter did not parse), dropped. */
  readonly invalid: number;
  stop(): Promise<void>;
}
