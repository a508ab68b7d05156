// Backend publishing without a WebSocket: other Node services import this to push `data_update`s to a group or a
// user through the gateway cluster's Redis, optionally filtered. Recipients see `from: { userId: <serviceName>,
// connectionId: null }`.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { channelName, encodeMessage, type ChannelKind } from '../broker/wire';
import { groupNameSchema, userIdSchema } from '../types/domain';
import { backendDataUpdate } from '../types/envelope';
import { filterSchema, type Filter } from '../types/filter';

export type { Filter };

export interface EmitterOptions {
  /** The same Redis the gateways use (GW_REDIS_URL). */
  redisUrl: string;
  /** Shown to recipients as `from.userId`. Default "backend". */
  serviceName?: string;
}

export interface EmitTarget {
  /** Publishes `payload` (any JSON value); resolves with how many gateway instances had recipients listening. */
  publish(payload: unknown): Promise<number>;
}

/**
 * `toGroup` and `toUser` take an optional filter, as the server API's `publish` does (docs/server-api.md, "Filters"):
 * a session gets the message only if its role is in `roles`, its user in `users` and not in `exceptUsers`, for each list
 * given. An invalid filter (an empty one, an unknown role, a user listed twice…) throws a TypeError.
 */
export interface Emitter {
  toGroup(group: string, filter?: Filter): EmitTarget;
  toUser(userId: string, filter?: Filter): EmitTarget;
  close(): Promise<void>;
}

export function createEmitter(options: EmitterOptions): Emitter {
  const serviceName = options.serviceName ?? 'backend';
  const origin = `emitter:${serviceName}:${randomBytes(4).toString('hex')}`;
  const redis = new Redis(options.redisUrl, { maxRetriesPerRequest: 3, connectionName: `gateway-strategy:${origin}` });
  redis.on('error', () => undefined);

  const target = (kind: ChannelKind, name: string, group: string | null, filter: Filter | undefined): EmitTarget => {
    const checked = filter === undefined ? undefined : checkFilter(filter);
    return {
      async publish(payload) {
        if (payload === undefined || JSON.stringify(payload) === undefined) throw new TypeError('payload must be a JSON value');
        const frame = backendDataUpdate(group, serviceName, payload);
        return redis.publish(channelName(kind, name), encodeMessage(origin, frame, checked));
      },
    };
  };

  return {
    toGroup(group, filter) {
      if (!groupNameSchema.safeParse(group).success) throw new TypeError(`invalid group name "${group}"`);
      return target('group', group, group, filter);
    },
    toUser(userId, filter) {
      if (!userIdSchema.safeParse(userId).success) throw new TypeError('userId must be 1 to 256 characters');
      return target('user', userId, null, filter);
    },
    async close() {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

/** The filter as the gateways will read it, or a TypeError naming its first problem (`invalid filter.users.2: "bob" is listed twice`). */
function checkFilter(filter: unknown): Filter {
  const parsed = filterSchema.safeParse(filter);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  throw new TypeError(`invalid ${['filter', ...issue.path].join('.')}: ${issue.message}`);
}
