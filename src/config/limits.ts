// Fixed protocol limits and the defaults of the configurable ones.
export const limits = {
  /** Default GW_MAX_PAYLOAD_BYTES. */
  maxPayloadBytes: 65_536,
  /** Deepest nesting of objects/arrays accepted in a frame (the envelope itself is level 1). */
  maxJsonDepth: 64,
  /** A WebSocket close reason's limit (RFC 6455: a control frame's 125 bytes less the 2-byte code), in bytes of UTF-8. */
  maxCloseReasonBytes: 123,
  /** Default GW_RATE_CONN_PER_MIN: upgrade attempts per client IP per minute. */
  connectionsPerMinutePerIp: 10,
  /** Default GW_RATE_MSG_PER_10S: size of each connection's message bucket, refilled continuously over 10 s. */
  messagesPer10s: 100,
  /** Heartbeats have their own bucket: this many per 10 s, far above the one per heartbeatIntervalMs a client needs. */
  heartbeatsPer10s: 20,
  rateWindowMs: 10_000,
  /** Default GW_MAX_CONNECTIONS_PER_USER. */
  connectionsPerUser: 20,
  /** Default GW_MAX_GROUPS_PER_CONNECTION. */
  groupsPerConnection: 100,
  /** Default GW_SLOW_CONSUMER_BYTES: bytes queued for one socket before it is cut off. */
  slowConsumerBytes: 1_048_576,
  /** Default GW_SLOW_CONSUMER_GRACE_MS: how long a cut-off socket may take to close before it is terminated. */
  slowConsumerGraceMs: 2_000,
  /** Default GW_RESUME_BUFFER_MESSAGES: envelopes kept per session for resume. */
  resumeBufferMessages: 500,
  /** Default GW_RESUME_BUFFER_BYTES: bytes of envelope bodies kept per session for resume. */
  resumeBufferBytes: 262_144,
  /** Default GW_PRESENCE_LARGE_GROUP: above this many users a group's presence is counts only (docs/protocol.md, "Presence"). */
  presenceLargeGroup: 1_000,
  /** Members in the list page of `ready` and `subscribed`, and the default `members.limit`. */
  memberPage: 100,
  /** Largest `members.limit`. */
  memberPageMax: 1_000,
  /** Default GW_EVENTS_MAXLEN: approximate length cap of the rt:events stream. */
  eventsMaxLen: 100_000,
  /** Default GW_JWKS_MAX_BYTES: a JWK set's body is read up to this, then the fetch is aborted (a set of a few keys is a few KiB). */
  jwksMaxBytes: 262_144,
  /** Longest JWT header segment (base64url characters) read at all: a header is a few dozen bytes, this is refused unparsed. */
  jwtMaxHeaderChars: 2_048,
  /** Keys a JWK set may hold; a larger set is refused (the last good set is kept). */
  jwksMaxKeys: 100,
  /** Default GW_API_MAX_BODY_BYTES: the largest server API request body read. */
  apiMaxBodyBytes: 1_048_576,
  /** Default GW_API_RATE_PER_SEC: server API requests per second per instance. */
  apiRatePerSec: 1_000,
  /** Commands in one server API `batch`, and groups in one `broadcast`. */
  apiBatchMax: 100,
  /** Groups one server API `groups` call ranks at most (its `limit`), and so the most each instance reports for it. */
  apiGroupsMax: 100,
  /** Groups a `groups` call ranks when it names no `limit`. */
  apiGroups: 20,
  /** Admin console sign-in attempts per second per instance (a bucket of its own: attempts never spend the API's). */
  adminSignInsPerSec: 5,
  /** Admin console sign-ins one instance holds at once; a new one past this ends the oldest. */
  adminSessionsMax: 100,
  /**
   * Users in each list of a publish filter (`users`, `exceptUsers`). With ids of up to 256 characters a filter's JSON
   * stays under about 520 KB, read once per message by each instance that has recipients.
   */
  filterUsersMax: 1_000,
} as const;
