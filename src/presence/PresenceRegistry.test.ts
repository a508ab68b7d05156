import { describe, expect, it } from 'vitest';
import type { Availability, PresenceMeta } from '../types/domain';
import { PresenceRegistry } from './PresenceRegistry';

const look = (meta: PresenceMeta = {}, availability: Availability = 'online') => ({ meta, availability });

describe('PresenceRegistry', () => {
  it('reports UP only for a user’s first session and DOWN only for the last', () => {
    const p = new PresenceRegistry();
    expect(p.join('g', 'alice', 'c1', look({ tab: 1 }), 100)).toEqual({ status: 'UP', meta: { tab: 1 }, since: 100, availability: 'online', version: 1, count: 1 });
    expect(p.join('g', 'alice', 'c2', look({ tab: 2 }), 200)).toBeNull();
    expect(p.join('g', 'alice', 'c2', look({ tab: 2 }), 300)).toBeNull();
    // c1 led: c2 leads now, showing another meta.
    expect(p.leave('g', 'alice', 'c1')).toEqual({ status: 'UPDATE', meta: { tab: 2 }, since: 300, availability: 'online', version: 2, count: 1 });
    expect(p.leave('g', 'alice', 'c1')).toBeNull();
    expect(p.leave('g', 'alice', 'c2')).toEqual({ status: 'DOWN', meta: { tab: 2 }, since: 300, availability: 'online', version: 3, count: 0 });
    expect(p.groupCount).toBe(0);
  });

  it('lists one member per user as their leading session shows them: the earliest of the most available', () => {
    const p = new PresenceRegistry();
    p.join('g', 'alice', 'c1', look({ tab: 1 }), 100);
    p.join('g', 'bob', 'c3', look(), 150);
    p.join('g', 'alice', 'c2', look({ tab: 2 }), 200);
    expect(p.page('g', undefined, 10)).toEqual({
      members: [
        { userId: 'alice', meta: { tab: 1 }, since: 100, availability: 'online' },
        { userId: 'bob', meta: {}, since: 150, availability: 'online' },
      ],
      count: 2,
      next: null,
      version: 2,
    });
    p.leave('g', 'alice', 'c1');
    // alice is listed by her remaining session, and moves after bob in the list.
    expect(p.page('g', undefined, 10).members).toEqual([
      { userId: 'bob', meta: {}, since: 150, availability: 'online' },
      { userId: 'alice', meta: { tab: 2 }, since: 200, availability: 'online' },
    ]);
    expect(p.page('unknown', undefined, 10)).toEqual({ members: [], count: 0, next: null, version: 0 });
  });

  it('shows the most available session: online over idle over dnd, whichever joined first', () => {
    const p = new PresenceRegistry();
    expect(p.join('g', 'alice', 'phone', look({ on: 'phone' }, 'dnd'), 100)).toMatchObject({ status: 'UP', availability: 'dnd', meta: { on: 'phone' } });
    expect(p.join('g', 'alice', 'laptop', look({ on: 'laptop' }, 'idle'), 200)).toMatchObject({ status: 'UPDATE', availability: 'idle', meta: { on: 'laptop' }, since: 200 });
    expect(p.update('g', 'alice', 'phone', look({ on: 'phone' }, 'online'))).toMatchObject({ status: 'UPDATE', availability: 'online', meta: { on: 'phone' }, since: 100 });
    // A change of a session that does not lead shows nowhere.
    expect(p.update('g', 'alice', 'laptop', look({ on: 'laptop' }, 'dnd'))).toBeNull();
    expect(p.update('g', 'alice', 'phone', look({ on: 'phone' }, 'idle'))).toMatchObject({ status: 'UPDATE', availability: 'idle', meta: { on: 'phone' } });
    expect(p.page('g', undefined, 10).members).toEqual([{ userId: 'alice', meta: { on: 'phone' }, since: 100, availability: 'idle' }]);
    expect(p.stats('g')).toEqual({ users: 1, sessions: 2 });
  });

  it('moves the user to another session that shows the same without a change', () => {
    const p = new PresenceRegistry();
    p.join('g', 'alice', 'a', look({ device: 'web' }), 100);
    p.join('g', 'alice', 'b', look({ device: 'web' }), 200);
    expect(p.update('g', 'alice', 'a', look({ device: 'web' }, 'idle'))).toBeNull();
    expect(p.page('g', undefined, 10).members).toEqual([{ userId: 'alice', meta: { device: 'web' }, since: 200, availability: 'online' }]);
    expect(p.update('g', 'alice', 'b', look({ device: 'web' }))).toBeNull();
  });

  it('hides a user whose every session is invisible: DOWN when the last visible one goes, UP when one shows again', () => {
    const p = new PresenceRegistry();
    expect(p.join('g', 'alice', 'a', look({}, 'invisible'), 100)).toBeNull();
    expect(p.page('g', undefined, 10)).toEqual({ members: [], count: 0, next: null, version: 0 });
    expect(p.stats('g')).toEqual({ users: 0, sessions: 1 });
    expect(p.join('g', 'alice', 'b', look({ tab: 'b' }, 'idle'), 200)).toMatchObject({ status: 'UP', availability: 'idle', version: 1, count: 1 });
    expect(p.update('g', 'alice', 'b', look({ tab: 'b' }, 'invisible'))).toMatchObject({ status: 'DOWN', availability: 'idle', meta: { tab: 'b' }, version: 2, count: 0 });
    expect(p.leave('g', 'alice', 'b')).toBeNull();
    expect(p.update('g', 'alice', 'a', look({ tab: 'a' }, 'online'))).toMatchObject({ status: 'UP', availability: 'online', meta: { tab: 'a' }, since: 100, version: 3 });
    expect(p.update('g', 'alice', 'gone', look())).toBeNull();
    expect(p.leave('g', 'alice', 'a')).toMatchObject({ status: 'DOWN', version: 4, count: 0 });
    expect(p.groupCount).toBe(0);
  });

  it('pages by since, then by user id in byte order, with a cursor that survives changes around it', () => {
    const p = new PresenceRegistry();
    for (const [userId, since] of [['dave', 5], ['bob', 3], ['carol', 3], ['ann', 1], ['éva', 3], ['zed', 3]] as const) p.join('g', userId, `s-${userId}`, look(), since);
    const first = p.page('g', undefined, 3);
    expect(first.members.map((m) => m.userId)).toEqual(['ann', 'bob', 'carol']);
    expect(first.next).toBe('3:carol');
    // carol leaves and a later user joins: the cursor is a position, so the next page goes on after it.
    p.leave('g', 'carol', 's-carol');
    p.join('g', 'fay', 's-fay', look(), 9);
    const second = p.page('g', { since: 3, userId: 'carol' }, 3);
    expect(second.members.map((m) => m.userId)).toEqual(['zed', 'éva', 'dave']);
    expect(second.next).toBe('5:dave');
    expect(p.page('g', { since: 5, userId: 'dave' }, 3)).toMatchObject({ members: [{ userId: 'fay' }], next: null, count: 6 });
  });

  it('keeps client-chosen names like __proto__ as plain keys', () => {
    const p = new PresenceRegistry();
    expect(p.join('__proto__', '__proto__', 'c1', look(), 1)).not.toBeNull();
    expect(p.page('__proto__', undefined, 10).members).toEqual([{ userId: '__proto__', meta: {}, since: 1, availability: 'online' }]);
    expect(({} as Record<string, unknown>).c1).toBeUndefined();
  });
});
