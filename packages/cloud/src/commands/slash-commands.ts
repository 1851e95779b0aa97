import path from 'node:path';
import { TASK_STATUSES } from '@bematic/protocol';
import { type FlagSpec, parseArguments, tokenize } from '../bots/command-parser.js';
import type { ChatMessage } from '../chat/chat-surface.js';
import type { Project } from '../db/repositories/types.js';
import { isRole, type Permission, ROLES } from '../middleware/permissions.js';
import type { RequestContext } from '../middleware/types.js';
import { contextBlock, noticeMessage, sectionBlock } from '../notifications/blocks.js';
import { formatCost, formatDuration } from '../notifications/format.js';
import { escapeMrkdwn } from '../notifications/mrkdwn.js';
import type { CommandService } from './command-service.js';
import { helpMessage } from './help.js';

interface SlashCommand {
  name: string;
  usage: string;
  description: string;
  /** Checked before run; finer checks (ownership, sub-actions) happen inside. */
  permission: Permission;
  run(ctx: RequestContext, args: string[], rest: string): Promise<void>;
}

const PROJECT_FLAGS: Record<string, FlagSpec> = {
  name: { type: 'string' },
  model: { type: 'string' },
  budget: { type: 'number', positive: true },
};
const AGENT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const USER_REF = /^<@([A-Z0-9a-z._-]+)(?:\|[^>]*)?>$|^@?([A-Za-z0-9._-]+)$/;

const block = (text: string, ...ctx: string[]): ChatMessage => ({
  text: text.replace(/[*_`]/g, '').slice(0, 300),
  blocks: [sectionBlock(text), ...(ctx.length ? [contextBlock(...ctx)] : [])],
});

/** `/bm …`: every subcommand is permission-checked and audited; anything unknown gets help. */
export class SlashCommands {
  private readonly table: SlashCommand[];

  constructor(private readonly svc: CommandService) {
    this.table = [
      {
        name: 'help',
        usage: 'help',
        description: 'this help',
        permission: 'view',
        run: (ctx) => this.help(ctx),
      },
      {
        name: 'status',
        usage: 'status [task-id]',
        description: 'task counts, or one task in detail',
        permission: 'view',
        run: (ctx, a) => this.status(ctx, a[0]),
      },
      {
        name: 'agents',
        usage: 'agents',
        description: 'connected agents and their health',
        permission: 'view',
        run: (ctx) => this.agents(ctx),
      },
      {
        name: 'queue',
        usage: 'queue',
        description: 'tasks waiting to run',
        permission: 'view',
        run: (ctx) => this.queue(ctx),
      },
      {
        name: 'cancel',
        usage: 'cancel <task-id>',
        description: 'cancel a task (yours; admins: any)',
        permission: 'task.cancel.own',
        run: (ctx, a) => this.svc.cancelTask(ctx, a[0] ?? ''),
      },
      {
        name: 'archive',
        usage: 'archive <task-id> [reason]',
        description: 'archive a finished task',
        permission: 'task.archive',
        run: (ctx, a) => this.archive(ctx, a),
      },
      {
        name: 'restore',
        usage: 'restore <archive-id>',
        description: 'restore an archived task',
        permission: 'task.restore',
        run: (ctx, a) => this.restore(ctx, a[0]),
      },
      {
        name: 'projects',
        usage: 'projects [add <agent-id> <local-path> [--name n] [--model m] [--budget usd] | remove]',
        description: 'list projects, or link/unlink this channel (admin)',
        permission: 'view',
        run: (ctx, a, rest) => this.projects(ctx, a, rest),
      },
      {
        name: 'users',
        usage: 'users [role <@user> <admin|developer|viewer>]',
        description: 'list users, or change a role (admin)',
        permission: 'view',
        run: (ctx, a) => this.users(ctx, a),
      },
    ];
  }

  async handle(ctx: RequestContext): Promise<void> {
    const text = ctx.request.text.trim();
    const first = tokenize(text)[0];
    const name = first?.value.toLowerCase() ?? '';
    const cmd = this.table.find((c) => c.name === name);
    if (!cmd) {
      await this.svc.audit(ctx, 'command.unknown', 'channel', ctx.request.channelId, {
        text: text.slice(0, 200),
      });
      await this.help(
        ctx,
        name ? `Unknown command \`${escapeMrkdwn(name.slice(0, 50))}\`. Here's what I can do:` : undefined,
      );
      return;
    }
    if (!(await this.svc.require(ctx, cmd.permission, `use /bm ${cmd.name}`))) return;
    const rest = first ? text.slice(first.raw.length).trim() : '';
    const args = tokenize(rest).map((t) => t.value);
    await cmd.run(ctx, args, rest);
    if (!ctx.rejection)
      await this.svc.audit(ctx, `command.${cmd.name}`, 'channel', ctx.request.channelId, {
        args: args.slice(0, 10),
      });
  }

  private help(ctx: RequestContext, note?: string): Promise<void> {
    return ctx.request.respond(helpMessage(this.svc.deps.bots, this.table, note));
  }

  private async status(ctx: RequestContext, taskId?: string): Promise<void> {
    const { tasks } = this.svc.deps.repos;
    if (!taskId) {
      const counts = await tasks.countByStatus();
      const agents = await this.svc.deps.agents.listAgents().catch(() => []);
      const line = TASK_STATUSES.map((s) => `${s} ${counts[s] ?? 0}`).join(' · ');
      await ctx.request.respond(
        block(`*Tasks:* ${line}`, `${agents.filter((a) => a.online).length}/${agents.length} agents online`),
      );
      return;
    }
    const t = await tasks.findById(taskId);
    if (!t)
      return this.svc.reject(
        ctx,
        'task_not_found',
        `Task \`${taskId}\` was not found (it may have been archived).`,
      );
    const lines = [
      `*Task \`${t.id}\`* — ${t.status}`,
      `${this.svc.label(t).bot} · \`${t.command}\` · model \`${t.model}\` · ${t.priority} · agent \`${t.agentId}\``,
      `>${escapeMrkdwn(t.prompt.slice(0, 300))}`,
    ];
    if (t.status === 'completed')
      lines.push(
        `${formatCost(t.costUsd)} · ${formatDuration(t.durationMs)} · ${t.filesChanged.length} files changed`,
      );
    if (t.errorMessage) lines.push(`Error: ${escapeMrkdwn(t.errorMessage.slice(0, 500))}`);
    await ctx.request.respond(block(lines.join('\n'), `Started by <@${t.userId}>`));
  }

  private async agents(ctx: RequestContext): Promise<void> {
    const agents = await this.svc.deps.agents.listAgents();
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
      return `• \`${escapeMrkdwn(a.agentId)}\` ${state}${load}${circuit}${queued}${a.hostname ? ` · ${escapeMrkdwn(a.hostname)}` : ''}`;
    });
    await ctx.request.respond(block(`*Agents*\n${lines.join('\n')}`));
  }

  private async queue(ctx: RequestContext): Promise<void> {
    const { tasks, offlineQueue } = this.svc.deps.repos;
    const waiting = await tasks.list({ status: ['pending', 'queued'], limit: 20 });
    const depth = await offlineQueue.countByAgent();
    const total = Object.values(depth).reduce((a, b) => a + b, 0);
    const lines = waiting.map(
      (t) =>
        `• \`${t.id}\` ${t.status} · ${t.priority} · ${this.svc.label(t).bot} \`${t.command}\` · agent \`${t.agentId}\``,
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
  }

  private async archive(ctx: RequestContext, args: string[]): Promise<void> {
    const [taskId, ...reasonWords] = args;
    if (!taskId) return this.svc.reject(ctx, 'invalid_command', 'Usage: `/bm archive <task-id> [reason]`');
    const reason = reasonWords.join(' ') || 'manual';
    try {
      const archived = await this.svc.deps.retention.archive(taskId, reason, ctx.request.userId);
      await ctx.request.respond(
        noticeMessage(
          `Archived task \`${taskId}\` as \`${archived.id}\`. Restore it with \`/bm restore ${archived.id}\`.`,
          ':file_cabinet:',
        ),
      );
    } catch (err) {
      await this.svc.reject(
        ctx,
        'archive_failed',
        `Could not archive \`${taskId}\`: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }

  private async restore(ctx: RequestContext, archiveId?: string): Promise<void> {
    if (!archiveId) return this.svc.reject(ctx, 'invalid_command', 'Usage: `/bm restore <archive-id>`');
    try {
      const task = await this.svc.deps.retention.restore(archiveId, ctx.request.userId);
      await ctx.request.respond(
        noticeMessage(`Restored \`${archiveId}\` as task \`${task.id}\`.`, ':package:'),
      );
    } catch (err) {
      await this.svc.reject(
        ctx,
        'restore_failed',
        `Could not restore \`${archiveId}\`: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }

  private async projects(ctx: RequestContext, args: string[], rest: string): Promise<void> {
    const sub = args[0]?.toLowerCase();
    const { projects } = this.svc.deps.repos;
    if (!sub || sub === 'list') {
      const all = await projects.list();
      const lines = all.map((p) => this.projectLine(p, ctx.request.channelId));
      await ctx.request.respond(
        block(
          all.length
            ? `*Projects*\n${lines.join('\n')}`
            : '*No projects yet.* Link this channel with `/bm projects add <agent-id> <path>`.',
        ),
      );
      return;
    }
    if (sub !== 'add' && sub !== 'remove') {
      return this.svc.reject(
        ctx,
        'invalid_command',
        'Usage: `/bm projects`, `/bm projects add <agent-id> <local-path> [--name n] [--model m] [--budget usd]`, `/bm projects remove`',
      );
    }
    if (!(await this.svc.require(ctx, 'project.register', `${sub} projects`))) return;
    const channelId = ctx.request.channelId;
    const existing = await projects.findByChannel(channelId);
    if (sub === 'remove') {
      if (!existing)
        return this.svc.reject(ctx, 'unknown_project', 'This channel is not linked to a project.');
      await projects.delete(existing.id);
      await this.svc.audit(ctx, 'project.removed', 'project', existing.id, { channelId });
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
      const m = this.modelFor(parsed.flags.model);
      if (m.ok) model = m.model;
      else problems.push(m.error);
    }
    if (problems.length || !agentId || !localPath) {
      return this.svc.reject(
        ctx,
        'invalid_command',
        `${problems.join('; ')}.\nUsage: \`/bm projects add <agent-id> <local-path> [--name n] [--model m] [--budget usd]\``,
      );
    }
    const fields = {
      name: typeof parsed.flags.name === 'string' ? parsed.flags.name : path.basename(localPath) || localPath,
      channelId,
      agentId,
      localPath,
      defaultModel: model,
      maxBudgetUsd: typeof parsed.flags.budget === 'number' ? parsed.flags.budget : null,
    };
    const project = existing ? await projects.update(existing.id, fields) : await projects.create(fields);
    await this.svc.audit(ctx, existing ? 'project.updated' : 'project.registered', 'project', project.id, {
      ...fields,
    });
    await ctx.request.respond(
      noticeMessage(
        `${existing ? 'Updated' : 'Linked'} this channel to project *${escapeMrkdwn(project.name)}*: agent \`${project.agentId}\`, path \`${escapeMrkdwn(project.localPath)}\`${project.defaultModel ? `, model \`${project.defaultModel}\`` : ''}${project.maxBudgetUsd ? `, budget ${formatCost(project.maxBudgetUsd)}` : ''}. Mention me here to start a task.`,
        ':link:',
      ),
    );
  }

  private modelFor(value: string): { ok: true; model: string } | { ok: false; error: string } {
    const strategy = this.svc.deps.modelStrategy;
    const fake = {
      botName: '',
      command: '',
      args: '',
      flags: { model: value },
      unknownFlags: [],
      errors: [],
    };
    const bot = this.svc.deps.bots.list()[0];
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
      createdAt: 0,
      updatedAt: 0,
    };
    const r = strategy.choose(fake, bot, placeholder);
    return r.ok ? { ok: true, model: r.choice.model } : r;
  }

  private projectLine(p: Project, here: string): string {
    return `• *${escapeMrkdwn(p.name)}* — agent \`${p.agentId}\` · \`${escapeMrkdwn(p.localPath)}\` · <#${p.channelId}>${p.channelId === here ? ' (this channel)' : ''}`;
  }

  private async users(ctx: RequestContext, args: string[]): Promise<void> {
    const { users } = this.svc.deps.repos;
    const sub = args[0]?.toLowerCase();
    if (!sub || sub === 'list') {
      const all = await users.list();
      const lines = all.map((u) => `• <@${u.id}>${u.name ? ` (${escapeMrkdwn(u.name)})` : ''} — ${u.role}`);
      await ctx.request.respond(block(all.length ? `*Users*\n${lines.join('\n')}` : '*No users yet.*'));
      return;
    }
    if (sub !== 'role')
      return this.svc.reject(
        ctx,
        'invalid_command',
        'Usage: `/bm users` or `/bm users role <@user> <admin|developer|viewer>`',
      );
    if (!(await this.svc.require(ctx, 'user.manage', 'change roles'))) return;
    const ref = USER_REF.exec(args[1] ?? '');
    const userId = ref?.[1] ?? ref?.[2];
    const role = args[2]?.toLowerCase() ?? '';
    if (!userId || !isRole(role)) {
      return this.svc.reject(
        ctx,
        'invalid_command',
        `Usage: \`/bm users role <@user> <${ROLES.join('|')}>\``,
      );
    }
    const existing = await users.findById(userId);
    const user = existing ? await users.setRole(userId, role) : await users.upsert({ id: userId, role });
    await this.svc.audit(ctx, 'user.role_changed', 'user', userId, {
      from: existing?.role ?? null,
      to: role,
    });
    await ctx.request.respond(noticeMessage(`<@${user.id}> is now ${user.role}.`, ':busts_in_silhouette:'));
  }
}
