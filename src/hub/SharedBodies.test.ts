import { afterEach, describe, expect, it, vi } from 'vitest';
import { SharedBodies } from './SharedBodies';

describe('SharedBodies', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('gives the same buffer for the same text, exactly sized, and a new one for other text', () => {
    const bodies = new SharedBodies(1024, 1000);
    const a = bodies.get('{"type":"data_update","data":1');
    expect(bodies.get('{"type":"data_update","data":1')).toBe(a);
    expect(a.buffer.byteLength).toBe(a.length);
    expect(String(a)).toBe('{"type":"data_update","data":1');
    expect(bodies.get('{"type":"data_update","data":2')).not.toBe(a);
    expect(bodies.size).toBe(2);
  });

  it('starts over when the next body would pass the byte bound', () => {
    const bodies = new SharedBodies(10, 1000);
    const first = bodies.get('aaaaaa');
    bodies.get('bbbbbb');
    expect(bodies.size).toBe(1);
    expect(bodies.get('aaaaaa')).not.toBe(first);
  });

  it('forgets everything once no body arrived for the idle time', () => {
    vi.useFakeTimers();
    const bodies = new SharedBodies(1024, 1000);
    bodies.get('x');
    vi.advanceTimersByTime(600);
    bodies.get('y');
    vi.advanceTimersByTime(600);
    expect(bodies.size).toBe(2);
    vi.advanceTimersByTime(400);
    expect(bodies.size).toBe(0);
  });
});
