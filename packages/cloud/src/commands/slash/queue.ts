import { botLabel } from '../context.js';
import { block, type SlashCommand } from './types.js';

export const queue: SlashCommand = {
  name: 'queue',
  usage: 'queue',
  description: 'tasks waiting to run',
  permission: 'view',
  async run(context, { ctx }) {
    const { tasks, offlineQueue } = context.repos;
    const waiting = await tasks.list({ status: ['pending', 'queued'], limit: 20 });
    const depth = await offlineQueue.countByAgent();
    const total = Object.values(depth).reduce((a, b) => a + b, 0);
    const lines = waiting.map(
      (t) =>
        `• \`${t.id}\` ${t.status} · ${t.priority} · ${botLabel(context, t).bot} \`${t.command}\` · agent \`${t.agentId}\``,
    );
    const perAgent = Object.entries(depth)
      .map(([a, n]) => `${a}: ${n}`)
      .join(', ');
    await ctx.request.respond(
      block(
        waiting.length ? `*Waiting tasks* (${waiting.length})\n${lines.join('\n')}` : '*Nothing is waiting.*',
        `Offline queue: ${total}${perAgent ? ` (${perAgent})` : ''}`,
      ),
    );
  },
};
