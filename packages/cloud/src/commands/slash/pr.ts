import { workspaceAction } from '../workspace-actions.js';
import type { SlashCommand } from './types.js';

export const pr: SlashCommand = {
  name: 'pr',
  usage: 'pr <task-id>',
  description: "push a task's branch and open a pull request",
  permission: 'task.run',
  run: (context, { ctx, args }) => workspaceAction(context, ctx, args[0] ?? '', 'create_pr'),
};

export const diff: SlashCommand = {
  name: 'diff',
  usage: 'diff <task-id>',
  description: "post a task's changes as a patch file",
  permission: 'task.run',
  run: (context, { ctx, args }) => workspaceAction(context, ctx, args[0] ?? '', 'show_diff'),
};

export const discard: SlashCommand = {
  name: 'discard',
  usage: 'discard <task-id>',
  description: "delete a task's branch and worktree (yours; admins: any)",
  permission: 'task.cancel.own',
  run: (context, { ctx, args }) => workspaceAction(context, ctx, args[0] ?? '', 'discard'),
};
