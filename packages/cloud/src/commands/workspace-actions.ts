import { isTerminalStatus, type WorkspaceAction } from '@bematic/protocol';
import { can, type Permission } from '../middleware/permissions.js';
import type { RequestContext } from '../middleware/types.js';
import { ACTION_IDS, noticeMessage } from '../notifications/blocks.js';
import { escapeMrkdwn } from '../notifications/mrkdwn.js';
import { type CommandContext, reject } from './context.js';

/** Button action id → what it asks of the task's branch. */
export const WORKSPACE_BUTTONS: Readonly<Record<string, WorkspaceAction>> = {
  [ACTION_IDS.createPr]: 'create_pr',
  [ACTION_IDS.showDiff]: 'show_diff',
  [ACTION_IDS.discard]: 'discard',
};

const DOING: Record<WorkspaceAction, string> = {
  create_pr: 'Pushing the branch and opening a pull request',
  show_diff: 'Fetching the diff',
  discard: 'Discarding the branch and its worktree',
};

/**
 * Create PR, Show diff and Discard, from a button or `/bm pr|diff|discard <task>`:
 * anyone who may run tasks may open a PR or see a diff; discarding is for the
 * task's owner and admins, like cancelling.
 */
export async function workspaceAction(
  context: CommandContext,
  ctx: RequestContext,
  taskId: string,
  action: WorkspaceAction,
): Promise<void> {
  const usage = { create_pr: 'pr', show_diff: 'diff', discard: 'discard' }[action];
  if (!taskId)
    return reject(context, ctx, 'invalid_command', `Which task? Usage: \`/bm ${usage} <task-id>\`.`);
  const task = await context.repos.tasks.findById(taskId);
  if (!task) return reject(context, ctx, 'task_not_found', `Task \`${escapeMrkdwn(taskId)}\` was not found.`);
  const role = ctx.user?.role;
  const own = task.userId === ctx.request.userId;
  const permission: Permission =
    action === 'discard' ? (own ? 'task.cancel.own' : 'task.cancel.any') : 'task.run';
  if (!role || !can(role, permission)) {
    return reject(
      context,
      ctx,
      'forbidden',
      action === 'discard' && !own
        ? "Only admins can discard someone else's branch."
        : `Your role (${role ?? 'unknown'}) cannot do that.`,
      { permission, taskId },
    );
  }
  if (!isTerminalStatus(task.status)) {
    return reject(
      context,
      ctx,
      'task_in_progress',
      `Task \`${task.id}\` is still ${task.status}; its branch is ready when it finishes.`,
    );
  }
  const ops = context.lifecycle.workspaces;
  if (!ops) return reject(context, ctx, 'unavailable', 'Branches cannot be managed from here.');
  const outcome = await ops.request(task, action, ctx.request.userId);
  if (outcome.kind === 'no_branch') {
    const why =
      task.workspace?.mode === 'in-place'
        ? 'its project is not a git repository, so it worked in place'
        : task.workspace?.mode === 'read-only'
          ? 'its bot only reads the code'
          : 'it did not leave one';
    return reject(context, ctx, 'no_branch', `Task \`${task.id}\` has no branch: ${why}.`);
  }
  if (outcome.kind === 'agent_offline') {
    return reject(
      context,
      ctx,
      'agent_offline',
      `Agent \`${escapeMrkdwn(outcome.agentId)}\` holds this branch and is offline; try again when it is back.`,
    );
  }
  await ctx.request
    .respond(
      noticeMessage(`${DOING[action]} for task \`${outcome.ownerTaskId}\`…`, ':hourglass_flowing_sand:'),
    )
    .catch(() => {});
}
