import {
  backgroundClock,
  type Clock,
  isTerminalStatus,
  pickTaskMetrics,
  TASK_PRIORITIES,
  TaskMetrics,
  TaskSubmission,
  type TimerHandle,
} from '@bematic/protocol';
import { type Logger, pino } from 'pino';
import { z } from 'zod';
import { AuditTrail } from '../audit/audit-trail.js';
import type { CacheInvalidation } from '../cache/invalidation.js';
import type { NewTask, Repositories, Session, Task, TaskPatch } from '../db/repositories/types.js';
import type { MetricsCollector } from '../metrics/metrics-collector.js';

const DAY_MS = 24 * 3600_000;

/** Candidates of a retention run read per keyset page. */
const SWEEP_PAGE = 100;

export interface RetentionPolicy {
  /** Terminal tasks older than this many days are archived by the scheduled job; 0 disables it. */
  retentionDays: number;
  /** How often the scheduled job runs. */
  intervalMs: number;
  /** Most tasks archived per run, so one run cannot hold the database for long. */
  batchSize: number;
}

export const DEFAULT_RETENTION_POLICY: RetentionPolicy = {
  retentionDays: 30,
  intervalMs: 3600_000,
  batchSize: 500,
};

export interface ArchiveResult {
  archiveId: string;
  taskId: string;
}

export type ArchivalRefusal = 'NOT_FOUND' | 'NOT_TERMINAL' | 'HAS_ACTIVE_CHILDREN' | 'IN_OFFLINE_QUEUE';
export type ArchivalVerdict = { ok: true } | { ok: false; code: ArchivalRefusal; reason: string };

export class RetentionError extends Error {
  constructor(
    readonly code: ArchivalRefusal | 'ARCHIVE_NOT_FOUND' | 'ARCHIVE_CORRUPT',
    message: string,
  ) {
    super(message);
    this.name = 'RetentionError';
  }
}

export interface RetentionServiceDeps {
  repos: Repositories;
  /** For audit entries written outside a transaction (none today; kept for symmetry with other services). */
  audit?: AuditTrail;
  invalidation?: CacheInvalidation;
  metrics?: MetricsCollector;
  logger?: Logger;
  /** The policy's time and the schedule's timer (default: the system's time, unref'd timers). */
  clock?: Clock;
  /** After a task left the tasks table (e.g. to remove its worktree on the agent). Errors are logged. */
  onArchived?: (task: Task) => Promise<void>;
  policy?: Partial<RetentionPolicy>;
}

/**
 * The archive snapshot: a Task row as JSON. Validated on restore because it
 * may have been written by an older version or edited by hand.
 */
const Snapshot = z
  .object({
    id: z.string(),
    projectId: z.string(),
    agentId: z.string(),
    botName: z.string(),
    command: z.string(),
    prompt: z.string(),
    model: z.string(),
    priority: z.enum(TASK_PRIORITIES),
    status: z.enum(['completed', 'failed', 'cancelled']),
    userId: z.string(),
    channelId: z.string(),
    threadTs: z.string().nullable(),
    messageTs: z.string().nullable(),
    progressMessageTs: z.string().nullable(),
    sessionId: z.string().nullable(),
    parentTaskId: z.string().nullable(),
    submission: TaskSubmission,
    result: z.string().nullable(),
    errorMessage: z.string().nullable(),
    errorCode: z.string().nullable(),
    recoverable: z.boolean().nullable(),
    warning: z.string().nullable(),
    filesChanged: z.array(z.string()),
    commandsRun: z.array(z.string()),
    ...TaskMetrics.shape,
    startedAt: z.number().nullable(),
    completedAt: z.number().nullable(),
  })
  .passthrough();

const SessionsSnapshot = z.array(
  z.object({
    claudeSessionId: z.string().nullable(),
    status: z.enum(['active', 'completed', 'failed', 'cancelled']),
    inputTokens: z.number(),
    outputTokens: z.number(),
    costUsd: z.number(),
    durationMs: z.number(),
  }),
);

/**
 * Retention and archiving (the seed's Archiving and Archive Restoration flows).
 * Archiving moves a terminal task out of the tasks table into an ArchivedTask
 * snapshot; restoring brings it back under a new id. Each move is one
 * transaction together with its audit entry, so a crash leaves the task in
 * exactly one place.
 */
export class RetentionService {
  readonly policy: RetentionPolicy;
  private readonly repos: Repositories;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private timer: TimerHandle | null = null;
  private running: Promise<number> | null = null;

  constructor(private readonly deps: RetentionServiceDeps) {
    this.repos = deps.repos;
    this.logger = deps.logger ?? pino({ level: 'silent' });
    this.clock = deps.clock ?? backgroundClock;
    this.policy = { ...DEFAULT_RETENTION_POLICY, ...deps.policy };
  }

  /**
   * When the policy clock starts for a task: its completion, or its restoration
   * if later, so that a restored task is not archived again by the next run.
   */
  private retentionStart(task: Pick<Task, 'completedAt' | 'updatedAt' | 'restoredAt'>): number {
    return Math.max(task.completedAt ?? task.updatedAt, task.restoredAt ?? 0);
  }

  private isExpiredByPolicy(
    task: Pick<Task, 'status' | 'completedAt' | 'updatedAt' | 'restoredAt'>,
  ): boolean {
    if (this.policy.retentionDays <= 0 || !isTerminalStatus(task.status)) return false;
    return this.clock.now() - this.retentionStart(task) >= this.policy.retentionDays * DAY_MS;
  }

  async validateForArchival(task: Task): Promise<ArchivalVerdict> {
    if (!isTerminalStatus(task.status)) {
      return {
        ok: false,
        code: 'NOT_TERMINAL',
        reason: `task ${task.id} is ${task.status}; only completed, failed or cancelled tasks can be archived`,
      };
    }
    const children = await this.repos.tasks.list({ parentTaskId: task.id });
    const active = children.filter((c) => !isTerminalStatus(c.status));
    if (active.length > 0) {
      return {
        ok: false,
        code: 'HAS_ACTIVE_CHILDREN',
        reason: `task ${task.id} has ${active.length} unfinished subtask(s): ${active.map((c) => c.id).join(', ')}`,
      };
    }
    if (await this.repos.offlineQueue.findByTask(task.id)) {
      return {
        ok: false,
        code: 'IN_OFFLINE_QUEUE',
        reason: `task ${task.id} still has a message waiting in the offline queue`,
      };
    }
    return { ok: true };
  }

  async archive(taskId: string, reason: string, actor: string): Promise<ArchiveResult> {
    const task = await this.repos.tasks.findById(taskId);
    if (!task) throw new RetentionError('NOT_FOUND', `task ${taskId} not found`);
    return this.archiveTask(task, reason, actor, 'manual');
  }

  /**
   * Restores an archive, named by its id or by the id the task had (its latest archive: a task archived by the
   * policy was never shown its archive id). Returns the id of the restored (new) task.
   */
  async restore(ref: string, actor: string): Promise<string> {
    const restoredAt = this.clock.now();
    const { task, archive } = await this.repos.transaction(async (tx) => {
      const archive =
        (await tx.archivedTasks.findById(ref)) ?? (await tx.archivedTasks.findByOriginalId(ref));
      if (!archive) throw new RetentionError('ARCHIVE_NOT_FOUND', `archive ${ref} not found`);
      const archiveId = archive.id;
      const snapshot = parseSnapshot(archive.taskData, archiveId);
      const sessions = SessionsSnapshot.safeParse(archive.metadata.sessions ?? []);
      const created = await tx.tasks.create(newTaskFrom(snapshot, archiveId, restoredAt));
      const task = await tx.tasks.update(created.id, patchFrom(snapshot));
      for (const s of sessions.success ? sessions.data : []) {
        const session = await tx.sessions.create({ taskId: task.id, claudeSessionId: s.claudeSessionId });
        if (s.status !== 'active') await tx.sessions.complete(session.id, s);
      }
      await tx.archivedTasks.delete(archiveId);
      await tx.audit.log(
        AuditTrail.entry('task.restored', {
          actor,
          resourceType: 'task',
          resourceId: task.id,
          details: { archiveId, originalId: archive.originalId, newTaskId: task.id },
          ts: restoredAt,
        }),
      );
      return { task, archive };
    });
    this.deps.invalidation?.taskRestored(task);
    this.deps.metrics?.recordRestore();
    this.logger.info(
      { archiveId: archive.id, originalId: archive.originalId, taskId: task.id, actor },
      'task restored',
    );
    return task.id;
  }

  /**
   * Archive every task the policy makes eligible (up to one batch). Returns how many were archived. A run in
   * progress (the schedule's) is joined, not repeated.
   */
  runOnce(): Promise<number> {
    this.running ??= this.sweep().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  get busy(): boolean {
    return this.running !== null;
  }

  /** Run the scheduled job every `intervalMs` (on the default clock the timer does not keep the process alive). */
  start(): void {
    if (this.timer || this.policy.retentionDays <= 0) return;
    this.timer = this.clock.setInterval(() => {
      this.runOnce().catch((err: unknown) => this.logger.error({ err }, 'retention run failed'));
    }, this.policy.intervalMs);
  }

  /** Stop the schedule and wait for a run in progress. */
  async stop(): Promise<void> {
    if (this.timer) this.clock.clearInterval(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
  }

  private async sweep(): Promise<number> {
    if (this.policy.retentionDays <= 0) return 0;
    // Created before the cutoff is necessary (a task completes after it is
    // created) but not sufficient; isExpiredByPolicy decides.
    const cutoff = this.clock.now() - this.policy.retentionDays * DAY_MS;
    // Some candidates are refused (restored lately, active subtasks); look a little beyond one batch.
    let budget = this.policy.batchSize * 4;
    let archived = 0;
    let before: { createdAt: number; id: string } | undefined;
    while (archived < this.policy.batchSize && budget > 0) {
      // Newest first, a keyset page of list rows at a time, each read whole only when its turn comes: the
      // history below the cutoff is never sorted, nor decoded thousands of rows at once.
      const limit = Math.min(budget, SWEEP_PAGE);
      const page = await this.repos.taskSearch.search({
        status: ['completed', 'failed', 'cancelled'],
        to: cutoff,
        limit,
        ...(before ? { before } : {}),
      });
      budget -= page.length;
      for (const candidate of page) {
        if (archived >= this.policy.batchSize) break;
        const task = await this.repos.tasks.findById(candidate.id);
        if (!task || !this.isExpiredByPolicy(task)) continue;
        try {
          await this.archiveTask(
            task,
            `retention policy: older than ${this.policy.retentionDays} days`,
            'system',
            'policy',
          );
          archived++;
        } catch (err) {
          if (err instanceof RetentionError)
            this.logger.debug({ taskId: task.id, reason: err.message }, 'not archived');
          else this.logger.warn({ err, taskId: task.id }, 'archival failed');
        }
      }
      const last = page[page.length - 1];
      if (!last || page.length < limit) break;
      before = { createdAt: last.createdAt, id: last.id };
    }
    if (archived > 0) this.logger.info({ archived }, 'retention run archived tasks');
    return archived;
  }

  private async archiveTask(
    task: Task,
    reason: string,
    actor: string,
    trigger: 'manual' | 'policy',
  ): Promise<ArchiveResult> {
    const verdict = await this.validateForArchival(task);
    if (!verdict.ok) throw new RetentionError(verdict.code, verdict.reason);
    const archivedAt = this.clock.now();
    const archived = await this.repos.transaction(async (tx) => {
      // Re-read inside the transaction: the task may have changed or gone since it was judged.
      const current = await tx.tasks.findById(task.id);
      if (!current) throw new RetentionError('NOT_FOUND', `task ${task.id} not found`);
      if (!isTerminalStatus(current.status)) {
        throw new RetentionError('NOT_TERMINAL', `task ${task.id} is ${current.status}`);
      }
      const sessions = await tx.sessions.findByTask(current.id);
      const archive = await tx.archivedTasks.create({
        originalId: current.id,
        taskData: JSON.stringify(current),
        reason,
        metadata: {
          trigger,
          actor,
          status: current.status,
          projectId: current.projectId,
          agentId: current.agentId,
          sessions: sessions.map(sessionSnapshot),
        },
        archivedAt,
      });
      if (!(await tx.tasks.delete(current.id))) {
        throw new RetentionError('NOT_FOUND', `task ${task.id} disappeared while archiving`);
      }
      await tx.audit.log(
        AuditTrail.entry('task.archived', {
          actor,
          resourceType: 'task',
          resourceId: current.id,
          details: { archiveId: archive.id, reason, trigger },
          ts: archivedAt,
        }),
      );
      return { archive, current };
    });
    const { archive, current } = archived;
    if (this.deps.onArchived) {
      await this.deps
        .onArchived(current)
        .catch((err: unknown) => this.logger.warn({ err, taskId: task.id }, 'after-archive cleanup failed'));
    }
    this.deps.invalidation?.taskArchived(task);
    this.deps.metrics?.recordArchival(trigger);
    this.logger.info({ taskId: task.id, archiveId: archive.id, reason, actor }, 'task archived');
    return { archiveId: archive.id, taskId: task.id };
  }
}

function sessionSnapshot(s: Session) {
  return {
    claudeSessionId: s.claudeSessionId,
    status: s.status,
    inputTokens: s.inputTokens,
    outputTokens: s.outputTokens,
    costUsd: s.costUsd,
    durationMs: s.durationMs,
  };
}

function parseSnapshot(taskData: string, archiveId: string): z.infer<typeof Snapshot> {
  let raw: unknown;
  try {
    raw = JSON.parse(taskData);
  } catch {
    throw new RetentionError('ARCHIVE_CORRUPT', `archive ${archiveId} does not hold valid JSON`);
  }
  const parsed = Snapshot.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new RetentionError(
      'ARCHIVE_CORRUPT',
      `archive ${archiveId} is not a task snapshot (${issue?.path.join('.')}: ${issue?.message})`,
    );
  }
  return parsed.data;
}

function newTaskFrom(s: z.infer<typeof Snapshot>, archiveId: string, restoredAt: number): NewTask {
  return {
    projectId: s.projectId,
    agentId: s.agentId,
    botName: s.botName,
    command: s.command,
    prompt: s.prompt,
    model: s.model,
    priority: s.priority,
    userId: s.userId,
    channelId: s.channelId,
    // The repository stamps the new task id into the stored submission.
    submission: s.submission,
    threadTs: s.threadTs,
    messageTs: s.messageTs,
    sessionId: s.sessionId,
    // A parent that was archived meanwhile would dangle; keep the link only as history.
    parentTaskId: s.parentTaskId,
    status: s.status,
    restoredFromArchive: archiveId,
    restoredAt,
  };
}

function patchFrom(s: z.infer<typeof Snapshot>): TaskPatch {
  return {
    progressMessageTs: s.progressMessageTs,
    result: s.result,
    errorMessage: s.errorMessage,
    errorCode: s.errorCode,
    recoverable: s.recoverable,
    warning: s.warning,
    filesChanged: s.filesChanged,
    commandsRun: s.commandsRun,
    ...pickTaskMetrics(s),
    startedAt: s.startedAt,
    completedAt: s.completedAt,
  };
}
