import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ReplayBuffer } from './ReplayBuffer';

/** The obvious implementation the ring must agree with: an array trimmed from the front. */
function model(maxMessages: number, maxBytes: number) {
  let kept: { seq: number; body: Buffer }[] = [];
  let next = 1;
  return {
    push(body: Buffer) {
      kept.push({ seq: next++, body });
      while (kept.length > maxMessages || kept.reduce((n, e) => n + e.body.length, 0) > maxBytes) kept = kept.slice(1);
    },
    after: (lastSeq: number) => kept.filter((e) => e.seq > lastSeq),
  };
}

describe('ReplayBuffer', () => {
  it('keeps the newest bodies within both limits, in order, with consecutive seqs', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 1, max: 200 }), fc.array(fc.integer({ min: 0, max: 60 }), { maxLength: 300 }), fc.integer({ min: -2, max: 320 }), (maxMessages, maxBytes, sizes, lastSeq) => {
        const ring = new ReplayBuffer(maxMessages, maxBytes);
        const expected = model(maxMessages, maxBytes);
        sizes.forEach((size, i) => {
          const body = Buffer.alloc(size, i % 256);
          ring.push(body);
          expected.push(body);
        });
        expect(ring.after(lastSeq)).toEqual(expected.after(lastSeq));
        expect(ring.size).toBe(expected.after(0).length);
      }),
    );
  });

  it('numbers from the seq given to reset', () => {
    const ring = new ReplayBuffer(3, 1000);
    ring.push(Buffer.from('a'));
    ring.reset(41);
    expect(ring.size).toBe(0);
    expect(ring.oldestSeq).toBe(41);
    for (const body of ['b', 'c', 'd', 'e']) ring.push(Buffer.from(body));
    expect(ring.after(0).map((e) => [e.seq, String(e.body)])).toEqual([
      [42, 'c'],
      [43, 'd'],
      [44, 'e'],
    ]);
  });

  it('stops allocating once full: the slots are reused', () => {
    const ring = new ReplayBuffer(4, 1000);
    for (let i = 0; i < 4; i++) ring.push(Buffer.from(String(i)));
    const slots = (ring as unknown as { slots: unknown[] }).slots;
    for (let i = 4; i < 100; i++) ring.push(Buffer.from(String(i)));
    expect((ring as unknown as { slots: unknown[] }).slots).toBe(slots);
    expect(slots).toHaveLength(4);
    expect(ring.after(0).map((e) => String(e.body))).toEqual(['96', '97', '98', '99']);
  });
});
