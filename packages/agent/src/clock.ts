/** Wall clock, injectable so tests can control timestamps and durations. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export type TimerHandle = unknown;

/**
 * Timer functions, injectable. The defaults look up the globals at call time
 * so `vi.useFakeTimers()` installed after construction still takes effect.
 */
export interface Timers {
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const systemTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
