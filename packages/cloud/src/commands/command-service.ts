import type { TaskSubmit } from '@bematic/protocol';
import pino, { type Logger } from 'pino';
import type { BotRegistry } from '../bots/bot-registry.js';
import type { ModelStrategy } from '../bots/model-routing.js';
import type { ChatSurface } from '../chat/chat-surface.js';
import { newTaskId } from '../db/ids.js';
import type { NewTask, Repositories, Task } from '../db/repositories/types.js';
import type { AgentDirectory, TaskDispatcher } from '../gateway/types.js';
import { can, type Permission } from '../middleware/permissions.js';
import { type RequestContext, rejectRequest } from '../middleware/types.js';
import { noticeMessage } from '../notifications/blocks.js';
import type { TaskEvents } from '../tasks/task-events.js';
import { DecompositionFlow } from './decomposition-flow.js';
import type { RetentionOperations } from './retention.js';
import { SlashCommands } from './slash-commands.js';
import { TaskButtons } from './task-buttons.js';
import { type LaunchOrigin, TaskLauncher, type TaskPlacement } from './task-launcher.js';
import { ThreadReplies } from './thread-replies.js';

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

/**
 * Turns chat requests into tasks and routes each kind of request to the module
 * that serves it: mentions (TaskLauncher), thread replies, buttons, /bm commands
 * and task decomposition. Also holds the permission and audit helpers they share.
 */
export class CommandService {
  readonly log: Logger;
  private readonly slash: SlashCommands;
  private readonly launcher: TaskLauncher;
  private readonly replies: ThreadReplies;
  private readonly buttons: TaskButtons;
  private readonly decomposition: DecompositionFlow;

  constructor(readonly deps: CommandServiceDeps) {
    this.log = deps.logger ?? pino({ level: 'silent' });
    this.launcher = new TaskLauncher(this, deps.newTaskId ?? newTaskId);
    this.replies = new ThreadReplies(this, this.launcher);
    this.buttons = new TaskButtons(this, this.launcher);
    this.decomposition = new DecompositionFlow(this, this.launcher);
    this.slash = new SlashCommands(this);
  }

  /** Terminal handler of the middleware chain. Never throws. */
  async handle(ctx: RequestContext): Promise<void> {
    try {
      switch (ctx.request.kind) {
        case 'mention':
          return await this.launcher.fromMention(ctx);
        case 'thread_reply':
          return await this.replies.handle(ctx);
        case 'slash':
          return await this.slash.handle(ctx);
        case 'action':
          return await this.buttons.handle(ctx);
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
    return this.decomposition.attach(events);
  }

  // ---- helpers shared with the request handlers -------------------------------------------

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

  // ---- entry points served by the modules above -------------------------------------------

  retryTask(ctx: RequestContext, taskId: string): Promise<void> {
    return this.buttons.retry(ctx, taskId);
  }

  /** Cancel button and `/bm cancel`: own tasks for developers, any task for admins. */
  cancelTask(ctx: RequestContext, taskId: string): Promise<void> {
    return this.buttons.cancel(ctx, taskId);
  }

  newTask(config: Omit<TaskSubmit, 'taskId'>, where: TaskPlacement): NewTask {
    return this.launcher.newTask(config, where);
  }

  /** Records the task, posts "Task started", marks the message as being worked on and dispatches. */
  launch(newTask: NewTask, origin: LaunchOrigin, details: Record<string, unknown> = {}): Promise<Task> {
    return this.launcher.launch(newTask, origin, details);
  }

  /** The planning task finished: post the plan and start the first subtask. */
  handleDecompositionComplete(planningTask: Task, result?: string): Promise<void> {
    return this.decomposition.planningComplete(planningTask, result);
  }

  /** A subtask reached a terminal state: start the next one, or summarise. */
  advanceDecomposition(parentId: string): Promise<void> {
    return this.decomposition.advance(parentId);
  }
}
