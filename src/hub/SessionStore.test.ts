import { describe, expect, it } from 'vitest';
import { SessionStore } from './SessionStore';

describe('SessionStore', () => {
  it('creates one session per identify and drops orphans only after the TTL', () => {
    const store = new SessionStore();
    const a = store.create('alice', 'c1', 0);
    const b = store.create('alice', 'c2', 0);
    expect(a.sessionId).not.toBe(b.sessionId);
    store.orphan(a.sessionId, ['g'], 1000);
    expect(store.get(a.sessionId)).toMatchObject({ connectionId: null, groups: ['g'], orphanedAt: 1000 });
    expect(store.expire(1999, 1000)).toEqual([]);
    expect(store.expire(2000, 1000).map((s) => s.sessionId)).toEqual([a.sessionId]);
    expect(store.get(a.sessionId)).toBeUndefined();
    expect(store.get(b.sessionId)?.connectionId).toBe('c2');
    expect(store.size).toBe(1);
  });

  it('expires orphans in the order they were orphaned', () => {
    const store = new SessionStore();
    const ids = [0, 1, 2].map((i) => store.create(`u${i}`, `c${i}`, 0).sessionId);
    ids.forEach((id, i) => store.orphan(id, [], i * 100));
    expect(store.expire(250, 100).map((s) => s.userId)).toEqual(['u0', 'u1']);
    expect(store.size).toBe(1);
  });
});
