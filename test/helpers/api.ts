// Calls the server API of a real gateway over HTTP (supertest) and checks every answer against the OpenAPI document:
// its status must be one the document lists for the path (a path it does not list, an unknown method, must answer
// 404), its body must match that response's schema, a 429 must carry Retry-After. Where the API is not served (the
// public port, a gateway without GW_API_KEY) every answer must be the error envelope's 404.
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import request from 'supertest';
import { expect } from 'vitest';
import { openApiDocument, type OpenApiDocument } from '../../src/api/openapi';
import type { TestGateway } from './gateway';

export const API_KEY = 'test-api-key-of-at-least-32-characters!';

/** What a gateway with the server API on needs: its key. */
export const API_ENV = { GW_API_KEY: API_KEY };

export interface ApiAnswer {
  status: number;
  headers: Record<string, string>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a JSON body, checked against the schema before use
  body: any;
}

export interface CallOptions {
  /** The key sent as `Authorization: Bearer <key>`; null sends no Authorization header. Default: API_KEY. */
  key?: string | null;
  /** A whole Authorization header instead (another scheme, say). */
  authorization?: string;
  /** Sent as the body as-is instead of `body` as JSON. */
  raw?: string;
  contentType?: string;
  /** A Cookie header (the admin console's sign-in: `gw_admin=<token>`); pair it with `key: null`. */
  cookie?: string;
  /** An Origin header, as a browser sends with its requests. */
  origin?: string;
}

export const document: OpenApiDocument = openApiDocument();

// The document is OpenAPI 3.1, whose schemas are JSON Schema 2020-12: ajv's 2020 dialect. Not strict, since the
// document around the schemas (openapi, paths, responses…) is not itself a schema.
const ajv = new Ajv2020({ allErrors: true, strict: false });
ajv.addSchema(document as object, 'openapi');
const validators = new Map<string, ValidateFunction>();

function validator(pointer: string): ValidateFunction {
  let validate = validators.get(pointer);
  if (!validate) {
    validate = ajv.compile({ $ref: `openapi#${pointer}` });
    validators.set(pointer, validate);
  }
  return validate;
}

/** JSON pointer escaping of one path segment. */
const escape = (segment: string) => segment.replace(/~/g, '~0').replace(/\//g, '~1');

/** Fails the test unless the answer is one the document allows for `verb path` (`served`: where the API is). */
export function expectConforms(verb: 'get' | 'post', path: string, answer: ApiAnswer, served = true): void {
  expect(answer.headers['content-type'], `${verb} ${path}`).toMatch(/^application\/json/);
  const operation = served ? document.paths[path]?.[verb] : undefined;
  let pointer: string;
  if (operation) {
    expect(Object.keys(operation.responses), `${verb} ${path} answered ${answer.status}, which the document does not list`).toContain(String(answer.status));
    pointer = `/paths/${escape(path)}/${verb}/responses/${answer.status}/content/application~1json/schema`;
  } else {
    expect(answer.status, served ? `${verb} ${path} is not in the document` : `${verb} ${path} where the API is not served`).toBe(404);
    pointer = '/components/schemas/ErrorResponse';
  }
  const validate = validator(pointer);
  expect(validate(answer.body) ? [] : validate.errors, `${verb} ${path} ${answer.status}: ${JSON.stringify(answer.body)}`).toEqual([]);
  if (answer.status === 429) expect(answer.headers['retry-after']).toMatch(/^[1-9]\d*$/);
}

export interface ApiClient {
  /** `POST /api/<method>` with `body` as JSON (or `options.raw`). */
  call(method: string, body?: unknown, options?: CallOptions): Promise<ApiAnswer>;
  /** `GET <path>` on the internal listener. */
  get(path: string, options?: CallOptions): Promise<ApiAnswer>;
  /** `call`, expecting 200: its `data`. */
  ok(method: string, body: unknown): Promise<unknown>;
}

/** A client of `gw`'s internal listener, or (`publicPort`) of its public port, where the API must not be. */
export function apiClient(gw: TestGateway, { publicPort = false } = {}): ApiClient {
  const url = publicPort ? gw.httpUrl : `http://127.0.0.1:${gw.gateway.internalPort}`;
  const served = !publicPort && gw.gateway.config.api !== undefined;
  const send = async (verb: 'get' | 'post', path: string, body: unknown, options: CallOptions): Promise<ApiAnswer> => {
    let req = verb === 'get' ? request(url).get(path) : request(url).post(path);
    const key = options.key === undefined ? API_KEY : options.key;
    if (options.authorization !== undefined) req = req.set('Authorization', options.authorization);
    else if (key !== null) req = req.set('Authorization', `Bearer ${key}`);
    if (options.contentType !== undefined) req = req.set('Content-Type', options.contentType);
    if (options.cookie !== undefined) req = req.set('Cookie', options.cookie);
    if (options.origin !== undefined) req = req.set('Origin', options.origin);
    if (options.raw !== undefined) req = req.send(options.raw);
    else if (body !== undefined) req = req.send(body as object);
    const res = await req;
    const answer = { status: res.status, headers: res.headers as Record<string, string>, body: res.body };
    expectConforms(verb, path, answer, served);
    return answer;
  };
  const client: ApiClient = {
    call: (method, body, options = {}) => send('post', `/api/${method}`, body, options),
    get: (path, options = {}) => send('get', path, undefined, options),
    ok: async (method, body) => {
      const answer = await client.call(method, body);
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
      return answer.body.data;
    },
  };
  return client;
}
