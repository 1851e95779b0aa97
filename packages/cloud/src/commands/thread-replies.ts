import { isTerminalStatus } from '@bematic/protocol';
import { parseArguments, toParsedCommand } from '../bots/command-parser.js';
import { findCommand } from '../bots/types.js';
import type { RequestContext } from '../middleware/types.js';
import { worktreeOwner } from '../workspaces/workspace-requests.js';
import { type CommandContext, reject, requirePermission } from './context.js';
import type { DecompositionFlow } from './decomposition-flow.js';
import { buildExecutionConfig } from './execution-config.js';
import type { TaskLauncher } from './task-launcher.js';

/**
 * A reply in a task's thread continues that conversation: same bot, command and
 * model, resuming the previous session. A reply in any other thread is people talking to each
 * other, not a request: only a mention there starts a task (and then brings the thread along).
 */
export class ThreadReplies {
  constructor(
    private readonly context: CommandContext,
    private readonly launcher: TaskLauncher,
    private readonly plans: DecompositionFlow,
  ) {}

  async handle(ctx: RequestContext): Promise<void> {
    const { context } = this;
    const { bots, modelStrategy } = context.config;
    const resolving = performance.now();
    const r = ctx.request;
    const previous = r.threadTs ? await context.repos.tasks.findByThread(r.channelId, r.threadTs) : undefined;
    if (!previous) {
      context.log.debug(
        { channelId: r.channelId, threadTs: r.threadTs },
        'reply outside our threads ignored',
      );
      return;
    }
    // The thread of a plan waiting for approval: the reply is the person's edited plan.
    if (await this.plans.edit(ctx, previous)) return;
    if (!(await requirePermission(context, ctx, 'task.run', 'run tasks'))) return;
    if (!isTerminalStatus(previous.status)) {
      return reject(
        context,
        ctx,
        'task_in_progress',
        `I'm still working on the previous request in this thread (\`${previous.id}\`). Reply again when it finishes, or cancel it.`,
      );
    }
    const bot = bots.get(previous.botName);
    context.metrics?.observeBotResolution(performance.now() - resolving);
    const project = (await context.repos.projects.findById(previous.projectId)) ?? ctx.project;
    if (!bot || !project)
      return reject(
        context,
        ctx,
        'invalid_thread',
        'The task this thread belongs to can no longer be continued.',
      );
    const args = parseArguments(r.text);
    const command = findCommand(bot, previous.command) ? previous.command : bot.defaultCommand;
    const parsed = toParsedCommand(bot.name, command, args);
    if (!parsed.flags.model && !project.defaultModel) parsed.flags.model = previous.model;
    const built = buildExecutionConfig(parsed, bot, project, modelStrategy);
    if (!built.ok) return reject(context, ctx, 'invalid_command', built.error);
    await this.launcher.warnUnknownFlags(ctx, parsed.unknownFlags);
    this.launcher.routed(bot.name, built.choice.tier);
    const config = { ...built.config };
    if (!args.flags.priority) config.priority = previous.priority;
    const resume = previous.sessionId ?? previous.submission.resumeSessionId;
    if (resume) config.resumeSessionId = resume;
    // Same worktree and branch as the conversation so far: a follow-up commit, not a new branch.
    const owner = worktreeOwner(previous);
    if (owner !== undefined) config.workspace = { ...config.workspace, continueFrom: owner };
    await this.launcher.launch(
      this.launcher.newTask(config, {
        project,
        ctx,
        threadTs: previous.threadTs ?? r.threadTs,
        messageTs: r.messageTs,
      }),
      { surface: r.surface, ctx },
      { continues: previous.id, resumeSessionId: resume ?? null, worktreeOf: owner ?? null },
    );
  }
}
