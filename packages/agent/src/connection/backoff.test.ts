import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Backoff } from './backoff.js';

describe('Backoff', () => {
  it('doubles from an immediate first retry up to the cap', () => {
    const b = new Backoff({ maxMs: 10_000, jitter: 'none' });
    expect(Array.from({ length: 7 }, () => b.next())).toEqual([0, 1000, 2000, 4000, 8000, 10_000, 10_000]);
  });

  it('starts over after reset', () => {
    const b = new Backoff({ maxMs: 30_000, jitter: 'none' });
    b.next();
    b.next();
    b.next();
    expect(b.attempt).toBe(3);
    b.reset();
    expect([b.next(), b.next()]).toEqual([0, 1000]);
  });

  it('full jitter stays within [0, base delay] and uses the random source', () => {
    const b = new Backoff({ maxMs: 30_000, jitter: 'full', random: () => 0.5 });
    expect([b.next(), b.next(), b.next()]).toEqual([0, 500, 1000]);
  });

  it('equal jitter stays within [delay/2, delay]', () => {
    const lo = new Backoff({ maxMs: 30_000, jitter: 'equal', random: () => 0 });
    const hi = new Backoff({ maxMs: 30_000, jitter: 'equal', random: () => 0.999999 });
    lo.next();
    hi.next();
    expect([lo.next(), lo.next()]).toEqual([500, 1000]);
    expect([hi.next(), hi.next()]).toEqual([1000, 2000]);
  });

  it('property: every jittered delay is within bounds, never above the cap', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('full' as const, 'equal' as const),
        fc.integer({ min: 1, max: 100_000 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), {
          minLength: 1,
          maxLength: 40,
        }),
        (jitter, maxMs, randoms) => {
          let i = 0;
          const b = new Backoff({ maxMs, jitter, random: () => randoms[i++ % randoms.length] ?? 0 });
          for (let n = 0; n < randoms.length; n++) {
            const base = b.baseDelay(n);
            const d = b.next();
            expect(d).toBeLessThanOrEqual(Math.min(base, maxMs));
            expect(d).toBeGreaterThanOrEqual(jitter === 'equal' ? Math.floor(base / 2) : 0);
          }
        },
      ),
    );
  });
});
