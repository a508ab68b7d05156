// How numbers and times read in the console.

/** 1234 → "1,234"; fractions to at most `digits` places. */
export function number(value: number, digits = 0): string {
  return value.toLocaleString('en', { maximumFractionDigits: digits });
}

/** A rate per second, to one decimal. */
export const perSecond = (value: number) => number(value, 1);

/** Milliseconds, to three decimals (fan-outs take microseconds). */
export const millis = (value: number) => `${number(value, 3)} ms`;

/** Seconds of uptime as "3 d 4 h", "2 h 5 min", "4 min 12 s". */
export function duration(seconds: number): string {
  const d = Math.floor(seconds / 86_400);
  const h = Math.floor((seconds % 86_400) / 3_600);
  const m = Math.floor((seconds % 3_600) / 60);
  const s = seconds % 60;
  if (d > 0) return `${d} d ${h} h`;
  if (h > 0) return `${h} h ${m} min`;
  return m > 0 ? `${m} min ${s} s` : `${s} s`;
}

/** A time (ms since the epoch) as the browser's local date and time. */
export function when(ms: number): string {
  return new Date(ms).toLocaleString('en-GB', { dateStyle: 'short', timeStyle: 'medium' });
}
