import {
  IllegalTransitionError,
  isTerminalStatus,
  pickTaskMetrics,
  type TaskAck,
  type TaskCancelled,
  type TaskComplete,
  type TaskError,
  type TaskErrorCode,
  type TaskMetrics,
  type TaskProgress,
  type TaskStatus,
  type TaskStream,
  type TaskSubmission,
} from '@bematic/protocol';
import type { Logger } from 'pino';
import type {
  AttemptGuard,
  NewTask,
  OutboxAttempt,
  Repositories,
  Session,
  Task,
  TaskPatch,
  TransitionResult,
} from '../db/repositories/types.js';
import type { TaskEvents } from './task-events.js';

type Tx = Omit<Repositories, 'transaction'>;

export interface TaskLifecycleDeps {
  repos: Repositories;
  events: TaskEvents;
  logger: Logger;
  now?: () => number;
}

/** What applying a message did: changed the task, repeated a state it already had, or was refused. */
export type ApplyOutcome =
  | { kind: 'applied'; task: Task }
  | { kind: 'duplicate'; task: Task }
  | { kind: 'ignored'; task: Task; reason: string }
  /** From an earlier attempt, or from an agent that no longer owns the task: not applied. */
  | { kind: 'stale'; task: Task; stale: 'agent' | 'attempt' };

/** Whom an agent's message about `task` is from: the task's agent, at the attempt the message carries. */
const guardOf = (task: Task, attempt: number): AttemptGuard => ({ agentId: task.agentId, attempt });

export interface CloudFailure {
  errorCode: TaskErrorCode;
  error: string;
  recoverable: boolean;
  actor?: string;
  context?: Record<string, string | number | boolean>;
}

/**
 * Applies task facts to the database and then tells everyone. Every change
 * goes through TaskRepository.transition (the state machine); events are
 * emitted only after the transaction committed, and terminal events only when
 * the transition really changed the row, so duplicates never notify twice.
 */
export class TaskLifecycle {
  private readonly now: () => number;

  constructor(private readonly deps: TaskLifecycleDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Records a new task as `pending` with its audit entry in one transaction, then emits task.created. */
  async create(task: NewTask, audit: { actor: string; details: Record<string, unknown> }): Promise<Task> {
    const created = await this.deps.repos.transaction(async (tx) => {
      const row = await tx.tasks.create({ ...task, status: 'pending' });
      await tx.audit.log({
        action: 'task.created',
        actor: audit.actor,
        resourceType: 'task',
        resourceId: row.id,
        details: audit.details,
      });
      return row;
    });
    this.deps.events.emit('task.created', { task: created });
    return created;
  }

  /**
   * pending/queued/submitted → submitted with the next attempt (a TASK_SUBMIT about to go out on an open
   * socket). `duplicate` when it was already submitted (a resend): the attempt is new all the same. `outbox`:
   * the outbox row written or claimed in the same transaction (ignored when another instance holds the row).
   */
  async markSubmitted(taskId: string, agentId: string, outbox?: OutboxAttempt): Promise<ApplyOutcome> {
    // Through the group commit: the dispatches of one tick share a commit.
    const begun = await this.deps.repos.transaction((tx) => tx.tasks.beginAttempt(taskId, agentId, outbox));
    if (!begun) {
      const task = await this.deps.repos.tasks.findById(taskId);
      if (!task) throw new Error(`task ${taskId} not found`);
      return { kind: 'ignored', task, reason: `task is ${task.status}` };
    }
    return begun.from === 'submitted'
      ? { kind: 'duplicate', task: begun.task }
      : { kind: 'applied', task: begun.task };
  }

  /**
   * markSubmitted for a batch of tasks waiting in the outbox for `agentId` (a drain), each claiming its row:
   * one transaction of a few statements for the whole batch. Only the tasks begun are returned, in the order
   * asked, with the payload their row holds; `duplicate` when one was already submitted (a resend).
   */
  async markSubmittedMany(
    taskIds: readonly string[],
    agentId: string,
    at: number,
  ): Promise<Array<{ kind: 'applied' | 'duplicate'; task: Task; payload: TaskSubmission }>> {
    const begun = await this.deps.repos.transaction((tx) => tx.tasks.beginAttempts(taskIds, agentId, at));
    return begun.map((b) => ({
      kind: b.from === 'submitted' ? 'duplicate' : 'applied',
      task: b.task,
      payload: b.entry.payload,
    }));
  }

  emitSubmitted(task: Task): void {
    this.deps.events.emit('task.submitted', { task });
  }

  /** → queued: waiting in the offline queue. Emits task.queued when the status changed. */
  async markQueued(
    taskId: string,
    agentId: string,
    why: { reason: string; agentOnline: boolean; reconnectEtaMs: number | null },
    /** When the agent's refusal is the cause: only that attempt of that agent's may move it. */
    guard?: AttemptGuard,
  ): Promise<ApplyOutcome> {
    const outcome = await this.move(taskId, 'queued', { agentId }, guard);
    if (outcome.kind === 'applied') this.deps.events.emit('task.queued', { task: outcome.task, ...why });
    return outcome;
  }

  async acknowledge(task: Task, ack: TaskAck): Promise<ApplyOutcome> {
    if (task.attempt !== ack.attempt) return { kind: 'stale', task, stale: 'attempt' };
    if (ack.queued) {
      this.deps.events.emit('task.acknowledged', {
        task,
        queued: true,
        queuePosition: ack.queuePosition ?? null,
      });
      return { kind: 'applied', task };
    }
    const started = await this.start(task.id, guardOf(task, ack.attempt));
    if (started.kind === 'applied' || started.kind === 'duplicate') {
      this.deps.events.emit('task.acknowledged', { task: started.task, queued: false, queuePosition: null });
    }
    if (started.kind === 'applied') this.deps.events.emit('task.started', { task: started.task });
    return started;
  }

  async progress(task: Task, progress: TaskProgress): Promise<ApplyOutcome> {
    const live = await this.ensureRunning(task, progress.attempt);
    if (live.kind === 'applied') this.deps.events.emit('task.progress', { task: live.task, progress });
    return live;
  }

  async stream(task: Task, chunk: TaskStream): Promise<ApplyOutcome> {
    const live = await this.ensureRunning(task, chunk.attempt);
    if (live.kind === 'applied') this.deps.events.emit('task.stream', { task: live.task, text: chunk.text });
    return live;
  }

  /** Work reported for a task the agent had queued means it has started; terminal tasks take no more work. */
  private async ensureRunning(task: Task, attempt: number): Promise<ApplyOutcome> {
    let current = task;
    if (isTerminalStatus(task.status)) return { kind: 'ignored', task, reason: 'task is terminal' };
    if (task.attempt !== attempt) return { kind: 'stale', task, stale: 'attempt' };
    if (task.status === 'queued' || task.status === 'submitted') {
      const started = await this.start(task.id, guardOf(task, attempt));
      if (started.kind === 'ignored' || started.kind === 'stale') return started;
      current = started.task;
      if (started.kind === 'applied') this.deps.events.emit('task.started', { task: current });
    }
    if (isTerminalStatus(current.status))
      return { kind: 'ignored', task: current, reason: 'task is terminal' };
    return { kind: 'applied', task: current };
  }

  async complete(task: Task, message: TaskComplete, actor: string): Promise<ApplyOutcome> {
    // A result can arrive for a task the cloud had put back in its queue (the ACK was lost).
    const guard = guardOf(task, message.attempt);
    if (task.status === 'queued') await this.start(task.id, guard);
    const outcome = await this.finish(
      task.id,
      'completed',
      guard,
      fromAgent(message, actor, 'TASK_COMPLETE'),
      {
        patch: {
          result: message.result,
          filesChanged: message.filesChanged,
          commandsRun: message.commandsRun,
          warning: message.warning ?? null,
        },
        details: {
          costUsd: message.metrics.costUsd,
          durationMs: message.metrics.durationMs,
          filesChanged: message.filesChanged.length,
          ...(message.warning !== undefined && { warning: message.warning }),
        },
      },
    );
    if (outcome.kind === 'applied') this.deps.events.emit('task.completed', { task: outcome.task, message });
    return outcome;
  }

  async error(task: Task, message: TaskError, actor: string): Promise<ApplyOutcome> {
    return this.failed(
      task.id,
      guardOf(task, message.attempt),
      message,
      fromAgent(message, actor, 'TASK_ERROR'),
    );
  }

  async cancelled(task: Task, message: TaskCancelled, actor: string): Promise<ApplyOutcome> {
    const by = fromAgent(message, actor, 'TASK_CANCELLED');
    return this.cancelledBy(task.id, guardOf(task, message.attempt), message, by);
  }

  /** A failure decided by the cloud (queue expiry, lost agent, rejected submit). */
  async fail(taskId: string, failure: CloudFailure): Promise<ApplyOutcome> {
    const message: TaskError = {
      taskId,
      attempt: await this.currentAttempt(taskId),
      error: failure.error,
      errorCode: failure.errorCode,
      recoverable: failure.recoverable,
      ...(failure.context && { context: failure.context }),
    };
    return this.failed(taskId, undefined, message, fromCloud(failure.actor ?? 'system'));
  }

  /** A cancellation decided by the cloud (the task never reached an agent, or its agent is away). */
  async cancel(taskId: string, reason: string, actor: string): Promise<ApplyOutcome> {
    const message: TaskCancelled = { taskId, attempt: await this.currentAttempt(taskId), reason };
    return this.cancelledBy(taskId, undefined, message, fromCloud(actor));
  }

  /** The attempt a decision of the cloud is stamped with: the task's current one. */
  private async currentAttempt(taskId: string): Promise<number> {
    return Math.max(1, (await this.deps.repos.tasks.findById(taskId))?.attempt ?? 1);
  }

  /** → failed, from the agent's TASK_ERROR (`guard`: its agent and attempt) or the cloud's own decision. */
  private async failed(
    taskId: string,
    guard: AttemptGuard | undefined,
    message: TaskError,
    by: Ending,
  ): Promise<ApplyOutcome> {
    const { error, errorCode, recoverable } = message;
    const outcome = await this.finish(taskId, 'failed', guard, by, {
      patch: { errorMessage: error, errorCode, recoverable },
      details: { errorCode, error, recoverable },
    });
    if (outcome.kind === 'applied') this.deps.events.emit('task.failed', { task: outcome.task, message });
    return outcome;
  }

  /** → cancelled, from the agent's TASK_CANCELLED or the cloud's own decision. */
  private async cancelledBy(
    taskId: string,
    guard: AttemptGuard | undefined,
    message: TaskCancelled,
    by: Ending,
  ): Promise<ApplyOutcome> {
    const outcome = await this.finish(taskId, 'cancelled', guard, by, {
      patch: message.partialResult !== undefined ? { result: message.partialResult } : {},
      details: { reason: message.reason ?? null },
    });
    if (outcome.kind === 'applied') this.deps.events.emit('task.cancelled', { task: outcome.task, message });
    return outcome;
  }

  /** → running, opening the task's session. */
  private async start(taskId: string, guard: AttemptGuard): Promise<ApplyOutcome> {
    // The usual case, shared with the other starts of the tick; anything else is judged below.
    const started = await this.deps.repos.tasks.start(taskId, guard, this.now());
    if (started) return { kind: 'applied', task: started };
    try {
      const result = await this.deps.repos.transaction(async (tx) => {
        const r = await tx.tasks.transition(taskId, 'running', { startedAt: this.now() }, guard);
        if (r.changed) await tx.sessions.create({ taskId, claudeSessionId: r.task.sessionId });
        return r;
      });
      return outcomeOf(result);
    } catch (err) {
      return this.refused(taskId, err);
    }
  }

  private async move(
    taskId: string,
    to: TaskStatus,
    patch: TaskPatch,
    guard?: AttemptGuard,
  ): Promise<ApplyOutcome> {
    try {
      return outcomeOf(await this.deps.repos.tasks.transition(taskId, to, patch, guard));
    } catch (err) {
      return this.refused(taskId, err);
    }
  }

  /**
   * → a terminal status, with the session closed and the audit entry (`task.<status>`) in one transaction.
   * `own`: what this ending writes on the row and in the audit entry, beside what `by` carries.
   */
  private async finish(
    taskId: string,
    to: 'completed' | 'failed' | 'cancelled',
    guard: AttemptGuard | undefined,
    by: Ending,
    own: { patch: TaskPatch; details: Record<string, unknown> },
  ): Promise<ApplyOutcome> {
    const patch = { ...own.patch, ...by.patch, completedAt: this.now() };
    try {
      const result = await this.deps.repos.transaction(async (tx) => {
        const r = await tx.tasks.transition(taskId, to, patch, guard);
        if (!r.changed) return r;
        await this.closeSession(tx, taskId, to, by.session ?? NOTHING_REPORTED);
        await tx.audit.log({
          action: `task.${to}`,
          actor: by.actor,
          resourceType: 'task',
          resourceId: taskId,
          details: own.details,
        });
        return r;
      });
      return outcomeOf(result);
    } catch (err) {
      const refused = await this.refused(taskId, err);
      if (refused.kind === 'ignored' && by.lateMessage !== null) {
        await this.deps.repos.audit.log({
          action: 'task.late_message',
          actor: by.actor,
          resourceType: 'task',
          resourceId: taskId,
          details: { message: by.lateMessage, status: refused.task.status, reason: refused.reason },
        });
      }
      return refused;
    }
  }

  /** Completes the open session; an agent that reported usage without one gets one recorded. */
  private async closeSession(
    tx: Tx,
    taskId: string,
    status: Session['status'],
    s: ReportedSession,
  ): Promise<void> {
    const outcome = {
      status,
      claudeSessionId: s.claudeSessionId,
      inputTokens: s.metrics?.inputTokens ?? 0,
      outputTokens: s.metrics?.outputTokens ?? 0,
      costUsd: s.metrics?.costUsd ?? 0,
      durationMs: s.metrics?.durationMs ?? 0,
    };
    // The usual case, one statement: the session opened when the task started.
    if (await tx.sessions.completeOpen(taskId, outcome)) return;
    if (s.metrics === undefined && s.claudeSessionId === null) return;
    const session = await tx.sessions.create({ taskId, claudeSessionId: s.claudeSessionId });
    await tx.sessions.complete(session.id, outcome);
  }

  private async refused(taskId: string, err: unknown): Promise<ApplyOutcome> {
    if (!(err instanceof IllegalTransitionError)) throw err;
    const task = await this.deps.repos.tasks.findById(taskId);
    if (!task) throw err;
    this.deps.logger.debug({ taskId, from: err.from, to: err.to }, 'transition refused');
    return { kind: 'ignored', task, reason: err.message };
  }
}

/**
 * Who ended a task and what their message carries onto the row (Claude's session, the workspace, the metrics);
 * `lateMessage`: the message type audited when it comes after the end, null for a decision of the cloud.
 */
interface Ending {
  actor: string;
  patch?: TaskPatch;
  session?: ReportedSession;
  lateMessage: string | null;
}

function fromAgent(m: TaskComplete | TaskError | TaskCancelled, actor: string, type: string): Ending {
  return { actor, patch: carried(m), session: reported(m), lateMessage: type };
}

function fromCloud(actor: string): Ending {
  return { actor, lateMessage: null };
}

function outcomeOf(r: TransitionResult): ApplyOutcome {
  if (r.stale) return { kind: 'stale', task: r.task, stale: r.stale };
  return r.changed ? { kind: 'applied', task: r.task } : { kind: 'duplicate', task: r.task };
}

interface ReportedSession {
  claudeSessionId: string | null;
  metrics: TaskMetrics | undefined;
}
const NOTHING_REPORTED: ReportedSession = { claudeSessionId: null, metrics: undefined };

function reported(m: TaskComplete | TaskError | TaskCancelled): ReportedSession {
  return { claudeSessionId: m.sessionId ?? null, metrics: m.metrics };
}

/** What a terminal message carries onto the row when it has it: Claude's session, the workspace, the metrics. */
function carried(m: TaskComplete | TaskError | TaskCancelled): TaskPatch {
  return {
    ...(m.sessionId !== undefined && { sessionId: m.sessionId }),
    ...(m.workspace !== undefined && { workspace: m.workspace }),
    ...(m.metrics && pickTaskMetrics(m.metrics)),
  };
}
