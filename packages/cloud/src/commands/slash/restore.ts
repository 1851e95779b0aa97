import { noticeMessage } from '../../notifications/blocks.js';
import { reject } from '../context.js';
import type { SlashCommand } from './types.js';

export const restore: SlashCommand = {
  name: 'restore',
  usage: 'restore <archive-id | task-id>',
  description: 'restore an archived task (by its archive id, or the id it had)',
  permission: 'task.restore',
  async run(context, { ctx, args }) {
    const archiveId = args[0];
    if (!archiveId)
      return reject(context, ctx, 'invalid_command', 'Usage: `/bm restore <archive-id | task-id>`');
    try {
      const task = await context.lifecycle.retention.restore(archiveId, ctx.request.userId);
      await ctx.request.respond(
        noticeMessage(`Restored \`${archiveId}\` as task \`${task.id}\`.`, ':package:'),
      );
    } catch (err) {
      await reject(
        context,
        ctx,
        'restore_failed',
        `Could not restore \`${archiveId}\`: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  },
};
