// The admin console on the internal listener, at /admin (only with GW_API_KEY): the page's HTML shell, its script
// and style as `yarn build` bundles them into dist/admin, and the sign-in that sets the `gw_admin` cookie. Every
// answer carries a strict Content-Security-Policy: the page runs only its own script and style and talks only to this
// listener, where it uses the server API like any backend (docs/server-api.md). No endpoint here reads the cluster.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import express, { type ErrorRequestHandler, type RequestHandler, type Router } from 'express';
import { z } from 'zod';
import type { Metrics } from '../metrics';
import { createBucket } from '../hub/rateLimits';
import type { Logger } from '../utils/logger';
import { ADMIN_COOKIE, fromConsolePage, readCookie, signInCookie, signOutCookie } from './adminAuth';
import type { AdminSessions } from './adminSessions';
import { sameSecret } from './bearer';
import { httpError } from './errors';

/** The files the build writes into the assets folder (scripts/build-admin.ts) and the shell loads. */
export const ADMIN_ASSETS = { script: 'admin.js', style: 'admin.css' } as const;

/** Nothing but this listener's own script, style and API; `data:` images for uPlot and the empty favicon. */
export const ADMIN_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** The label the sign-in and sign-out carry in `gateway_api_requests_total`. */
const METRIC_LABEL = 'admin_session';

// No inline script or style: the CSP would refuse them. The empty icon keeps the browser from asking for /favicon.ico.
const SHELL = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gateway-strategy admin</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/admin/assets/${ADMIN_ASSETS.style}">
<script src="/admin/assets/${ADMIN_ASSETS.script}" defer></script>
</head>
<body>
<div id="app"><p class="boot">Loading the console… If this stays, its bundle is missing: run <code>yarn build</code>.</p></div>
</body>
</html>
`;

const signInSchema = z.strictObject({ key: z.string().max(4096) });

export interface AdminRouterOptions {
  /** GW_API_KEY: what the operator types to sign in. */
  key: string;
  sessions: AdminSessions;
  /** How long a sign-in lasts (the cookie's Max-Age). */
  lifetimeMs: number;
  /** Where the bundled script and style are (dist/admin). */
  assetsDir: string;
  /** Sign-in attempts per second this instance serves. */
  signInsPerSec: number;
  metrics: Pick<Metrics, 'apiRequests'>;
  logger: Logger;
}

export function createAdminRouter({ key, sessions, lifetimeMs, assetsDir, signInsPerSec, metrics, logger }: AdminRouterOptions): Router {
  if (!existsSync(join(assetsDir, ADMIN_ASSETS.script))) logger.warn({ assetsDir }, 'the admin console is not built (run yarn build): /admin serves a page without its script');
  const router = express.Router();

  const secure: RequestHandler = (_req, res, next) => {
    res.set({ 'Content-Security-Policy': ADMIN_CSP, 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer' });
    next();
  };

  // Counted with the server API's requests, so a run of refused sign-ins shows on /metrics.
  const observe: RequestHandler = (req, res, next) => {
    res.on('finish', () => {
      metrics.apiRequests.inc({ method: METRIC_LABEL, status: String(res.statusCode) });
      logger.debug({ method: METRIC_LABEL, verb: req.method, status: res.statusCode }, 'admin console sign-in');
    });
    next();
  };

  // A bucket of its own, spent before the key is compared (after the page check, which costs nothing): guesses are
  // slowed down, and never spend the budget the server API keeps for the backends that hold the key.
  const bucket = createBucket(signInsPerSec, 1_000);
  const limit: RequestHandler = (_req, res, next) => {
    if (bucket.tryRemoveTokens(1)) return next();
    const seconds = Math.max(1, Math.ceil(bucket.getWaitTime(1) / 1000));
    httpError(res.set('Retry-After', String(seconds)), 'RATE_LIMITED', `more than ${signInsPerSec} sign-in attempts per second; retry after ${seconds} s`);
  };

  const fromPage: RequestHandler = (req, res, next) => {
    if (fromConsolePage(req)) return next();
    httpError(res, 'FORBIDDEN', "sign-in requests come from the console's page (its own Origin, JSON)");
  };

  const signIn: RequestHandler = (req, res) => {
    const parsed = signInSchema.safeParse(req.body);
    if (!parsed.success) return httpError(res, 'INVALID_REQUEST', 'the body is { "key": "<GW_API_KEY>" }', 'key');
    if (!sameSecret(parsed.data.key, key)) return httpError(res, 'UNAUTHORIZED', 'a valid API key is required');
    res.set('Set-Cookie', signInCookie(sessions.create(), lifetimeMs)).status(204).end();
  };

  const signOut: RequestHandler = (req, res) => {
    sessions.end(readCookie(req, ADMIN_COOKIE));
    res.set('Set-Cookie', signOutCookie()).status(204).end();
  };

  router.use(secure);
  router.get('/', (_req, res) => {
    res.set('Cache-Control', 'no-cache').type('html').send(SHELL);
  });
  // Fixed names, revalidated on each load (ETag): a new build shows at the next reload.
  router.use('/assets', express.static(assetsDir, { index: false, redirect: false, dotfiles: 'deny', cacheControl: false, setHeaders: (res) => res.set('Cache-Control', 'no-cache') }));
  router.post('/session', observe, fromPage, limit, express.json({ limit: 8192 }), signIn);
  router.delete('/session', observe, fromPage, signOut);

  const onError: ErrorRequestHandler = (err: { type?: string }, _req, res, _next) => {
    httpError(res, err.type === 'entity.parse.failed' || err.type === 'entity.too.large' ? 'BAD_REQUEST' : 'INTERNAL', 'the sign-in could not be read');
  };
  router.use(onError);
  return router;
}
