// The bearer check of the internal listener's endpoints (/metrics, the server API): a shared secret in the
// Authorization header, compared in constant time.
import { timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';

/** True when the request carries `Authorization: Bearer <secret>`; the time taken does not depend on where a wrong value differs. */
export function hasBearer(req: Request, secret: string): boolean {
  const given = Buffer.from(req.get('authorization') ?? '');
  const expected = Buffer.from(`Bearer ${secret}`);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
