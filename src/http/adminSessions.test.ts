// AdminSessions: the admin console's sign-ins, on a clock the tests move: lifetime, sign-out, the cap on how many are held.
import { describe, expect, it } from 'vitest';
import { AdminSessions } from './adminSessions';

/** A store on a clock the test moves. */
function store(lifetimeMs = 1000, max = 3) {
  const clock = { now: 0 };
  return { clock, sessions: new AdminSessions(lifetimeMs, max, () => clock.now) };
}

describe('AdminSessions', () => {
  it('issues distinct random 32-byte tokens, each valid until its lifetime ends', () => {
    const { clock, sessions } = store();
    const first = sessions.create();
    clock.now = 400;
    const second = sessions.create();
    expect(Buffer.from(first, 'base64url')).toHaveLength(32);
    expect(second).not.toBe(first);
    clock.now = 999;
    expect([sessions.valid(first), sessions.valid(second)]).toEqual([true, true]);
    clock.now = 1000;
    expect([sessions.valid(first), sessions.valid(second)]).toEqual([false, true]);
    clock.now = 1400;
    expect(sessions.valid(second)).toBe(false);
  });

  it('refuses a missing, unknown or altered token, and one signed out', () => {
    const { sessions } = store();
    const token = sessions.create();
    expect(sessions.valid(undefined)).toBe(false);
    expect(sessions.valid('')).toBe(false);
    expect(sessions.valid(`${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`)).toBe(false);
    sessions.end(token);
    expect(sessions.valid(token)).toBe(false);
    sessions.end(undefined);
  });

  it('holds at most max sign-ins: a new one ends the oldest; expired ones are dropped first', () => {
    const { clock, sessions } = store(1000, 3);
    const tokens = [sessions.create(), sessions.create(), sessions.create()];
    const fourth = sessions.create();
    expect([...tokens, fourth].map((t) => sessions.valid(t))).toEqual([false, true, true, true]);
    expect(sessions.size).toBe(3);
    clock.now = 1000;
    sessions.create();
    expect(sessions.size).toBe(1);
  });
});
