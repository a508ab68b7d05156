// Backend publishing without a WebSocket: other Node services import this to push `data_update`s to a group or a
// user through the gateway cluster's Redis. Recipients see `from: { userId: <serviceName>, connectionId: null }`.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { channelName, encodeMessage, type ChannelKind } from '../broker/wire';
import { groupNameSchema, userIdSchema } from '../types/domain';
import { backendDataUpdate } from '../types/envelope';

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

export interface Emitter {
  toGroup(group: string): EmitTarget;
  toUser(userId: string): EmitTarget;
  close(): Promise<void>;
}

export function createEmitter(options: EmitterOptions): Emitter {
  const serviceName = options.serviceName ?? 'backend';
  const origin = `emitter:${serviceName}:${randomBytes(4).toString('hex')}`;
  const redis = new Redis(options.redisUrl, { maxRetriesPerRequest: 3, connectionName: `gateway-strategy:${origin}` });
  redis.on('error', () => undefined);

  const target = (kind: ChannelKind, name: string, group: string | null): EmitTarget => ({
    async publish(payload) {
      if (payload === undefined || JSON.stringify(payload) === undefined) throw new TypeError('payload must be a JSON value');
      const frame = backendDataUpdate(group, serviceName, payload);
      return redis.publish(channelName(kind, name), encodeMessage(origin, frame));
    },
  });

  return {
    toGroup(group) {
      if (!groupNameSchema.safeParse(group).success) throw new TypeError(`invalid group name "${group}"`);
      return target('group', group, group);
    },
    toUser(userId) {
      if (!userIdSchema.safeParse(userId).success) throw new TypeError('userId must be 1 to 256 characters');
      return target('user', userId, null);
    },
    async close() {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
