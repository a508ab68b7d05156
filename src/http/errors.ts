// The one way an HTTP endpoint refuses: the status and code from the HTTP error table, a message, never a stack.
import type { Response } from 'express';
import { HttpErrorCode, type HttpErrorCodeName } from '../types/codes';

/** `field` (server API requests): the path of the field that broke the schema, joined with `.`. */
export function httpError(res: Response, code: HttpErrorCodeName, message: string, field?: string): void {
  res.status(HttpErrorCode[code].status).json({ ok: false, error: field === undefined ? { code, message } : { code, message, field } });
}
