// The console's only way to the gateway: the server API on this same listener (`POST /api/<method>`, signed in by the
// `gw_admin` cookie the browser sends by itself) and the sign-in at /admin/session. Shapes are the server API's own
// types, imported as types only, so no schema code reaches the bundle. Every failure becomes an ApiFailure, which the
// page shows.
import type { ApiError, ApiInput, ApiMethodName, ApiResult } from '../api/schemas';

export type { ApiResult };

/** A refused or failed request: the server API's error code and message, or NETWORK when nothing answered. */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

/** Runs server API method `method` with `params`: its result, or an ApiFailure. */
export async function call<M extends ApiMethodName>(method: M, params: ApiInput<M>): Promise<ApiResult<M>> {
  const res = await send('POST', `/api/${method}`, params);
  const body = await readJson<{ ok: true; data: ApiResult<M> } | { ok: false; error: ApiError }>(res);
  if (!body.ok) throw new ApiFailure(res.status, body.error.code, body.error.message, body.error.field);
  return body.data;
}

/** Signs in with the API key: the gateway sets the session cookie (HttpOnly: this page never sees it). */
export async function signIn(key: string): Promise<void> {
  const res = await send('POST', '/admin/session', { key });
  if (!res.ok) throw await failure(res);
}

/** Ends the sign-in on this instance and drops the cookie. */
export async function signOut(): Promise<void> {
  const res = await send('DELETE', '/admin/session');
  if (!res.ok) throw await failure(res);
}

async function send(method: 'POST' | 'DELETE', path: string, body?: unknown): Promise<Response> {
  try {
    return await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiFailure(0, 'NETWORK', 'the gateway did not answer');
  }
}

async function readJson<T>(res: Response): Promise<T> {
  try {
    return (await res.json()) as T;
  } catch {
    throw new ApiFailure(res.status, `HTTP_${res.status}`, 'the gateway answered something that is not JSON');
  }
}

async function failure(res: Response): Promise<ApiFailure> {
  const body = await readJson<{ error?: ApiError }>(res);
  return new ApiFailure(res.status, body.error?.code ?? `HTTP_${res.status}`, body.error?.message ?? res.statusText, body.error?.field);
}
