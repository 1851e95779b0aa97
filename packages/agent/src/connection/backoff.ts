export type Jitter = 'full' | 'equal' | 'none';

export interface BackoffOptions {
  /** Delay of the second attempt; the first retry is immediate. Default 1000 ms. */
  baseMs?: number;
  maxMs: number;
  jitter?: Jitter;
  /** Returns a number in [0, 1). */
  random?: () => number;
}

/**
 * Exponential backoff: base delays 0, base, 2·base, 4·base… capped at maxMs,
 * then jittered so a fleet of agents does not reconnect in lockstep.
 * Only `reset()` (called after a successful auth) brings it back to 0.
 */
export class Backoff {
  private attempts = 0;
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly jitter: Jitter;
  private readonly random: () => number;

  constructor(options: BackoffOptions) {
    this.baseMs = options.baseMs ?? 1000;
    this.maxMs = options.maxMs;
    this.jitter = options.jitter ?? 'full';
    this.random = options.random ?? Math.random;
  }

  get attempt(): number {
    return this.attempts;
  }

  /** The un-jittered delay for attempt `n` (0-based). */
  baseDelay(n: number): number {
    if (n <= 0) return 0;
    // 2 ** 1023 is still finite; larger exponents would be Infinity, which min() handles anyway.
    return Math.min(this.maxMs, this.baseMs * 2 ** Math.min(n - 1, 1023));
  }

  next(): number {
    const delay = this.baseDelay(this.attempts);
    this.attempts += 1;
    const r = Math.min(Math.max(this.random(), 0), 1);
    switch (this.jitter) {
      case 'none':
        return delay;
      case 'equal':
        return Math.round(delay / 2 + (r * delay) / 2);
      case 'full':
        return Math.round(r * delay);
    }
  }

  reset(): void {
    this.attempts = 0;
  }
}
