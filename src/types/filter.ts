// A publish filter: which sessions of a backend data_update's audience receive it. The server API's publish and
// broadcast, the emitter and `yarn emit` take it, and every instance reads it from Redis with this same schema.
import { z } from 'zod';
import { limits } from '../config/limits';
import { roleSchema, userIdSchema, type Role, type UserId } from './domain';
import { distinctList } from './lists';

export const filterSchema = z
  .strictObject({
    roles: distinctList(roleSchema, roleSchema.options.length)
      .optional()
      .meta({ description: "Only sessions whose role is listed: the role of the session's current token (a refresh may change it)." }),
    users: distinctList(userIdSchema, limits.filterUsersMax)
      .optional()
      .meta({ description: `Only the sessions of these users (1 to ${limits.filterUsersMax}).` }),
    exceptUsers: distinctList(userIdSchema, limits.filterUsersMax)
      .optional()
      .meta({ description: `Not the sessions of these users (1 to ${limits.filterUsersMax}).` }),
  })
  .refine((filter) => filter.roles !== undefined || filter.users !== undefined || filter.exceptUsers !== undefined, 'a filter names at least one of roles, users and exceptUsers')
  // zod cannot say "not empty" of an object in JSON Schema by itself.
  .meta({ minProperties: 1, description: 'A session receives the message only if it passes every rule given.' });

export type Filter = z.output<typeof filterSchema>;

/** What a filter looks at in a session. */
export interface Recipient {
  readonly userId: UserId;
  readonly role: Role;
}

/** The filter as a test of one recipient, built once per delivery: at most three Set lookups per session. */
export function compileFilter({ roles, users, exceptUsers }: Filter): (recipient: Recipient) => boolean {
  const allowedRoles = roles && new Set<Role>(roles);
  const only = users && new Set<UserId>(users);
  const except = exceptUsers && new Set<UserId>(exceptUsers);
  return (recipient) =>
    (allowedRoles === undefined || allowedRoles.has(recipient.role)) && (only === undefined || only.has(recipient.userId)) && (except === undefined || !except.has(recipient.userId));
}
