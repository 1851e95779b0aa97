import type { Clock, TimerHandle } from '@bematic/protocol';
import type { CircuitState } from '../tasks/task-events.js';

/**
 * What can happen to an agent's circuit:
 * - success: authenticated or answered a heartbeat
 * - failure: missed a heartbeat or a send failed (counted; trips at the threshold when closed)
 * - trip: the connection is gone (heartbeat timeout, socket closed) or the failure threshold was reached
 * - cooldown-elapsed: the open period is over; the next connection is on trial
 */
export type CircuitEvent = 'success' | 'failure' | 'trip' | 'cooldown-elapsed';

/**
 * The circuit's transitions, as one table. A missing entry means the event does
 * not change the state. An authenticated reconnect closes an open circuit
 * directly: a fresh, verified session is better evidence than a cool-down.
 */
export const CIRCUIT_TRANSITIONS: Readonly<
  Record<CircuitState, Readonly<Partial<Record<CircuitEvent, CircuitState>>>>
> = {
  closed: { trip: 'open' },
  open: { 'cooldown-elapsed': 'half-open', success: 'closed' },
  'half-open': { success: 'closed', failure: 'open', trip: 'open' },
};

export interface CircuitBreakerOptions {
  /** Consecutive failures that open a closed circuit. */
  failureThreshold: number;
  /** Time an open circuit waits before going half-open. */
  cooldownMs: number;
}

export const DEFAULT_CIRCUIT_OPTIONS: CircuitBreakerOptions = { failureThreshold: 2, cooldownMs: 30_000 };

/** Per-agent circuit breaker. Reports every state change through `onChange`. */
export class CircuitBreaker {
  private current: CircuitState = 'closed';
  private failures = 0;
  private cooldown: TimerHandle | null = null;

  constructor(
    private readonly clock: Clock,
    private readonly options: CircuitBreakerOptions,
    private readonly onChange: (from: CircuitState, to: CircuitState) => void,
  ) {}

  get state(): CircuitState {
    return this.current;
  }

  record(event: CircuitEvent): CircuitState {
    if (event === 'success') this.failures = 0;
    if (event === 'failure') {
      this.failures += 1;
      if (this.current === 'closed' && this.failures >= this.options.failureThreshold) event = 'trip';
    }
    const to = CIRCUIT_TRANSITIONS[this.current][event];
    if (to !== undefined && to !== this.current) this.moveTo(to);
    return this.current;
  }

  dispose(): void {
    this.stopCooldown();
  }

  private moveTo(to: CircuitState): void {
    const from = this.current;
    this.current = to;
    this.stopCooldown();
    if (to === 'open') {
      this.cooldown = this.clock.setTimeout(() => {
        this.cooldown = null;
        this.record('cooldown-elapsed');
      }, this.options.cooldownMs);
    }
    if (to === 'closed') this.failures = 0;
    this.onChange(from, to);
  }

  private stopCooldown(): void {
    if (this.cooldown !== null) this.clock.clearTimeout(this.cooldown);
    this.cooldown = null;
  }
}
