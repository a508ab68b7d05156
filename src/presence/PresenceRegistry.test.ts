import { describe, expect, it } from 'vitest';
import { PresenceRegistry } from './PresenceRegistry';

describe('PresenceRegistry', () => {
  it('reports UP only for a user’s first connection and DOWN only for the last', () => {
    const p = new PresenceRegistry();
    expect(p.join('g', 'alice', 'c1', { tab: 1 }, 100)).toBe(true);
    expect(p.join('g', 'alice', 'c2', { tab: 2 }, 200)).toBe(false);
    expect(p.join('g', 'alice', 'c2', { tab: 2 }, 300)).toBe(false);
    expect(p.leave('g', 'alice', 'c1')).toBe(false);
    expect(p.leave('g', 'alice', 'c1')).toBe(false);
    expect(p.leave('g', 'alice', 'c2')).toBe(true);
    expect(p.groupCount).toBe(0);
  });

  it('lists one member per user with the earliest remaining connection’s meta and since', () => {
    const p = new PresenceRegistry();
    p.join('g', 'alice', 'c1', { tab: 1 }, 100);
    p.join('g', 'bob', 'c3', {}, 150);
    p.join('g', 'alice', 'c2', { tab: 2 }, 200);
    expect(p.members('g')).toEqual([
      { userId: 'alice', meta: { tab: 1 }, since: 100 },
      { userId: 'bob', meta: {}, since: 150 },
    ]);
    p.leave('g', 'alice', 'c1');
    expect(p.members('g')[0]).toEqual({ userId: 'alice', meta: { tab: 2 }, since: 200 });
    expect(p.members('unknown')).toEqual([]);
  });

  it('keeps client-chosen names like __proto__ as plain keys', () => {
    const p = new PresenceRegistry();
    expect(p.join('__proto__', '__proto__', 'c1', {}, 1)).toBe(true);
    expect(p.members('__proto__')).toEqual([{ userId: '__proto__', meta: {}, since: 1 }]);
    expect(({} as Record<string, unknown>).c1).toBeUndefined();
  });
});
