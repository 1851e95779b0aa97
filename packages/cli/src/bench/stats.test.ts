import { describe, expect, it } from 'vitest';
import { median, percentile, round, summarize } from './stats.js';

describe('bench stats', () => {
  it('interpolates between closest ranks', () => {
    const xs = [40, 10, 30, 20];
    expect(percentile(xs, 0)).toBe(10);
    expect(percentile(xs, 1)).toBe(40);
    expect(median(xs)).toBe(25);
    expect(percentile(xs, 0.9)).toBeCloseTo(37);
  });

  it('summarizes without reordering the input and reports NaN for nothing', () => {
    const xs = [3, 1, 2];
    expect(summarize(xs)).toMatchObject({ count: 3, min: 1, p50: 2, max: 3, mean: 2 });
    expect(xs).toEqual([3, 1, 2]);
    expect(Number.isNaN(summarize([]).p99)).toBe(true);
  });

  it('rounds to fewer decimals as values grow', () => {
    expect(round(0.123456)).toBe(0.123);
    expect(round(1.23456)).toBe(1.23);
    expect(round(12.3456)).toBe(12.3);
    expect(round(123.456)).toBe(123);
  });
});
