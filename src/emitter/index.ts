// Backend publishing without a WebSocket: other Node services import this to push `data_update`s to a group or a
// user through the gateway cluster's Redis, optionally filtered. Recipients see `from: { userId: <serviceName>,
// connectionId: null }`.
import { randomBytes } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { channelName, encodeMessage, type ChannelKind } from '../broker/wire';
import { groupNameSchema, userIdSchema } from '../types/domain';
import { backendDataUpdate } from '../types/envelope';
import { filterSchema, type Filter } from '../types/filter';

export type { Filter };

export interface EmitterOptions {
  /** The same Redis the gateways use (GW_REDIS_URL); or, for a Redis Cluster, `clusterNodes`. */
  redisUrl?: string;
  /**
   * The seed nodes of the gateways' Redis Cluster (GW_REDIS_CLUSTER_NODES): `host:port,…` or a list. Messages then go
   * out with SPUBLISH, to the shard that owns the channel only.
   */
  clusterNodes?: string | { host: string; port: number }[];
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
  const connectionName = `gateway-strategy:${origin}`;
  if ((options.redisUrl === undefined) === (options.clusterNodes === undefined)) throw new TypeError('give either redisUrl or clusterNodes');
  const redis =
    options.clusterNodes === undefined
      ? new Redis(options.redisUrl!, { maxRetriesPerRequest: 3, connectionName })
      : new Cluster(seedNodes(options.clusterNodes), { redisOptions: { maxRetriesPerRequest: 3, connectionName } });
  redis.on('error', () => undefined);
  const send = redis instanceof Cluster ? async (channel: string, message: string) => Number(await redis.spublish(channel, message)) : (channel: string, message: string) => redis.publish(channel, message);

  const target = (kind: ChannelKind, name: string, group: string | null, filter: Filter | undefined): EmitTarget => {
    const checked = filter === undefined ? undefined : checkFilter(filter);
    return {
      async publish(payload) {
        if (payload === undefined || JSON.stringify(payload) === undefined) throw new TypeError('payload must be a JSON value');
        const frame = backendDataUpdate(group, serviceName, payload);
        return send(channelName(kind, name), encodeMessage(origin, frame, checked));
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

function seedNodes(nodes: string | { host: string; port: number }[]): { host: string; port: number }[] {
  if (typeof nodes !== 'string') return nodes;
  return nodes.split(',').map((node) => {
    const cut = node.trim().lastIndexOf(':');
    const port = Number(node.trim().slice(cut + 1));
    if (cut <= 0 || !Number.isInteger(port)) throw new TypeError(`clusterNodes: "${node}" is not host:port`);
    return { host: node.trim().slice(0, cut).replace(/^\[|\]$/g, ''), port };
  });
}
