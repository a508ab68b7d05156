import { describe, expect, it } from 'vitest';
import type { ConnectionContext } from './ConnectionContext';
import { Session } from './Session';
import { SessionStore } from './SessionStore';

const conn = {} as ConnectionContext;
const make = (userId: string) => new Session(userId, 'client', [], {}, 0, conn, { bufferMessages: 10, bufferBytes: 1000 });

describe('SessionStore', () => {
  it('keeps orphans until the TTL, in the order they were orphaned, and forgets adopted ones', () => {
    const store = new SessionStore();
    const [a, b, c] = ['u0', 'u1', 'u2'].map(make);
    for (const s of [a!, b!, c!]) store.add(s);
    store.orphan(a!, 0);
    store.orphan(b!, 100);
    store.orphan(c!, 200);
    expect(a!.conn).toBeNull();
    store.adopt(b!, conn);
    expect(b!.orphanedAt).toBeNull();
    expect(store.expire(99, 100)).toEqual([]);
    expect(store.expire(300, 100).map((s) => s.userId)).toEqual(['u0', 'u2']);
    expect(store.get(b!.id)).toBe(b);
    expect(store.size).toBe(1);
  });
});

describe('Session replay buffer', () => {
  it('numbers envelopes, appends seq last, and replays what follows lastSeq', () => {
    const sent: string[] = [];
    const s = new Session('u', 'client', [], {}, 0, { sendSequenced: (b: Buffer, seq: number) => sent.push(`${String(b)},"seq":${seq}}`) } as unknown as ConnectionContext, { bufferMessages: 10, bufferBytes: 10_000 });
    s.deliver(Buffer.from('{"type":"data_update","data":1'), 'here', 'rt:group:g');
    s.deliver(Buffer.from('{"type":"data_update","data":2'), 'here', 'rt:group:g');
    expect(sent).toEqual(['{"type":"data_update","data":1,"seq":1}', '{"type":"data_update","data":2,"seq":2}']);
    expect(JSON.parse(sent[1]!)).toEqual({ type: 'data_update', data: 2, seq: 2 });
    expect(s.replayAfter(1).map((e) => [String(e.body), e.seq])).toEqual([['{"type":"data_update","data":2', 2]]);
    expect(s.covers(0)).toBe(true);
    expect(s.covers(2)).toBe(true);
    expect(s.covers(3)).toBe(false);
    expect(s.covers(-1)).toBe(false);
  });

  it('drops the oldest envelopes past the message and byte bounds, and then no longer covers them', () => {
    const s = new Session('u', 'client', [], {}, 0, null as unknown as ConnectionContext, { bufferMessages: 3, bufferBytes: 25 });
    s.conn = null;
    for (let i = 1; i <= 5; i++) s.deliver(Buffer.from(`{"n":${i}`), 'here', 'rt:group:g');
    expect(s.replayAfter(0).map((f) => f.seq)).toEqual([3, 4, 5]);
    expect(s.covers(2)).toBe(true);
    expect(s.covers(1)).toBe(false);
    s.deliver(Buffer.from(`{"n":"${'x'.repeat(15)}"`), 'here', 'rt:group:g');
    expect(s.replayAfter(0).map((f) => f.seq)).toEqual([6]);
    expect(s.covers(5)).toBe(true);
    expect(s.covers(4)).toBe(false);
  });
});
