// Decoding of incoming frames into JSON values with structured errors (never throws).
import type { RawData } from 'ws';

export type ParseResult = { ok: true; value: unknown } | { ok: false; code: 'BAD_JSON' | 'INVALID_ENVELOPE'; message: string };

export function rawToString(raw: RawData): string {
  if (Buffer.isBuffer(raw)) return raw.toString('utf8');
  if (Array.isArray(raw)) return Buffer.concat(raw).toString('utf8');
  return Buffer.from(raw).toString('utf8');
}

/** Binary frames are refused; text frames must hold one JSON value. */
export function parseFrame(raw: RawData, isBinary: boolean): ParseResult {
  if (isBinary) return { ok: false, code: 'INVALID_ENVELOPE', message: 'binary frames are not accepted; send JSON text' };
  try {
    return { ok: true, value: JSON.parse(rawToString(raw)) };
  } catch {
    return { ok: false, code: 'BAD_JSON', message: 'frame is not valid JSON' };
  }
}
