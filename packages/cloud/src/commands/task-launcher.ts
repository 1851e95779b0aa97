import type { TaskSubmission } from '@bematic/protocol';
import { type Bot, READ_ONLY_TOOLS } from '../bots/types.js';
import type { ChatSurface } from '../chat/chat-surface.js';
import type { NewTask, Project, Task } from '../db/repositories/types.js';
import type { RequestContext } from '../middleware/types.js';
import {
  agentBusyMessage,
  agentOfflineMessage,
  noticeMessage,
  REACTIONS,
  taskStartedMessage,
} from '../notifications/blocks.js';
import { audit, botLabel, type CommandContext, reject, requirePermission } from './context.js';
import { DECOMPOSE_COMMAND, planningSystemPrompt } from './decomposition.js';
import { buildExecutionConfig } from './execution-config.js';

export interface LaunchOrigin {
  surface: ChatSurface;
  ctx?: RequestContext;
  /** The message the task is shown in, when it has one already (a plan's step): nothing new is posted. */
  messageTs?: string;
}

/** Where a new task lives and who asked for it. */
export interface TaskPlacement {
  project: Project;
  ctx?: RequestContext;
  userId?: string;
  channelId?: string;
  threadTs: string | null;
  messageTs: string | null;
  parentTaskId?: string;
}

/**
 * Turns a mention into a running task: resolves bot and command, builds the
 * execution config, records the task, posts "Task started" and hands it to the gateway.
 */
export class TaskLauncher {
  constructor(private readonly context: CommandContext) {}

  nextId(): string {
    return this.context.config.newTaskId();
  }

  async fromMention(ctx: RequestContext): Promise<void> {
    const { context } = this;
    const { bots, modelStrategy } = context.config;
    if (!(await requirePermission(context, ctx, 'task.run', 'run tasks'))) return;
    const project = ctx.project;
    if (!project) return reject(context, ctx, 'unknown_project', 'This channel is not linked to a project.');
    const resolving = performance.now();
    const resolution = bots.resolveFromMention(ctx.request.text, { defaultBot: project.defaultBot });
    context.metrics?.observeBotResolution(performance.now() - resolving);
    if (resolution.kind === 'empty') {
      // Nothing to do is not an error: answer with how to ask, and start nothing.
      await audit(context, ctx, 'request.empty', 'channel', ctx.request.channelId, {});
      await ctx.request.respond(noticeMessage(resolution.message, ':wave:')).catch(() => {});
      return;
    }
    if (resolution.kind !== 'resolved') {
      return reject(context, ctx, resolution.kind, resolution.message, { bots: resolution.bots });
    }
    const { bot, parsed } = resolution;
    const built = buildExecutionConfig(parsed, bot, project, modelStrategy);
    if (!built.ok) return reject(context, ctx, 'invalid_command', built.error);
    await this.warnUnknownFlags(ctx, parsed.unknownFlags);
    const threadTs = ctx.request.threadTs ?? ctx.request.messageTs;
    // Planning first is the person's choice (--decompose or the Plan first button), never inferred.
    const decompose = parsed.flags.decompose === true;
    let config = built.config;
    const details: Record<string, unknown> = { modelReason: built.choice.reason, botVia: resolution.via };
    if (decompose) config = this.planning(config, bot, parsed.command, project, Boolean(parsed.flags.model));
    this.routed(bot.name, decompose && !parsed.flags.model ? 'standard' : built.choice.tier);
    const extras = await this.extras(ctx);
    const task = this.newTask(config, { project, ctx, threadTs, messageTs: ctx.request.messageTs });
    if (extras?.threadContext) {
      task.submission.prompt = `${extras.threadContext}\n\n---\n\nThe request:\n${task.submission.prompt}`;
    }
    if (extras && extras.attachments.length > 0) task.submission.attachments = extras.attachments;
    if (decompose)
      await context.repos.taskPlans.create({
        taskId: task.submission.taskId,
        originalCommand: parsed.command ?? bot.defaultCommand,
      });
    const launched = await this.launch(
      task,
      { surface: ctx.request.surface, ctx },
      {
        ...details,
        ...(extras
          ? { threadContext: Boolean(extras.threadContext), attachments: extras.attachments.length }
          : {}),
      },
    );
    for (const note of extras?.notes ?? []) {
      await ctx.request.surface
        .post(launched.channelId, noticeMessage(note, ':paperclip:'), launched.threadTs)
        .catch((err: unknown) => this.context.log.warn({ err }, 'could not post an attachment note'));
    }
  }

  /** The planning task's config for a request (read-only tools, the standard tier unless a model was asked for). */
  private planning(
    config: Omit<TaskSubmission, 'taskId'>,
    bot: Bot,
    command: string,
    project: Project,
    modelAsked: boolean,
  ): Omit<TaskSubmission, 'taskId'> {
    return {
      ...config,
      command: DECOMPOSE_COMMAND,
      systemPrompt: planningSystemPrompt(bot, command, project),
      allowedTools: [...READ_ONLY_TOOLS],
      model: modelAsked ? config.model : this.context.config.modelStrategy.tiers.standard,
    };
  }

  /**
   * The Plan first button: the same request as `task` (its prompt with the thread context, its files), as a
   * planning task in the same thread, exactly as `--decompose` would have started it. Not recorded yet: the
   * caller claims the plan first, then launches it in `task`'s message.
   */
  planFirstTask(ctx: RequestContext, task: Task, project: Project): NewTask | undefined {
    const bot = this.context.config.bots.get(task.botName);
    if (!bot) return undefined;
    const { taskId: _replaced, ...request } = task.submission;
    const config = this.planning(request, bot, task.command, project, false);
    this.routed(bot.name, 'standard');
    return this.newTask(config, {
      project,
      ctx,
      userId: task.userId,
      channelId: task.channelId,
      threadTs: task.threadTs,
      messageTs: task.messageTs,
    });
  }

  /** A thread that is not one of our tasks' brings its earlier messages; files come either way. */
  private async extras(ctx: RequestContext) {
    const { request } = ctx;
    if (!request.extras) return undefined;
    const inThread = request.threadTs !== null && request.threadTs !== request.messageTs;
    const ours =
      inThread && request.threadTs
        ? await this.context.repos.tasks.findByThread(request.channelId, request.threadTs)
        : undefined;
    return request.extras({ thread: inThread && !ours }).catch((err: unknown) => {
      this.context.log.warn({ err }, 'could not read the thread context or attachments');
      return undefined;
    });
  }

  async warnUnknownFlags(ctx: RequestContext, flags: string[]): Promise<void> {
    if (flags.length === 0) return;
    await ctx.request
      .respond(
        noticeMessage(
          `Ignored unknown flag${flags.length > 1 ? 's' : ''} ${flags.map((f) => `\`${f}\``).join(', ')}. Known: \`--model\`, \`--priority\`, \`--budget\`, \`--decompose\`, \`--base\`.`,
        ),
      )
      .catch(() => {});
  }

  routed(bot: string, tier: string | null): void {
    this.context.metrics?.recordModelRouting(bot, tier ?? 'custom');
  }

  newTask(config: Omit<TaskSubmission, 'taskId'>, where: TaskPlacement): NewTask {
    const id = this.nextId();
    const submission: TaskSubmission = { ...config, taskId: id };
    const { maxContinuations } = this.context.config;
    if (maxContinuations !== undefined && submission.maxContinuations === undefined) {
      submission.maxContinuations = maxContinuations;
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

  /** Records the task, dispatches it, and beside that posts "Task started" and marks the message as being worked on. */
  async launch(newTask: NewTask, origin: LaunchOrigin, details: Record<string, unknown> = {}): Promise<Task> {
    const { context } = this;
    let task = await context.lifecycle.tasks.create(newTask, {
      actor: origin.ctx?.request.userId ?? 'system',
      details: {
        bot: newTask.botName,
        command: newTask.command,
        model: newTask.model,
        priority: newTask.priority,
        projectId: newTask.projectId,
        agentId: newTask.agentId,
        parentTaskId: newTask.parentTaskId ?? null,
        ...details,
      },
    });
    if (origin.ctx) origin.ctx.tasksCreated++;
    const surface = origin.surface;
    // A task shown in an existing message (a plan's step) renders there from its first event on.
    if (origin.messageTs) {
      task = await context.repos.tasks.update(task.id, { progressMessageTs: origin.messageTs });
    }
    // The agent gets the task first; "Task started" and the reaction follow the dispatch, off its path.
    const dispatched = context.lifecycle.dispatcher.dispatch(task);
    const afterDispatch = dispatched.then(
      () => undefined,
      () => undefined,
    );
    const shown = task;
    const posting = origin.messageTs
      ? Promise.resolve(shown)
      : afterDispatch.then(() => this.postStarted(shown, surface));
    const started = context.startedPosts?.hold(task.id, posting) ?? posting;
    const messageTs = task.messageTs;
    const reacted = afterDispatch.then(() =>
      messageTs
        ? surface.addReaction(task.channelId, messageTs, REACTIONS.working).catch(() => {})
        : undefined,
    );
    try {
      const result = await dispatched;
      task = await started;
      // A task shown in an existing message says it waits there, not in a notice of its own.
      if (result.queued && !origin.messageTs) {
        await surface
          .post(
            task.channelId,
            result.agentOnline
              ? agentBusyMessage(result.agentId, result.reason)
              : agentOfflineMessage(result.agentId, result.reconnectEtaMs, result.reason),
            task.threadTs,
          )
          .catch((err: unknown) => this.context.log.warn({ err }, 'could not post offline notice'));
      }
    } catch (err) {
      task = await started;
      await this.dispatchFailed(task, err);
    }
    await reacted;
    return task;
  }

  /** Posts "Task started" and records it as the task's message (and thread); the task as it is then. */
  private async postStarted(task: Task, surface: LaunchOrigin['surface']): Promise<Task> {
    try {
      const posted = await surface.post(
        task.channelId,
        taskStartedMessage(task, botLabel(this.context, task)),
        task.threadTs,
      );
      return await this.context.repos.tasks.update(task.id, {
        progressMessageTs: posted.ts,
        ...(task.threadTs ? {} : { threadTs: posted.ts }),
      });
    } catch (err) {
      this.context.log.warn({ err, taskId: task.id }, 'could not post "Task started"');
      return task;
    }
  }

  private async dispatchFailed(task: Task, err: unknown): Promise<void> {
    const error = `Could not hand the task to an agent: ${err instanceof Error ? err.message : String(err)}`;
    this.context.log.error({ err, taskId: task.id }, 'dispatch failed');
    await this.context.lifecycle.tasks.fail(task.id, {
      errorCode: 'EXECUTION_FAILED',
      error,
      recoverable: true,
      context: { stage: 'dispatch' },
    });
  }
}
