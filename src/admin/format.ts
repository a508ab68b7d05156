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

/** A time (ms since the epoch) as local "2026-12-01 07:24:41": one order whatever the browser's locale, as on the charts. */
export function when(ms: number): string {
  const t = new Date(ms);
  return `${t.getFullYear()}-${two(t.getMonth() + 1)}-${two(t.getDate())} ${clock(ms)}`;
}

/** The local time of day, "07:24:41". */
export function clock(ms: number): string {
  const t = new Date(ms);
  return `${two(t.getHours())}:${two(t.getMinutes())}:${two(t.getSeconds())}`;
}

const two = (n: number) => String(n).padStart(2, '0');

/**
 * uPlot's date templates in the same order as `when` (year first, 24-hour clock) instead of its US defaults
 * (`{M}/{D}/{YY}`, `{h}:{mm}{aa}`), so the table and the axes read the same day the same way.
 */
export function isoTemplate(template: string): string {
  return template
    .replace('{M}/{D}/{YY}', '{YYYY}-{MM}-{DD}')
    .replace('{M}/{D}', '{MM}-{DD}')
    .replace(/\{h\}:\{mm\}/g, '{HH}:{mm}')
    .replace(/\{h\}\{aa\}/g, '{HH}:00')
    .replace(/ ?\{aa\}/g, '');
}
