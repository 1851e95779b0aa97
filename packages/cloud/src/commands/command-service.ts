import { isTerminalStatus, type TaskComplete, type TaskError, type TaskSubmit } from '@bematic/protocol';
import pino, { type Logger } from 'pino';
import type { BotRegistry } from '../bots/bot-registry.js';
import { parseArguments, toParsedCommand } from '../bots/command-parser.js';
import { buildExecutionConfig, type ModelStrategy } from '../bots/model-routing.js';
import { type Bot, findCommand, READ_ONLY_TOOLS } from '../bots/types.js';
import type { ChatMessage, ChatSurface } from '../chat/chat-surface.js';
import { newTaskId } from '../db/ids.js';
import type { NewTask, Project, Repositories, Task } from '../db/repositories/types.js';
import type { AgentDirectory, TaskDispatcher } from '../gateway/types.js';
import { can, type Permission } from '../middleware/permissions.js';
import { type RequestContext, rejectRequest } from '../middleware/types.js';
import {
  agentBusyMessage,
  agentOfflineMessage,
  contextBlock,
  errorMessage,
  noticeMessage,
  REACTIONS,
  sectionBlock,
  taskStartedMessage,
} from '../notifications/blocks.js';
import { formatCost, formatDuration } from '../notifications/format.js';
import { escapeMrkdwn } from '../notifications/mrkdwn.js';
import type { TaskEvents } from '../tasks/task-events.js';
import {
  DECOMPOSE_COMMAND,
  type PlannedSubtask,
  parsePlan,
  planningSystemPrompt,
  subtaskPrompt,
} from './decomposition.js';
import type { RetentionOperations } from './retention.js';
import { SlashCommands } from './slash-commands.js';

export type CommandRepositories = Pick<
  Repositories,
  'tasks' | 'projects' | 'users' | 'audit' | 'offlineQueue'
>;

/** The collection points the command service reports to; MetricsCollector satisfies it. */
export interface CommandMetrics {
  observeBotResolution(ms: number): void;
  /** `tier` is premium/standard/fast, or `custom` for a project default or an explicit model id. */
  recordModelRouting(bot: string, tier: string): void;
}

export interface CommandServiceDeps {
  repos: CommandRepositories;
  dispatcher: TaskDispatcher;
  agents: AgentDirectory;
  retention: RetentionOperations;
  bots: BotRegistry;
  modelStrategy: ModelStrategy;
  /** Where a task's conversation lives (Slack or console), for work started outside a request. */
  surfaceFor(task: Task): ChatSurface;
  /** task.created is emitted here; decomposition listens for terminal events once `attach`ed. */
  events?: TaskEvents;
  logger?: Logger;
  newTaskId?: () => string;
  /** Passed to agents for max-turns recovery. */
  maxContinuations?: number;
  metrics?: CommandMetrics;
}

interface LaunchOrigin {
  surface: ChatSurface;
  ctx?: RequestContext;
}

/**
 * Turns chat requests into tasks: resolves bot and command, builds the
 * execution config, records the task, posts "Task started" and hands the task
 * to the gateway. Also serves buttons, /bm commands and task decomposition.
 */
export class CommandService {
  readonly log: Logger;
  private readonly slash: SlashCommands;
  private readonly plans = new Map<string, PlannedSubtask[]>();
  private readonly idGen: () => string;

  constructor(readonly deps: CommandServiceDeps) {
    this.log = deps.logger ?? pino({ level: 'silent' });
    this.idGen = deps.newTaskId ?? newTaskId;
    this.slash = new SlashCommands(this);
  }

  /** Terminal handler of the middleware chain. Never throws. */
  async handle(ctx: RequestContext): Promise<void> {
    try {
      switch (ctx.request.kind) {
        case 'mention':
          return await this.handleMention(ctx);
        case 'thread_reply':
          return await this.handleThreadReply(ctx);
        case 'slash':
          return await this.slash.handle(ctx);
        case 'action':
          return await this.handleAction(ctx);
      }
    } catch (err) {
      this.log.error({ err, requestId: ctx.requestId }, 'command failed');
      await this.reject(
        ctx,
        'internal_error',
        'Something went wrong handling that request; it has been logged.',
        {
          error: err instanceof Error ? err.message : String(err),
        },
      );
    }
  }

  /** Subscribes decomposition to terminal task events. */
  attach(events: TaskEvents): () => void {
    const offs = [
      events.on('task.completed', (p) => this.onTerminal(p.task, p.message)),
      events.on('task.failed', (p) => this.onTerminal(p.task)),
      events.on('task.cancelled', (p) => this.onTerminal(p.task)),
    ];
    return () => {
      for (const off of offs) off();
    };
  }

  // ---- helpers shared with slash commands -------------------------------------------------

  async reject(
    ctx: RequestContext,
    code: string,
    text: string,
    details: Record<string, unknown> = {},
  ): Promise<void> {
    await rejectRequest(ctx, this.deps.repos.audit, code, noticeMessage(text, ':warning:'), details);
  }

  /** Checks a permission; on denial tells the person and audits. */
  async require(ctx: RequestContext, permission: Permission, what: string): Promise<boolean> {
    const role = ctx.user?.role;
    if (role && can(role, permission)) return true;
    await this.reject(ctx, 'forbidden', `Your role (${role ?? 'unknown'}) is not allowed to ${what}.`, {
      permission,
    });
    return false;
  }

  async audit(
    ctx: RequestContext | null,
    action: string,
    resourceType: string,
    resourceId: string,
    details: Record<string, unknown> = {},
  ) {
    await this.deps.repos.audit
      .log({ action, actor: ctx?.request.userId ?? 'system', resourceType, resourceId, details })
      .catch((err: unknown) => this.log.warn({ err, action }, 'audit write failed'));
  }

  label(task: Task) {
    return { bot: this.deps.bots.get(task.botName)?.displayName ?? task.botName };
  }

  // ---- mentions and thread replies --------------------------------------------------------

  private async handleMention(ctx: RequestContext): Promise<void> {
    if (!(await this.require(ctx, 'task.run', 'run tasks'))) return;
    const project = ctx.project;
    if (!project) return this.reject(ctx, 'unknown_project', 'This channel is not linked to a project.');
    const resolving = performance.now();
    const resolution = this.deps.bots.resolveFromMention(ctx.request.text);
    this.deps.metrics?.observeBotResolution(performance.now() - resolving);
    if (resolution.kind !== 'resolved') {
      return this.reject(ctx, resolution.kind, resolution.message, { bots: resolution.bots });
    }
    const { bot, parsed } = resolution;
    const built = buildExecutionConfig(parsed, bot, project, this.deps.modelStrategy);
    if (!built.ok) return this.reject(ctx, 'invalid_command', built.error);
    await this.warnUnknownFlags(ctx, parsed.unknownFlags);
    const threadTs = ctx.request.threadTs ?? ctx.request.messageTs;
    const decompose = parsed.flags.decompose ?? bot.shouldDecompose?.(parsed) ?? false;
    let config = built.config;
    let details: Record<string, unknown> = { modelReason: built.choice.reason };
    if (decompose) {
      config = {
        ...config,
        command: DECOMPOSE_COMMAND,
        systemPrompt: planningSystemPrompt(bot, parsed.command, project),
        allowedTools: [...READ_ONLY_TOOLS],
        model: parsed.flags.model ? config.model : this.deps.modelStrategy.tiers.standard,
      };
      details = { ...details, decomposition: { originalCommand: parsed.command } };
    }
    this.routed(bot.name, decompose && !parsed.flags.model ? 'standard' : built.choice.tier);
    await this.launch(
      this.newTask(config, { project, ctx, threadTs, messageTs: ctx.request.messageTs }),
      { surface: ctx.request.surface, ctx },
      details,
    );
  }

  private async handleThreadReply(ctx: RequestContext): Promise<void> {
    const resolving = performance.now();
    const r = ctx.request;
    const previous = r.threadTs
      ? await this.deps.repos.tasks.findByThread(r.channelId, r.threadTs)
      : undefined;
    if (!previous) return this.handleMention(ctx);
    if (!(await this.require(ctx, 'task.run', 'run tasks'))) return;
    if (!isTerminalStatus(previous.status)) {
      return this.reject(
        ctx,
        'task_in_progress',
        `I'm still working on the previous request in this thread (\`${previous.id}\`). Reply again when it finishes, or cancel it.`,
      );
    }
    const bot = this.deps.bots.get(previous.botName);
    this.deps.metrics?.observeBotResolution(performance.now() - resolving);
    const project = (await this.deps.repos.projects.findById(previous.projectId)) ?? ctx.project;
    if (!bot || !project)
      return this.reject(
        ctx,
        'invalid_thread',
        'The task this thread belongs to can no longer be continued.',
      );
    const args = parseArguments(r.text);
    const command = findCommand(bot, previous.command) ? previous.command : bot.defaultCommand;
    const parsed = toParsedCommand(bot.name, command, args);
    if (!parsed.flags.model && !project.defaultModel) parsed.flags.model = previous.model;
    const built = buildExecutionConfig(parsed, bot, project, this.deps.modelStrategy);
    if (!built.ok) return this.reject(ctx, 'invalid_command', built.error);
    await this.warnUnknownFlags(ctx, parsed.unknownFlags);
    this.routed(bot.name, built.choice.tier);
    const config = { ...built.config };
    if (!args.flags.priority) config.priority = previous.priority;
    const resume = previous.sessionId ?? previous.submission.resumeSessionId;
    if (resume) config.resumeSessionId = resume;
    await this.launch(
      this.newTask(config, {
        project,
        ctx,
        threadTs: previous.threadTs ?? r.threadTs,
        messageTs: r.messageTs,
      }),
      { surface: r.surface, ctx },
      { continues: previous.id, resumeSessionId: resume ?? null },
    );
  }

  private async warnUnknownFlags(ctx: RequestContext, flags: string[]): Promise<void> {
    if (flags.length === 0) return;
    await ctx.request
      .respond(
        noticeMessage(
          `Ignored unknown flag${flags.length > 1 ? 's' : ''} ${flags.map((f) => `\`${f}\``).join(', ')}. Known: \`--model\`, \`--priority\`, \`--budget\`, \`--decompose\`.`,
        ),
      )
      .catch(() => {});
  }

  private routed(bot: string, tier: string | null): void {
    this.deps.metrics?.recordModelRouting(bot, tier ?? 'custom');
  }

  // ---- buttons ----------------------------------------------------------------------------

  private async handleAction(ctx: RequestContext): Promise<void> {
    const r = ctx.request;
    const taskId = r.actionValue ?? '';
    if (r.text === 'task_cancel') return this.cancelTask(ctx, taskId);
    if (r.text === 'task_retry') return this.retryTask(ctx, taskId);
    return this.reject(ctx, 'unknown_action', `Unknown action "${r.text}".`);
  }

  async retryTask(ctx: RequestContext, taskId: string): Promise<void> {
    if (!(await this.require(ctx, 'task.run', 'retry tasks'))) return;
    const old = await this.deps.repos.tasks.findById(taskId);
    if (!old)
      return this.reject(
        ctx,
        'task_not_found',
        `Task \`${taskId}\` was not found (it may have been archived).`,
      );
    if (old.status !== 'failed' || old.recoverable === false) {
      return this.reject(
        ctx,
        'not_retryable',
        `Task \`${old.id}\` is ${old.status}${old.recoverable === false ? ' with an error that cannot be retried' : ''}; only recoverable failed tasks can be retried.`,
      );
    }
    const id = this.idGen();
    const submission: TaskSubmit = { ...old.submission, taskId: id };
    const task: NewTask = {
      id,
      projectId: old.projectId,
      agentId: old.agentId,
      botName: old.botName,
      command: old.command,
      prompt: old.prompt,
      model: old.model,
      priority: old.priority,
      userId: ctx.request.userId,
      channelId: old.channelId,
      threadTs: old.threadTs,
      messageTs: old.messageTs,
      submission,
      status: 'pending',
    };
    await this.launch(task, { surface: ctx.request.surface, ctx }, { retryOf: old.id });
  }

  /** Cancel button and `/bm cancel`: own tasks for developers, any task for admins. */
  async cancelTask(ctx: RequestContext, taskId: string): Promise<void> {
    if (!taskId) return this.reject(ctx, 'invalid_command', 'Which task? Usage: `/bm cancel <task-id>`.');
    const role = ctx.user?.role;
    const task = await this.deps.repos.tasks.findById(taskId);
    if (!task) return this.reject(ctx, 'task_not_found', `Task \`${taskId}\` was not found.`);
    const own = task.userId === ctx.request.userId;
    const permission: Permission = own ? 'task.cancel.own' : 'task.cancel.any';
    if (!role || !can(role, permission)) {
      return this.reject(
        ctx,
        'forbidden',
        own
          ? `Your role (${role ?? 'unknown'}) cannot cancel tasks.`
          : 'Only admins can cancel tasks started by someone else.',
        { permission, taskId },
      );
    }
    if (isTerminalStatus(task.status)) {
      await ctx.request.respond(noticeMessage(`Task \`${task.id}\` is already ${task.status}.`));
      return;
    }
    const reason = `Cancelled by ${ctx.request.userName ?? `<@${ctx.request.userId}>`}`;
    const result = await this.deps.dispatcher.cancel(task.id, reason, ctx.request.userId);
    await this.audit(ctx, 'task.cancel_requested', 'task', task.id, { outcome: result.outcome, reason });
    if (result.outcome === 'not-found') {
      // Never reached the gateway (still pending): cancel it here.
      const t = await this.deps.repos.tasks
        .transition(task.id, 'cancelled', { completedAt: Date.now() })
        .catch(() => null);
      if (t?.changed) {
        await this.audit(ctx, 'task.cancelled', 'task', task.id, { reason });
        this.deps.events?.emit('task.cancelled', { task: t.task, message: { taskId: task.id, reason } });
      }
    }
    await ctx.request.respond(noticeMessage(`Cancelling task \`${task.id}\`…`, ':no_entry_sign:'));
  }

  // ---- task creation ----------------------------------------------------------------------

  newTask(
    config: Omit<TaskSubmit, 'taskId'>,
    where: {
      project: Project;
      ctx?: RequestContext;
      userId?: string;
      channelId?: string;
      threadTs: string | null;
      messageTs: string | null;
      parentTaskId?: string;
    },
  ): NewTask {
    const id = this.idGen();
    const submission: TaskSubmit = { ...config, taskId: id };
    if (this.deps.maxContinuations !== undefined && submission.maxContinuations === undefined) {
      submission.maxContinuations = this.deps.maxContinuations;
    }
    if (where.parentTaskId) submission.parentTaskId = where.parentTaskId;
    return {
      id,
      projectId: where.project.id,
      agentId: where.project.agentId,
      botName: config.botName,
      command: config.command,
      prompt: config.prompt,
      model: config.model,
      priority: config.priority,
      userId: where.userId ?? where.ctx?.request.userId ?? 'system',
      channelId: where.channelId ?? where.ctx?.request.channelId ?? where.project.channelId,
      threadTs: where.threadTs,
      messageTs: where.messageTs,
      parentTaskId: where.parentTaskId ?? null,
      submission,
      status: 'pending',
    };
  }

  /** Records the task, posts "Task started", marks the message as being worked on and dispatches. */
  async launch(newTask: NewTask, origin: LaunchOrigin, details: Record<string, unknown> = {}): Promise<Task> {
    const { tasks } = this.deps.repos;
    let task = await tasks.create({ ...newTask, status: 'pending' });
    if (origin.ctx) origin.ctx.tasksCreated++;
    await this.audit(origin.ctx ?? null, 'task.created', 'task', task.id, {
      bot: task.botName,
      command: task.command,
      model: task.model,
      priority: task.priority,
      projectId: task.projectId,
      agentId: task.agentId,
      parentTaskId: task.parentTaskId,
      ...details,
    });
    this.deps.events?.emit('task.created', { task });
    const surface = origin.surface;
    try {
      const posted = await surface.post(
        task.channelId,
        taskStartedMessage(task, this.label(task)),
        task.threadTs,
      );
      task = await tasks.update(task.id, {
        progressMessageTs: posted.ts,
        ...(task.threadTs ? {} : { threadTs: posted.ts }),
      });
    } catch (err) {
      this.log.warn({ err, taskId: task.id }, 'could not post "Task started"');
    }
    if (task.messageTs) {
      await surface.addReaction(task.channelId, task.messageTs, REACTIONS.working).catch(() => {});
    }
    try {
      const result = await this.deps.dispatcher.dispatch(task);
      if (result.queued) {
        await surface
          .post(
            task.channelId,
            result.agentOnline
              ? agentBusyMessage(result.agentId, result.reason)
              : agentOfflineMessage(result.agentId, result.reconnectEtaMs, result.reason),
            task.threadTs,
          )
          .catch((err: unknown) => this.log.warn({ err }, 'could not post offline notice'));
      }
    } catch (err) {
      await this.dispatchFailed(task, surface, err);
    }
    return task;
  }

  private async dispatchFailed(task: Task, surface: ChatSurface, err: unknown): Promise<void> {
    const message = `Could not hand the task to an agent: ${err instanceof Error ? err.message : String(err)}`;
    this.log.error({ err, taskId: task.id }, 'dispatch failed');
    const failure: TaskError = {
      taskId: task.id,
      error: message,
      recoverable: true,
      errorCode: 'EXECUTION_FAILED',
    };
    const t = await this.deps.repos.tasks
      .transition(task.id, 'failed', {
        errorMessage: message,
        errorCode: failure.errorCode,
        recoverable: true,
        completedAt: Date.now(),
      })
      .catch(() => null);
    if (!t?.changed) return;
    await this.audit(null, 'task.failed', 'task', task.id, { error: message, stage: 'dispatch' });
    if (this.deps.events) this.deps.events.emit('task.failed', { task: t.task, message: failure });
    else
      await surface
        .post(task.channelId, errorMessage(t.task, this.label(t.task), failure), task.threadTs)
        .catch(() => {});
  }

  // ---- decomposition ----------------------------------------------------------------------

  private async onTerminal(task: Task, complete?: TaskComplete): Promise<void> {
    try {
      if (task.command === DECOMPOSE_COMMAND && !task.parentTaskId) {
        if (task.status === 'completed' || complete)
          await this.handleDecompositionComplete(task, complete?.result);
        return;
      }
      if (task.parentTaskId) await this.advanceDecomposition(task.parentTaskId);
    } catch (err) {
      this.log.error({ err, taskId: task.id }, 'decomposition step failed');
    }
  }

  private async planFor(parent: Task, result?: string): Promise<PlannedSubtask[] | string> {
    const cached = this.plans.get(parent.id);
    if (cached) return cached;
    const parsed = parsePlan(result ?? parent.result ?? '');
    if (!parsed.ok) return parsed.error;
    this.plans.set(parent.id, parsed.subtasks);
    return parsed.subtasks;
  }

  /** The planning task finished: post the plan and start the first subtask. */
  async handleDecompositionComplete(planningTask: Task, result?: string): Promise<void> {
    const parent = (await this.deps.repos.tasks.findById(planningTask.id)) ?? planningTask;
    const existing = await this.deps.repos.tasks.list({ parentTaskId: parent.id });
    if (existing.length > 0) return;
    const surface = this.deps.surfaceFor(parent);
    const plan = await this.planFor(parent, result);
    if (typeof plan === 'string') {
      await this.audit(null, 'decomposition.failed', 'task', parent.id, { error: plan });
      await surface.post(
        parent.channelId,
        noticeMessage(
          `I couldn't turn the plan into subtasks (${plan}). The planning result is above; ask again without \`--decompose\` to run it as one task.`,
          ':warning:',
        ),
        parent.threadTs,
      );
      return;
    }
    const lines = plan.map(
      (s, i) => `${i + 1}. *${escapeMrkdwn(s.title)}*${s.command ? ` · \`${escapeMrkdwn(s.command)}\`` : ''}`,
    );
    await surface.post(
      parent.channelId,
      {
        text: `Plan: ${plan.length} subtasks`,
        blocks: [
          sectionBlock(
            `:clipboard: *Plan — ${plan.length} subtask${plan.length === 1 ? '' : 's'}, run one after another*\n${lines.join('\n')}`,
          ),
          contextBlock(`Planning task \`${parent.id}\``),
        ],
      },
      parent.threadTs,
    );
    await this.audit(null, 'decomposition.planned', 'task', parent.id, { subtasks: plan.length });
    await this.startSubtask(parent, plan, 0);
  }

  private async originalCommand(parent: Task, bot: Bot): Promise<string> {
    const created = await this.deps.repos.audit.list({
      action: 'task.created',
      resourceId: parent.id,
      limit: 1,
    });
    const d = created[0]?.details.decomposition;
    const cmd =
      typeof d === 'object' && d !== null ? (d as Record<string, unknown>).originalCommand : undefined;
    return typeof cmd === 'string' && findCommand(bot, cmd) ? cmd : bot.defaultCommand;
  }

  private async startSubtask(parent: Task, plan: PlannedSubtask[], index: number): Promise<void> {
    const sub = plan[index];
    const bot = this.deps.bots.get(parent.botName);
    const project = await this.deps.repos.projects.findById(parent.projectId);
    if (!sub || !bot || !project) return;
    const command =
      (sub.command && findCommand(bot, sub.command)?.name) || (await this.originalCommand(parent, bot));
    const parsed = toParsedCommand(bot.name, command, parseArguments(''));
    parsed.args = subtaskPrompt(parent, index, plan.length, sub);
    if (parent.priority !== 'normal') parsed.flags.priority = parent.priority;
    const built = buildExecutionConfig(parsed, bot, project, this.deps.modelStrategy);
    if (!built.ok) {
      this.log.error({ error: built.error, parent: parent.id }, 'subtask config failed');
      return;
    }
    this.routed(bot.name, built.choice.tier);
    const config = { ...built.config, prompt: parsed.args };
    if (parent.submission.maxBudgetUsd !== undefined) config.maxBudgetUsd = parent.submission.maxBudgetUsd;
    const task = this.newTask(config, {
      project,
      userId: parent.userId,
      channelId: parent.channelId,
      threadTs: parent.threadTs,
      messageTs: null,
      parentTaskId: parent.id,
    });
    await this.launch(
      task,
      { surface: this.deps.surfaceFor(parent) },
      { subtask: index + 1, of: plan.length, title: sub.title },
    );
  }

  /** A subtask reached a terminal state: start the next one, or summarise. */
  async advanceDecomposition(parentId: string): Promise<void> {
    const parent = await this.deps.repos.tasks.findById(parentId);
    if (!parent || parent.command !== DECOMPOSE_COMMAND) return;
    const plan = await this.planFor(parent);
    if (typeof plan === 'string') return;
    const subtasks = await this.subtasksOf(parent.id);
    if (subtasks.some((t) => !isTerminalStatus(t.status))) return;
    const last = subtasks[subtasks.length - 1];
    if (last?.status === 'completed' && subtasks.length < plan.length) {
      await this.startSubtask(parent, plan, subtasks.length);
      return;
    }
    await this.summarise(parent, plan, subtasks);
  }

  private async subtasksOf(parentId: string): Promise<Task[]> {
    const list = await this.deps.repos.tasks.list({ parentTaskId: parentId });
    return list.sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }

  private async summarise(parent: Task, plan: PlannedSubtask[], subtasks: Task[]): Promise<void> {
    const sum = (f: (t: Task) => number) => subtasks.reduce((n, t) => n + f(t), f(parent));
    const metrics = {
      inputTokens: sum((t) => t.inputTokens),
      outputTokens: sum((t) => t.outputTokens),
      cacheReadTokens: sum((t) => t.cacheReadTokens),
      cacheCreationTokens: sum((t) => t.cacheCreationTokens),
      costUsd: sum((t) => t.costUsd),
      durationMs: sum((t) => t.durationMs),
      numTurns: sum((t) => t.numTurns),
      continuations: sum((t) => t.continuations),
    };
    const filesChanged = [...new Set(subtasks.flatMap((t) => t.filesChanged))];
    const commandsRun = subtasks.flatMap((t) => t.commandsRun);
    const allDone = subtasks.length === plan.length && subtasks.every((t) => t.status === 'completed');
    const icon = { completed: ':white_check_mark:', failed: ':x:', cancelled: ':no_entry_sign:' } as Record<
      string,
      string
    >;
    const lines = plan.map((p, i) => {
      const t = subtasks[i];
      return t
        ? `${icon[t.status] ?? ':grey_question:'} ${i + 1}. *${escapeMrkdwn(p.title)}* — ${t.status} · ${formatCost(t.costUsd)} · \`${t.id}\``
        : `:white_circle: ${i + 1}. *${escapeMrkdwn(p.title)}* — not run`;
    });
    const headline = allDone
      ? `:tada: *All ${plan.length} subtasks completed*`
      : `:warning: *Stopped after ${subtasks.length} of ${plan.length} subtasks* — the last one did not complete, so the rest were not started.`;
    const summary: ChatMessage = {
      text: allDone
        ? `All ${plan.length} subtasks completed`
        : `Decomposition stopped after ${subtasks.length} of ${plan.length} subtasks`,
      blocks: [
        sectionBlock(`${headline}\n${lines.join('\n')}`),
        sectionBlock(
          `*Total* ${formatCost(metrics.costUsd)} · ${formatDuration(metrics.durationMs)} · ${metrics.inputTokens} in / ${metrics.outputTokens} out tokens · ${filesChanged.length} files changed`,
        ),
        contextBlock(`Planning task \`${parent.id}\``),
      ],
    };
    const resultText = `${summary.text}\n${lines.join('\n')}`;
    await this.deps.repos.tasks.update(parent.id, {
      ...metrics,
      filesChanged,
      commandsRun,
      result: resultText,
    });
    if (!isTerminalStatus(parent.status)) {
      await this.deps.repos.tasks
        .transition(parent.id, allDone ? 'completed' : 'failed', { completedAt: Date.now() })
        .catch(() => {});
    }
    await this.audit(null, 'decomposition.completed', 'task', parent.id, {
      subtasks: subtasks.length,
      planned: plan.length,
      allDone,
      costUsd: metrics.costUsd,
    });
    await this.deps.surfaceFor(parent).post(parent.channelId, summary, parent.threadTs);
    this.plans.delete(parent.id);
  }
}
