import { isTerminalStatus, sumTaskMetrics, type TaskComplete } from '@bematic/protocol';
import { parseArguments, toParsedCommand } from '../bots/command-parser.js';
import { type Bot, findCommand } from '../bots/types.js';
import type { ChatMessage } from '../chat/chat-surface.js';
import type { Task } from '../db/repositories/types.js';
import { formatDuration } from '../duration.js';
import { contextBlock, noticeMessage, sectionBlock } from '../notifications/blocks.js';
import { formatCost } from '../notifications/format.js';
import { escapeMrkdwn } from '../notifications/mrkdwn.js';
import type { TaskEvents } from '../tasks/task-events.js';
import { audit, type CommandContext } from './context.js';
import { DECOMPOSE_COMMAND, type PlannedSubtask, parsePlan, subtaskPrompt } from './decomposition.js';
import { buildExecutionConfig } from './execution-config.js';
import type { TaskLauncher } from './task-launcher.js';

/**
 * Runs a decomposed request: when the planning task finishes, posts the plan and
 * runs its subtasks one after another, then summarises them on the planning task.
 */
export class DecompositionFlow {
  private readonly plans = new Map<string, PlannedSubtask[]>();

  constructor(
    private readonly context: CommandContext,
    private readonly launcher: TaskLauncher,
  ) {}

  /** Subscribes to terminal task events. */
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

  private async onTerminal(task: Task, complete?: TaskComplete): Promise<void> {
    try {
      if (task.command === DECOMPOSE_COMMAND && !task.parentTaskId) {
        if (task.status === 'completed' || complete) await this.planningComplete(task, complete?.result);
        return;
      }
      if (task.parentTaskId) await this.advance(task.parentTaskId);
    } catch (err) {
      this.context.log.error({ err, taskId: task.id }, 'decomposition step failed');
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
  async planningComplete(planningTask: Task, result?: string): Promise<void> {
    const { context } = this;
    const parent = (await context.repos.tasks.findById(planningTask.id)) ?? planningTask;
    const existing = await context.repos.tasks.list({ parentTaskId: parent.id });
    if (existing.length > 0) return;
    const surface = context.surfaceFor(parent);
    const plan = await this.planFor(parent, result);
    if (typeof plan === 'string') {
      await audit(this.context, null, 'decomposition.failed', 'task', parent.id, { error: plan });
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
    await audit(this.context, null, 'decomposition.planned', 'task', parent.id, { subtasks: plan.length });
    await this.startSubtask(parent, plan, 0);
  }

  private async originalCommand(parent: Task, bot: Bot): Promise<string> {
    const created = await this.context.repos.audit.list({
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
    const { context } = this;
    const sub = plan[index];
    const bot = context.config.bots.get(parent.botName);
    const project = await context.repos.projects.findById(parent.projectId);
    if (!sub || !bot || !project) return;
    const command =
      (sub.command && findCommand(bot, sub.command)?.name) || (await this.originalCommand(parent, bot));
    const parsed = toParsedCommand(bot.name, command, parseArguments(''));
    parsed.args = subtaskPrompt(parent, index, plan.length, sub);
    if (parent.priority !== 'normal') parsed.flags.priority = parent.priority;
    const built = buildExecutionConfig(parsed, bot, project, context.config.modelStrategy);
    if (!built.ok) {
      this.context.log.error({ error: built.error, parent: parent.id }, 'subtask config failed');
      return;
    }
    this.launcher.routed(bot.name, built.choice.tier);
    const config = { ...built.config, prompt: parsed.args };
    if (parent.submission.maxBudgetUsd !== undefined) config.maxBudgetUsd = parent.submission.maxBudgetUsd;
    const task = this.launcher.newTask(config, {
      project,
      userId: parent.userId,
      channelId: parent.channelId,
      threadTs: parent.threadTs,
      messageTs: null,
      parentTaskId: parent.id,
    });
    await this.launcher.launch(
      task,
      { surface: context.surfaceFor(parent) },
      { subtask: index + 1, of: plan.length, title: sub.title },
    );
  }

  /** A subtask reached a terminal state: start the next one, or summarise. */
  async advance(parentId: string): Promise<void> {
    const parent = await this.context.repos.tasks.findById(parentId);
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
    const list = await this.context.repos.tasks.list({ parentTaskId: parentId });
    return list.sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }

  private async summarise(parent: Task, plan: PlannedSubtask[], subtasks: Task[]): Promise<void> {
    const metrics = sumTaskMetrics([parent, ...subtasks]);
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
    await this.context.repos.tasks.update(parent.id, {
      ...metrics,
      filesChanged,
      commandsRun,
      result: resultText,
    });
    await audit(this.context, null, 'decomposition.completed', 'task', parent.id, {
      subtasks: subtasks.length,
      planned: plan.length,
      allDone,
      costUsd: metrics.costUsd,
    });
    await this.context.surfaceFor(parent).post(parent.channelId, summary, parent.threadTs);
    this.plans.delete(parent.id);
  }
}
