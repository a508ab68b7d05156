// Default timings, in milliseconds, used when the matching GW_* variable is unset.
export const timings = {
  heartbeatIntervalMs: 10_000,
  heartbeatTimeoutMs: 25_000,
  identifyTimeoutMs: 5_000,
  orphanSessionTtlMs: 30_000,
  shutdownGraceMs: 5_000,
  /** `shutdown.reconnectAfterMs` is this base plus a per-connection random spread, so clients do not reconnect all at once. */
  shutdownReconnectBaseMs: 1_000,
  shutdownReconnectSpreadMs: 4_000,
  /** Longest gap between two liveness sweeps; shorter timeouts sweep more often. */
  maxSweepIntervalMs: 1_000,
} as const;
