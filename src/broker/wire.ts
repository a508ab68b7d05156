// Redis key and channel layout, and the pub/sub message format, shared by the gateway and the emitter.
import type { GroupName, UserId } from '../types/domain';

export type ChannelKind = 'group' | 'user';

export const keys = {
  channel: (kind: ChannelKind, name: string) => `rt:${kind}:${name}`,
  /** Liveness key of one instance (PX GW_INSTANCE_TTL_MS). */
  instance: (id: string) => `rt:instance:${id}`,
  /** Every presence entry an instance holds, so a survivor can clean up after it. */
  instanceEntries: (id: string) => `rt:instance:${id}:entries`,
  /** Set of instance ids that registered. */
  instances: 'rt:instances',
  /** Lock taken by the survivor that reaps a dead instance. */
  reap: (id: string) => `rt:reap:${id}`,
  /** Hash: "instance|connection" → member JSON, for one group. */
  presence: (group: GroupName) => `rt:presence:${group}`,
  /** Set of one user's "instance|connection" entries in one group. */
  presenceUser: (group: GroupName, userId: UserId) => `rt:presence:${group}|${userId}`,
  /** Set of one user's "instance|connection" entries anywhere in the cluster. */
  userConnections: (userId: UserId) => `rt:conns:${userId}`,
  /** Signal dedup key; group and kind cannot contain "|", so the user id comes last. */
  signal: (group: GroupName, kind: string, userId: UserId) => `rt:sig:${group}|${kind}|${userId}`,
  /** Instance-to-instance control messages (session handoff). */
  control: 'rt:control',
  /** Set when survivors first saw an instance dead: its sessions count as orphaned from then. */
  dead: (id: string) => `rt:dead:${id}`,
  /** Online/offline events for backends. */
  events: 'rt:events',
  /** Prefix of the cluster-wide rate-limiter keys. */
  rateLimit: 'rt:rl',
} as const;

/** A message is `<origin instance id>\n<serialized server envelope>`: the envelope is forwarded as-is, never re-encoded. */
export function encodeMessage(origin: string, frame: string): string {
  return `${origin}\n${frame}`;
}

export function decodeMessage(message: string): { origin: string; frame: string } | null {
  const cut = message.indexOf('\n');
  if (cut <= 0) return null;
  return { origin: message.slice(0, cut), frame: message.slice(cut + 1) };
}

/** Parses "rt:group:<name>" / "rt:user:<name>". */
export function parseChannel(channel: string): { kind: ChannelKind; name: string } | null {
  if (channel.startsWith('rt:group:')) return { kind: 'group', name: channel.slice(9) };
  if (channel.startsWith('rt:user:')) return { kind: 'user', name: channel.slice(8) };
  return null;
}
