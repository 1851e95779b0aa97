/** Opaque handle returned by a Clock's timer functions. */
export type TimerHandle = unknown;

/**
 * Time and timers as one dependency, so heartbeats, backoff, throttles, TTLs and
 * grace periods can be driven deterministically in tests (the testkit's
 * ManualClock, or vi fake timers: the system clocks look the globals up at call time).
 */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  setInterval(fn: () => void, ms: number): TimerHandle;
  clearInterval(handle: TimerHandle): void;
}

type NodeTimer = ReturnType<typeof globalThis.setTimeout>;

/** The real clock; its timers keep the process alive, like the globals. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as NodeTimer),
  setInterval: (fn, ms) => globalThis.setInterval(fn, ms),
  clearInterval: (h) => globalThis.clearInterval(h as NodeTimer),
};

/** The real clock for housekeeping timers of a server: they never keep the process alive on their own. */
export const backgroundClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms).unref(),
  clearTimeout: (h) => globalThis.clearTimeout(h as NodeTimer),
  setInterval: (fn, ms) => globalThis.setInterval(fn, ms).unref(),
  clearInterval: (h) => globalThis.clearInterval(h as NodeTimer),
};
