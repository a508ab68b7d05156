// What each server API method does, on the paths the gateway already has: publishes go through Membership (local
// sessions at once, other instances through the broker, serialized once as the emitter does), presence reads through
// the PresenceStore, disconnect and unsubscribe through Revocations (the session directory, then each holder), user and
// info and groups through Inquiries. `call` validates a method's parameters first; it never throws.
import type { z } from 'zod';
import type { ChannelKind } from '../broker/Broker';
import type { Inquiries } from '../hub/Inquiries';
import type { Membership } from '../hub/Membership';
import type { Revocations } from '../hub/Revocations';
import type { PresenceStore } from '../presence/PresenceStore';
import { backendDataUpdate } from '../types/envelope';
import type { Filter } from '../types/filter';
import type { Logger } from '../utils/logger';
import { apiMethods, type ApiError, type ApiMethodName, type ApiParams, type ApiResult } from './schemas';

export type ApiReply = { result: unknown } | { error: ApiError };

export interface ApiMethodsDeps {
  membership: Pick<Membership, 'publish'>;
  presence: Pick<PresenceStore, 'members' | 'stats'>;
  revocations: Pick<Revocations, 'disconnect' | 'unsubscribe'>;
  inquiries: Pick<Inquiries, 'user' | 'info' | 'groups'>;
  logger: Logger;
}

type Handlers = { [M in ApiMethodName]: (params: ApiParams<M>) => Promise<ApiResult<M>> };

export class ApiMethods {
  private readonly handlers: Handlers;

  constructor(private readonly deps: ApiMethodsDeps) {
    this.handlers = {
      publish: async ({ group, user, payload, from, filter }) => {
        if (group !== undefined) this.publish('group', group, group, payload, from, filter);
        else this.publish('user', user!, null, payload, from, filter);
        return {};
      },
      broadcast: async ({ groups, payload, from, filter }) => {
        for (const group of groups) this.publish('group', group, group, payload, from, filter);
        return {};
      },
      presence: async ({ group, after, limit }) => {
        const { members, count, next } = await this.deps.presence.members(group, after, limit);
        return { group, members, count, next };
      },
      presence_stats: async ({ group }) => ({ group, ...(await this.deps.presence.stats(group)) }),
      disconnect: async ({ user, session, reason, reconnect }) => ({ sessions: await this.deps.revocations.disconnect(user, session, reconnect ? 'SESSION_ENDED' : 'REVOKED', reason) }),
      unsubscribe: async ({ user, group }) => ({ sessions: await this.deps.revocations.unsubscribe(user, group) }),
      user: async ({ user }) => ({ user, sessions: await this.deps.inquiries.user(user) }),
      info: () => this.deps.inquiries.info(),
      groups: async ({ limit, prefix }) => ({ groups: await this.deps.inquiries.groups(limit, prefix) }),
      // One after the other: commands publishing to the same audience arrive in the order they are listed.
      batch: async ({ commands }) => {
        const replies: ApiReply[] = [];
        for (const { method, params } of commands) replies.push(await this.call(method, params));
        return { replies } as ApiResult<'batch'>;
      },
    };
  }

  /** Runs `method` with `params` as received (unchecked JSON): its result, or the error that stopped it. */
  async call(method: ApiMethodName, params: unknown): Promise<ApiReply> {
    const parsed = (apiMethods[method].params as z.ZodType).safeParse(params);
    if (!parsed.success) return { error: invalidRequest(parsed.error) };
    try {
      // The handler of `method` takes what `method`'s schema produced; TypeScript cannot pair the two through a variable.
      return { result: await (this.handlers[method] as (params: unknown) => Promise<unknown>)(parsed.data) };
    } catch (err) {
      this.deps.logger.error({ method, err: err instanceof Error ? err.message : String(err) }, 'server API method failed');
      return { error: { code: 'INTERNAL', message: 'the method failed' } };
    }
  }

  /** A backend data_update: `from` with no connection, `group` null when it goes to a user; only to whom `filter` accepts. */
  private publish(kind: ChannelKind, name: string, group: string | null, payload: unknown, from: string, filter: Filter | undefined): void {
    const frame = backendDataUpdate(group, from, payload);
    this.deps.membership.publish(kind, name, { type: 'data_update', frame }, null, filter);
  }
}

/** The first problem zod found, as INVALID_REQUEST with the field's path (none when the body as a whole is wrong). */
function invalidRequest(error: z.ZodError): ApiError {
  const issue = error.issues[0]!;
  const path = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]!] : issue.path;
  const field = path.map(String).join('.');
  return field === '' ? { code: 'INVALID_REQUEST', message: issue.message } : { code: 'INVALID_REQUEST', message: issue.message, field };
}
