import { cancelTask } from '../task-buttons.js';
import type { SlashCommand } from './types.js';

export const cancel: SlashCommand = {
  name: 'cancel',
  usage: 'cancel <task-id>',
  description: 'cancel a task (yours; admins: any)',
  permission: 'task.cancel.own',
  run: (context, { ctx, args }) => cancelTask(context, ctx, args[0] ?? ''),
};
