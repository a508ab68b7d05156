// The Express app: /health for uptime monitors, 426 for plain GETs of the WebSocket path, CORS from the origin allowlist, JSON errors without stacks.
import cors from 'cors';
import express, { type ErrorRequestHandler, type Express } from 'express';
import type { KeysHealth } from '../auth/JwksSource';
import { routes } from '../config/routes';
import { httpError } from './errors';

export interface HealthData {
  /**
   * `degraded`: serving, but Redis is configured and unreachable (no cross-instance delivery). `starting` (until the
   * cluster layer is ready, at most a few seconds) and `draining` (shutdown) answer 503.
   */
  status: 'ok' | 'degraded' | 'starting' | 'draining';
  version: string;
  uptimeSec: number;
  connections: number;
  /** Present only when Redis is configured. */
  redis?: 'up' | 'down';
  /**
   * The token key source (docs/auth.md). A JWK set that cannot be fetched shows here (`stale`, `failing`) but never
   * changes `status`: tokens signed with keys already held keep verifying, and a load balancer that took the instance
   * out for a transient fetch error would only move the problem.
   */
  keys: KeysHealth;
}

export interface AppDeps {
  health(): HealthData;
  /** The same allowlist the WebSocket upgrade uses; requests from other origins get no CORS headers. */
  isOriginAllowed(origin: string): boolean;
  trustProxy(address: string, hop: number): boolean;
}

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', deps.trustProxy);
  app.use(cors({ origin: (origin, done) => done(null, origin !== undefined && deps.isOriginAllowed(origin)), methods: ['GET', 'HEAD'] }));

  app.get(routes.health, (_req, res) => {
    const data = deps.health();
    const serving = data.status === 'ok' || data.status === 'degraded';
    res.status(serving ? 200 : 503).json({ ok: serving, data });
  });

  app.get(routes.ws, (_req, res) => {
    httpError(res.set('Upgrade', 'websocket'), 'UPGRADE_REQUIRED', `connect with a WebSocket client to ${routes.ws}`);
  });

  app.use((_req, res) => {
    httpError(res, 'NOT_FOUND', 'no such endpoint');
  });

  const onError: ErrorRequestHandler = (err: { status?: number }, _req, res, _next) => {
    const clientFault = typeof err.status === 'number' && err.status >= 400 && err.status < 500;
    httpError(res, clientFault ? 'BAD_REQUEST' : 'INTERNAL', 'request failed');
  };
  app.use(onError);
  return app;
}
