import { describe, expect, it } from 'vitest';
import { SlidingWindowRateLimiter } from './sliding-window.js';

describe('SlidingWindowRateLimiter', () => {
  it('counts recorded hits per key until they leave the window, and forgets a key on reset', () => {
    let now = 0;
    const limiter = new SlidingWindowRateLimiter({ limit: 2, windowMs: 1000 }, () => now);
    limiter.record('a');
    now = 400;
    limiter.record('a');
    expect(limiter.isLimited('a')).toBe(true);
    expect(limiter.isLimited('b')).toBe(false);
    now = 1000; // the first hit has left the window
    expect(limiter.status('a')).toEqual({ used: 1, limit: 2, remaining: 1, resetInMs: 400 });
    limiter.reset('a');
    expect(limiter.status('a').used).toBe(0);
  });

  it('takes its defaults from the rate-limit settings', () => {
    const limiter = new SlidingWindowRateLimiter();
    expect([limiter.limit, limiter.windowMs]).toEqual([20, 3_600_000]);
  });
});
