// Replies: every envelope the gateway writes to one connection (as opposed to fan-out), and `refuse`, the one way an
// envelope is refused: the error from the error-code table and, where the table says so, the close that follows.
import type { Metrics } from '../metrics';
import { CloseCode, ErrorCode, type ErrorCodeName } from '../types/codes';
import { serializeEnvelope } from '../types/envelope';
import type { ClientSignalType, ServerSignalType, ServerSignals } from '../types/signals';
import type { ConnectionContext } from './ConnectionContext';

export interface Refusal {
  /** The `id` of the refused envelope, when it had a usable one. */
  replyTo?: string;
  /** The type of the refused envelope, when known (some errors close only for one type). */
  refused?: ClientSignalType;
  retryAfterMs?: number;
  /** The close reason, when the close has one of its own (a backend's); else the code's name. */
  closeReason?: string;
}

export class Replies {
  constructor(private readonly metrics: Metrics) {}

  send<T extends ServerSignalType>(ctx: ConnectionContext, type: T, data: ServerSignals[T], replyTo?: string): void {
    ctx.send(serializeEnvelope(type, data, replyTo));
    this.metrics.sent(type);
  }

  /** Sends `error` with `code`, then closes the connection when the table says this error closes it. Returns undefined, so a handler can `return refuse(…)`. */
  refuse(ctx: ConnectionContext, code: ErrorCodeName, message: string, refusal: Refusal = {}): undefined {
    this.send(ctx, 'error', { code, message, retryAfterMs: refusal.retryAfterMs }, refusal.replyTo);
    const closes = (ErrorCode[code] as { closes?: { code: keyof typeof CloseCode; on?: ClientSignalType } }).closes;
    if (closes && (closes.on === undefined || closes.on === refusal.refused)) {
      // The close reason is the code's name unless the caller has one (a reason is at most 123 bytes); the error before it carries the detail.
      ctx.close(CloseCode[closes.code].code, refusal.closeReason ?? closes.code.toLowerCase().replace(/_/g, ' '));
    }
    return undefined;
  }
}
