import { describe, expect, it } from 'vitest';
import { formatDuration } from './duration.js';

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [42_400, '42s'],
    [65_000, '1m 05s'],
    [2 * 3600_000 + 7 * 60_000, '2h 07m'],
    [-1, '—'],
  ])('elapsed %d ms → %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it.each([
    [45_000, '45s'],
    [10 * 60_000, '10 min'],
    [125 * 60_000, '2h 5m'],
    [3 * 3600_000, '3h'],
    [48 * 3600_000, '2d'],
    [null, 'unknown'],
  ])('approx %s ms → %s', (ms, text) => {
    expect(formatDuration(ms, 'approx')).toBe(text);
  });

  it('rounds a wait up when asked, never showing zero', () => {
    expect(formatDuration(61_000, 'approx')).toBe('1 min');
    expect(formatDuration(61_000, 'approx', { roundUp: true })).toBe('2 min');
    expect(formatDuration(10, 'approx', { roundUp: true })).toBe('1s');
  });
});
