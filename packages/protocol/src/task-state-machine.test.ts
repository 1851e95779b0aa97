import { describe, expect, it } from 'vitest';
import { isTerminalStatus, TASK_STATUSES, type TaskStatus } from './constants.js';
import { IllegalTransitionError, judgeTransition, TASK_TRANSITIONS } from './task-state-machine.js';

/**
 * The expected verdict for every (from, to) pair, written out by hand from the
 * lifecycle spec rather than derived from TASK_TRANSITIONS, so a change to the
 * table has to be made here too. A = apply, N = idempotent no-op, X = illegal.
 * Columns follow TASK_STATUSES: pending queued submitted running completed failed cancelled.
 */
const EXPECTED: Record<TaskStatus, string> = {
  pending: 'X A A X X A A',
  queued: 'X N A A X A A',
  submitted: 'X A N A A A A',
  running: 'X A X N A A A',
  completed: 'X X X X N X X',
  failed: 'X X X X X N X',
  cancelled: 'X X X X X X N',
};

const KIND = { A: 'apply', N: 'noop', X: 'illegal' } as const;

const cases = TASK_STATUSES.flatMap((from) => {
  const row = EXPECTED[from].split(' ');
  return TASK_STATUSES.map((to, i) => {
    const letter = row[i];
    if (letter !== 'A' && letter !== 'N' && letter !== 'X') throw new Error(`bad table cell ${from}/${to}`);
    return { from, to, kind: KIND[letter] };
  });
});

describe('judgeTransition', () => {
  it('has a hand-written verdict for all 49 pairs', () => {
    expect(Object.keys(EXPECTED).sort()).toEqual([...TASK_STATUSES].sort());
    for (const from of TASK_STATUSES)
      expect(EXPECTED[from].split(' '), from).toHaveLength(TASK_STATUSES.length);
    expect(cases).toHaveLength(49);
  });

  it.each(cases)('$from → $to is $kind', ({ from, to, kind }) => {
    const verdict = judgeTransition(from, to);
    expect(verdict.kind).toBe(kind);
    if (verdict.kind === 'illegal') {
      expect(verdict.reason).toContain(from);
    }
  });

  it('agrees with the transition table for every move between different statuses', () => {
    for (const from of TASK_STATUSES) {
      for (const to of TASK_STATUSES) {
        if (from === to) continue;
        expect(judgeTransition(from, to).kind === 'apply', `${from} → ${to}`).toBe(
          TASK_TRANSITIONS[from].includes(to),
        );
      }
    }
  });
});

describe('TASK_TRANSITIONS', () => {
  it('lets no terminal status move anywhere', () => {
    for (const s of TASK_STATUSES.filter(isTerminalStatus)) expect(TASK_TRANSITIONS[s]).toEqual([]);
  });

  it('lets every live task fail or be cancelled, so none can get stuck', () => {
    for (const s of TASK_STATUSES.filter((x) => !isTerminalStatus(x))) {
      expect(TASK_TRANSITIONS[s]).toContain('failed');
      expect(TASK_TRANSITIONS[s]).toContain('cancelled');
    }
  });

  it('never lists a status as its own successor', () => {
    for (const s of TASK_STATUSES) expect(TASK_TRANSITIONS[s]).not.toContain(s);
  });

  it('reaches running and a completion from pending', () => {
    const reachable = new Set<TaskStatus>(['pending']);
    for (let grew = true; grew; ) {
      grew = false;
      for (const s of [...reachable]) {
        for (const next of TASK_TRANSITIONS[s]) {
          if (!reachable.has(next)) {
            reachable.add(next);
            grew = true;
          }
        }
      }
    }
    expect([...reachable].sort()).toEqual([...TASK_STATUSES].sort());
  });
});

describe('IllegalTransitionError', () => {
  it('names the task and both statuses', () => {
    const err = new IllegalTransitionError('task_1', 'completed', 'running');
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('IllegalTransitionError');
    expect(err).toMatchObject({ taskId: 'task_1', from: 'completed', to: 'running' });
    expect(err.message).toBe('task task_1: cannot move from completed to running');
  });
});
