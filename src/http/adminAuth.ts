// How a request proves it comes from a signed-in admin console: the `gw_admin` cookie naming a live sign-in, sent by
// the console's own page. `SameSite=Strict` already keeps browsers from attaching the cookie to requests other sites
// start; on top of it (a CSRF guard that does not rest on the browser alone), a cookie-authenticated request must
// carry this listener's own host in `Origin` when it carries an `Origin` at all, and a POST must be
// `application/json`, which a cross-site form cannot send and a cross-site script could only after a CORS preflight
// this listener never grants.
import type { Request } from 'express';
import type { AdminSessions } from './adminSessions';

export const ADMIN_COOKIE = 'gw_admin';

/** The value of cookie `name` in the request's Cookie header, if any. */
export function readCookie(req: Request, name: string): string | undefined {
  for (const pair of (req.get('cookie') ?? '').split(';')) {
    const eq = pair.indexOf('=');
    if (eq > 0 && pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim();
  }
  return undefined;
}

/** True when the request names a live sign-in of `sessions`. */
export function signedIn(req: Request, sessions: AdminSessions): boolean {
  return sessions.valid(readCookie(req, ADMIN_COOKIE));
}

/** True when the request looks like one the console's page sent: its own origin, JSON when it is a POST. */
export function fromConsolePage(req: Request): boolean {
  const origin = req.get('origin');
  if (origin !== undefined && hostOf(origin) !== req.get('host')) return false;
  return req.method !== 'POST' || req.is('application/json') === 'application/json';
}

/**
 * The Set-Cookie value of a sign-in. No `Secure`: the internal listener is plain HTTP on a private address (reached
 * over a private network or an SSH tunnel), where a Secure cookie would never be sent back.
 */
export function signInCookie(token: string, lifetimeMs: number): string {
  return `${ADMIN_COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${Math.floor(lifetimeMs / 1000)}`;
}

/** The Set-Cookie value that removes the sign-in cookie from the browser. */
export function signOutCookie(): string {
  return `${ADMIN_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`;
}

/** `host[:port]` of an origin, or null when it is not a URL (`null`, say). */
function hostOf(origin: string): string | null {
  try {
    return new URL(origin).host;
  } catch {
    return null;
  }
}
