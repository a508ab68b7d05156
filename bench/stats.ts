// Figures over samples, shared by the benchmark's processes.

/** The `p`-quantile (0..1) of samples already sorted ascending, nearest-rank; 0 when there are none. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}
