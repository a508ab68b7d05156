// The /metrics endpoint on its own listener (GW_METRICS_PORT), optionally behind a bearer token.
import { timingSafeEqual } from 'node:crypto';
import express, { type Express } from 'express';
import type { Registry } from 'prom-client';
import { httpError } from './errors';

function sameToken(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function createMetricsApp(registry: Registry, token: string | undefined): Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/metrics', (req, res, next) => {
    if (token !== undefined && !sameToken(req.get('authorization') ?? '', `Bearer ${token}`)) {
      httpError(res.set('WWW-Authenticate', 'Bearer'), 'UNAUTHORIZED', 'a bearer token is required');
      return;
    }
    registry.metrics().then((body) => res.type(registry.contentType).send(body), next);
  });
  app.use((_req, res) => {
    httpError(res, 'NOT_FOUND', 'no such endpoint');
  });
  return app;
}
