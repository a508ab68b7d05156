// Origin allowlist shared by the WebSocket upgrade check (Cross-Site WebSocket Hijacking) and CORS.

/** Returns whether a browser `Origin` is allowed. Entries: exact origins, `scheme://host:*` (any port), or `*`. */
export function createOriginPolicy(allowed: readonly string[]): (origin: string) => boolean {
  if (allowed.includes('*')) return () => true;
  const exact = new Set<string>();
  const anyPort: string[] = [];
  for (const entry of allowed) {
    const lower = entry.toLowerCase();
    if (lower.endsWith(':*')) anyPort.push(lower.slice(0, -2));
    else exact.add(lower);
  }
  return (origin) => {
    const o = origin.toLowerCase();
    if (exact.has(o)) return true;
    return anyPort.some((base) => o === base || (o.startsWith(`${base}:`) && /^\d{1,5}$/.test(o.slice(base.length + 1))));
  };
}
