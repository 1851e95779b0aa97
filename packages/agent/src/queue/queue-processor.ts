import { EventEmitter } from 'node:events';
import {
  type Clock,
  type MessageType,
  type OverloadDetail,
  type PayloadOf,
  type PermissionDecision,
  PRIORITY_RANK,
  type ResourceMetrics,
  systemClock,
  type TaskProgress,
  type TaskSubmit,
  type WorkspaceReport,
} from '@bematic/protocol';
import pino, { type Logger } from 'pino';
import type { ApprovalRequest, ExecutionOutcome, ExecutionPlace, Executor } from '../executor/executor.js';
import type { PathValidation } from '../security/path-validator.js';
import { StreamCoalescer } from '../streaming/stream-coalescer.js';
import type { Workspace, WorkspacePlan } from '../workspace/workspace-manager.js';

/** What the processor sends; the agent wraps it in an envelope and hands it to the outbound buffer. */
export type Emit = <T extends MessageType>(type: T, payload: PayloadOf<T>) => void;

/** Messages about one task: each carries the attempt of the TASK_SUBMIT the agent holds it by. */
type TaskMessageType =
  | 'TASK_ACK'
  | 'TASK_PROGRESS'
  | 'TASK_STREAM'
  | 'TASK_COMPLETE'
  | 'TASK_ERROR'
  | 'TASK_CANCELLED';
type Unstamped<T extends TaskMessageType> = Omit<PayloadOf<T>, 'attempt'>;

export interface ResourceGate {
  isOverloaded(): boolean;
  reason(): string | undefined;
  metrics(): ResourceMetrics;
  /** While overloaded: what is busy, how full, for how long. */
  overload?(): OverloadDetail | undefined;
}

/** Gives each task a place to run; see WorkspaceManager. */
export interface WorkspaceProvider {
  plan(task: TaskSubmit, projectPath: string): Promise<WorkspacePlan>;
  open(task: TaskSubmit, plan: WorkspacePlan): Promise<Workspace>;
  close(task: TaskSubmit, workspace: Workspace): Promise<WorkspaceReport>;
}

export interface QueueProcessorOptions {
  executor: Executor;
  maxConcurrentTasks: number;
  /** Tasks of one project running at once (default: maxConcurrentTasks). */
  projectConcurrency?: number;
  /** Without one, every task runs in its project directory, one at a time per directory. */
  workspaces?: WorkspaceProvider;
  validatePath: (localPath: string) => Promise<PathValidation>;
  resources: ResourceGate;
  emit: Emit;
  logger?: Logger;
  clock?: Clock;
  streamFlushMs?: number;
  streamMaxChars?: number;
  /** Time limit of a task that does not set timeoutMs; the one timer that enforces it is here. Default: none. */
  taskTimeoutMs?: number;
  /** How many finished task ids are remembered to recognise duplicate submits. */
  recentCapacity?: number;
  /** Asks a person to allow something a running task wants; absent: every such request is denied. */
  requestApproval?: (
    taskId: string,
    request: ApprovalRequest,
    signal: AbortSignal,
    attempt: number,
  ) => Promise<PermissionDecision>;
  /**
   * The cloud sent a task this agent holds again, with a newer attempt (its ACK or the connection was lost):
   * what is still to be sent about it must carry the new attempt.
   */
  onNewAttempt?: (taskId: string, attempt: number) => void;
}

export type TaskOutcomeKind = 'completed' | 'failed' | 'cancelled';

export interface QueueProcessorEvents {
  'task-started': [{ taskId: string }];
  'task-finished': [{ taskId: string; outcome: TaskOutcomeKind }];
  duplicate: [{ taskId: string; state: string }];
}

interface Queued {
  task: TaskSubmit;
  plan: WorkspacePlan;
  order: number;
}

/** Why a running task's AbortController fired; decides which terminal message it gets. */
type AbortCause =
  | { kind: 'cancel'; reason: string }
  | { kind: 'timeout' }
  | { kind: 'shutdown' }
  | { kind: 'abandoned'; reason: string };

interface Running {
  task: TaskSubmit;
  lane: string;
  controller: AbortController;
  cause: AbortCause | undefined;
  done: Promise<void>;
}

/**
 * Decides when each accepted task runs: at most `maxConcurrentTasks` at once,
 * at most `projectConcurrency` per project, one per lane (a task's worktree, or
 * a directory worked in place), urgent before high before normal before low
 * (FIFO within a priority), and nothing new while the machine is overloaded.
 * Every accepted task ends in exactly one terminal message.
 *
 * Duplicate TASK_SUBMITs (a task id that is validating, queued, running or
 * recently finished) are ignored completely: no second ACK, no second run.
 */
export class QueueProcessor extends EventEmitter<QueueProcessorEvents> {
  private readonly queued: Queued[] = [];
  private readonly running = new Map<string, Running>();
  private readonly validating = new Map<string, { cancelReason: string | undefined }>();
  private readonly recent = new Set<string>();
  /** The attempt each task is held by (the newest TASK_SUBMIT of it); stamped on everything sent about it. */
  private readonly attempts = new Map<string, number>();
  private readonly busyLanes = new Set<string>();
  private readonly perProject = new Map<string, number>();
  private order = 0;
  private admissionTail: Promise<void> = Promise.resolve();
  private accepting = true;
  private readonly log: Logger;
  private readonly clock: Clock;

  constructor(private readonly options: QueueProcessorOptions) {
    super();
    this.log = (options.logger ?? pino({ level: 'silent' })).child({ component: 'queue-processor' });
    this.clock = options.clock ?? systemClock;
  }

  /** Tasks this agent holds (running or queued), for reconciliation after a reconnect. */
  activeTaskIds(): string[] {
    return [...this.running.keys(), ...this.queued.map((q) => q.task.taskId), ...this.validating.keys()];
  }

  counts(): { activeTasks: number; queuedTasks: number } {
    return { activeTasks: this.running.size, queuedTasks: this.queued.length + this.validating.size };
  }

  async submit(task: TaskSubmit): Promise<void> {
    const { taskId } = task;
    const state = this.stateOf(taskId);
    if (state !== undefined) {
      this.resubmitted(task, state);
      return;
    }
    const { resources } = this.options;
    this.attempts.set(taskId, task.attempt);
    if (!this.accepting) {
      this.refuse(taskId, 'SHUTTING_DOWN', 'agent is shutting down');
      this.attempts.delete(taskId);
      return;
    }
    if (resources.isOverloaded()) {
      const overload = resources.overload?.();
      this.say('TASK_ACK', {
        taskId,
        accepted: false,
        queued: false,
        code: 'OVERLOADED',
        reason: `agent overloaded: ${resources.reason() ?? 'resources exhausted'}`.slice(0, 500),
        ...(overload !== undefined && { overload }),
        resourceStatus: resources.metrics(),
      });
      this.attempts.delete(taskId);
      return;
    }

    const pending = { cancelReason: undefined as string | undefined };
    this.validating.set(taskId, pending);
    // Paths are checked concurrently, but tasks are admitted in the order they arrived:
    // each submit waits for the one before it. Admission below is synchronous, so
    // releasing the next one before it is safe.
    const checked = this.check(task);
    const previous = this.admissionTail;
    let admitted!: () => void;
    this.admissionTail = new Promise<void>((resolve) => {
      admitted = resolve;
    });
    const validation = await checked;
    await previous;
    admitted();
    this.validating.delete(taskId);

    if (!validation.ok) {
      this.log.warn({ taskId, localPath: task.localPath, reason: validation.reason }, 'task refused');
      this.refuse(taskId, validation.errorCode, validation.reason);
      this.say('TASK_ERROR', {
        taskId,
        error: validation.error,
        recoverable: false,
        errorCode: validation.errorCode,
        ...(validation.errorCode === 'PATH_NOT_ALLOWED' && {
          context: { localPath: task.localPath.slice(0, 500) },
        }),
      });
      this.finish(taskId, 'failed');
      return;
    }
    if (pending.cancelReason !== undefined) {
      this.say('TASK_ACK', { taskId, accepted: true, queued: true, resourceStatus: resources.metrics() });
      this.say('TASK_CANCELLED', { taskId, reason: pending.cancelReason });
      this.finish(taskId, 'cancelled');
      return;
    }
    const { plan } = validation;
    const entry: Queued = { task, plan, order: this.order++ };
    const at = this.queued.findIndex((q) => compare(entry, q) < 0);
    this.queued.splice(at < 0 ? this.queued.length : at, 0, entry);
    const starting = this.takeRunnable();
    const startsNow = starting.some((q) => q === entry);
    this.log.info(
      {
        taskId,
        projectId: task.projectId,
        bot: task.botName,
        command: task.command,
        model: task.model,
        priority: task.priority,
        ...(startsNow ? {} : { queuePosition: this.queued.indexOf(entry) }),
        ...(task.attachments?.length ? { attachments: task.attachments.length } : {}),
      },
      startsNow ? 'task received' : 'task received, queued',
    );
    this.say('TASK_ACK', {
      taskId,
      accepted: true,
      queued: !startsNow,
      ...(!startsNow && { queuePosition: this.queued.indexOf(entry) }),
      resourceStatus: resources.metrics(),
    });
    for (const q of starting) this.launch(q);
  }

  cancel(taskId: string, reason: string): void {
    const pending = this.validating.get(taskId);
    if (pending !== undefined) {
      pending.cancelReason = reason;
      return;
    }
    const i = this.queued.findIndex((q) => q.task.taskId === taskId);
    if (i >= 0) {
      this.queued.splice(i, 1);
      this.say('TASK_CANCELLED', { taskId, reason });
      this.finish(taskId, 'cancelled');
      return;
    }
    const run = this.running.get(taskId);
    if (run !== undefined) {
      run.cause ??= { kind: 'cancel', reason };
      run.controller.abort();
      return;
    }
    this.log.info({ taskId }, 'cancel for a task this agent does not hold; ignored');
  }

  /** Starts whatever became runnable (after a task finished or the machine recovered). */
  pump(): void {
    for (const q of this.takeRunnable()) this.launch(q);
  }

  /**
   * Graceful: refuse new work and wait for queued and running tasks to finish.
   * Otherwise: abort everything; each task reports TASK_ERROR AGENT_LOST (recoverable).
   */
  async shutdown({ graceful }: { graceful: boolean }): Promise<void> {
    this.accepting = false;
    if (!graceful) {
      for (const q of this.queued.splice(0)) {
        this.say('TASK_ERROR', {
          taskId: q.task.taskId,
          error: 'The agent stopped before the task started',
          recoverable: true,
          errorCode: 'AGENT_LOST',
        });
        this.finish(q.task.taskId, 'failed');
      }
      for (const run of this.running.values()) {
        run.cause ??= { kind: 'shutdown' };
        run.controller.abort();
      }
    }
    this.pump();
    while (this.running.size > 0) {
      await Promise.all([...this.running.values()].map((r) => r.done));
    }
  }

  /**
   * Stops everything held, as a hard shutdown does, but keeps accepting new work: the cloud is about to
   * give these tasks up (a connection lost for too long), so none of them may go on running or start later.
   * Resolves once every run has ended (its processes gone) and reported TASK_ERROR AGENT_LOST.
   */
  async abandon(reason: string): Promise<string[]> {
    const ids: string[] = [];
    for (const q of this.queued.splice(0)) {
      ids.push(q.task.taskId);
      this.say('TASK_ERROR', {
        taskId: q.task.taskId,
        error: `The task was given up before it started: ${reason}`.slice(0, 10_000),
        recoverable: true,
        errorCode: 'AGENT_LOST',
      });
      this.finish(q.task.taskId, 'failed');
    }
    for (const [taskId, run] of this.running) {
      ids.push(taskId);
      run.cause ??= { kind: 'abandoned', reason };
      run.controller.abort();
    }
    await Promise.all([...this.running.values()].map((r) => r.done));
    return ids;
  }

  /** The attempt the task is held by (1 for a task never seen: nothing of it is sent before its submit). */
  attemptOf(taskId: string): number {
    return this.attempts.get(taskId) ?? 1;
  }

  /** Sends a message about a task, stamped with the attempt the agent holds it by. */
  private say<T extends TaskMessageType>(type: T, payload: Unstamped<T>): void {
    const taskId = (payload as { taskId: string }).taskId;
    this.options.emit(type, { ...payload, attempt: this.attemptOf(taskId) } as PayloadOf<T>);
  }

  private refuse(
    taskId: string,
    code: 'SHUTTING_DOWN' | 'PATH_NOT_ALLOWED' | 'WORKSPACE_FAILED',
    reason: string,
  ) {
    this.say('TASK_ACK', { taskId, accepted: false, queued: false, code, reason: reason.slice(0, 500) });
  }

  /**
   * A TASK_SUBMIT for a task this agent already holds. The same attempt again is a replay: ignored. A newer
   * attempt is the cloud resending after a lost ACK or connection: the agent keeps the one run it has, adopts
   * the new attempt for everything it sends from now on (the cloud ignores the old one), and answers so the
   * cloud stops resending.
   */
  private resubmitted(task: TaskSubmit, state: string): void {
    const { taskId, attempt } = task;
    const held = this.attempts.get(taskId);
    if (held !== undefined && attempt <= held) {
      this.log.info({ taskId, state, attempt }, 'duplicate TASK_SUBMIT ignored');
      this.emit('duplicate', { taskId, state });
      return;
    }
    this.attempts.set(taskId, attempt);
    this.options.onNewAttempt?.(taskId, attempt);
    this.log.info({ taskId, state, attempt, previous: held }, 'TASK_SUBMIT resent: newer attempt adopted');
    this.emit('duplicate', { taskId, state });
    const resources = this.options.resources;
    if (state === 'finished') {
      this.say('TASK_ACK', {
        taskId,
        accepted: false,
        queued: false,
        code: 'DUPLICATE',
        reason: 'the agent already finished this task; its result follows',
      });
    } else if (state === 'running') {
      this.say('TASK_ACK', { taskId, accepted: true, queued: false, resourceStatus: resources.metrics() });
    } else if (state === 'queued') {
      const position = this.queued.findIndex((q) => q.task.taskId === taskId);
      this.say('TASK_ACK', {
        taskId,
        accepted: true,
        queued: true,
        ...(position >= 0 && { queuePosition: position }),
        resourceStatus: resources.metrics(),
      });
    }
    // Still validating: its ACK follows, stamped with the attempt just adopted.
  }

  private stateOf(taskId: string): string | undefined {
    if (this.validating.has(taskId)) return 'validating';
    if (this.running.has(taskId)) return 'running';
    if (this.queued.some((q) => q.task.taskId === taskId)) return 'queued';
    if (this.recent.has(taskId)) return 'finished';
    return undefined;
  }

  private takeRunnable(): Queued[] {
    const out: Queued[] = [];
    // Accepted work still drains during a graceful shutdown, even under load.
    if (this.accepting && this.options.resources.isOverloaded()) return out;
    for (
      let i = 0;
      i < this.queued.length && this.running.size + out.length < this.options.maxConcurrentTasks;
    ) {
      const q = this.queued[i]!;
      const project = q.task.projectId;
      if (this.busyLanes.has(q.plan.lane) || (this.perProject.get(project) ?? 0) >= this.projectLimit()) {
        i++;
        continue;
      }
      this.queued.splice(i, 1);
      this.busyLanes.add(q.plan.lane);
      this.perProject.set(project, (this.perProject.get(project) ?? 0) + 1);
      out.push(q);
    }
    return out;
  }

  private launch(q: Queued): void {
    const { task } = q;
    const { taskId } = task;
    const controller = new AbortController();
    const run: Running = { task, lane: q.plan.lane, controller, cause: undefined, done: Promise.resolve() };
    this.running.set(taskId, run);
    let finished = false;
    const coalescer = new StreamCoalescer({
      taskId,
      send: (frame) => this.say('TASK_STREAM', frame),
      clock: this.clock,
      ...(this.options.streamFlushMs !== undefined && { flushMs: this.options.streamFlushMs }),
      ...(this.options.streamMaxChars !== undefined && { maxChars: this.options.streamMaxChars }),
    });
    const sink = {
      // Everything the executor reports travels on (the step, tool input/result, the running usage totals).
      progress: (p: Omit<TaskProgress, 'taskId' | 'attempt'>) => {
        if (finished) return;
        coalescer.flush(); // keep text and steps in the order the executor produced them
        this.say('TASK_PROGRESS', { taskId, ...p, message: p.message.slice(0, 2000) });
      },
      stream: (text: string) => {
        if (!finished) coalescer.push(text);
      },
      requestApproval: (request: ApprovalRequest, signal: AbortSignal): Promise<PermissionDecision> => {
        if (finished) return Promise.resolve('cancelled');
        coalescer.flush();
        // A cancelled task stops waiting whether or not the executor passes the cancellation on.
        const either = AbortSignal.any([signal, controller.signal]);
        return (
          this.options.requestApproval?.(taskId, request, either, this.attemptOf(taskId)) ??
          Promise.resolve('undeliverable')
        );
      },
    };
    const timeoutMs = task.timeoutMs ?? this.options.taskTimeoutMs;
    const timeout =
      timeoutMs !== undefined
        ? this.clock.setTimeout(() => {
            run.cause ??= { kind: 'timeout' };
            controller.abort();
          }, timeoutMs)
        : undefined;

    this.say('TASK_PROGRESS', { taskId, kind: 'started', message: 'Task started' });
    this.emit('task-started', { taskId });
    const startedAt = this.clock.now();
    this.log.info({ taskId, lane: q.plan.lane }, 'task started');
    run.done = (async () => {
      let outcome: ExecutionOutcome;
      let report: WorkspaceReport | undefined;
      const opened = await this.openWorkspace(task, q.plan);
      if (!opened.ok) {
        outcome = opened.outcome;
      } else {
        try {
          outcome = await this.options.executor.execute(task, sink, controller.signal, opened.place);
        } catch (err) {
          this.log.error({ taskId, err: String(err) }, 'executor threw');
          outcome = {
            kind: 'failed',
            payload: {
              error: `Executor failed: ${err instanceof Error ? err.message : String(err)}`.slice(0, 10_000),
              recoverable: false,
              errorCode: 'EXECUTION_FAILED',
            },
          };
        }
        if (opened.workspace !== undefined) report = await this.closeWorkspace(task, opened.workspace);
      }
      if (timeout !== undefined) this.clock.clearTimeout(timeout);
      finished = true;
      coalescer.close();
      const kind = this.report(taskId, run.cause, outcome, coalescer.text, report);
      this.log.info(
        {
          taskId,
          outcome: kind,
          durationMs: this.clock.now() - startedAt,
          ...(outcome.payload.metrics
            ? { costUsd: outcome.payload.metrics.costUsd, turns: outcome.payload.metrics.numTurns }
            : {}),
          ...(outcome.kind === 'failed' ? { errorCode: outcome.payload.errorCode } : {}),
          ...(report?.commit ? { commit: report.commit.slice(0, 12), files: report.files.length } : {}),
        },
        `task ${kind}`,
      );
      this.running.delete(taskId);
      this.busyLanes.delete(q.plan.lane);
      const left = (this.perProject.get(task.projectId) ?? 1) - 1;
      if (left > 0) this.perProject.set(task.projectId, left);
      else this.perProject.delete(task.projectId);
      this.finish(taskId, kind);
      this.pump();
    })();
  }

  /** Sends the one terminal message for a run; an abort decides over whatever the executor said. */
  private report(
    taskId: string,
    cause: AbortCause | undefined,
    outcome: ExecutionOutcome,
    streamed: string,
    workspace: WorkspaceReport | undefined,
  ): TaskOutcomeKind {
    const partial = (): string | undefined => {
      if (outcome.kind === 'cancelled') return outcome.payload.partialResult ?? (streamed || undefined);
      if (outcome.kind === 'completed') return outcome.payload.result;
      return streamed || undefined;
    };
    const common = {
      ...(outcome.payload.sessionId !== undefined && { sessionId: outcome.payload.sessionId }),
      ...(outcome.payload.metrics !== undefined && { metrics: outcome.payload.metrics }),
      ...(workspace !== undefined && { workspace }),
    };
    if (cause?.kind === 'cancel' || (cause === undefined && outcome.kind === 'cancelled')) {
      const p = partial();
      this.say('TASK_CANCELLED', {
        taskId,
        reason: cause?.kind === 'cancel' ? cause.reason : 'cancelled by the executor',
        ...(p !== undefined && { partialResult: p.slice(0, 500_000) }),
        ...common,
      });
      return 'cancelled';
    }
    // A run that finished its work before a timeout, shutdown or abandon landed keeps its result.
    if (cause !== undefined && outcome.kind !== 'completed') {
      this.say('TASK_ERROR', {
        taskId,
        error:
          cause.kind === 'timeout'
            ? 'Task timed out'
            : cause.kind === 'abandoned'
              ? `The agent stopped the task: ${cause.reason}`.slice(0, 10_000)
              : 'The agent stopped while the task was running',
        recoverable: true,
        errorCode: cause.kind === 'timeout' ? 'TIMEOUT' : 'AGENT_LOST',
        ...common,
      });
      return 'failed';
    }
    if (outcome.kind === 'completed') {
      this.say('TASK_COMPLETE', {
        taskId,
        ...outcome.payload,
        ...(workspace !== undefined && { workspace }),
        resourceMetrics: this.options.resources.metrics(),
      });
      return 'completed';
    }
    if (outcome.kind === 'failed') {
      this.say('TASK_ERROR', { taskId, ...outcome.payload, ...(workspace !== undefined && { workspace }) });
      return 'failed';
    }
    return 'cancelled';
  }

  private projectLimit(): number {
    return this.options.projectConcurrency ?? this.options.maxConcurrentTasks;
  }

  /** Path check, then the task's lane (which needs the real path). Never rejects. */
  private async check(
    task: TaskSubmit,
  ): Promise<
    | { ok: true; plan: WorkspacePlan }
    | { ok: false; reason: string; error: string; errorCode: 'PATH_NOT_ALLOWED' | 'WORKSPACE_FAILED' }
  > {
    const validation = await this.options.validatePath(task.localPath).catch(
      (err: unknown): PathValidation => ({
        ok: false,
        reason: `path could not be checked: ${String(err)}`,
      }),
    );
    if (!validation.ok) {
      return {
        ok: false,
        reason: validation.reason,
        error: `Path not allowed: ${validation.reason}`,
        errorCode: 'PATH_NOT_ALLOWED',
      };
    }
    const projectPath = validation.realPath;
    const { workspaces } = this.options;
    if (workspaces === undefined)
      return { ok: true, plan: { mode: 'in-place', lane: `dir:${projectPath}`, projectPath } };
    try {
      return { ok: true, plan: await workspaces.plan(task, projectPath) };
    } catch (err) {
      const reason = `Could not prepare a workspace: ${err instanceof Error ? err.message : String(err)}`;
      return { ok: false, reason, error: reason.slice(0, 10_000), errorCode: 'WORKSPACE_FAILED' };
    }
  }

  private async openWorkspace(
    task: TaskSubmit,
    plan: WorkspacePlan,
  ): Promise<
    | { ok: true; place: ExecutionPlace; workspace: Workspace | undefined }
    | { ok: false; outcome: ExecutionOutcome }
  > {
    const { workspaces } = this.options;
    if (workspaces === undefined) {
      return {
        ok: true,
        place: { cwd: plan.projectPath, projectPath: plan.projectPath, mode: plan.mode },
        workspace: undefined,
      };
    }
    try {
      const ws = await workspaces.open(task, plan);
      const place: ExecutionPlace = {
        cwd: ws.cwd,
        projectPath: ws.projectPath,
        mode: ws.mode,
        ...(ws.worktreePath !== undefined && { worktreePath: ws.worktreePath }),
      };
      return { ok: true, place, workspace: ws };
    } catch (err) {
      this.log.warn({ taskId: task.taskId, err: String(err) }, 'workspace could not be opened');
      return {
        ok: false,
        outcome: {
          kind: 'failed',
          payload: {
            error: (err instanceof Error ? err.message : String(err)).slice(0, 10_000),
            recoverable: false,
            errorCode: 'WORKSPACE_FAILED',
          },
        },
      };
    }
  }

  private async closeWorkspace(task: TaskSubmit, ws: Workspace): Promise<WorkspaceReport | undefined> {
    try {
      return await this.options.workspaces?.close(task, ws);
    } catch (err) {
      this.log.error({ taskId: task.taskId, err: String(err) }, "could not commit the task's work");
      return undefined;
    }
  }

  private finish(taskId: string, outcome: TaskOutcomeKind): void {
    this.recent.add(taskId);
    const cap = this.options.recentCapacity ?? 10_000;
    if (this.recent.size > cap) {
      const oldest = this.recent.values().next().value;
      if (oldest !== undefined) {
        this.recent.delete(oldest);
        this.attempts.delete(oldest);
      }
    }
    this.emit('task-finished', { taskId, outcome });
  }
}

function compare(a: Queued, b: Queued): number {
  return PRIORITY_RANK[a.task.priority] - PRIORITY_RANK[b.task.priority] || a.order - b.order;
}
