import { describe, expect, it } from 'vitest';
import { nestsDeeperThan, parseFrame } from './json';

describe('nestsDeeperThan', () => {
  it('counts object and array levels', () => {
    expect(nestsDeeperThan(1, 0)).toBe(false);
    expect(nestsDeeperThan({}, 0)).toBe(true);
    expect(nestsDeeperThan({ a: [1] }, 2)).toBe(false);
    expect(nestsDeeperThan({ a: [{}] }, 2)).toBe(true);
  });
});

describe('parseFrame', () => {
  it('reports BAD_JSON, binary and too-deep frames with their codes', () => {
    expect(parseFrame(Buffer.from('{'), false, 64)).toMatchObject({ ok: false, code: 'BAD_JSON' });
    expect(parseFrame(Buffer.from('{}'), true, 64)).toMatchObject({ ok: false, code: 'INVALID_ENVELOPE' });
    expect(parseFrame(Buffer.from('[[[1]]]'), false, 2)).toMatchObject({ ok: false, code: 'INVALID_ENVELOPE' });
    expect(parseFrame(Buffer.from('[[[1]]]'), false, 3)).toEqual({ ok: true, value: [[[1]]] });
  });
});
