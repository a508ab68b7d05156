// Capture: which deliveries a session arriving from another instance keeps, per origin, against the three events of
// the cut; and, through Session, how the kept ones are numbered after the owner's state.
import { describe, expect, it } from 'vitest';
import { OrderedCapture as Capture } from './Capture';
import type { ConnectionContext } from './ConnectionContext';
import { Session, type SessionState } from './Session';

const OWNER = 'owner-instance';
const SELF = 'this-instance';
const body = (text: string) => Buffer.from(text);
const texts = (bodies: Buffer[]) => bodies.map(String);

type Event = 'committed' | 'marked' | 'answered';
const EVENTS: Event[] = ['committed', 'marked', 'answered'];

/** Each origin class, an origin of it, and the one event after which its deliveries are kept. */
const ORIGINS: { name: string; origin: string; cut: Event }[] = [
  { name: 'this instance', origin: SELF, cut: 'committed' },
  { name: 'the owner', origin: OWNER, cut: 'answered' },
  { name: 'a third instance', origin: 'third-instance', cut: 'marked' },
  { name: 'a backend', origin: 'billing-backend', cut: 'marked' },
];

describe('Capture', () => {
  for (const { name, origin, cut } of ORIGINS) {
    it(`from ${name}: drops what comes before ${cut}() whatever else happened, keeps what comes after`, () => {
      const capture = new Capture(OWNER, SELF);
      capture.offer(body('before any event'), origin);
      for (const event of EVENTS.filter((e) => e !== cut)) {
        capture[event]();
        capture.offer(body(`after ${event}`), origin);
      }
      expect(capture.take()).toEqual([]);
      capture[cut]();
      capture.offer(body('after the cut'), origin);
      expect(texts(capture.take())).toEqual(['after the cut']);
    });

    it(`from ${name}: ${cut}() alone is enough`, () => {
      const capture = new Capture(OWNER, SELF);
      capture[cut]();
      capture.offer(body('x'), origin);
      expect(texts(capture.take())).toEqual(['x']);
      expect(capture.complete).toBe(false);
    });
  }

  it('places each origin against its own event, in one interleaved stream', () => {
    const capture = new Capture(OWNER, SELF);
    capture.offer(body('self 1'), SELF);
    capture.offer(body('owner 1'), OWNER);
    capture.offer(body('third 1'), 'third');
    capture.committed();
    capture.offer(body('self 2'), SELF);
    capture.offer(body('owner 2'), OWNER);
    capture.offer(body('third 2'), 'third');
    capture.marked();
    capture.offer(body('third 3'), 'third');
    capture.offer(body('owner 3'), OWNER);
    capture.answered();
    capture.offer(body('owner 4'), OWNER);
    capture.offer(body('self 3'), SELF);
    expect(texts(capture.take())).toEqual(['self 2', 'third 3', 'owner 4', 'self 3']);
  });

  it('is complete only once committed, marked and answered all happened', () => {
    const capture = new Capture(OWNER, SELF);
    expect(capture.complete).toBe(false);
    capture.committed();
    expect(capture.complete).toBe(false);
    capture.marked();
    expect(capture.complete).toBe(false);
    capture.answered();
    expect(capture.complete).toBe(true);
    for (const missing of EVENTS) {
      const partial = new Capture(OWNER, SELF);
      for (const event of EVENTS) if (event !== missing) partial[event]();
      expect(partial.complete, `without ${missing}()`).toBe(false);
    }
  });

  it('take() returns the kept bodies in arrival order, the same Buffers, and empties', () => {
    const capture = new Capture(OWNER, SELF);
    for (const event of EVENTS) capture[event]();
    const bodies = [body('a'), body('b'), body('c')];
    capture.offer(bodies[0]!, 'third');
    capture.offer(bodies[1]!, OWNER);
    capture.offer(bodies[2]!, SELF);
    const taken = capture.take();
    expect(taken).toHaveLength(3);
    taken.forEach((b, i) => expect(b).toBe(bodies[i]));
    expect(capture.take()).toEqual([]);
    capture.offer(body('d'), 'third');
    expect(texts(capture.take())).toEqual(['d']);
  });

  it('identical bodies are two messages: both kept after the cut, only the later one when the cut falls between', () => {
    const after = new Capture(OWNER, SELF);
    after.marked();
    const same = body('{"type":"data_update","data":1');
    after.offer(same, 'third');
    after.offer(same, 'third');
    after.offer(body('{"type":"data_update","data":1'), 'third');
    expect(texts(after.take())).toEqual(Array(3).fill('{"type":"data_update","data":1'));

    const between = new Capture(OWNER, SELF);
    between.offer(body('{"same":true'), OWNER);
    between.answered();
    between.offer(body('{"same":true'), OWNER);
    expect(texts(between.take())).toEqual(['{"same":true']);
  });

  it('keeps its owner', () => {
    expect(new Capture(OWNER, SELF).owner).toBe(OWNER);
  });
});

describe('Session with a Capture', () => {
  const limits = { bufferMessages: 10, bufferBytes: 10_000 };

  function arriving(): { session: Session; sent: [string, number][] } {
    const sent: [string, number][] = [];
    const conn = { sendSequenced: (b: Buffer, seq: number) => void sent.push([String(b), seq]) } as unknown as ConnectionContext;
    return { session: new Session('alice', 'client', ['g'], {}, 0, conn, limits, 's-1'), sent };
  }

  const stateOf = (seq: number, buffer: [number, string][]): SessionState => ({
    id: 's-1',
    userId: 'alice',
    role: 'client',
    presence: { mode: 'updates', watching: [], listed: [] },
    grants: ['g'],
    meta: {},
    availability: 'online',
    createdAt: 0,
    groups: ['g'],
    seq,
    buffer: buffer.map(([s, b]) => ({ seq: s, body: b })),
  });

  it('holds deliveries unnumbered, then numbers the kept ones after state.seq, nothing before the cut twice', () => {
    const { session, sent } = arriving();
    const capture = new Capture(OWNER, SELF);
    session.startCapture(capture);
    // Before the cut: the owner numbered these (they are in its state below).
    session.deliver(body('{"n":4'), 'third', 'rt:group:g');
    session.deliver(body('{"n":5'), OWNER, 'rt:group:g');
    capture.committed();
    session.deliver(body('{"n":"local"'), SELF, 'rt:group:g');
    session.deliver(body('{"n":6'), OWNER, 'rt:group:g'); // the owner's own, before its state: in the state
    capture.marked();
    session.deliver(body('{"n":"backend"'), 'backend', 'rt:group:g');
    capture.answered();
    session.deliver(body('{"n":"owner late"'), OWNER, 'rt:group:g');
    expect(sent).toEqual([]);
    expect(session.seq).toBe(0);

    session.restore(stateOf(6, [[4, '{"n":4'], [5, '{"n":5'], [6, '{"n":6']]));
    expect(session.seq).toBe(9);
    expect(sent).toEqual([
      ['{"n":"local"', 7],
      ['{"n":"backend"', 8],
      ['{"n":"owner late"', 9],
    ]);
    const replay = (lastSeq: number) => session.replayAfter(lastSeq).map((e) => [e.seq, String(e.body)]);
    expect(replay(3)).toEqual([
      [4, '{"n":4'],
      [5, '{"n":5'],
      [6, '{"n":6'],
      [7, '{"n":"local"'],
      [8, '{"n":"backend"'],
      [9, '{"n":"owner late"'],
    ]);
    expect(replay(5)).toEqual([
      [6, '{"n":6'],
      [7, '{"n":"local"'],
      [8, '{"n":"backend"'],
      [9, '{"n":"owner late"'],
    ]);
    expect(session.covers(3)).toBe(true);
    expect(session.covers(2)).toBe(false);

    // Capture is over: later deliveries are numbered at once, whatever their origin.
    session.deliver(body('{"n":"after"'), 'third', 'rt:group:g');
    expect(sent.at(-1)).toEqual(['{"n":"after"', 10]);
    expect(capture.take()).toEqual([]);
  });

  it('with an empty buffer in the state, numbers the kept deliveries from state.seq + 1 and covers state.seq', () => {
    const { session, sent } = arriving();
    const capture = new Capture(OWNER, SELF);
    session.startCapture(capture);
    for (const event of EVENTS) capture[event]();
    const same = body('{"same":1');
    session.deliver(same, 'third', 'rt:group:g');
    session.deliver(same, 'third', 'rt:group:g');
    session.restore(stateOf(41, []));
    expect(session.seq).toBe(43);
    expect(sent).toEqual([
      ['{"same":1', 42],
      ['{"same":1', 43],
    ]);
    expect(session.replayAfter(41).map((e) => e.seq)).toEqual([42, 43]);
    expect(session.covers(41)).toBe(true);
    expect(session.covers(40)).toBe(false);
  });

  it('restores the state alone when nothing was kept', () => {
    const { session, sent } = arriving();
    session.startCapture(new Capture(OWNER, SELF));
    session.deliver(body('{"n":2'), OWNER, 'rt:group:g'); // before the state: the owner's to number
    session.restore(stateOf(2, [[1, '{"n":1'], [2, '{"n":2']]));
    expect(session.seq).toBe(2);
    expect(sent).toEqual([]);
    expect(session.replayAfter(0).map((e) => [e.seq, String(e.body)])).toEqual([
      [1, '{"n":1'],
      [2, '{"n":2'],
    ]);
    expect(session.covers(0)).toBe(true);
  });
});
