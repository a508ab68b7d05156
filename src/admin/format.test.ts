// How the console writes dates: one order (year first, 24-hour clock) in its tables and on its chart axes.
import { describe, expect, it } from 'vitest';
import { isoTemplate, when } from './format';

describe('console dates', () => {
  it('writes a time year first on a 24-hour clock, whatever the locale', () => {
    expect(when(new Date(2026, 11, 1, 7, 4, 9).getTime())).toBe('2026-12-01 07:04:09');
  });

  it('turns uPlot’s US date templates into the same order', () => {
    expect(isoTemplate('\n{M}/{D}/{YY}')).toBe('\n{YYYY}-{MM}-{DD}');
    expect(isoTemplate('{h}:{mm}{aa}')).toBe('{HH}:{mm}');
    expect(isoTemplate('{M}/{D}/{YY} {h}:{mm}:{ss} {aa}')).toBe('{YYYY}-{MM}-{DD} {HH}:{mm}:{ss}');
    expect(isoTemplate('{h}{aa}')).toBe('{HH}:00');
    expect(isoTemplate(':{ss}')).toBe(':{ss}');
  });
});
