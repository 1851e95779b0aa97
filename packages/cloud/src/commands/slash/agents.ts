import type { ClusterView } from '../../cluster/cluster.js';
import { noticeMessage } from '../../notifications/blocks.js';
import { escapeMrkdwn } from '../../notifications/mrkdwn.js';
import { block, type SlashCommand } from './types.js';

/** One Slack message: the first agents of the listing (online first), and a count of the rest. */
const SHOWN = 50;

export const agents: SlashCommand = {
  name: 'agents',
  usage: 'agents',
  description: 'connected agents and their health',
  permission: 'view',
  async run(context, { ctx }) {
    const [{ agents }, counts, cloud, holders] = await Promise.all([
      context.lifecycle.agents.listAgents({ limit: SHOWN }),
      context.lifecycle.agents.countAgents(),
      clusterLine(context.cluster),
      context.cluster?.holders?.().catch((): Record<string, string> => ({})) ??
        ({} as Record<string, string>),
    ]);
    if (agents.length === 0) {
      await ctx.request.respond(
        noticeMessage(
          `No agents have connected yet. Start one with \`bematic agent\`.${cloud ? `\n${cloud}` : ''}`,
        ),
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
      const holder = holders[a.agentId];
      const via = holder ? ` · via \`${escapeMrkdwn(holder)}\`` : '';
      return `• \`${escapeMrkdwn(a.agentId)}\` ${state}${load}${circuit}${queued}${sandbox}${a.hostname ? ` · ${escapeMrkdwn(a.hostname)}` : ''}${via}`;
    });
    const more =
      counts.total > agents.length
        ? `\n…and ${counts.total - agents.length} more (${counts.online} of ${counts.total} online): the dashboard lists them all`
        : '';
    await ctx.request.respond(block(`*Agents*\n${lines.join('\n')}${more}${cloud ? `\n${cloud}` : ''}`));
  },
};

/** Which cloud instance answered and which one runs the leader-only jobs. */
async function clusterLine(cluster: ClusterView | undefined): Promise<string> {
  if (!cluster) return '';
  const here = `Cloud instance \`${escapeMrkdwn(cluster.instanceId)}\``;
  try {
    const s = await cluster.status();
    if (s.mode === 'single') return `${here} (single instance, leader)`;
    const leader = s.leader === null ? 'no leader right now' : `leader \`${escapeMrkdwn(s.leader)}\``;
    return `${here} · ${leader} · ${s.instances.length} instance${s.instances.length === 1 ? '' : 's'} online`;
  } catch {
    return `${here} · leader unknown (database unreachable)`;
  }
}
