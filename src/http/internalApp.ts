// The internal listener (GW_INTERNAL_HOST:GW_INTERNAL_PORT), never the public port: Prometheus /metrics, optionally
// behind a bearer token, and the server API under /api and the admin console under /admin when the API is enabled.
import express, { type ErrorRequestHandler, type Express, type Router } from 'express';
import type { Registry } from 'prom-client';
import { hasBearer } from './bearer';
import { httpError } from './errors';

export interface InternalAppOptions {
  registry: Registry;
  /** When set, /metrics requires `Authorization: Bearer <token>`. */
  metricsToken: string | undefined;
  /** The server API, mounted at /api (GW_API_KEY set); without it /api/* answers 404 like any unknown path. */
  api?: Router;
  /** The admin console, mounted at /admin with the server API; without it /admin answers 404 like any unknown path. */
  admin?: Router;
}

export function createInternalApp({ registry, metricsToken, api, admin }: InternalAppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/metrics', (req, res, next) => {
    if (metricsToken !== undefined && !hasBearer(req, metricsToken)) {
      httpError(res.set('WWW-Authenticate', 'Bearer'), 'UNAUTHORIZED', 'a bearer token is required');
      return;
    }
    registry.metrics().then((body) => res.type(registry.contentType).send(body), next);
  });
  if (api) app.use('/api', api);
  if (admin) app.use('/admin', admin);
  app.use((_req, res) => {
    httpError(res, 'NOT_FOUND', 'no such endpoint');
  });
  // Express's own handler would answer with a stack trace outside production.
  const onError: ErrorRequestHandler = (_err, _req, res, _next) => {
    httpError(res, 'INTERNAL', 'request failed');
  };
  app.use(onError);
  return app;
}
