// Protocol v1 framing: the client envelope schema and the server envelope serializer.
import { z } from 'zod';

export const PROTOCOL_VERSION = 1;
export const MAX_ID_LENGTH = 64;
export const MAX_TYPE_LENGTH = 64;

/** A JSON object (not null, not an array). `data` is passed on as parsed, never copied. */
export const jsonObjectSchema = z.custom<Record<string, unknown>>(
  (v) => typeof v === 'object' && v !== null && !Array.isArray(v),
  { message: 'must be a JSON object' },
);

export const clientEnvelopeSchema = z.object({
  type: z.string().min(1).max(MAX_TYPE_LENGTH),
  id: z.string().min(1).max(MAX_ID_LENGTH).optional(),
  data: jsonObjectSchema.optional(),
});
export type ClientEnvelope = z.infer<typeof clientEnvelopeSchema>;

/** Serializes a server envelope once; the string is what goes on the wire to every recipient. */
export function serializeEnvelope(type: string, data: unknown, replyTo?: string): string {
  return JSON.stringify({ type, data, replyTo, ts: Date.now() });
}

/** The `data_update` a backend sends (the server API, the emitter): `from` names the service, with no connection; `group` null for a user. */
export function backendDataUpdate(group: string | null, from: string, payload: unknown): string {
  return serializeEnvelope('data_update', { group, from: { userId: from, connectionId: null }, payload });
}
