// The pub/sub channels of envelopes and their message format (with an optional publish filter), shared by the gateway
// and the emitter; the check of what arrives on them. (Every other Redis key belongs to the module that owns it.)
import { z } from 'zod';
import { limits } from '../config/limits';
import { serializeEnvelope } from '../types/envelope';
import { filterSchema, type Filter } from '../types/filter';
import { RELAYED_TYPES, relayedData, type PresenceBatch, type Relayed } from '../types/signals';
import { nestsDeeperThan } from '../utils/json';

export type ChannelKind = 'group' | 'user';

/** The pub/sub channel of a group's or a user's envelopes (the emitter publishes on the same). */
export function channelName(kind: ChannelKind, name: string): string {
  return `rt:${kind}:${name}`;
}

/**
 * A message is `<origin instance id>\n<body>`. On a control channel the body is the control message; on an envelope
 * channel it is the serialized server envelope, forwarded as-is and never re-encoded, with a filtered data_update's
 * filter (JSON) before it: `<origin>\n<filter>\n<frame>`. Neither JSON holds a raw newline, so a body with none is
 * unfiltered, as an emitter that knows no filters writes it.
 */
export function encodeMessage(origin: string, body: string, filter?: Filter): string {
  return filter === undefined ? `${origin}\n${body}` : `${origin}\n${JSON.stringify(filter)}\n${body}`;
}

/**
 * A mark on an envelope channel (Broker.markChannel): `<origin>\n#<mark>`. A body that starts with `#` is neither an
 * envelope nor a filter (both JSON objects), so nothing else reads as one.
 */
export function encodeMark(origin: string, mark: string): string {
  return `${origin}\n#${mark}`;
}

/** The mark in a decoded body, or null when the body is not a mark. */
export function markOf(body: string): string | null {
  return body.startsWith('#') ? body.slice(1) : null;
}

export function decodeMessage(message: string): { origin: string; body: string } | null {
  const cut = message.indexOf('\n');
  if (cut <= 0) return null;
  return { origin: message.slice(0, cut), body: message.slice(cut + 1) };
}

/** A batch of presence changes as it travels: framed like an envelope, so it passes the same checks. */
export function presenceBatch(batch: PresenceBatch): Relayed {
  return { type: 'presence_batch', frame: serializeEnvelope('presence_batch', batch), batch };
}

const relayedEnvelopeSchema = z.strictObject({ type: z.enum(RELAYED_TYPES), data: z.unknown(), ts: z.number().int().min(0) });

/** An envelope that arrived on a channel, checked, with the filter it came with. */
export interface Arrived {
  envelope: Relayed;
  filter?: Filter;
}

/**
 * Checks the body of a message that arrived on a channel (see `encodeMessage`): its envelope (`decodeFrame`) and, if it
 * has one, its filter, which must pass the filter schema and may come only with a data_update. Null for anything else:
 * the caller drops it, and never delivers a message whose filter it cannot read to everyone.
 */
export function decodeRelayed(kind: ChannelKind, name: string, body: string): Arrived | null {
  const cut = body.indexOf('\n');
  if (cut < 0) {
    const envelope = decodeFrame(kind, name, body);
    return envelope && { envelope };
  }
  const filter = decodeFilter(body.slice(0, cut));
  if (filter === null) return null;
  const envelope = decodeFrame(kind, name, body.slice(cut + 1));
  // Only data_updates are filtered: presence batches and signals reach every member.
  return envelope?.type === 'data_update' ? { envelope, filter } : null;
}

function decodeFilter(text: string): Filter | null {
  try {
    const filter = filterSchema.safeParse(JSON.parse(text));
    return filter.success ? filter.data : null;
  } catch {
    // Not JSON.
    return null;
  }
}

/**
 * Checks a frame: a relayed envelope for its channel (a group channel carries its own group's envelopes; a user channel
 * only backend data_updates with `group: null`), byte for byte as a gateway or the emitter serializes it (no
 * whitespace, `type`, `data`, `ts` in that order, nothing else). Returns it with its type (and a presence batch read),
 * or null. Nothing a gateway did not produce reaches a client.
 */
function decodeFrame(kind: ChannelKind, name: string, frame: string): Relayed | null {
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
