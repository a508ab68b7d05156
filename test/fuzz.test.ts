// Property-based: random bad envelopes thrown at a live gateway each get exactly one error; the gateway stays up and keeps working.
import fc from 'fast-check';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { GROUP_NAME_PATTERN } from '../src/types/domain';
import { startTestGateway } from './helpers/gateway';

const KNOWN = ['identify', 'heartbeat', 'subscribe', 'unsubscribe', 'data_update'];
const TARGETED = ['subscribe', 'unsubscribe', 'data_update'];

const isJson = (s: string) => {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
};
const notObject = fc.jsonValue().filter((v) => typeof v !== 'object' || v === null || Array.isArray(v));
const badGroup = fc.oneof(fc.integer(), fc.constant(null), fc.array(fc.string()), fc.string().filter((s) => !GROUP_NAME_PATTERN.test(s)));

/** Frames that are wrong in some way a client can get wrong; each must earn exactly one `error`. */
const badFrame: fc.Arbitrary<{ frame: string | Uint8Array; binary: boolean }> = fc.oneof(
  fc.string().filter((s) => !isJson(s)).map((frame) => ({ frame, binary: false })),
  notObject.map((v) => ({ frame: JSON.stringify(v), binary: false })),
  fc.uint8Array({ maxLength: 64 }).map((frame) => ({ frame, binary: true })),
  fc.record({ type: fc.oneof(notObject.filter((v) => typeof v !== 'string'), fc.constant(''), fc.string({ minLength: 65, maxLength: 80 })), data: fc.object() }).map((e) => ({ frame: JSON.stringify(e), binary: false })),
  fc.string({ minLength: 1, maxLength: 64 }).filter((t) => !KNOWN.includes(t)).map((type) => ({ frame: JSON.stringify({ type, data: {} }), binary: false })),
  fc.record({ type: fc.constantFrom(...KNOWN), id: fc.oneof(fc.integer(), fc.constant(''), fc.string({ minLength: 65, maxLength: 70 }), fc.boolean()) }).map((e) => ({ frame: JSON.stringify(e), binary: false })),
  fc.record({ type: fc.constantFrom(...KNOWN), data: notObject }).map((e) => ({ frame: JSON.stringify(e), binary: false })),
  fc.record({ type: fc.constantFrom(...TARGETED), id: fc.string({ minLength: 1, maxLength: 64 }), data: fc.record({ group: badGroup, payload: fc.jsonValue() }) }).map((e) => ({ frame: JSON.stringify(e), binary: false })),
  fc.record({ type: fc.constant('identify'), data: fc.object() }).map((e) => ({ frame: JSON.stringify(e), binary: false })),
);

describe('random bad envelopes', () => {
  it('each get exactly one error, nothing closes, valid traffic works afterwards', async () => {
    const gw = await startTestGateway({ GW_RATE_MSG_PER_10S: '1000000' });
    const fuzzed = await gw.join('fuzzer', ['g']);
    const peer = await gw.join('peer', ['g']);
    await fuzzed.next('presence_update');
    let run = 0;
    await fc.assert(
      fc.asyncProperty(badFrame, async ({ frame, binary }) => {
        fuzzed.sendRaw(Buffer.isBuffer(frame) || frame instanceof Uint8Array ? Buffer.from(frame) : frame, binary);
        // A valid envelope after it: its reply proves the bad frame was fully handled.
        const sentinel = await fuzzed.request('unsubscribe', { group: `sentinel-${run++}` });
        expect(sentinel.type).toBe('unsubscribed');
        const replies = fuzzed.drain();
        expect(replies.map((r) => r.type)).toEqual(['error']);
        expect(replies[0]!.data!.code).toMatch(/^(BAD_JSON|INVALID_ENVELOPE|UNKNOWN_TYPE|ALREADY_IDENTIFIED)$/);
      }),
      { numRuns: 1000 },
    );
    expect(fuzzed.socket.readyState).toBe(fuzzed.socket.OPEN);
    expect(peer.pending('data_update')).toHaveLength(0);
    fuzzed.send('data_update', { group: 'g', payload: 'still here' });
    expect((await peer.next('data_update')).data!.payload).toBe('still here');
    await request(gw.httpUrl).get('/health').expect(200);
  });
});
