import { isTerminalStatus, type TaskStatus } from './constants.js';

/**
 * The task status state machine, as data. A status may move only to the
 * statuses listed for it; terminal statuses list none. Archiving moves the row
 * out of the tasks table altogether, so it is not a status.
 *
 * pending   → created, not yet handed to the gateway
 * queued    → waiting in the durable offline queue (agent away) or the agent's local queue
 * submitted → TASK_SUBMIT sent, awaiting TASK_ACK
 * running   → the agent accepted it and is executing
 */
export const TASK_TRANSITIONS: Readonly<Record<TaskStatus, readonly TaskStatus[]>> = {
  pending: ['queued', 'submitted', 'failed', 'cancelled'],
  queued: ['submitted', 'running', 'failed', 'cancelled'],
  submitted: ['queued', 'running', 'completed', 'failed', 'cancelled'],
  running: ['queued', 'completed', 'failed', 'cancelled'],
  completed: [],
  failed: [],
  cancelled: [],
};

export type TransitionVerdict =
  | { kind: 'apply' }
  /** The same terminal message arrived again: nothing to do, not an error. */
  | { kind: 'noop' }
  | { kind: 'illegal'; reason: string };

export function judgeTransition(from: TaskStatus, to: TaskStatus): TransitionVerdict {
  if (from === to) {
    return isTerminalStatus(from) || from === 'running' || from === 'queued' || from === 'submitted'
      ? { kind: 'noop' }
      : { kind: 'illegal', reason: `task is already ${from}` };
  }
  if (TASK_TRANSITIONS[from].includes(to)) return { kind: 'apply' };
  return { kind: 'illegal', reason: `cannot move a ${from} task to ${to}` };
}

export class IllegalTransitionError extends Error {
  constructor(
    readonly taskId: string,
    readonly from: TaskStatus,
    readonly to: TaskStatus,
  ) {
    super(`task ${taskId}: cannot move from ${from} to ${to}`);
    this.name = 'IllegalTransitionError';
  }
}
