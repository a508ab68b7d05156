// The server API over HTTP, mounted at /api on the internal listener: `POST /api/<method>` with a JSON body, answered
// `{ ok: true, data }` or `{ ok: false, error }`. Checks in order: the key or the admin console's sign-in cookie (401;
// 403 for a cookie request that did not come from the console's page), the rate limit (429), the method (404), the
// body (413, 400), the method's schema (400 INVALID_REQUEST); `GET /api/openapi.json` is the contract.
import express, { type ErrorRequestHandler, type RequestHandler, type Router } from 'express';
import type { ApiConfig } from '../config';
import type { Metrics } from '../metrics';
import type { Logger } from '../utils/logger';
import { fromConsolePage, signedIn } from '../http/adminAuth';
import type { AdminSessions } from '../http/adminSessions';
import { hasBearer } from '../http/bearer';
import { httpError } from '../http/errors';
import { createBucket } from '../hub/rateLimits';
import type { ApiMethods } from './methods';
import { isApiMethod, type ApiMethodName } from './schemas';

export interface ApiRouterOptions {
  config: ApiConfig;
  methods: ApiMethods;
  /** The OpenAPI document served at /api/openapi.json. */
  document: object;
  metrics: Pick<Metrics, 'apiRequests'>;
  logger: Logger;
  /** The admin console's sign-ins: a request naming one in its cookie is let in like one with the key. */
  sessions: AdminSessions;
}

/** Where the OpenAPI document is, under the router's /api. */
const DOCUMENT_PATH = '/openapi.json';

/** Unknown method names are echoed back this long at most. */
const MAX_ECHOED_NAME = 64;

export function createApiRouter({ config, methods, document, metrics, logger, sessions }: ApiRouterOptions): Router {
  const router = express.Router();

  // Every request is counted once it is answered, refusals included, so an operator sees 401s and 429s; labels are
  // bounded (the known methods, openapi, unknown). A failure of the gateway's own is also logged.
  const observe: RequestHandler = (req, res, next) => {
    const started = Date.now();
    res.on('finish', () => {
      const name = req.path.slice(1);
      const method = isApiMethod(name) ? name : req.path === DOCUMENT_PATH ? 'openapi' : 'unknown';
      metrics.apiRequests.inc({ method, status: String(res.statusCode) });
      if (res.statusCode >= 500) logger.warn({ method, status: res.statusCode, ms: Date.now() - started }, 'server API request failed');
      else logger.debug({ method, status: res.statusCode, ms: Date.now() - started }, 'server API request');
    });
    next();
  };
  // One bucket per instance, one second's worth of requests: a burst up to the rate, then the rate.
  const bucket = createBucket(config.ratePerSec, 1_000);

  // The key (or the console's cookie) first, so callers without it cannot spend the bucket of those who have it.
  // Whether the header was missing or wrong is not said.
  const admit: RequestHandler = (req, res, next) => {
    if (!hasBearer(req, config.key)) {
      if (!signedIn(req, sessions)) return httpError(res.set('WWW-Authenticate', 'Bearer'), 'UNAUTHORIZED', 'a valid API key is required');
      if (!fromConsolePage(req)) return httpError(res, 'FORBIDDEN', "a request signed in with the console's cookie must come from the console's page (its own Origin, JSON)");
    }
    if (!bucket.tryRemoveTokens(1)) {
      const seconds = Math.max(1, Math.ceil(bucket.getWaitTime(1) / 1000));
      return httpError(res.set('Retry-After', String(seconds)), 'RATE_LIMITED', `more than ${config.ratePerSec} requests per second; retry after ${seconds} s`);
    }
    next();
  };

  const knownMethod: RequestHandler = (req, res, next) => {
    const name = String(req.params.method);
    if (isApiMethod(name)) return next();
    httpError(res, 'NOT_FOUND', `no such method "${name.slice(0, MAX_ECHOED_NAME)}"`);
  };

  // Any Content-Type is read as JSON (curl -d sends a form type); `strict: false` lets a bare JSON value through to
  // the schema, so BAD_REQUEST means "not JSON" and INVALID_REQUEST "JSON of the wrong shape" (an empty body is
  // read as {}, a request without one leaves the body undefined: both break the schema as a whole).
  const readBody = express.json({ limit: config.maxBodyBytes, strict: false, type: () => true });

  const run: RequestHandler = async (req, res) => {
    // knownMethod let only method names through.
    const reply = await methods.call(req.params.method as ApiMethodName, req.body);
    if ('error' in reply) return httpError(res, reply.error.code, reply.error.message, reply.error.field);
    res.json({ ok: true, data: reply.result });
  };

  router.use(observe);
  router.use(admit);
  router.get(DOCUMENT_PATH, (_req, res) => {
    res.json(document);
  });
  router.post('/:method', knownMethod, readBody, run);
  router.use((_req, res) => {
    httpError(res, 'NOT_FOUND', 'no such endpoint');
  });

  // What the body reader refuses (body-parser's error types), and anything else without a stack.
  const onError: ErrorRequestHandler = (err: { type?: string; status?: number }, _req, res, _next) => {
    if (err.type === 'entity.too.large') return httpError(res, 'PAYLOAD_TOO_LARGE', `the body is over ${config.maxBodyBytes} bytes`);
    if (err.type === 'entity.parse.failed') return httpError(res, 'BAD_REQUEST', 'the body is not valid JSON');
    const clientFault = typeof err.status === 'number' && err.status >= 400 && err.status < 500;
    httpError(res, clientFault ? 'BAD_REQUEST' : 'INTERNAL', clientFault ? 'the body could not be read' : 'request failed');
  };
  router.use(onError);
  return router;
}
