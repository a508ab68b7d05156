// The bearer check of the internal listener's endpoints (/metrics, the server API): a shared secret in the
// Authorization header, compared in constant time.
import { timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';

/**
 * True when the request carries `Authorization: Bearer <secret>` (the scheme in any case, as HTTP defines it); the time
 * taken does not depend on where a wrong secret differs.
 */
export function hasBearer(req: Request, secret: string): boolean {
  const header = req.get('authorization') ?? '';
  const space = header.indexOf(' ');
  if (space < 0 || header.slice(0, space).toLowerCase() !== 'bearer') return false;
  const given = Buffer.from(header.slice(space + 1));
  const expected = Buffer.from(secret);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
