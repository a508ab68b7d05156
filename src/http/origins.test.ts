import { describe, expect, it } from 'vitest';
import { createOriginPolicy } from './origins';

describe('createOriginPolicy', () => {
  it('allows exact origins, any port for host:*, and everything for *', () => {
    const allow = createOriginPolicy(['https://app.example.com', 'http://localhost:*']);
    expect(allow('https://app.example.com')).toBe(true);
    expect(allow('HTTPS://APP.EXAMPLE.COM')).toBe(true);
    expect(allow('https://app.example.com:8443')).toBe(false);
    expect(allow('https://app.example.com.evil.io')).toBe(false);
    expect(allow('http://localhost')).toBe(true);
    expect(allow('http://localhost:5173')).toBe(true);
    expect(allow('http://localhost:5173.evil.io')).toBe(false);
    expect(allow('http://localhost.evil.io')).toBe(false);
    expect(allow('https://localhost:5173')).toBe(false);
    expect(allow('null')).toBe(false);
    expect(createOriginPolicy([])('https://app.example.com')).toBe(false);
    expect(createOriginPolicy(['*'])('https://anything.io')).toBe(true);
  });
});
