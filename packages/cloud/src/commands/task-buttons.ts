import { isTerminalStatus, type TaskSubmission } from '@bematic/protocol';
import { isApprovalAction } from '../approvals/approval-blocks.js';
import type { NewTask } from '../db/repositories/types.js';
import { can, type Permission } from '../middleware/permissions.js';
import type { RequestContext } from '../middleware/types.js';
import { ACTION_IDS, noticeMessage } from '../notifications/blocks.js';
import { audit, type CommandContext, reject, requirePermission } from './context.js';
import type { DecompositionFlow } from './decomposition-flow.js';
import type { TaskLauncher } from './task-launcher.js';

const PLAN_ACTIONS = new Set<string>([ACTION_IDS.planRun, ACTION_IDS.planEdit, ACTION_IDS.planCancel]);

import { WORKSPACE_BUTTONS, workspaceAction } from './workspace-actions.js';

/** The Retry and Cancel buttons on task messages, and a plan's; `/bm cancel` shares the cancel path. */
export class TaskButtons {
  constructor(
    private readonly context: CommandContext,
    private readonly launcher: TaskLauncher,
    private readonly plans: DecompositionFlow,
  ) {}

  async handle(ctx: RequestContext): Promise<void> {
    const r = ctx.request;
    const taskId = r.actionValue ?? '';
    if (r.text === 'task_cancel') return cancelTask(this.context, ctx, taskId);
    if (r.text === 'task_retry') return this.retry(ctx, taskId);
    const workspace = WORKSPACE_BUTTONS[r.text];
    if (workspace) return workspaceAction(this.context, ctx, taskId, workspace);
    if (PLAN_ACTIONS.has(r.text)) return this.plans.handleAction(ctx);
    if (r.text === ACTION_IDS.planFirst) return this.plans.planFirst(ctx, taskId);
    if (isApprovalAction(r.text) && this.context.approvals) return this.context.approvals.handleAction(ctx);
    return reject(this.context, ctx, 'unknown_action', `Unknown action "${r.text}".`);
  }

  async retry(ctx: RequestContext, taskId: string): Promise<void> {
    if (!(await requirePermission(this.context, ctx, 'task.run', 'retry tasks'))) return;
    const old = await this.context.repos.tasks.findById(taskId);
    if (!old)
      return reject(
        this.context,
        ctx,
        'task_not_found',
        `Task \`${taskId}\` was not found (it may have been archived).`,
      );
    if (old.status !== 'failed' || old.recoverable === false) {
      return reject(
        this.context,
        ctx,
        'not_retryable',
        `Task \`${old.id}\` is ${old.status}${old.recoverable === false ? ' with an error that cannot be retried' : ''}; only recoverable failed tasks can be retried.`,
      );
    }
    const id = this.launcher.nextId();
    const submission: TaskSubmission = { ...old.submission, taskId: id };
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
}

/** Cancel button and `/bm cancel`: own tasks for developers, any task for admins. */
export async function cancelTask(
  context: CommandContext,
  ctx: RequestContext,
  taskId: string,
): Promise<void> {
  if (!taskId) return reject(context, ctx, 'invalid_command', 'Which task? Usage: `/bm cancel <task-id>`.');
  const role = ctx.user?.role;
  const task = await context.repos.tasks.findById(taskId);
  if (!task) return reject(context, ctx, 'task_not_found', `Task \`${taskId}\` was not found.`);
  const own = task.userId === ctx.request.userId;
  const permission: Permission = own ? 'task.cancel.own' : 'task.cancel.any';
  if (!role || !can(role, permission)) {
    return reject(
      context,
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
  const result = await context.lifecycle.dispatcher.cancel(task.id, reason, ctx.request.userId);
  await audit(context, ctx, 'task.cancel_requested', 'task', task.id, { outcome: result.outcome, reason });
  // Never reached the gateway (still pending): the cloud decides the cancellation itself.
  if (result.outcome === 'not-found')
    await context.lifecycle.tasks.cancel(task.id, reason, ctx.request.userId);
  await ctx.request.respond(noticeMessage(`Cancelling task \`${task.id}\`…`, ':no_entry_sign:'));
}
