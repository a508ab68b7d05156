// Replies: `refuse` sends the `error` envelope and then the close the error-code table gives, and nothing else.
import { beforeEach, describe, expect, it } from 'vitest';
import { Metrics } from '../metrics';
import { ErrorCode, type ErrorCodeName } from '../types/codes';
import { clientSignals, type ClientSignalType } from '../types/signals';
import type { ConnectionContext } from './ConnectionContext';
import { Replies } from './Replies';

type Written = { send: Record<string, unknown> } | { close: { code: number; reason: string } };

/** A connection that records what was written to it, in order. */
function fakeConnection(): { ctx: ConnectionContext; written: Written[] } {
  const written: Written[] = [];
  const ctx = {
    send: (envelope: string) => void written.push({ send: JSON.parse(envelope) as Record<string, unknown> }),
    close: (code: number, reason: string) => void written.push({ close: { code, reason } }),
  } as unknown as ConnectionContext;
  return { ctx, written };
}

const metricsFor = () => new Metrics({ connections: () => 0, sessions: () => 0, groups: () => 0, redis: () => undefined, dropped: () => 0, invalid: () => 0 });

/** What gateway_messages_out_total reports for `type` (a scrape also resets the pending counts). */
async function sentCount(metrics: Metrics, type: string): Promise<number> {
  const metric = metrics.registry.getSingleMetric('gateway_messages_out_total');
  const values = (await metric!.get()).values;
  return values.find((v) => v.labels.type === type)?.value ?? NaN;
}

const errorEnvelope = (data: Record<string, unknown>, replyTo?: string) => ({
  send: { type: 'error', data, ...(replyTo === undefined ? {} : { replyTo }), ts: expect.any(Number) as number },
});

describe('Replies', () => {
  let metrics: Metrics;
  let replies: Replies;
  beforeEach(() => {
    metrics = metricsFor();
    replies = new Replies(metrics);
  });

  it('send writes one serialized envelope with its replyTo and counts it by type', async () => {
    const { ctx, written } = fakeConnection();
    replies.send(ctx, 'unsubscribed', { group: 'g' }, 'req-1');
    replies.send(ctx, 'unsubscribed', { group: 'h' });
    expect(written).toEqual([
      { send: { type: 'unsubscribed', data: { group: 'g' }, replyTo: 'req-1', ts: expect.any(Number) } },
      { send: { type: 'unsubscribed', data: { group: 'h' }, ts: expect.any(Number) } },
    ]);
    expect(await sentCount(metrics, 'unsubscribed')).toBe(2);
    expect(await sentCount(metrics, 'error')).toBe(0);
  });

  it('AUTH_FAILED: the error with code, message, replyTo and retryAfterMs, then close 4003', async () => {
    const { ctx, written } = fakeConnection();
    const result = replies.refuse(ctx, 'AUTH_FAILED', 'token expired', { replyTo: 'id-7', refused: 'identify', retryAfterMs: 250 });
    expect(result).toBeUndefined();
    expect(written).toEqual([
      errorEnvelope({ code: 'AUTH_FAILED', message: 'token expired', retryAfterMs: 250 }, 'id-7'),
      { close: { code: 4003, reason: 'auth failed' } },
    ]);
    expect(await sentCount(metrics, 'error')).toBe(1);
  });

  it('AUTH_FAILED closes 4003 when it refuses an identify, and leaves a connection whose refresh it refuses open', () => {
    const identify = fakeConnection();
    replies.refuse(identify.ctx, 'AUTH_FAILED', 'bad token', { refused: 'identify' });
    expect(identify.written).toEqual([errorEnvelope({ code: 'AUTH_FAILED', message: 'bad token' }), { close: { code: 4003, reason: 'auth failed' } }]);
    const refresh = fakeConnection();
    replies.refuse(refresh.ctx, 'AUTH_FAILED', 'bad token', { refused: 'refresh' });
    expect(refresh.written).toEqual([errorEnvelope({ code: 'AUTH_FAILED', message: 'bad token' })]);
  });

  it('IDENTIFY_TIMEOUT closes 4001', () => {
    const { ctx, written } = fakeConnection();
    replies.refuse(ctx, 'IDENTIFY_TIMEOUT', 'no identify within 5000 ms');
    expect(written).toEqual([
      errorEnvelope({ code: 'IDENTIFY_TIMEOUT', message: 'no identify within 5000 ms' }),
      { close: { code: 4001, reason: 'identify timeout' } },
    ]);
  });

  it('LIMIT_EXCEEDED closes 4029 when it refuses identify, and not when it refuses subscribe or an unknown envelope', () => {
    const identify = fakeConnection();
    replies.refuse(identify.ctx, 'LIMIT_EXCEEDED', 'too many connections', { refused: 'identify', replyTo: 'i1' });
    expect(identify.written).toEqual([
      errorEnvelope({ code: 'LIMIT_EXCEEDED', message: 'too many connections' }, 'i1'),
      { close: { code: 4029, reason: 'too many connections' } },
    ]);

    const subscribe = fakeConnection();
    replies.refuse(subscribe.ctx, 'LIMIT_EXCEEDED', 'too many groups', { refused: 'subscribe', replyTo: 's1' });
    expect(subscribe.written).toEqual([errorEnvelope({ code: 'LIMIT_EXCEEDED', message: 'too many groups' }, 's1')]);

    const unknown = fakeConnection();
    replies.refuse(unknown.ctx, 'LIMIT_EXCEEDED', 'too many groups');
    expect(unknown.written).toEqual([errorEnvelope({ code: 'LIMIT_EXCEEDED', message: 'too many groups' })]);
  });

  it('FORBIDDEN never closes', () => {
    for (const refused of [undefined, ...(Object.keys(clientSignals) as ClientSignalType[])]) {
      const { ctx, written } = fakeConnection();
      replies.refuse(ctx, 'FORBIDDEN', 'not a member', { refused });
      expect(written, `refusing ${refused}`).toEqual([errorEnvelope({ code: 'FORBIDDEN', message: 'not a member' })]);
    }
  });

  /**
   * Written out here, not derived from the table, so a change to the table shows up as a failing test (and a new
   * code as a type error): the close each code is followed by, and for which refused envelope types.
   */
  const EXPECTED_CLOSE: Record<ErrorCodeName, { code: number; reason: string; onlyFor?: ClientSignalType } | null> = {
    BAD_JSON: null,
    INVALID_ENVELOPE: null,
    UNKNOWN_TYPE: null,
    NOT_IDENTIFIED: null,
    ALREADY_IDENTIFIED: null,
    AUTH_FAILED: { code: 4003, reason: 'auth failed', onlyFor: 'identify' },
    TOKEN_EXPIRED: { code: 4004, reason: 'token expired' },
    REVOKED: { code: 4005, reason: 'revoked' },
    SESSION_ENDED: { code: 4006, reason: 'session ended' },
    FORBIDDEN: null,
    IDENTIFY_TIMEOUT: { code: 4001, reason: 'identify timeout' },
    RATE_LIMITED: null,
    LIMIT_EXCEEDED: { code: 4029, reason: 'too many connections', onlyFor: 'identify' },
    PAYLOAD_TOO_LARGE: null,
    INTERNAL: null,
  };

  it('the expectations cover exactly the codes in the table', () => {
    expect(Object.keys(EXPECTED_CLOSE).sort()).toEqual(Object.keys(ErrorCode).sort());
  });

  it('closes with a reason of its own when the refusal brings one (a backend ending a session)', () => {
    const { ctx, written } = fakeConnection();
    replies.refuse(ctx, 'REVOKED', 'account closed', { closeReason: 'account closed' });
    expect(written).toEqual([errorEnvelope({ code: 'REVOKED', message: 'account closed' }), { close: { code: 4005, reason: 'account closed' } }]);
  });

  describe.each(Object.keys(ErrorCode) as ErrorCodeName[])('%s', (code) => {
    const expected = EXPECTED_CLOSE[code];
    const refusedTypes: (ClientSignalType | undefined)[] = [undefined, ...(Object.keys(clientSignals) as ClientSignalType[])];

    it.each(refusedTypes.map((refused) => [refused ?? '(no type)', refused] as const))('refusing %s', (_label, refused) => {
      const { ctx, written } = fakeConnection();
      replies.refuse(ctx, code, `refused: ${code}`, { refused, replyTo: 'r', retryAfterMs: 10 });
      const closes = expected !== null && (expected.onlyFor === undefined || expected.onlyFor === refused);
      expect(written).toEqual([
        errorEnvelope({ code, message: `refused: ${code}`, retryAfterMs: 10 }, 'r'),
        ...(closes ? [{ close: { code: expected.code, reason: expected.reason } }] : []),
      ]);
    });
  });
});
