// The /metrics endpoint on its own listener (GW_METRICS_PORT), optionally behind a bearer token.
import { timingSafeEqual } from 'node:crypto';
import express, { type Express } from 'express';
import type { Registry } from 'prom-client';

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
      res.status(401).set('WWW-Authenticate', 'Bearer').json({ ok: false, error: { code: 'UNAUTHORIZED', message: 'a bearer token is required' } });
      return;
    }
    registry.metrics().then((body) => res.type(registry.contentType).send(body), next);
  });
  app.use((_req, res) => {
    res.status(404).json({ ok: false, error: { code: 'NOT_FOUND', message: 'no such endpoint' } });
  });
  return app;
}
