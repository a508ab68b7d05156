import { describe, expect, it } from 'vitest';
import { SessionTokens } from './sessionToken';

const secret = new TextEncoder().encode('a-secret-of-at-least-32-bytes-long!!');

describe('SessionTokens', () => {
  it('verifies its own tokens until they expire', () => {
    const tokens = new SessionTokens(secret, 1000);
    const t = tokens.issue('s_abc', 10_000);
    expect(tokens.verify(t, 10_999)).toBe('s_abc');
    expect(tokens.verify(t, 11_000)).toBeNull();
  });

  it('refuses tampered, foreign and malformed tokens', () => {
    const tokens = new SessionTokens(secret, 1000);
    const t = tokens.issue('s_abc', 0);
    expect(tokens.verify(t.replace('s_abc', 's_abd'), 1)).toBeNull();
    expect(tokens.verify(t.replace(/\.\d+\./, '.99999999.'), 1)).toBeNull();
    expect(tokens.verify(new SessionTokens(new TextEncoder().encode('another-secret-of-32-bytes-or-more!!'), 1000).issue('s_abc', 0), 1)).toBeNull();
    for (const bad of ['', '.', 'x.y', 's_abc.1.', '..sig']) expect(tokens.verify(bad, 1)).toBeNull();
  });
});
