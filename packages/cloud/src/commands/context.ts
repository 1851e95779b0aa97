import pino, { type Logger } from 'pino';
import type { BotRegistry } from '../bots/bot-registry.js';
import type { ModelStrategy } from '../bots/model-routing.js';
import type { ChatSurface } from '../chat/chat-surface.js';
import type { ClusterView } from '../cluster/cluster.js';
import { newTaskId } from '../db/ids.js';
import type { Repositories, Task } from '../db/repositories/types.js';
import type { AgentDirectory, TaskDispatcher } from '../gateway/types.js';
import { can, type Permission } from '../middleware/permissions.js';
import { type RequestContext, rejectRequest } from '../middleware/types.js';
import { noticeMessage } from '../notifications/blocks.js';
import type { StartedPosts } from '../notifications/started-posts.js';
import type { TaskLifecycle } from '../tasks/task-lifecycle.js';
import type { WorkspaceOperations } from '../workspaces/workspace-requests.js';

export type CommandRepositories = Pick<
  Repositories,
  'tasks' | 'projects' | 'users' | 'audit' | 'offlineQueue' | 'taskPlans' | 'taskSteps'
>;

/**
 * What `/bm archive` and `/bm restore` need from retention. RetentionService
 * implements it; an ArchivedTask and a restored Task both satisfy the results.
 */
export interface RetentionOperations {
  /** Archives a terminal task; rejects with a clear Error when it cannot. */
  archive(taskId: string, reason: string, actor: string): Promise<{ id: string }>;
  /** Restores an archived task as a new task row. */
  /** `ref`: the archive's id, or the id the task had. */
  restore(ref: string, actor: string): Promise<{ id: string }>;
}

/** The collection points the command handlers report to; MetricsCollector satisfies it. */
export interface CommandMetrics {
  observeBotResolution(ms: number): void;
  /** `tier` is premium/standard/fast, or `custom` for a project default or an explicit model id. */
  recordModelRouting(bot: string, tier: string): void;
}

/** Where tasks go once created, and how they leave. */
export interface CommandLifecycle {
  dispatcher: TaskDispatcher;
  agents: AgentDirectory;
  retention: RetentionOperations;
  /** The one door for task state: creation, cloud-decided failure and cancellation. */
  tasks: TaskLifecycle;
  /** Create PR / Show diff / Discard on a task's branch. */
  workspaces?: WorkspaceOperations;
}

/** What the handlers are configured with. */
export interface CommandConfig {
  bots: BotRegistry;
  modelStrategy: ModelStrategy;
  newTaskId: () => string;
  /** Passed to agents for max-turns recovery. */
  maxContinuations?: number;
}

/**
 * Everything a command handler may use, built once by the composition root.
 * Handlers never reach the service that routes to them.
 */
export interface CommandContext {
  repos: CommandRepositories;
  lifecycle: CommandLifecycle;
  /** Where a task's conversation lives (Slack or console), for work started outside a request. */
  surfaceFor(task: Pick<Task, 'channelId'>): ChatSurface;
  config: CommandConfig;
  log: Logger;
  metrics?: CommandMetrics;
  /** Answers the Approve / Deny buttons of approval requests (approvals/approval-service.ts). */
  approvals?: ApprovalButtons;
  /** Which instance answers and which one leads (shown by /bm agents). */
  cluster?: ClusterView;
  /** Where the launcher notes its "Task started" posts, posted after the dispatch. */
  startedPosts?: StartedPosts;
}

export interface ApprovalButtons {
  handleAction(ctx: RequestContext): Promise<void>;
}

/** The flat list the composition root (or a test) fills in; defaults for the optional parts. */
export interface CommandContextOptions
  extends Partial<Pick<CommandContext, 'metrics' | 'approvals' | 'cluster' | 'startedPosts'>> {
  repos: CommandRepositories;
  dispatcher: TaskDispatcher;
  agents: AgentDirectory;
  retention: RetentionOperations;
  tasks: TaskLifecycle;
  workspaces?: WorkspaceOperations;
  surfaceFor: CommandContext['surfaceFor'];
  bots: BotRegistry;
  modelStrategy: ModelStrategy;
  newTaskId?: () => string;
  maxContinuations?: number;
  logger?: Logger;
}

export function createCommandContext(o: CommandContextOptions): CommandContext {
  const config: CommandConfig = {
    bots: o.bots,
    modelStrategy: o.modelStrategy,
    newTaskId: o.newTaskId ?? newTaskId,
  };
  if (o.maxContinuations !== undefined) config.maxContinuations = o.maxContinuations;
  const lifecycle: CommandLifecycle = {
    tasks: o.tasks,
    dispatcher: o.dispatcher,
    agents: o.agents,
    retention: o.retention,
  };
  if (o.workspaces) lifecycle.workspaces = o.workspaces;
  return {
    repos: o.repos,
    lifecycle,
    surfaceFor: o.surfaceFor,
    config,
    log: o.logger ?? pino({ level: 'silent' }),
    ...(o.metrics && { metrics: o.metrics }),
    ...(o.approvals && { approvals: o.approvals }),
    ...(o.cluster && { cluster: o.cluster }),
    ...(o.startedPosts && { startedPosts: o.startedPosts }),
  };
}

/** Tells the person why their request was refused and audits it. */
export function reject(
  context: CommandContext,
  ctx: RequestContext,
  code: string,
  text: string,
  details: Record<string, unknown> = {},
): Promise<void> {
  return rejectRequest(ctx, context.repos.audit, code, noticeMessage(text, ':warning:'), details);
}

/** Checks a permission; on denial tells the person and audits. */
export async function requirePermission(
  context: CommandContext,
  ctx: RequestContext,
  permission: Permission,
  what: string,
): Promise<boolean> {
  const role = ctx.user?.role;
  if (role && can(role, permission)) return true;
  await reject(context, ctx, 'forbidden', `Your role (${role ?? 'unknown'}) is not allowed to ${what}.`, {
    permission,
  });
  return false;
}

/** Records an action in the audit log; a failed write is logged, never thrown. */
export async function audit(
  context: CommandContext,
  ctx: RequestContext | null,
  action: string,
  resourceType: string,
  resourceId: string,
  details: Record<string, unknown> = {},
): Promise<void> {
  await context.repos.audit
    .log({ action, actor: ctx?.request.userId ?? 'system', resourceType, resourceId, details })
    .catch((err: unknown) => context.log.warn({ err, action }, 'audit write failed'));
}

/** How a task's bot is named in messages. */
export function botLabel(context: CommandContext, task: Pick<Task, 'botName'>): { bot: string } {
  return { bot: context.config.bots.get(task.botName)?.displayName ?? task.botName };
}
