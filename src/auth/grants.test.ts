import { describe, expect, it } from 'vitest';
import { isGranted } from './grants';

describe('isGranted', () => {
  it('grants exact names and prefixes ending in *', () => {
    expect(isGranted(['group-1'], 'group-1')).toBe(true);
    expect(isGranted(['group-1'], 'group-10')).toBe(false);
    expect(isGranted(['team-*'], 'team-red')).toBe(true);
    expect(isGranted(['team-*'], 'team-')).toBe(true);
    expect(isGranted(['team-*'], 'teams')).toBe(false);
    expect(isGranted(['*'], 'anything')).toBe(true);
    expect(isGranted([], 'g')).toBe(false);
  });
});
