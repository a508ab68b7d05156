// The shared-secret checks of the internal listener's endpoints (/metrics, the server API, the admin console's
// sign-in): a secret in the Authorization header or a sign-in form, compared in constant time.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';

/**
 * True when `given` is `secret`. Both are hashed first, so the comparison is of equal lengths and the time taken
 * tells neither where a wrong secret differs nor how long the right one is.
 */
export function sameSecret(given: string, secret: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(given), digest(secret));
}

/** True when the request carries `Authorization: Bearer <secret>` (the scheme in any case, as HTTP defines it). */
export function hasBearer(req: Request, secret: string): boolean {
  const header = req.get('authorization') ?? '';
  const space = header.indexOf(' ');
  if (space < 0 || header.slice(0, space).toLowerCase() !== 'bearer') return false;
  return sameSecret(header.slice(space + 1), secret);
}
