import { TASK_STATUSES } from '@bematic/protocol';
import { formatDuration } from '../../duration.js';
import { formatCost } from '../../notifications/format.js';
import { escapeMrkdwn } from '../../notifications/mrkdwn.js';
import { botLabel, reject } from '../context.js';
import { block, type SlashCommand } from './types.js';

export const status: SlashCommand = {
  name: 'status',
  usage: 'status [task-id]',
  description: 'task counts, or one task in detail',
  permission: 'view',
  async run(context, { ctx, args }) {
    const { tasks } = context.repos;
    const taskId = args[0];
    if (!taskId) {
      const counts = await tasks.countByStatus();
      const agents = await context.lifecycle.agents
        .countAgents()
        .catch(() => ({ online: 0, offline: 0, total: 0 }));
      const line = TASK_STATUSES.map((s) => `${s} ${counts[s] ?? 0}`).join(' · ');
      await ctx.request.respond(block(`*Tasks:* ${line}`, `${agents.online}/${agents.total} agents online`));
      return;
    }
    const t = await tasks.findById(taskId);
    if (!t)
      return reject(
        context,
        ctx,
        'task_not_found',
        `Task \`${taskId}\` was not found (it may have been archived).`,
      );
    const lines = [
      `*Task \`${t.id}\`* — ${t.status}`,
      `${botLabel(context, t).bot} · \`${t.command}\` · model \`${t.model}\` · ${t.priority} · agent \`${t.agentId}\``,
      `>${escapeMrkdwn(t.prompt.slice(0, 300))}`,
    ];
    if (t.status === 'completed')
      lines.push(
        `${formatCost(t.costUsd)} · ${formatDuration(t.durationMs)} · ${t.filesChanged.length} files changed`,
      );
    if (t.errorMessage) lines.push(`Error: ${escapeMrkdwn(t.errorMessage.slice(0, 500))}`);
    await ctx.request.respond(block(lines.join('\n'), `Started by <@${t.userId}>`));
  },
};
