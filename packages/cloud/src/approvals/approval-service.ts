import {
  type Clock,
  createMessage,
  isTerminalStatus,
  type Message,
  type PermissionDecision,
  type PermissionRequest,
  redactSecrets,
  type TimerHandle,
} from '@bematic/protocol';
import pino, { type Logger } from 'pino';
import type { ChatSurface } from '../chat/chat-surface.js';
import { BatchedLookup } from '../db/batched-lookup.js';
import type { PermissionRequestRecord, Repositories, Task } from '../db/repositories/types.js';
import type { PermissionRequestHandler } from '../gateway/message-router.js';
import { can } from '../middleware/permissions.js';
import { type RequestContext, rejectRequest } from '../middleware/types.js';
import { noticeMessage } from '../notifications/blocks.js';
import type { TaskEvents } from '../tasks/task-events.js';
import {
  approvalDecidedMessage,
  approvalRequestMessage,
  DECISION_OF_ACTION,
  isApprovalAction,
  waitingLine,
} from './approval-blocks.js';

export const DEFAULT_APPROVAL_TIMEOUT_MS = 10 * 60_000;

export interface ApprovalServiceDeps {
  repos: Pick<Repositories, 'permissionRequests' | 'tasks' | 'audit'>;
  /** Writes a frame to the agent's current connection; false when it is not connected. */
  sendToAgent(agentId: string, message: Message): Promise<boolean>;
  /** Shows a step on the task's progress message ("Waiting for your approval: …"). */
  showProgress(task: Task, message: string): Promise<void>;
  surfaceFor(task: Pick<Task, 'channelId'>): ChatSurface;
  events: TaskEvents;
  clock: Clock;
  timeoutMs?: number;
  logger?: Logger;
}

/**
 * The cloud's half of an approval: posts the question in the task's thread, takes the answer of the
 * requester or an admin, sends it to the agent as PERMISSION_RESPONSE, and denies what nobody answers in
 * time, what a task left behind when it ended, and what an agent can no longer receive. Every request and
 * answer is stored and audited; each is decided exactly once.
 */
export class ApprovalService implements PermissionRequestHandler {
  private readonly timers = new Map<string, TimerHandle>();
  private readonly log: Logger;
  private readonly timeoutMs: number;
  private readonly detach: Array<() => void> = [];
  /** Pending requests per task, for the tasks that end in one tick: one statement. */
  private readonly pendingOfTask: BatchedLookup<PermissionRequestRecord[]>;

  constructor(private readonly deps: ApprovalServiceDeps) {
    this.log = (deps.logger ?? pino({ level: 'silent' })).child({ component: 'approvals' });
    this.timeoutMs = deps.timeoutMs ?? DEFAULT_APPROVAL_TIMEOUT_MS;
    this.pendingOfTask = new BatchedLookup(async (taskIds) => {
      const byTask = new Map<string, PermissionRequestRecord[]>();
      for (const r of await deps.repos.permissionRequests.listPending({ taskIds }))
        byTask.set(r.taskId, [...(byTask.get(r.taskId) ?? []), r]);
      return byTask;
    });
  }

  /** Subscribes to task ends and agent losses, and settles requests a previous run of the cloud left open. */
  async start(): Promise<void> {
    const { events } = this.deps;
    for (const name of ['task.completed', 'task.failed', 'task.cancelled'] as const) {
      this.detach.push(events.on(name, ({ task }) => void this.settleEnded(task.id)));
    }
    this.detach.push(
      events.on('agent.offline', ({ agentId }) => void this.settleAll({ agentId }, 'undeliverable')),
    );
    // The agents that asked lost their connection with the old process and denied on their side already.
    await this.settleAll({}, 'undeliverable');
  }

  stop(): void {
    for (const off of this.detach.splice(0)) off();
    for (const t of this.timers.values()) this.deps.clock.clearTimeout(t);
    this.timers.clear();
  }

  async request(agentId: string, task: Task, payload: PermissionRequest): Promise<void> {
    const { repos, clock } = this.deps;
    const record = await repos.permissionRequests.create({
      id: payload.requestId,
      taskId: task.id,
      agentId,
      attempt: payload.attempt ?? null,
      tool: payload.tool,
      summary: redactSecrets(payload.summary),
      reason: payload.reason,
      expiresAt: clock.now() + this.timeoutMs,
    });
    if (record.status !== 'pending') return this.respond(record, record.status); // a resent, decided request
    await this.audit('permission.requested', task.userId, record, { agentId, reason: record.reason });
    if (isTerminalStatus(task.status)) return void (await this.settle(record, 'cancelled', null));
    this.arm(record);
    try {
      const surface = this.deps.surfaceFor(task);
      const posted = await surface.post(
        task.channelId,
        approvalRequestMessage(record, task.userId),
        task.threadTs ?? task.messageTs,
      );
      await repos.permissionRequests.setMessage(record.id, posted.channelId, posted.ts);
      const now = await repos.permissionRequests.findById(record.id);
      if (now && now.status !== 'pending') {
        // Decided while the question was being posted: show the outcome instead of live buttons.
        await surface.update(posted.channelId, posted.ts, approvalDecidedMessage(now, now.status));
        return;
      }
      await this.deps.showProgress(task, waitingLine(record));
    } catch (err) {
      this.log.error({ err, requestId: record.id, taskId: task.id }, 'could not ask in the thread');
      await this.settle(record, 'undeliverable', null);
    }
  }

  /** A button press on the question: only the task's requester or an admin may answer. */
  async handleAction(ctx: RequestContext): Promise<void> {
    const r = ctx.request;
    if (!isApprovalAction(r.text)) return;
    const refuse = (code: string, text: string, details: Record<string, unknown> = {}) =>
      rejectRequest(ctx, this.deps.repos.audit, code, noticeMessage(text, ':warning:'), details);
    const record = await this.deps.repos.permissionRequests.findById(r.actionValue ?? '');
    if (!record) return refuse('permission_not_found', 'That approval request is not known (any more).');
    const task = await this.deps.repos.tasks.findById(record.taskId);
    const isAdmin = ctx.user !== null && can(ctx.user.role, 'approval.answer.any');
    if (!task || (task.userId !== r.userId && !isAdmin)) {
      return refuse(
        'forbidden',
        task
          ? `Only <@${task.userId}> (who started this task) or an admin can answer this.`
          : 'That task is gone.',
        { requestId: record.id, taskId: record.taskId },
      );
    }
    if (record.status !== 'pending') {
      return refuse('permission_already_decided', 'This request has already been answered.', {
        requestId: record.id,
        status: record.status,
      });
    }
    const decided = await this.settle(record, DECISION_OF_ACTION[r.text], r.userId);
    if (!decided) return refuse('permission_already_decided', 'This request has already been answered.');
  }

  /** A task ended: what it still asks is moot. The tasks ending in one tick are looked up together. */
  private async settleEnded(taskId: string): Promise<void> {
    try {
      for (const record of (await this.pendingOfTask.get(taskId)) ?? [])
        await this.settle(record, 'cancelled', null);
    } catch (err) {
      this.log.error({ err, taskId }, 'could not settle pending approvals');
    }
  }

  /** Decides every pending request matching `filter`. */
  private async settleAll(filter: { taskId?: string; agentId?: string }, decision: PermissionDecision) {
    try {
      const pending = await this.deps.repos.permissionRequests.listPending(filter);
      for (const record of pending) await this.settle(record, decision, null);
    } catch (err) {
      this.log.error({ err, filter, decision }, 'could not settle pending approvals');
    }
  }

  private arm(record: PermissionRequestRecord): void {
    const ms = Math.max(0, record.expiresAt - this.deps.clock.now());
    this.timers.set(
      record.id,
      this.deps.clock.setTimeout(() => void this.settle(record, 'timed_out', null), ms),
    );
  }

  /** Pending → decided exactly once: the agent is told, the question shows the outcome, it is audited. */
  private async settle(
    record: PermissionRequestRecord,
    decision: PermissionDecision,
    decidedBy: string | null,
  ): Promise<boolean> {
    const timer = this.timers.get(record.id);
    if (timer !== undefined) this.deps.clock.clearTimeout(timer);
    this.timers.delete(record.id);
    try {
      const decided = await this.deps.repos.permissionRequests.decide(record.id, decision, decidedBy);
      if (!decided) return false;
      await this.audit('permission.decided', decidedBy ?? 'system', decided, { decision });
      await this.respond(decided, decision);
      const task = await this.deps.repos.tasks.findById(decided.taskId);
      if (task && decided.channelId && decided.messageTs) {
        await this.deps
          .surfaceFor(task)
          .update(decided.channelId, decided.messageTs, approvalDecidedMessage(decided, decision))
          .catch((err: unknown) =>
            this.log.warn({ err, requestId: decided.id }, 'could not update the question'),
          );
      }
      if (task && !isTerminalStatus(task.status) && decision !== 'undeliverable') {
        const next =
          decision === 'approved' || decision === 'approved_for_task'
            ? 'continuing'
            : 'carrying on without it';
        await this.deps
          .showProgress(task, `${approvalDecidedMessage(decided, decision).text}; ${next}`)
          .catch(() => {});
      }
      return true;
    } catch (err) {
      this.log.error({ err, requestId: record.id, decision }, 'could not settle an approval');
      return false;
    }
  }

  private async respond(record: PermissionRequestRecord, decision: PermissionDecision): Promise<void> {
    const sent = await this.deps.sendToAgent(
      record.agentId,
      createMessage(
        'PERMISSION_RESPONSE',
        {
          taskId: record.taskId,
          requestId: record.id,
          decision,
          ...(record.attempt !== null && { attempt: record.attempt }),
          ...(record.decidedBy !== null && { decidedBy: record.decidedBy }),
        },
        this.deps.clock.now(),
      ),
    );
    // Not connected: the agent denied the request itself when its link dropped.
    if (!sent) this.log.info({ requestId: record.id, decision }, 'agent not connected for the answer');
  }

  private async audit(
    action: string,
    actor: string,
    record: PermissionRequestRecord,
    details: Record<string, unknown>,
  ): Promise<void> {
    await this.deps.repos.audit
      .log({
        action,
        actor,
        resourceType: 'task',
        resourceId: record.taskId,
        details: { requestId: record.id, tool: record.tool, summary: record.summary, ...details },
      })
      .catch((err: unknown) => this.log.warn({ err, action }, 'audit write failed'));
  }
}
