import { noticeMessage } from '../../notifications/blocks.js';
import { reject } from '../context.js';
import type { SlashCommand } from './types.js';

export const archive: SlashCommand = {
  name: 'archive',
  usage: 'archive <task-id> [reason]',
  description: 'archive a finished task',
  permission: 'task.archive',
  async run(context, { ctx, args }) {
    const [taskId, ...reasonWords] = args;
    if (!taskId) return reject(context, ctx, 'invalid_command', 'Usage: `/bm archive <task-id> [reason]`');
    const reason = reasonWords.join(' ') || 'manual';
    try {
      const archived = await context.lifecycle.retention.archive(taskId, reason, ctx.request.userId);
      await ctx.request.respond(
        noticeMessage(
          `Archived task \`${taskId}\` as \`${archived.id}\`. Restore it with \`/bm restore ${archived.id}\`.`,
          ':file_cabinet:',
        ),
      );
    } catch (err) {
      await reject(
        context,
        ctx,
        'archive_failed',
        `Could not archive \`${taskId}\`: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  },
};
