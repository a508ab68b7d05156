// PresenceBatcher: a group's transitions gathered for one period, each user's steps merged into where they ended,
// changes undone within the batch marked, the batch's count and version from its latest transition.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { PresenceChange } from '../presence/PresenceStore';
import type { PresenceBatch } from '../types/signals';
import { PresenceBatcher } from './PresenceBatcher';

const up = (version: number, count: number, since = version * 10, meta: Record<string, unknown> = {}): PresenceChange => ({ status: 'UP', meta, since, availability: 'online', version, count });
const down = (version: number, count: number, since = 0, meta: Record<string, unknown> = {}): PresenceChange => ({ status: 'DOWN', meta, since, availability: 'online', version, count });

/** A batcher whose batches are collected; `interval` ms (0: the end of the turn). */
function batcher(interval = 50): { batcher: PresenceBatcher; batches: PresenceBatch[] } {
  const batches: PresenceBatch[] = [];
  const made = new PresenceBatcher(interval, (batch) => batches.push(batch));
  running.push(made);
  return { batcher: made, batches };
}

const running: PresenceBatcher[] = [];

afterEach(() => {
  for (const b of running.splice(0)) b.stop();
  vi.useRealTimers();
});

describe('PresenceBatcher', () => {
  it('hands each group’s changes on as one batch once the period is over, with the count and version of its latest change', () => {
    vi.useFakeTimers();
    const { batcher: b, batches } = batcher(50);
    b.add('g', 'alice', up(1, 1, 100, { tab: 1 }));
    vi.advanceTimersByTime(20);
    b.add('g', 'bob', up(2, 2, 120));
    b.add('h', 'carol', up(7, 3, 130));
    b.add('g', 'dave', down(3, 1, 90));
    vi.advanceTimersByTime(29);
    expect(batches).toEqual([]);
    // The period starts with the first change: 50 ms after alice, not after dave.
    vi.advanceTimersByTime(1);
    expect(batches).toEqual([
      {
        group: 'g',
        changes: [
          { userId: 'alice', status: 'UP', meta: { tab: 1 }, since: 100, availability: 'online', version: 1, undoneFrom: null },
          { userId: 'bob', status: 'UP', meta: {}, since: 120, availability: 'online', version: 2, undoneFrom: null },
          { userId: 'dave', status: 'DOWN', meta: {}, since: 90, availability: 'online', version: 3, undoneFrom: null },
        ],
        count: 1,
        version: 3,
      },
      { group: 'h', changes: [{ userId: 'carol', status: 'UP', meta: {}, since: 130, availability: 'online', version: 7, undoneFrom: null }], count: 3, version: 7 },
    ]);
    // The next change starts a new period.
    b.add('g', 'erin', up(4, 2));
    vi.advanceTimersByTime(49);
    expect(batches).toHaveLength(2);
    vi.advanceTimersByTime(1);
    expect(batches[2]).toMatchObject({ group: 'g', changes: [{ userId: 'erin', version: 4 }], count: 2, version: 4 });
  });

  it('marks UP then DOWN as undone from the UP: the user ends DOWN', () => {
    const { batcher: b, batches } = batcher();
    b.add('g', 'alice', up(5, 3, 100, { tab: 1 }));
    b.add('g', 'alice', down(6, 2, 100, { tab: 1 }));
    b.flush();
    expect(batches).toEqual([{ group: 'g', changes: [{ userId: 'alice', status: 'DOWN', meta: { tab: 1 }, since: 100, availability: 'online', version: 6, undoneFrom: 5 }], count: 2, version: 6 }]);
  });

  it('marks DOWN then UP (a reconnect) showing as before as undone from the DOWN: the user ends UP with the new since', () => {
    const { batcher: b, batches } = batcher();
    b.add('g', 'alice', down(5, 2, 100, { tab: 1 }));
    b.add('g', 'alice', up(6, 3, 200, { tab: 1 }));
    b.flush();
    expect(batches).toEqual([{ group: 'g', changes: [{ userId: 'alice', status: 'UP', meta: { tab: 1 }, since: 200, availability: 'online', version: 6, undoneFrom: 5 }], count: 3, version: 6 }]);
  });

  it('makes DOWN then UP showing otherwise an UPDATE for everyone: members who never saw the DOWN learn the new look', () => {
    const { batcher: b, batches } = batcher();
    b.add('g', 'alice', down(5, 2, 100, { tab: 1 }));
    b.add('g', 'alice', { ...up(6, 3, 200, { tab: 1 }), availability: 'idle' });
    b.add('g', 'bob', down(7, 2, 100));
    b.add('g', 'bob', up(8, 3, 300, { tab: 2 }));
    b.flush();
    expect(batches[0]!.changes).toEqual([
      { userId: 'alice', status: 'UPDATE', meta: { tab: 1 }, since: 200, availability: 'idle', version: 6, undoneFrom: null },
      { userId: 'bob', status: 'UPDATE', meta: { tab: 2 }, since: 300, availability: 'online', version: 8, undoneFrom: null },
    ]);
  });

  it('merges UPDATEs into one to the last look, after UP into one UP, and before DOWN into the DOWN', () => {
    const { batcher: b, batches } = batcher();
    const update = (version: number, availability: 'online' | 'idle' | 'dnd', meta: Record<string, unknown> = {}): PresenceChange => ({ status: 'UPDATE', meta, since: 100, availability, version, count: 3 });
    b.add('g', 'alice', update(2, 'idle'));
    b.add('g', 'alice', update(3, 'dnd', { busy: true }));
    b.add('g', 'bob', up(4, 3, 100));
    b.add('g', 'bob', update(5, 'idle'));
    b.add('g', 'carol', update(6, 'idle'));
    b.add('g', 'carol', { ...down(7, 2, 100), availability: 'idle' });
    b.flush();
    expect(batches[0]!.changes).toEqual([
      { userId: 'alice', status: 'UPDATE', meta: { busy: true }, since: 100, availability: 'dnd', version: 3, undoneFrom: null },
      { userId: 'bob', status: 'UP', meta: {}, since: 100, availability: 'idle', version: 5, undoneFrom: null },
      { userId: 'carol', status: 'DOWN', meta: {}, since: 100, availability: 'idle', version: 7, undoneFrom: null },
    ]);
  });

  it('merges UP, DOWN, UP into one net UP (the last step’s meta and since), not undone', () => {
    const { batcher: b, batches } = batcher();
    b.add('g', 'alice', up(1, 1, 100, { tab: 1 }));
    b.add('g', 'bob', up(2, 2, 110));
    b.add('g', 'alice', down(3, 1, 100, { tab: 1 }));
    b.add('g', 'alice', up(4, 2, 300, { tab: 2 }));
    b.flush();
    expect(batches).toEqual([
      {
        group: 'g',
        changes: [
          { userId: 'alice', status: 'UP', meta: { tab: 2 }, since: 300, availability: 'online', version: 4, undoneFrom: null },
          { userId: 'bob', status: 'UP', meta: {}, since: 110, availability: 'online', version: 2, undoneFrom: null },
        ],
        count: 2,
        version: 4,
      },
    ]);
  });

  it('orders a user’s steps by version when they arrive out of order, and takes count and version from the latest', () => {
    const { batcher: b, batches } = batcher();
    // Answers of concurrent round trips, handed in scrambled: alice UP v2, DOWN v4, UP v5, DOWN v6 (she ends DOWN,
    // where she was before the batch); carol's v7 is the latest; bob's v3 comes last.
    b.add('g', 'alice', up(5, 3, 300));
    b.add('g', 'alice', down(6, 2, 300));
    b.add('g', 'carol', up(7, 3, 500));
    b.add('g', 'alice', down(4, 2, 100));
    b.add('g', 'alice', up(2, 3, 100));
    b.add('g', 'bob', down(3, 2, 50));
    b.flush();
    expect(batches).toEqual([
      {
        group: 'g',
        changes: [
          { userId: 'alice', status: 'DOWN', meta: {}, since: 300, availability: 'online', version: 6, undoneFrom: 2 },
          { userId: 'carol', status: 'UP', meta: {}, since: 500, availability: 'online', version: 7, undoneFrom: null },
          { userId: 'bob', status: 'DOWN', meta: {}, since: 50, availability: 'online', version: 3, undoneFrom: null },
        ],
        count: 3,
        version: 7,
      },
    ]);
  });

  it('keeps a user’s end state when the UP after a DOWN arrives first, and ignores a step repeated', () => {
    const { batcher: b, batches } = batcher();
    b.add('g', 'alice', up(8, 3, 200, { tab: 1 }));
    b.add('g', 'alice', down(7, 2, 100, { tab: 1 }));
    b.add('g', 'alice', down(7, 2, 100, { tab: 1 }));
    b.flush();
    expect(batches).toEqual([{ group: 'g', changes: [{ userId: 'alice', status: 'UP', meta: { tab: 1 }, since: 200, availability: 'online', version: 8, undoneFrom: 7 }], count: 3, version: 8 }]);
  });

  // Numbering goes on through an empty group (PresenceStore): alice alone in the group reconnects within one batch,
  // DOWN at v4 (count 0), then UP at v5 (count 1), and carol joins (v6, count 2). Alice ends UP, undone; two are in.
  it('keeps a reconnect as UP (undone) when the group emptied in between', () => {
    const { batcher: b, batches } = batcher();
    b.add('g', 'alice', down(4, 0, 100));
    b.add('g', 'alice', up(5, 1, 200));
    b.add('g', 'carol', up(6, 2, 210));
    b.flush();
    expect(batches).toHaveLength(1);
    const [batch] = batches;
    expect(batch!.changes.find((c) => c.userId === 'alice')).toMatchObject({ status: 'UP', since: 200, availability: 'online', version: 5, undoneFrom: 4 });
    expect(batch!.count).toBe(2);
  });

  it('with interval 0, hands the batch on at the end of the current turn, with everything added in that turn', async () => {
    const { batcher: b, batches } = batcher(0);
    b.add('g', 'alice', up(1, 1));
    b.add('g', 'bob', up(2, 2));
    await Promise.resolve();
    expect(batches).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(batches).toHaveLength(1);
    expect(batches[0]!.changes.map((c) => c.userId)).toEqual(['alice', 'bob']);
    // Added in a later turn: a batch of its own.
    b.add('g', 'carol', up(3, 3));
    await new Promise((resolve) => setImmediate(resolve));
    expect(batches.map((batch) => batch.changes.map((c) => c.userId))).toEqual([['alice', 'bob'], ['carol']]);
  });

  it('flush() hands every pending group on at once and cancels the timer; flushing nothing hands nothing on', () => {
    vi.useFakeTimers();
    const { batcher: b, batches } = batcher(1_000);
    b.flush();
    expect(batches).toEqual([]);
    b.add('g', 'alice', up(1, 1));
    b.add('h', 'bob', up(1, 1));
    b.flush();
    expect(batches.map((batch) => batch.group)).toEqual(['g', 'h']);
    vi.advanceTimersByTime(5_000);
    expect(batches).toHaveLength(2);
    // A change after the flush starts a fresh period.
    b.add('g', 'carol', up(2, 2));
    vi.advanceTimersByTime(999);
    expect(batches).toHaveLength(2);
    vi.advanceTimersByTime(1);
    expect(batches.map((batch) => batch.changes.map((c) => c.userId))).toEqual([['alice'], ['bob'], ['carol']]);
  });

  it('stop() drops what is pending and hands nothing on later', () => {
    vi.useFakeTimers();
    const { batcher: b, batches } = batcher(50);
    b.add('g', 'alice', up(1, 1));
    b.stop();
    vi.advanceTimersByTime(1_000);
    b.flush();
    expect(batches).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });
});
