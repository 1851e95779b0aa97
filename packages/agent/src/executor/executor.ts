import type {
  TaskCancelled,
  TaskComplete,
  TaskError,
  TaskProgress,
  TaskSubmit,
  WorkspaceMode,
} from '@bematic/protocol';

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
 * Where a task runs. A writing task gets its own git worktree: `cwd` is inside
 * it and is the only place the task may change; `projectPath` is the checkout
 * it was made from, which the task must not write (and a read-only task only reads).
 */
export interface ExecutionPlace {
  cwd: string;
  projectPath: string;
  mode: WorkspaceMode;
  /** Top of the task's worktree (cwd may be a sub-directory of it). */
  worktreePath?: string;
}

/**
 * Runs one task. Resolves with exactly one outcome and never rejects; when
 * `signal` aborts it stops promptly and resolves `cancelled` with what it has.
 */
export interface Executor {
  /** Without `place`, the task runs in `task.localPath`. */
  execute(
    task: TaskSubmit,
    sink: ExecutionSink,
    signal: AbortSignal,
    place?: ExecutionPlace,
  ): Promise<ExecutionOutcome>;
}
