import path from 'node:path';
import { type FlagSpec, parseArguments } from '../../bots/command-parser.js';
import type { Project } from '../../db/repositories/types.js';
import type { RequestContext } from '../../middleware/types.js';
import { noticeMessage } from '../../notifications/blocks.js';
import { formatCost } from '../../notifications/format.js';
import { escapeMrkdwn } from '../../notifications/mrkdwn.js';
import { audit, botLabel, type CommandContext, reject, requirePermission } from '../context.js';
import { block, type SlashCommand } from './types.js';

const PROJECT_FLAGS: Record<string, FlagSpec> = {
  name: { type: 'string' },
  model: { type: 'string' },
  budget: { type: 'number', positive: true },
  bot: { type: 'string' },
};
const AGENT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const ADD_USAGE =
  '`/bm projects add <agent-id> <local-path> [--name n] [--model m] [--budget usd] [--bot b]`';

export const projects: SlashCommand = {
  name: 'projects',
  usage:
    'projects [add <agent-id> <local-path> [--name n] [--model m] [--budget usd] [--bot b] | remove | default]',
  description:
    'list projects; link/unlink this channel (admin; --bot: where plain words go); default: use this project in DMs',
  permission: 'view',
  async run(context, { ctx, args, rest }) {
    const sub = args[0]?.toLowerCase();
    const { projects } = context.repos;
    if (!sub || sub === 'list') {
      const all = await projects.list();
      const dmDefault = ctx.user?.defaultProjectId ?? null;
      const lines = all.map((p) => projectLine(context, p, ctx.request.channelId, dmDefault));
      await ctx.request.respond(
        block(
          all.length
            ? `*Projects*\n${lines.join('\n')}`
            : '*No projects yet.* Link this channel with `/bm projects add <agent-id> <path>`.',
        ),
      );
      return;
    }
    if (sub === 'default') return defaultProject(context, ctx);
    if (sub !== 'add' && sub !== 'remove') {
      return reject(
        context,
        ctx,
        'invalid_command',
        `Usage: \`/bm projects\`, ${ADD_USAGE}, \`/bm projects remove\`, \`/bm projects default\``,
      );
    }
    if (!(await requirePermission(context, ctx, 'project.register', `${sub} projects`))) return;
    const channelId = ctx.request.channelId;
    const existing = await projects.findByChannel(channelId);
    if (sub === 'remove') {
      if (!existing)
        return reject(context, ctx, 'unknown_project', 'This channel is not linked to a project.');
      await projects.delete(existing.id);
      await audit(context, ctx, 'project.removed', 'project', existing.id, { channelId });
      await ctx.request.respond(
        noticeMessage(`Unlinked project *${escapeMrkdwn(existing.name)}* from this channel.`),
      );
      return;
    }
    const parsed = parseArguments(rest.replace(/^\S+\s*/, ''), PROJECT_FLAGS);
    const [agentId, localPath] = parsed.positionals;
    const problems = [...parsed.errors, ...parsed.unknownFlags.map((f) => `unknown flag ${f}`)];
    if (!agentId || !AGENT_ID.test(agentId)) problems.push('a valid <agent-id> is required');
    if (!localPath || !(path.isAbsolute(localPath) || /^[A-Za-z]:[\\/]/.test(localPath)))
      problems.push('<local-path> must be an absolute path on the agent');
    let model: string | null = null;
    if (typeof parsed.flags.model === 'string') {
      const m = modelFor(context, parsed.flags.model);
      if (m.ok) model = m.model;
      else problems.push(m.error);
    }
    let defaultBot: string | undefined;
    if (typeof parsed.flags.bot === 'string') {
      defaultBot = context.config.bots.get(parsed.flags.bot)?.name;
      if (!defaultBot) {
        const names = context.config.bots
          .list()
          .map((b) => b.name)
          .join(', ');
        problems.push(`unknown bot "${parsed.flags.bot}" (bots: ${names})`);
      }
    }
    if (problems.length || !agentId || !localPath) {
      return reject(context, ctx, 'invalid_command', `${problems.join('; ')}.\nUsage: ${ADD_USAGE}`);
    }
    const fields = {
      name: typeof parsed.flags.name === 'string' ? parsed.flags.name : path.basename(localPath) || localPath,
      channelId,
      agentId,
      localPath,
      defaultModel: model,
      maxBudgetUsd: typeof parsed.flags.budget === 'number' ? parsed.flags.budget : null,
      ...(defaultBot ? { defaultBot } : {}),
    };
    const project = existing ? await projects.update(existing.id, fields) : await projects.create(fields);
    await audit(context, ctx, existing ? 'project.updated' : 'project.registered', 'project', project.id, {
      ...fields,
    });
    await ctx.request.respond(
      noticeMessage(
        `${existing ? 'Updated' : 'Linked'} this channel to project *${escapeMrkdwn(project.name)}*: agent \`${project.agentId}\`, path \`${escapeMrkdwn(project.localPath)}\`${project.defaultModel ? `, model \`${project.defaultModel}\`` : ''}${project.maxBudgetUsd ? `, budget ${formatCost(project.maxBudgetUsd)}` : ''}; plain words go to *${escapeMrkdwn(botLabel(context, { botName: project.defaultBot }).bot)}*. Mention me here to start a task.`,
        ':link:',
      ),
    );
  },
};

/** Validates a `--model` value the way a task's `--model` flag is validated. */
function modelFor(
  context: CommandContext,
  value: string,
): { ok: true; model: string } | { ok: false; error: string } {
  const fake = {
    botName: '',
    command: '',
    args: '',
    flags: { model: value },
    unknownFlags: [],
    errors: [],
  };
  const bot = context.config.bots.list()[0];
  if (!bot) return { ok: false, error: 'no bots registered' };
  const placeholder: Project = {
    id: '',
    name: '',
    channelId: '',
    agentId: '',
    fallbackAgentIds: [],
    localPath: '/',
    defaultModel: null,
    maxBudgetUsd: null,
    defaultBot: 'coder',
    mcpServers: null,
    createdAt: 0,
    updatedAt: 0,
  };
  const r = context.config.modelStrategy.choose(fake, bot, placeholder);
  return r.ok ? { ok: true, model: r.choice.model } : r;
}

function projectLine(context: CommandContext, p: Project, here: string, dmDefault: string | null): string {
  const bot = escapeMrkdwn(botLabel(context, { botName: p.defaultBot }).bot);
  return `• *${escapeMrkdwn(p.name)}* — agent \`${p.agentId}\` · \`${escapeMrkdwn(p.localPath)}\` · <#${p.channelId}> · plain words → ${bot}${p.channelId === here ? ' (this channel)' : ''}${p.id === dmDefault ? ' (your project for DMs)' : ''}`;
}

/** `/bm projects default`, in a project's channel: direct messages from this person work against it. */
async function defaultProject(context: CommandContext, ctx: RequestContext): Promise<void> {
  const project = await context.repos.projects.findByChannel(ctx.request.channelId);
  if (!project) {
    return reject(
      context,
      ctx,
      'unknown_project',
      'Run `/bm projects default` in the channel of the project you want to use when you message me directly.',
    );
  }
  if (!ctx.user) return reject(context, ctx, 'forbidden', 'I could not tell who you are.');
  await context.repos.users.setDefaultProject(ctx.user.id, project.id);
  await audit(context, ctx, 'user.default_project', 'user', ctx.user.id, { projectId: project.id });
  await ctx.request.respond(
    noticeMessage(
      `Your direct messages to me now work on *${escapeMrkdwn(project.name)}* (\`${escapeMrkdwn(project.localPath)}\`).`,
      ':link:',
    ),
  );
}
