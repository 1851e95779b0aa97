import { ManualClock } from '@bematic/testkit';
import { describe, expect, it } from 'vitest';
import type { CircuitState } from '../tasks/task-events.js';
import { CIRCUIT_TRANSITIONS, CircuitBreaker } from './circuit-breaker.js';

function breaker(clock = new ManualClock()) {
  const changes: string[] = [];
  const b = new CircuitBreaker(clock, { failureThreshold: 2, cooldownMs: 1000 }, (from, to) =>
    changes.push(`${from}->${to}`),
  );
  return { b, changes, clock };
}

describe('CircuitBreaker', () => {
  it('stays closed below the failure threshold and trips at it', () => {
    const { b, changes } = breaker();
    expect(b.record('failure')).toBe('closed');
    expect(b.record('success')).toBe('closed');
    expect(b.record('failure')).toBe('closed');
    expect(b.record('failure')).toBe('open');
    expect(changes).toEqual(['closed->open']);
  });

  it('goes half-open after the cool-down, back to open on failure, closed on success', async () => {
    const { b, changes, clock } = breaker();
    b.record('trip');
    await clock.advance(999);
    expect(b.state).toBe('open');
    await clock.advance(1);
    expect(b.state).toBe('half-open');
    b.record('failure');
    expect(b.state).toBe('open');
    await clock.advance(1000);
    b.record('success');
    expect(changes).toEqual([
      'closed->open',
      'open->half-open',
      'half-open->open',
      'open->half-open',
      'half-open->closed',
    ]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('closes an open circuit on an authenticated reconnect and cancels the cool-down', async () => {
    const { b, clock } = breaker();
    b.record('trip');
    b.record('success');
    expect(b.state).toBe('closed');
    expect(clock.pendingTimers).toBe(0);
  });

  it('has a table entry for every state, and every target is a state', () => {
    const states: CircuitState[] = ['closed', 'half-open', 'open'];
    expect(Object.keys(CIRCUIT_TRANSITIONS).sort()).toEqual([...states].sort());
    for (const row of Object.values(CIRCUIT_TRANSITIONS)) {
      for (const to of Object.values(row)) expect(states).toContain(to);
    }
  });
});
