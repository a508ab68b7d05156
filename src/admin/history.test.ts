// History: the overview's readings turned into series per instance; rates from the difference of two readings of the
// same instance on its own clock, none across a restart, none without a previous reading, and a window that slides.
import { describe, expect, it } from 'vitest';
import { History, type Info } from './history';

type Counts = { at: number; messagesIn: number; messagesOut: number; fanouts: number; fanoutSeconds: number };

const instance = (id: string, connections: number, traffic?: Counts) => ({ id, version: '0.1.0', uptimeSec: 1, connections, sessions: connections, state: 'up' as const, ...(traffic ? { traffic } : {}) });
const info = (...instances: Info['instances']): Info => ({ instances });

describe('History', () => {
  it('computes rates per instance from its own clock, and the mean fan-out time in ms', () => {
    const history = new History(60_000);
    history.add(info(instance('a', 1, { at: 10_000, messagesIn: 100, messagesOut: 200, fanouts: 10, fanoutSeconds: 0.01 })), 1_000);
    expect(history.latest('a')).toEqual({ connections: 1, sessions: 1, inPerSec: null, outPerSec: null, fanoutMs: null });
    // Polled 2 s later by the page, but 4 s later by the instance's own clock: the instance's clock decides.
    history.add(info(instance('a', 3, { at: 14_000, messagesIn: 120, messagesOut: 260, fanouts: 14, fanoutSeconds: 0.014 })), 3_000);
    expect(history.latest('a')).toEqual({ connections: 3, sessions: 3, inPerSec: 5, outPerSec: 15, fanoutMs: expect.closeTo(1, 6) });
    expect(history.series('connections', ['a'])).toEqual([[1, 3], [1, 3]]);
  });

  it('gives no rate across a restart (totals went down), nor fan-out time without fan-outs, nor for an instance without totals', () => {
    const history = new History(60_000);
    history.add(info(instance('a', 1, { at: 1_000, messagesIn: 50, messagesOut: 50, fanouts: 5, fanoutSeconds: 1 }), instance('old', 2)), 0);
    history.add(info(instance('a', 1, { at: 3_000, messagesIn: 4, messagesOut: 4, fanouts: 1, fanoutSeconds: 0.1 }), instance('old', 2)), 2_000);
    expect(history.latest('a')).toMatchObject({ inPerSec: null, outPerSec: null, fanoutMs: null });
    expect(history.latest('old')).toMatchObject({ connections: 2, inPerSec: null });
    history.add(info(instance('a', 1, { at: 5_000, messagesIn: 8, messagesOut: 4, fanouts: 1, fanoutSeconds: 0.1 })), 4_000);
    expect(history.latest('a')).toMatchObject({ inPerSec: 2, outPerSec: 0, fanoutMs: null });
  });

  it('lists every instance seen in the window, with null where one had no reading; forgets what left the window', () => {
    const history = new History(5_000);
    history.add(info(instance('b', 1), instance('a', 2)), 0);
    history.add(info(instance('a', 3), { id: 'b', state: 'unknown' }), 2_000);
    expect(history.instances()).toEqual(['a', 'b']);
    expect(history.series('connections', ['a', 'b'])).toEqual([[0, 2], [2, 3], [1, null]]);
    history.add(info(instance('a', 4)), 6_000);
    expect(history.instances()).toEqual(['a']);
    expect(history.series('connections', ['a'])).toEqual([[2, 6], [3, 4]]);
  });
});
