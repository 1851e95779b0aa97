/** Summary of a sample of numbers (milliseconds, usually). */
export interface Summary {
  count: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/**
 * The q-quantile (0..1) by linear interpolation between closest ranks, the
 * definition most tools use; NaN for an empty sample.
 */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(Math.max(q, 0), 1) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const low = sorted[lo] as number;
  const high = sorted[hi] as number;
  return low + (high - low) * (rank - lo);
}

export const median = (values: readonly number[]): number => percentile(values, 0.5);

export function summarize(values: readonly number[]): Summary {
  const count = values.length;
  return {
    count,
    min: count ? Math.min(...values) : Number.NaN,
    p50: percentile(values, 0.5),
    p90: percentile(values, 0.9),
    p99: percentile(values, 0.99),
    max: count ? Math.max(...values) : Number.NaN,
    mean: count ? values.reduce((a, b) => a + b, 0) / count : Number.NaN,
  };
}

/** Rounds for display and JSON: 3 significant decimals below 10, fewer above. */
export function round(value: number): number {
  if (!Number.isFinite(value)) return value;
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
