import { noticeMessage } from '../../notifications/blocks.js';
import { escapeMrkdwn } from '../../notifications/mrkdwn.js';
import { block, type SlashCommand } from './types.js';

export const agents: SlashCommand = {
  name: 'agents',
  usage: 'agents',
  description: 'connected agents and their health',
  permission: 'view',
  async run(context, { ctx }) {
    const agents = await context.lifecycle.agents.listAgents();
    if (agents.length === 0) {
      await ctx.request.respond(
        noticeMessage('No agents have connected yet. Start one with `bematic agent`.'),
      );
      return;
    }
    const lines = agents.map((a) => {
      const state = a.online
        ? a.overloaded
          ? ':large_orange_circle: overloaded'
          : ':large_green_circle: online'
        : ':red_circle: offline';
      const load = a.metrics
        ? ` · CPU ${Math.round(a.metrics.cpuPercent)}% · mem ${Math.round(a.metrics.memoryPercent)}% · ${a.metrics.activeTasks} running`
        : '';
      const circuit = a.circuit !== 'closed' ? ` · circuit ${a.circuit}` : '';
      const queued = a.offlineQueueDepth ? ` · ${a.offlineQueueDepth} queued` : '';
      const sandbox =
        a.sandbox === 'off'
          ? ' · :red_circle: *sandbox off*: commands run unconfined'
          : a.sandbox === 'unavailable'
            ? ' · :red_circle: *no sandbox*: every command is asked for'
            : '';
      return `• \`${escapeMrkdwn(a.agentId)}\` ${state}${load}${circuit}${queued}${sandbox}${a.hostname ? ` · ${escapeMrkdwn(a.hostname)}` : ''}`;
    });
    await ctx.request.respond(block(`*Agents*\n${lines.join('\n')}`));
  },
};
