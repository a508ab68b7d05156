// The gateway's two code tables: WebSocket close codes and `error` envelope codes.
// docs/protocol.md is written from these tables; keep them in step.

/** What a client should do after a close or an error. */
export type ClientAction = 'reconnect' | 'retry-after' | 'fix-request' | 'refresh-token' | 'refresh-and-resume' | 'give-up' | 'none';

interface CloseCodeInfo {
  readonly code: number;
  readonly meaning: string;
  readonly action: ClientAction;
  /** Set on the one code a client sends to the gateway with a meaning of its own; every other code is the gateway's. */
  readonly sentBy?: 'client';
}

export const CloseCode = {
  NORMAL: { code: 1000, meaning: 'Normal closure.', action: 'none' },
  RESUME_LATER: {
    code: 4100,
    meaning:
      'Sent by a client that closes this connection but will resume its session: the session is kept (orphaned) as after a network loss. Any other close a client starts ends its session at once.',
    action: 'none',
    sentBy: 'client',
  },
  GOING_AWAY: { code: 1001, meaning: 'The gateway is shutting down; a `shutdown` envelope came first.', action: 'reconnect' },
  INVALID_UTF8: { code: 1007, meaning: 'A text frame was not valid UTF-8.', action: 'fix-request' },
  MESSAGE_TOO_BIG: { code: 1009, meaning: 'A frame exceeded GW_MAX_PAYLOAD_BYTES.', action: 'fix-request' },
  IDENTIFY_TIMEOUT: { code: 4001, meaning: 'No `identify` arrived within identifyTimeoutMs of `hello`.', action: 'reconnect' },
  AUTH_FAILED: { code: 4003, meaning: 'The token in `identify` was missing, malformed, badly signed or expired.', action: 'refresh-token' },
  REVOKED: {
    code: 4005,
    meaning:
      "The platform ended the user's access (server API `disconnect`, `reconnect: false`); the session ended. Do not reconnect until the app has a new token from the platform.",
    action: 'give-up',
  },
  SESSION_ENDED: {
    code: 4006,
    meaning: 'A backend ended this session (server API `disconnect`, `reconnect: true`); the session ended. Reconnect: a fresh session starts.',
    action: 'reconnect',
  },
  TOKEN_EXPIRED: {
    code: 4004,
    meaning:
      "The connection's token expired: its `exp` plus GW_TOKEN_EXPIRY_GRACE_MS passed without a `refresh`. The session is kept (orphaned), as after any close the gateway starts.",
    action: 'refresh-and-resume',
  },
  RATE_LIMITED: {
    code: 4008,
    meaning: 'As many envelopes in a row were refused RATE_LIMITED as the message bucket holds.',
    action: 'retry-after',
  },
  HEARTBEAT_TIMEOUT: { code: 4009, meaning: 'No envelope arrived for heartbeatTimeoutMs.', action: 'reconnect' },
  SLOW_CONSUMER: {
    code: 4010,
    meaning: 'The client read too slowly: more than GW_SLOW_CONSUMER_BYTES were queued for it.',
    action: 'reconnect',
  },
  SESSION_TAKEN_OVER: {
    code: 4011,
    meaning: 'The session was resumed by a newer connection (e.g. after a network switch); this one is obsolete.',
    action: 'none',
  },
  TOO_MANY_CONNECTIONS: {
    code: 4029,
    meaning: 'The user already has GW_MAX_CONNECTIONS_PER_USER connections.',
    action: 'give-up',
  },
} as const satisfies Record<string, CloseCodeInfo>;

export type CloseCodeName = keyof typeof CloseCode;

interface ErrorCodeInfo {
  readonly meaning: string;
  readonly action: ClientAction;
  /**
   * The close that follows this error, when the error ends the connection: always, or only when it refuses an
   * envelope of type `on`.
   */
  readonly closes?: { readonly code: CloseCodeName; readonly on?: 'identify' };
}

export const ErrorCode = {
  BAD_JSON: { meaning: 'The frame was not valid JSON.', action: 'fix-request' },
  INVALID_ENVELOPE: {
    meaning: 'Binary frame, not a JSON object, or a field of the envelope or its `data` has the wrong shape.',
    action: 'fix-request',
  },
  UNKNOWN_TYPE: { meaning: 'The envelope `type` is not one the gateway knows.', action: 'fix-request' },
  NOT_IDENTIFIED: { meaning: 'Only `identify` is accepted before `ready`.', action: 'fix-request' },
  ALREADY_IDENTIFIED: { meaning: 'A second `identify` on the same connection.', action: 'fix-request' },
  AUTH_FAILED: {
    meaning: 'The token was rejected. On `identify` the connection closes with 4003; on `refresh` it stays, with its current expiry.',
    action: 'refresh-token',
    closes: { code: 'AUTH_FAILED', on: 'identify' },
  },
  TOKEN_EXPIRED: {
    meaning: "The connection's token expired and no `refresh` came within GW_TOKEN_EXPIRY_GRACE_MS; the session is kept for a resume.",
    action: 'refresh-and-resume',
    closes: { code: 'TOKEN_EXPIRED' },
  },
  REVOKED: {
    meaning: "The platform ended the user's access; the message is the backend's reason. The session has ended and the connection closes with 4005.",
    action: 'give-up',
    closes: { code: 'REVOKED' },
  },
  SESSION_ENDED: {
    meaning: "A backend ended this session; the message is the backend's reason. The session has ended and the connection closes with 4006.",
    action: 'reconnect',
    closes: { code: 'SESSION_ENDED' },
  },
  FORBIDDEN: { meaning: 'The token does not grant the group, or the connection is not a member of it.', action: 'fix-request' },
  IDENTIFY_TIMEOUT: {
    meaning: 'No `identify` in time.',
    action: 'reconnect',
    closes: { code: 'IDENTIFY_TIMEOUT' },
  },
  RATE_LIMITED: { meaning: 'Too many envelopes; `retryAfterMs` says when to send again.', action: 'retry-after' },
  LIMIT_EXCEEDED: {
    meaning: 'A per-user or per-connection limit was reached (connections per user: closes with 4029; groups per connection: does not close).',
    action: 'give-up',
    closes: { code: 'TOO_MANY_CONNECTIONS', on: 'identify' },
  },
  PAYLOAD_TOO_LARGE: { meaning: 'A field is over its own limit (e.g. `identify.meta` over 1 KiB).', action: 'fix-request' },
  INTERNAL: { meaning: 'The gateway failed to handle the envelope; nothing was delivered.', action: 'retry-after' },
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrorCodeName = keyof typeof ErrorCode;

/**
 * Error codes of the HTTP endpoints (`{ ok: false, error: { code, message, field? } }`), with their status. The server
 * API's `batch` replies carry the same codes for the commands that failed.
 */
export const HttpErrorCode = {
  BAD_REQUEST: { status: 400, meaning: 'The request could not be read (e.g. a body that is not JSON).' },
  INVALID_REQUEST: { status: 400, meaning: 'A server API request whose JSON breaks its method\'s schema; `field` names the offending field (its path, joined with `.`).' },
  UNAUTHORIZED: { status: 401, meaning: '`/metrics` needs `Authorization: Bearer <GW_METRICS_TOKEN>`, the server API `Authorization: Bearer <GW_API_KEY>` or the admin console\'s sign-in cookie (missing and wrong are not told apart); an admin console sign-in with a wrong key.' },
  FORBIDDEN: { status: 403, meaning: 'A request signed in with the admin console\'s cookie that did not come from the console\'s page: another `Origin`, or a POST whose `Content-Type` is not `application/json` (the guard against cross-site requests).' },
  NOT_FOUND: { status: 404, meaning: 'No such endpoint, or no such server API method (every `/api/*` and `/admin` path while `GW_API_KEY` is unset).' },
  PAYLOAD_TOO_LARGE: { status: 413, meaning: 'A server API request body over `GW_API_MAX_BODY_BYTES`.' },
  UPGRADE_REQUIRED: { status: 426, meaning: 'A plain GET of the WebSocket path: connect with a WebSocket client.' },
  RATE_LIMITED: { status: 429, meaning: 'Over `GW_API_RATE_PER_SEC` server API requests per second on this instance (or over 5 admin console sign-in attempts a second); `Retry-After` says when to send again (seconds).' },
  INTERNAL: { status: 500, meaning: 'The gateway failed to handle the request.' },
} as const satisfies Record<string, { status: number; meaning: string }>;

export type HttpErrorCodeName = keyof typeof HttpErrorCode;
