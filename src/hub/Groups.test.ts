// GroupRegistry.busiest: the ranking the server API's `groups` asks each instance for (most local sessions, ties by name).
import { describe, expect, it } from 'vitest';
import { GroupRegistry } from './Groups';
import { Session } from './Session';

const session = () => new Session('u', 'client', [], {}, 0, null, { bufferMessages: 10, bufferBytes: 1000 });

/** A registry where group `name` holds `count` sessions, for each entry. */
function registry(loads: Record<string, number>): GroupRegistry {
  const groups = new GroupRegistry();
  for (const [group, count] of Object.entries(loads)) for (let i = 0; i < count; i++) groups.join(session(), group);
  return groups;
}

describe('GroupRegistry.busiest', () => {
  it('ranks groups by local sessions, equal counts by name, at most limit of them', () => {
    const groups = registry({ d: 1, b: 3, a: 3, c: 5, e: 2 });
    expect(groups.busiest(10)).toEqual([
      { group: 'c', sessions: 5 },
      { group: 'a', sessions: 3 },
      { group: 'b', sessions: 3 },
      { group: 'e', sessions: 2 },
      { group: 'd', sessions: 1 },
    ]);
    expect(groups.busiest(2).map((l) => l.group)).toEqual(['c', 'a']);
    expect(groups.busiest(1).map((l) => l.group)).toEqual(['c']);
  });

  it('keeps only names with the prefix, and follows leaves', () => {
    const groups = registry({ 'room-1': 2, 'room-2': 1, lobby: 4 });
    expect(groups.busiest(5, 'room-')).toEqual([
      { group: 'room-1', sessions: 2 },
      { group: 'room-2', sessions: 1 },
    ]);
    const leaving = session();
    groups.join(leaving, 'room-2');
    groups.join(leaving, 'room-3');
    expect(groups.busiest(5, 'room-').map((l) => [l.group, l.sessions])).toEqual([['room-1', 2], ['room-2', 2], ['room-3', 1]]);
    groups.leave(leaving, 'room-3');
    expect(groups.busiest(5, 'room-3')).toEqual([]);
  });

  it('agrees with a full sort on many groups inserted in any order', () => {
    const loads: Record<string, number> = {};
    for (let i = 0; i < 200; i++) loads[`g${(i * 7919) % 200}`] = (i * 31) % 17 + 1;
    const ranked = Object.entries(loads)
      .map(([group, sessions]) => ({ group, sessions }))
      .sort((x, y) => y.sessions - x.sessions || (x.group < y.group ? -1 : 1));
    expect(registry(loads).busiest(25)).toEqual(ranked.slice(0, 25));
  });
});
