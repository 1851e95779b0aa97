import type { TaskCancelled, TaskComplete, TaskError, TaskProgress, TaskSubmit } from '@bematic/protocol';

/** Where an executor reports what happens while it runs. */
export interface ExecutionSink {
  progress(progress: Omit<TaskProgress, 'taskId'>): void;
  /** Assistant text as it arrives; the caller coalesces it into TASK_STREAM frames. */
  stream(text: string): void;
}

export type ExecutionOutcome =
  | { kind: 'completed'; payload: Omit<TaskComplete, 'taskId'> }
  | { kind: 'failed'; payload: Omit<TaskError, 'taskId'> }
  | { kind: 'cancelled'; payload: Omit<TaskCancelled, 'taskId'> };

/**
 * Runs one task. Resolves with exactly one outcome and never rejects; when
 * `signal` aborts it stops promptly and resolves `cancelled` with what it has.
 */
export interface Executor {
  execute(task: TaskSubmit, sink: ExecutionSink, signal: AbortSignal): Promise<ExecutionOutcome>;
}
