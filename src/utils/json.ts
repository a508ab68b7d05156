// Decoding of incoming frames into JSON values with structured errors (never throws).
import type { RawData } from 'ws';

export type ParseResult = { ok: true; value: unknown } | { ok: false; code: 'BAD_JSON' | 'INVALID_ENVELOPE'; message: string };

export function rawToString(raw: RawData): string {
  if (Buffer.isBuffer(raw)) return raw.toString('utf8');
  if (Array.isArray(raw)) return Buffer.concat(raw).toString('utf8');
  return Buffer.from(raw).toString('utf8');
}

/** True when objects/arrays in `value` nest deeper than `max` levels (a scalar is level 0). */
export function nestsDeeperThan(value: unknown, max: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (max === 0) return true;
  for (const child of Array.isArray(value) ? value : Object.values(value)) {
    if (nestsDeeperThan(child, max - 1)) return true;
  }
  return false;
}

/** Binary frames are refused; text frames must hold one JSON value nested at most `maxDepth` levels. */
export function parseFrame(raw: RawData, isBinary: boolean, maxDepth: number): ParseResult {
  if (isBinary) return { ok: false, code: 'INVALID_ENVELOPE', message: 'binary frames are not accepted; send JSON text' };
  let value: unknown;
  try {
    value = JSON.parse(rawToString(raw));
  } catch {
    return { ok: false, code: 'BAD_JSON', message: 'frame is not valid JSON' };
  }
  if (nestsDeeperThan(value, maxDepth)) {
    return { ok: false, code: 'INVALID_ENVELOPE', message: `frame nests deeper than ${maxDepth} levels` };
  }
  return { ok: true, value };
}
