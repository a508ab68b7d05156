// Control: the control messages other instances address to this one, parsed once and routed by their `op` to the
// module that owns it (Handoff, Revocations), which validates it. What does not parse, names no known op, or is refused
// by its module is counted, logged and dropped, never acted on.
import type { ControlHandlers } from '../broker/Broker';
import type { Logger } from '../utils/logger';

/** A module that owns some control message ops. */
export interface ControlReceiver {
  readonly ops: readonly string[];
  /** Handles a parsed message whose `op` is one of `ops`; false when it is malformed (nothing was done). */
  receive(message: unknown, from: string): boolean;
  /** A mark read on an envelope channel (Broker.markChannel), for the receiver that placed it. */
  mark?(channel: string, mark: string, from: string): void;
}

export class Control implements ControlHandlers {
  private readonly routes = new Map<string, ControlReceiver>();
  private readonly markers: ControlReceiver[];
  private invalidCount = 0;

  constructor(
    receivers: readonly ControlReceiver[],
    private readonly log: Logger,
  ) {
    for (const receiver of receivers) for (const op of receiver.ops) this.routes.set(op, receiver);
    this.markers = receivers.filter((receiver) => receiver.mark);
  }

  onMark(channel: string, mark: string, from: string): void {
    for (const receiver of this.markers) receiver.mark?.(channel, mark, from);
  }

  /** Control messages that did not parse. */
  get invalid(): number {
    return this.invalidCount;
  }

  onControl(raw: string, from: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      parsed = undefined;
    }
    const op = typeof parsed === 'object' && parsed !== null ? (parsed as { op?: unknown }).op : undefined;
    const receiver = typeof op === 'string' ? this.routes.get(op) : undefined;
    if (receiver?.receive(parsed, from)) return;
    this.invalidCount++;
    this.log.warn({ from }, 'malformed control message ignored');
  }
}
