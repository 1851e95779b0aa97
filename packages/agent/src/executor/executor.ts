import type {
  PermissionDecision,
  PermissionRequest,
  TaskCancelled,
  TaskComplete,
  TaskError,
  TaskProgress,
  TaskSubmit,
  WorkspaceMode,
} from '@bematic/protocol';

/** What a running task asks a person to allow. */
export type ApprovalRequest = Pick<PermissionRequest, 'tool' | 'summary' | 'reason'>;

/** Where an executor reports what happens while it runs. */
export interface ExecutionSink {
  progress(progress: Omit<TaskProgress, 'taskId' | 'attempt'>): void;
  /** Assistant text as it arrives; the caller coalesces it into TASK_STREAM frames. */
  stream(text: string): void;
  /**
   * Asks a person to allow something (through the cloud, in the task's thread). Resolves with their
   * answer, or a denial code when nobody can answer; never rejects. Absent: every request is denied.
   */
  requestApproval?(request: ApprovalRequest, signal: AbortSignal): Promise<PermissionDecision>;
}

export type ExecutionOutcome =
  | { kind: 'completed'; payload: Omit<TaskComplete, 'taskId' | 'attempt'> }
  | { kind: 'failed'; payload: Omit<TaskError, 'taskId' | 'attempt'> }
  | { kind: 'cancelled'; payload: Omit<TaskCancelled, 'taskId' | 'attempt'> };

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
  /**
   * Ends whatever an earlier run of this agent left executing (after a crash or kill -9). The
   * agent awaits it before it connects, so the tasks it then reports are the ones really running.
   */
  reapLeftovers?(): Promise<void>;
}
