// Public paths served by the gateway.
export const routes = {
  /** WebSocket endpoint (upgrade only; a plain GET answers 426). */
  ws: '/rt',
  health: '/health',
} as const;
