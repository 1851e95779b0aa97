import { isTerminalStatus, type TaskSubmit } from '@bematic/protocol';
import type { NewTask } from '../db/repositories/types.js';
import { can, type Permission } from '../middleware/permissions.js';
import type { RequestContext } from '../middleware/types.js';
import { noticeMessage } from '../notifications/blocks.js';
import type { CommandService } from './command-service.js';
import type { TaskLauncher } from './task-launcher.js';

/** The Retry and Cancel buttons on task messages; `/bm cancel` shares the cancel path. */
export class TaskButtons {
  constructor(
    private readonly svc: CommandService,
    private readonly launcher: TaskLauncher,
  ) {}

  async handle(ctx: RequestContext): Promise<void> {
    const r = ctx.request;
    const taskId = r.actionValue ?? '';
    if (r.text === 'task_cancel') return this.cancel(ctx, taskId);
    if (r.text === 'task_retry') return this.retry(ctx, taskId);
    return this.svc.reject(ctx, 'unknown_action', `Unknown action "${r.text}".`);
  }

  async retry(ctx: RequestContext, taskId: string): Promise<void> {
    if (!(await this.svc.require(ctx, 'task.run', 'retry tasks'))) return;
    const old = await this.svc.deps.repos.tasks.findById(taskId);
    if (!old)
      return this.svc.reject(
        ctx,
        'task_not_found',
        `Task \`${taskId}\` was not found (it may have been archived).`,
      );
    if (old.status !== 'failed' || old.recoverable === false) {
      return this.svc.reject(
        ctx,
        'not_retryable',
        `Task \`${old.id}\` is ${old.status}${old.recoverable === false ? ' with an error that cannot be retried' : ''}; only recoverable failed tasks can be retried.`,
      );
    }
    const id = this.launcher.nextId();
    const submission: TaskSubmit = { ...old.submission, taskId: id };
    const task: NewTask = {
      id,
      projectId: old.projectId,
      agentId: old.agentId,
      botName: old.botName,
      command: old.command,
      prompt: old.prompt,
      model: old.model,
      priority: old.priority,
      userId: ctx.request.userId,
      channelId: old.channelId,
      threadTs: old.threadTs,
      messageTs: old.messageTs,
      submission,
      status: 'pending',
    };
    await this.launcher.launch(task, { surface: ctx.request.surface, ctx }, { retryOf: old.id });
  }

  /** Own tasks for developers, any task for admins. */
  async cancel(ctx: RequestContext, taskId: string): Promise<void> {
    if (!taskId) return this.svc.reject(ctx, 'invalid_command', 'Which task? Usage: `/bm cancel <task-id>`.');
    const { deps } = this.svc;
    const role = ctx.user?.role;
    const task = await deps.repos.tasks.findById(taskId);
    if (!task) return this.svc.reject(ctx, 'task_not_found', `Task \`${taskId}\` was not found.`);
    const own = task.userId === ctx.request.userId;
    const permission: Permission = own ? 'task.cancel.own' : 'task.cancel.any';
    if (!role || !can(role, permission)) {
      return this.svc.reject(
        ctx,
        'forbidden',
        own
          ? `Your role (${role ?? 'unknown'}) cannot cancel tasks.`
          : 'Only admins can cancel tasks started by someone else.',
        { permission, taskId },
      );
    }
    if (isTerminalStatus(task.status)) {
      await ctx.request.respond(noticeMessage(`Task \`${task.id}\` is already ${task.status}.`));
      return;
    }
    const reason = `Cancelled by ${ctx.request.userName ?? `<@${ctx.request.userId}>`}`;
    const result = await deps.dispatcher.cancel(task.id, reason, ctx.request.userId);
    await this.svc.audit(ctx, 'task.cancel_requested', 'task', task.id, { outcome: result.outcome, reason });
    if (result.outcome === 'not-found') {
      // Never reached the gateway (still pending): cancel it here.
      const t = await deps.repos.tasks
        .transition(task.id, 'cancelled', { completedAt: Date.now() })
        .catch(() => null);
      if (t?.changed) {
        await this.svc.audit(ctx, 'task.cancelled', 'task', task.id, { reason });
        deps.events?.emit('task.cancelled', { task: t.task, message: { taskId: task.id, reason } });
      }
    }
    await ctx.request.respond(noticeMessage(`Cancelling task \`${task.id}\`…`, ':no_entry_sign:'));
  }
}
