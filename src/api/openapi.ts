// The server API's OpenAPI 3.1 document, generated from the zod schemas in schemas.ts (requests as they are read,
// results as they are written) and the HTTP error table: only its words are written here, never a shape.
import { z } from 'zod';
import { ADMIN_COOKIE } from '../http/adminAuth';
import { HttpErrorCode, type HttpErrorCodeName } from '../types/codes';
import { version } from '../utils/version';
import { apiErrorSchema, apiMethods, errorEnvelope, okEnvelope, type ApiMethodName } from './schemas';

type JsonSchema = Record<string, unknown>;

interface OpenApiResponse {
  description: string;
  headers?: Record<string, { description: string; schema: JsonSchema }>;
  content: { 'application/json': { schema: JsonSchema } };
}

export interface OpenApiOperation {
  operationId: string;
  summary: string;
  requestBody?: { required: true; content: { 'application/json': { schema: JsonSchema } } };
  responses: Record<string, OpenApiResponse>;
}

export interface OpenApiDocument {
  openapi: '3.1.0';
  jsonSchemaDialect: string;
  info: { title: string; version: string; description: string };
  security: Record<string, string[]>[];
  paths: Record<string, { get?: OpenApiOperation; post?: OpenApiOperation }>;
  components: { schemas: Record<string, JsonSchema>; securitySchemes: Record<string, JsonSchema> };
}

/** The path the document is served at, under the API's mount point. */
export const OPENAPI_PATH = '/api/openapi.json';

/** Errors any method call can answer (an unknown method is a path the document does not list). */
const METHOD_ERRORS: HttpErrorCodeName[] = ['BAD_REQUEST', 'INVALID_REQUEST', 'UNAUTHORIZED', 'FORBIDDEN', 'PAYLOAD_TOO_LARGE', 'RATE_LIMITED', 'INTERNAL'];
const DOCUMENT_ERRORS: HttpErrorCodeName[] = ['UNAUTHORIZED', 'FORBIDDEN', 'RATE_LIMITED', 'INTERNAL'];

const DIALECT = 'https://json-schema.org/draft/2020-12/schema';

const ref = (id: string): JsonSchema => ({ $ref: `#/components/schemas/${id}` });
const json = (schema: JsonSchema) => ({ 'application/json': { schema } });
/** `presence_stats` → `PresenceStats`: the stem of its schemas' names. */
const stem = (name: string) => name.replace(/(^|_)([a-z])/g, (_m, _sep, c: string) => c.toUpperCase());

export function openApiDocument(): OpenApiDocument {
  const names = Object.keys(apiMethods) as ApiMethodName[];
  const paths: OpenApiDocument['paths'] = {};
  for (const name of names) {
    paths[`/api/${name}`] = {
      post: {
        operationId: name,
        summary: apiMethods[name].summary,
        requestBody: { required: true, content: json(ref(`${stem(name)}Request`)) },
        responses: { '200': { description: 'Done: `data` is the result.', content: json(ref(`${stem(name)}Response`)) }, ...errorResponses(METHOD_ERRORS) },
      },
    };
  }
  paths[OPENAPI_PATH] = {
    get: {
      operationId: 'openapi',
      summary: 'This document.',
      responses: { '200': { description: 'The OpenAPI document of this API.', content: json({ type: 'object' }) }, ...errorResponses(DOCUMENT_ERRORS) },
    },
  };
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: DIALECT,
    info: {
      title: 'gateway-strategy server API',
      version,
      description: 'Backends publish to groups and users, read presence and the cluster, and end sessions over HTTP, on the gateway’s internal listener (docs/server-api.md).',
    },
    security: [{ apiKey: [] }, { adminConsole: [] }],
    paths,
    components: { schemas: componentSchemas(names), securitySchemes: {
        apiKey: { type: 'http', scheme: 'bearer', description: 'GW_API_KEY' },
        adminConsole: { type: 'apiKey', in: 'cookie', name: ADMIN_COOKIE, description: "The admin console's sign-in (POST /admin/session with the key); such requests must come from the console's own origin, and a POST must be application/json." },
      },
    },
  };
}

/** Each method's request, result and response envelope, and the error envelope, by name. */
function componentSchemas(names: ApiMethodName[]): Record<string, JsonSchema> {
  const requests = z.registry<{ id: string }>();
  const responses = z.registry<{ id: string }>();
  for (const name of names) {
    const { params, result } = apiMethods[name];
    requests.add(params, { id: `${stem(name)}Request` });
    responses.add(result, { id: `${stem(name)}Result` });
    responses.add(okEnvelope(result), { id: `${stem(name)}Response` });
  }
  responses.add(apiErrorSchema, { id: 'Error' });
  responses.add(errorEnvelope, { id: 'ErrorResponse' });
  return { ...jsonSchemas(requests, 'input'), ...jsonSchemas(responses, 'output') };
}

function jsonSchemas(registry: z.core.$ZodRegistry<{ id: string }>, io: 'input' | 'output'): Record<string, JsonSchema> {
  const { schemas } = z.toJSONSchema(registry, { io, uri: (id) => `#/components/schemas/${id}` });
  // The document names the dialect once (jsonSchemaDialect): each schema's own $schema and $id would only repeat it.
  return Object.fromEntries(Object.entries(schemas).map(([id, { $schema: _dialect, $id: _id, ...schema }]) => [id, schema as JsonSchema]));
}

/** The error responses for `codes`, one per status (400 has two codes), each code with its meaning from the table. */
function errorResponses(codes: HttpErrorCodeName[]): Record<string, OpenApiResponse> {
  const byStatus = new Map<number, HttpErrorCodeName[]>();
  for (const code of codes) byStatus.set(HttpErrorCode[code].status, [...(byStatus.get(HttpErrorCode[code].status) ?? []), code]);
  const responses: Record<string, OpenApiResponse> = {};
  for (const [status, named] of byStatus) {
    const response: OpenApiResponse = { description: named.map((code) => `\`${code}\`: ${HttpErrorCode[code].meaning}`).join(' '), content: json(ref('ErrorResponse')) };
    if (named.includes('RATE_LIMITED')) response.headers = { 'Retry-After': { description: 'Seconds to wait before the next request.', schema: { type: 'integer', minimum: 1 } } };
    responses[String(status)] = response;
  }
  return responses;
}
