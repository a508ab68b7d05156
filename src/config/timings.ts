// Default timings, in milliseconds, used when the matching GW_* variable is unset.
export const timings = {
  heartbeatIntervalMs: 10_000,
  heartbeatTimeoutMs: 25_000,
  identifyTimeoutMs: 5_000,
  orphanSessionTtlMs: 30_000,
  /** Default GW_TOKEN_EXPIRY_GRACE_MS: a connection is served this long past its token's `exp`, then closed with 4004. */
  tokenExpiryGraceMs: 10_000,
  shutdownGraceMs: 5_000,
  /** `shutdown.reconnectAfterMs` is this base plus a per-connection random spread, so clients do not reconnect all at once. */
  shutdownReconnectBaseMs: 1_000,
  shutdownReconnectSpreadMs: 4_000,
  /** Default GW_INSTANCE_TTL_MS: an instance's liveness key lives this long; it is refreshed every third of it. */
  instanceTtlMs: 15_000,
  /** Default GW_SIGNAL_DEDUP_MS. */
  signalDedupMs: 3_000,
  /** Longest wait between Redis reconnect attempts (backoff doubles up to this, with jitter). */
  redisMaxBackoffMs: 5_000,
  /**
   * On a Redis Cluster, how often every master is pinged: a master that does not answer makes /health degraded until
   * its replica has taken over and answers in its place.
   */
  redisClusterProbeMs: 1_000,
  /** At start, how long to wait for Redis before serving anyway (degraded) and retrying in the background. */
  redisStartupWaitMs: 3_000,
  /** A Redis command that has not answered by then fails (the gateway carries on locally). */
  redisCommandTimeoutMs: 2_000,
  /** How long an instance waits for each step of a session handoff from another instance before giving up. */
  handoffTimeoutMs: 1_000,
  /**
   * How long a server API `disconnect` or `unsubscribe` waits for another instance's answer: longer than the handoff of
   * a session that instance may have to let settle first (a few handoff steps).
   */
  revocationTimeoutMs: 5_000,
  /**
   * How long a server API `user`, `info` or `groups` waits for another instance's answer: an instance answers from memory at
   * once (no handoff to wait for), so a longer silence means it is stuck or its link is.
   */
  inquiryTimeoutMs: 2_000,
  /**
   * How long an admin console sign-in lasts (the `gw_admin` cookie and the session it names): a working day, after
   * which the operator types the key again. A fixed span, not renewed by use.
   */
  adminSessionMs: 12 * 3600_000,
  /**
   * How long a stopping instance goes on handing sessions over; the rest stay (orphaned) and the shutdown goes on, so a
   * supervisor's kill (compose: stop_grace_period 30 s) never cuts it short.
   */
  handOverMaxMs: 20_000,
  /** Default GW_PRESENCE_BATCH_MS: presence changes in a group are gathered this long, then sent as one batch. */
  presenceBatchMs: 50,
  /** Default GW_PRESENCE_COUNT_INTERVAL_MS: the shortest gap between two `presence_count`s of one large group. */
  presenceCountIntervalMs: 5_000,
  /** Longest gap between two liveness sweeps; shorter timeouts sweep more often. */
  maxSweepIntervalMs: 1_000,
  /** Default GW_JWT_CLOCK_TOLERANCE_MS: leeway for `exp`, `nbf` and `iat` against clocks that differ a little. */
  jwtClockToleranceMs: 5_000,
  /** Default GW_JWKS_TIMEOUT_MS: a whole JWK set fetch, body included. */
  jwksTimeoutMs: 5_000,
  /** Default GW_JWKS_REFRESH_MS: how often the JWK set is refetched in the background. */
  jwksRefreshMs: 600_000,
  /** Default GW_JWKS_COOLDOWN_MS: the least time between a fetch and one triggered by an unknown `kid`, or a retry after a failure. */
  jwksCooldownMs: 30_000,
} as const;
