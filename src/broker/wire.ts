// The pub/sub channels of envelopes and their message format, shared by the gateway and the emitter; the check of what
// arrives on them. (Every other Redis key belongs to the module that owns it.)
import { z } from 'zod';
import { limits } from '../config/limits';
import { serializeEnvelope } from '../types/envelope';
import { RELAYED_TYPES, relayedData, type PresenceBatch, type Relayed } from '../types/signals';
import { nestsDeeperThan } from '../utils/json';

export type ChannelKind = 'group' | 'user';

/** The pub/sub channel of a group's or a user's envelopes (the emitter publishes on the same). */
export function channelName(kind: ChannelKind, name: string): string {
  return `rt:${kind}:${name}`;
}

/** A message is `<origin instance id>\n<serialized server envelope>`: the envelope is forwarded as-is, never re-encoded. */
export function encodeMessage(origin: string, frame: string): string {
  return `${origin}\n${frame}`;
}

export function decodeMessage(message: string): { origin: string; frame: string } | null {
  const cut = message.indexOf('\n');
  if (cut <= 0) return null;
  return { origin: message.slice(0, cut), frame: message.slice(cut + 1) };
}

/** A batch of presence changes as it travels: framed like an envelope, so it passes the same checks. */
export function presenceBatch(batch: PresenceBatch): Relayed {
  return { type: 'presence_batch', frame: serializeEnvelope('presence_batch', batch), batch };
}

const relayedEnvelopeSchema = z.strictObject({ type: z.enum(RELAYED_TYPES), data: z.unknown(), ts: z.number().int().min(0) });

/**
 * Checks a frame that arrived on a channel: a relayed envelope for that channel (a group channel carries its own
 * group's envelopes; a user channel only backend data_updates with `group: null`), byte for byte as a gateway or the
 * emitter serializes it (no whitespace, `type`, `data`, `ts` in that order, nothing else). Returns it with its type
 * (and a presence batch read), or null: the caller drops it. Nothing a gateway did not produce reaches a client.
 */
export function decodeRelayed(kind: ChannelKind, name: string, frame: string): Relayed | null {
  try {
    const value: unknown = JSON.parse(frame);
    if (nestsDeeperThan(value, limits.maxJsonDepth)) return null;
    const envelope = relayedEnvelopeSchema.safeParse(value);
    if (!envelope.success) return null;
    const { type, ts } = envelope.data;
    const data = relayedData[type].safeParse(envelope.data.data);
    if (!data.success) return null;
    const group = data.data.group;
    if (kind === 'group' ? group !== name : type !== 'data_update' || group !== null) return null;
    if (JSON.stringify({ type, data: envelope.data.data, ts }) !== frame) return null;
    return type === 'presence_batch' ? { type, frame, batch: data.data as PresenceBatch } : { type, frame };
  } catch {
    // Not JSON.
    return null;
  }
}

/** Parses "rt:group:<name>" / "rt:user:<name>". */
export function parseChannel(channel: string): { kind: ChannelKind; name: string } | null {
  if (channel.startsWith('rt:group:')) return { kind: 'group', name: channel.slice(9) };
  if (channel.startsWith('rt:user:')) return { kind: 'user', name: channel.slice(8) };
  return null;
}
