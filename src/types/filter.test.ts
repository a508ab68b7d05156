import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { limits } from '../config/limits';
import type { Role } from './domain';
import { compileFilter, filterSchema, type Filter, type Recipient } from './filter';

const ROLES: Role[] = ['client', 'service', 'admin'];
const USERS = ['alice', 'bob', 'carol', 'dave'];

/** The rule as the documentation states it, on arrays. */
const passes = (filter: Filter, { userId, role }: Recipient) =>
  (filter.roles === undefined || filter.roles.includes(role)) && (filter.users === undefined || filter.users.includes(userId)) && (filter.exceptUsers === undefined || !filter.exceptUsers.includes(userId));

/** The first issue's path and message, or 'ok'. */
const check = (value: unknown) => {
  const parsed = filterSchema.safeParse(value);
  return parsed.success ? 'ok' : [parsed.error.issues[0]!.path.join('.'), parsed.error.issues[0]!.message];
};

describe('filterSchema', () => {
  it('takes any non-empty combination of roles, users and exceptUsers, as given', () => {
    const filter = { roles: ['admin', 'service'], users: ['alice'], exceptUsers: ['bob', 'carol'] };
    expect(filterSchema.parse(filter)).toEqual(filter);
    for (const one of [{ roles: ['client'] }, { users: ['alice'] }, { exceptUsers: ['alice'] }]) expect(filterSchema.parse(one)).toEqual(one);
    expect(check({ users: Array.from({ length: limits.filterUsersMax }, (_, i) => `u${i}`) })).toBe('ok');
  });

  it('refuses an empty filter, an empty or oversized list, an unknown role, an entry twice, a bad user id, an unknown key', () => {
    expect(check({})).toEqual(['', 'a filter names at least one of roles, users and exceptUsers']);
    expect(check({ roles: [] })[0]).toBe('roles');
    expect(check({ users: Array.from({ length: limits.filterUsersMax + 1 }, (_, i) => `u${i}`) })[0]).toBe('users');
    expect(check({ roles: ['client', 'root'] })[0]).toBe('roles.1');
    expect(check({ roles: ['admin', 'admin'] })).toEqual(['roles.1', '"admin" is listed twice']);
    expect(check({ exceptUsers: ['alice', 'bob', 'alice'] })).toEqual(['exceptUsers.2', '"alice" is listed twice']);
    expect(check({ users: [''] })[0]).toBe('users.0');
    expect(check({ users: ['u'.repeat(257)] })[0]).toBe('users.0');
    expect(check({ users: 'alice' })[0]).toBe('users');
    expect(check({ users: ['alice'], onlyUsers: ['bob'] })).toEqual(['', 'Unrecognized key: "onlyUsers"']);
    for (const value of [null, [], 'alice']) expect(check(value)[0]).toBe('');
  });
});

describe('compileFilter', () => {
  it('accepts a recipient exactly when its role is listed (if roles), its user listed (if users) and not excepted (if exceptUsers)', () => {
    const list = <T>(items: T[]) => fc.option(fc.uniqueArray(fc.constantFrom(...items), { minLength: 1 }), { nil: undefined });
    const filters = fc
      .record({ roles: list(ROLES), users: list(USERS), exceptUsers: list(USERS) }, { requiredKeys: [] })
      .filter((f) => f.roles !== undefined || f.users !== undefined || f.exceptUsers !== undefined);
    const recipients = fc.record({ userId: fc.constantFrom(...USERS), role: fc.constantFrom(...ROLES) });
    fc.assert(
      fc.property(filters, fc.array(recipients, { maxLength: 10 }), (filter, sessions) => {
        const accepts = compileFilter(filterSchema.parse(filter));
        for (const session of sessions) expect(accepts(session)).toBe(passes(filter, session));
      }),
    );
  });

  it('reads the role when asked, so a session whose role a refresh changed is judged by its new one', () => {
    const accepts = compileFilter({ roles: ['admin'] });
    const session = { userId: 'alice', role: 'client' as Role };
    expect(accepts(session)).toBe(false);
    session.role = 'admin';
    expect(accepts(session)).toBe(true);
  });
});
