import { describe, expect, it } from 'vitest';
import { PresenceRegistry } from './PresenceRegistry';

describe('PresenceRegistry', () => {
  it('reports UP only for a user’s first connection and DOWN only for the last', () => {
    const p = new PresenceRegistry();
    expect(p.join('g', 'alice', 'c1', { tab: 1 }, 100)).toEqual({ status: 'UP', meta: { tab: 1 }, since: 100, version: 1, count: 1 });
    expect(p.join('g', 'alice', 'c2', { tab: 2 }, 200)).toBeNull();
    expect(p.join('g', 'alice', 'c2', { tab: 2 }, 300)).toBeNull();
    expect(p.leave('g', 'alice', 'c1')).toBeNull();
    expect(p.leave('g', 'alice', 'c1')).toBeNull();
    expect(p.leave('g', 'alice', 'c2')).toEqual({ status: 'DOWN', meta: { tab: 2 }, since: 200, version: 2, count: 0 });
    expect(p.groupCount).toBe(0);
  });

  it('lists one member per user with the earliest remaining connection’s meta and since', () => {
    const p = new PresenceRegistry();
    p.join('g', 'alice', 'c1', { tab: 1 }, 100);
    p.join('g', 'bob', 'c3', {}, 150);
    p.join('g', 'alice', 'c2', { tab: 2 }, 200);
    expect(p.page('g', undefined, 10)).toEqual({
      members: [
        { userId: 'alice', meta: { tab: 1 }, since: 100 },
        { userId: 'bob', meta: {}, since: 150 },
      ],
      count: 2,
      next: null,
      version: 2,
    });
    p.leave('g', 'alice', 'c1');
    // alice is listed by her earliest remaining connection, and moves after bob in the list.
    expect(p.page('g', undefined, 10).members).toEqual([
      { userId: 'bob', meta: {}, since: 150 },
      { userId: 'alice', meta: { tab: 2 }, since: 200 },
    ]);
    expect(p.page('unknown', undefined, 10)).toEqual({ members: [], count: 0, next: null, version: 0 });
  });

  it('pages by since, then by user id in byte order, with a cursor that survives changes around it', () => {
    const p = new PresenceRegistry();
    for (const [userId, since] of [['dave', 5], ['bob', 3], ['carol', 3], ['ann', 1], ['éva', 3], ['zed', 3]] as const) p.join('g', userId, `s-${userId}`, {}, since);
    const first = p.page('g', undefined, 3);
    expect(first.members.map((m) => m.userId)).toEqual(['ann', 'bob', 'carol']);
    expect(first.next).toBe('3:carol');
    // carol leaves and a later user joins: the cursor is a position, so the next page goes on after it.
    p.leave('g', 'carol', 's-carol');
    p.join('g', 'fay', 's-fay', {}, 9);
    const second = p.page('g', { since: 3, userId: 'carol' }, 3);
    expect(second.members.map((m) => m.userId)).toEqual(['zed', 'éva', 'dave']);
    expect(second.next).toBe('5:dave');
    expect(p.page('g', { since: 5, userId: 'dave' }, 3)).toMatchObject({ members: [{ userId: 'fay' }], next: null, count: 6 });
  });

  it('keeps client-chosen names like __proto__ as plain keys', () => {
    const p = new PresenceRegistry();
    expect(p.join('__proto__', '__proto__', 'c1', {}, 1)).not.toBeNull();
    expect(p.page('__proto__', undefined, 10).members).toEqual([{ userId: '__proto__', meta: {}, since: 1 }]);
    expect(({} as Record<string, unknown>).c1).toBeUndefined();
  });
});
