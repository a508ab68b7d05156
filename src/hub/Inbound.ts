// Inbound: a connection's frames, from arrival to their handler. Each frame spends a rate-limit token on arrival, then
// is handled one at a time per connection (a handler that awaits holds later frames in `ctx.queue`), validated in the
// documented order, and dispatched by type to the Commands.
import type { RawData } from 'ws';
import { limits } from '../config/limits';
import type { Metrics } from '../metrics';
import { clientEnvelopeSchema, MAX_ID_LENGTH } from '../types/envelope';
import { clientSignals, isClientSignalType } from '../types/signals';
import { parseFrame } from '../utils/json';
import type { Logger } from '../utils/logger';
import type { Commands } from './Commands';
import type { ConnectionContext, QueuedFrame } from './ConnectionContext';
import type { Liveness } from './Liveness';
import type { Replies } from './Replies';
import { CloseCode } from '../types/codes';

export interface InboundOptions {
  commands: Commands;
  replies: Replies;
  liveness: Liveness;
  metrics: Metrics;
  logger: Logger;
  /** The message bucket's size: as many refusals in a row close the connection (4008). */
  messagesPer10s: number;
}

/** The `id` of a frame that failed envelope validation, when it is itself well-formed (so the error can still reply to it). */
function salvageId(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const id: unknown = (value as { id?: unknown }).id;
  return typeof id === 'string' && id.length > 0 && id.length <= MAX_ID_LENGTH ? id : undefined;
}

function describeIssue(error: { issues: { path: PropertyKey[]; message: string }[] }): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid data';
  const path = issue.path.map(String).join('.');
  return path ? `${path}: ${issue.message}` : issue.message;
}

export class Inbound {
  constructor(private readonly options: InboundOptions) {}

  /** Charges the frame to its bucket on arrival, then runs it, or queues it behind a frame still being handled. */
  receive(ctx: ConnectionContext, raw: RawData, isBinary: boolean): void {
    this.options.liveness.seen(ctx, Date.now());
    // A closing connection (a flood already cut off, say) or one whose session is being handed to another instance
    // (shutdown) takes no more envelopes.
    if (ctx.draining || !ctx.isOpen) return;
    const parsed = parseFrame(raw, isBinary, limits.maxJsonDepth);
    const checked = parsed.ok ? clientEnvelopeSchema.safeParse(parsed.value) : null;
    const envelope = checked?.success ? checked.data : null;
    this.options.metrics.received(envelope?.type ?? 'invalid');
    const replyTo = envelope ? envelope.id : parsed.ok ? salvageId(parsed.value) : undefined;
    if (!this.spend(ctx, envelope?.type === 'heartbeat', replyTo)) return;
    const queued: QueuedFrame = { parsed, envelope, envelopeError: checked && !checked.success ? describeIssue(checked.error) : null, replyTo };
    if (ctx.queue) ctx.queue.push(queued);
    else this.run(ctx, queued);
  }

  /** Handles a frame; if that takes a round trip, later frames of the connection wait their turn. */
  private run(ctx: ConnectionContext, queued: QueuedFrame): void {
    const pending = this.handle(ctx, queued);
    if (!pending) return;
    ctx.queue = [];
    void pending.then(() => this.drain(ctx));
  }

  private async drain(ctx: ConnectionContext): Promise<void> {
    while (ctx.queue && ctx.queue.length > 0) {
      const next = ctx.queue.shift()!;
      await this.handle(ctx, next);
    }
    ctx.queue = null;
  }

  /** Validation order after the rate limit: BAD_JSON, INVALID_ENVELOPE, UNKNOWN_TYPE, NOT_/ALREADY_IDENTIFIED, data, then the handler's own checks. */
  private handle(ctx: ConnectionContext, queued: QueuedFrame): Promise<void> | undefined {
    if (!ctx.isOpen || ctx.draining) return undefined;
    const { replies } = this.options;
    const { parsed, envelope, replyTo } = queued;
    if (!parsed.ok) return replies.refuse(ctx, parsed.code, parsed.message);
    if (!envelope) return replies.refuse(ctx, 'INVALID_ENVELOPE', `envelope ${queued.envelopeError ?? 'invalid'}`, { replyTo });
    const { type, id, data } = envelope;
    if (!isClientSignalType(type)) return replies.refuse(ctx, 'UNKNOWN_TYPE', `unknown type "${type}"`, { replyTo: id });
    if (type === 'identify') {
      if (ctx.session) return replies.refuse(ctx, 'ALREADY_IDENTIFIED', 'this connection is already identified', { replyTo: id });
    } else if (!ctx.session) {
      return replies.refuse(ctx, 'NOT_IDENTIFIED', 'send identify first', { replyTo: id });
    }
    const body = clientSignals[type].safeParse(data ?? {});
    if (!body.success) return replies.refuse(ctx, 'INVALID_ENVELOPE', `data.${describeIssue(body.error)}`, { replyTo: id });
    try {
      const pending = this.options.commands.dispatch(ctx, type, body.data, id);
      return pending?.catch((err: unknown) => this.internalError(ctx, err, id));
    } catch (err) {
      this.internalError(ctx, err, id);
      return undefined;
    }
  }

  private internalError(ctx: ConnectionContext, err: unknown, replyTo: string | undefined): void {
    this.options.logger.error({ connectionId: ctx.id, userId: ctx.session?.userId, ip: ctx.ip, err: err instanceof Error ? err.message : String(err) }, 'envelope handling failed');
    this.options.replies.refuse(ctx, 'INTERNAL', 'the gateway could not handle this envelope', { replyTo });
  }

  /**
   * Takes one token from the frame's bucket (heartbeats have their own). Without one the frame is refused
   * RATE_LIMITED; as many refusals in a row as the message bucket holds close the connection with 4008.
   */
  private spend(ctx: ConnectionContext, heartbeat: boolean, replyTo: string | undefined): boolean {
    const bucket = heartbeat ? ctx.buckets.heartbeats : ctx.buckets.messages;
    if (bucket.tryRemoveTokens(1)) {
      ctx.rejectedStreak = 0;
      return true;
    }
    this.options.metrics.rateLimited.inc();
    this.options.replies.refuse(ctx, 'RATE_LIMITED', 'too many envelopes; slow down', { replyTo, retryAfterMs: Math.max(1, Math.ceil(bucket.getWaitTime(1))) });
    if (++ctx.rejectedStreak >= this.options.messagesPer10s) {
      this.options.logger.warn({ connectionId: ctx.id, userId: ctx.session?.userId, ip: ctx.ip }, 'closed for flooding');
      ctx.close(CloseCode.RATE_LIMITED.code, 'rate limit exceeded');
    }
    return false;
  }
}
