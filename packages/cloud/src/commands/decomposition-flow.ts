import { type Clock, isTerminalStatus, sumTaskMetrics, systemClock } from '@bematic/protocol';
import { parseArguments, toParsedCommand } from '../bots/command-parser.js';
import { findCommand } from '../bots/types.js';
import type { ChatMessage } from '../chat/chat-surface.js';
import type { PlanStatus, PlanStep, Task, TaskPlan } from '../db/repositories/types.js';
import { formatDuration } from '../duration.js';
import { can } from '../middleware/permissions.js';
import type { RequestContext } from '../middleware/types.js';
import {
  ACTION_IDS,
  contextBlock,
  noticeMessage,
  offersPlanFirst,
  type PlanMessageView,
  type PlanStepState,
  planMessage,
  sectionBlock,
} from '../notifications/blocks.js';
import { formatCost, formatTokens } from '../notifications/format.js';
import { escapeMrkdwn } from '../notifications/mrkdwn.js';
import type {
  ProgressView,
  TaskMessageOwner,
  TaskMessageRedraw,
} from '../notifications/task-message-owner.js';
import type { TaskEvents } from '../tasks/task-events.js';
import { audit, type CommandContext, reject, requirePermission } from './context.js';
import { DECOMPOSE_COMMAND, parseEditedPlan, parsePlan, subtaskPrompt } from './decomposition.js';
import { buildExecutionConfig } from './execution-config.js';
import type { TaskLauncher } from './task-launcher.js';

/** A plan as shown: its row, the planning task's message, its subtasks so far (in order). */
interface PlanRun {
  plan: TaskPlan;
  planning: Task;
  subtasks: Task[];
  /** What each running subtask is doing now, for the checklist. */
  doing: Map<string, string | null>;
}

const isPlanning = (task: Task) => task.command === DECOMPOSE_COMMAND && !task.parentTaskId;

/**
 * A decomposed request, opt-in (`--decompose`): the planning task's message becomes the plan (its steps as a
 * checklist with Run plan / Edit / Cancel); Run plan runs the steps one after another in that same message,
 * which ends as the plan's outcome, followed by one summary. The plan lives in `task_plans`; task state
 * changes go through the TaskLifecycle (launch, cancel).
 */
export class DecompositionFlow implements TaskMessageOwner {
  private readonly runs = new Map<string, PlanRun>();
  /** One settling per terminal task, shared by the event listener and the message renderer. */
  private readonly settling = new Map<string, Promise<PlanRun | undefined>>();
  private readonly clock: Clock;
  /** Redraws of the plan message (Edit, Cancel), through the update scheduler; given by the notifications. */
  private redraw: TaskMessageRedraw | undefined;

  constructor(
    private readonly context: CommandContext,
    private readonly launcher: TaskLauncher,
    clock?: Clock,
  ) {
    this.clock = clock ?? systemClock;
  }

  /** Subscribes to terminal task events. */
  attach(events: TaskEvents): () => void {
    const offs = (['task.completed', 'task.failed', 'task.cancelled'] as const).map((event) =>
      events.on(event, (p) => {
        void this.settle(p.task);
      }),
    );
    return () => {
      for (const off of offs) off();
    };
  }

  // ---- the message (TaskMessageOwner) ----

  progress(task: Task, view: ProgressView): ChatMessage | undefined {
    const run = task.parentTaskId ? this.runs.get(task.parentTaskId) : undefined;
    if (!run) return undefined;
    const known = run.subtasks.findIndex((t) => t.id === task.id);
    if (known === -1) run.subtasks.push(task);
    else run.subtasks[known] = task;
    run.doing.set(task.id, view.status === 'Running' ? (view.step ?? 'Running') : view.status);
    return planMessage(this.view(run));
  }

  async outcome(task: Task): Promise<(() => ChatMessage) | undefined> {
    if (!isPlanning(task) && !task.parentTaskId) return undefined;
    const run = await this.settle(task);
    return run ? this.drawing(run) : undefined;
  }

  useRedraw(redraw: TaskMessageRedraw): void {
    this.redraw = redraw;
  }

  /** The plan message as it is when drawn: the plan's latest run (the next step may have moved it on). */
  private drawing(settled: PlanRun): () => ChatMessage {
    return () => planMessage(this.view(this.runs.get(settled.plan.taskId) ?? settled));
  }

  // ---- buttons and the edited list ----

  /**
   * The Plan first button of a task that has not done anything yet: the task is cancelled and the same
   * request starts as a planning task, as `--decompose` would have. Once Claude Code has used a tool the
   * button is gone; a late click is refused, and a second click starts nothing more.
   */
  async planFirst(ctx: RequestContext, taskId: string): Promise<void> {
    const { context } = this;
    if (!(await requirePermission(context, ctx, 'task.run', 'plan tasks'))) return;
    const task = await context.repos.tasks.findById(taskId);
    if (!task) return reject(context, ctx, 'task_not_found', `Task \`${taskId}\` was not found.`);
    // Planning first cancels the task: the same rule as its Cancel button.
    const permission = task.userId === ctx.request.userId ? 'task.cancel.own' : 'task.cancel.any';
    if (!ctx.user || !can(ctx.user.role, permission))
      return reject(
        context,
        ctx,
        'forbidden',
        'Only the person who asked (or an admin) can plan this task first.',
        {
          permission,
          taskId,
        },
      );
    const project = await context.repos.projects.findById(task.projectId);
    const steps = await context.repos.taskSteps.list(task.id);
    const tooLate =
      isTerminalStatus(task.status) || steps.some((s) => s.kind === 'tool' || s.kind === 'text');
    const refuse = (why: string) =>
      ctx.request
        .respond(
          noticeMessage(`Task \`${task.id}\` ${why}. To plan a request first, ask with \`--decompose\`.`),
        )
        .catch(() => {});
    if (await context.repos.taskPlans.findByReplaced(task.id)) return refuse('is being planned already');
    const planning =
      project && offersPlanFirst(task) ? this.launcher.planFirstTask(ctx, task, project) : undefined;
    if (!project || !planning || tooLate)
      return refuse(
        isTerminalStatus(task.status) ? `is already ${task.status}` : 'has already started working',
      );
    // The decision is the database's: of two clicks (on any instances) only the one whose insert lands plans.
    const claimed = await context.repos.taskPlans.claimReplacement({
      taskId: planning.submission.taskId,
      originalCommand: task.command,
      replacesTaskId: task.id,
    });
    if (!claimed) return refuse('is being planned already');
    const who = ctx.request.userName ?? `<@${ctx.request.userId}>`;
    const reason = `Planning first instead, as ${who} asked`;
    let result = await context.lifecycle.dispatcher.cancel(task.id, reason, ctx.request.userId);
    if (result.outcome === 'not-found') {
      await context.lifecycle.tasks.cancel(task.id, reason, ctx.request.userId);
      result = { outcome: 'removed-from-queue' };
    }
    const now = await context.repos.tasks.findById(task.id);
    // It ended meanwhile (completed or failed): its outcome stands and nothing is planned. Cancelled by
    // someone else meanwhile: the plan still takes its message, as asked.
    if (result.outcome === 'already-terminal' && now?.status !== 'cancelled') {
      await context.repos.taskPlans.move(planning.submission.taskId, ['planning'], 'cancelled');
      return refuse(`is already ${now?.status ?? 'gone'}`);
    }
    await audit(context, ctx, 'decomposition.plan_first', 'task', task.id, { outcome: result.outcome });
    // The task's message becomes the plan's: the planning task draws into it from its first event on.
    await this.launcher.launch(
      planning,
      {
        surface: ctx.request.surface,
        ctx,
        ...(task.progressMessageTs ? { messageTs: task.progressMessageTs } : {}),
      },
      { planFirstOf: task.id },
    );
  }

  /** A task cancelled by Plan first hands its message to the plan: its end does not draw over it. */
  async handedOver(task: Task): Promise<boolean> {
    if (task.status !== 'cancelled' || isPlanning(task) || task.parentTaskId) return false;
    return (await this.context.repos.taskPlans.findByReplaced(task.id)) !== undefined;
  }

  async handleAction(ctx: RequestContext): Promise<void> {
    const { context } = this;
    if (!(await requirePermission(context, ctx, 'task.run', 'run plans'))) return;
    const planId = ctx.request.actionValue ?? '';
    const plan = await context.repos.taskPlans.findByTask(planId);
    if (!plan) return reject(context, ctx, 'task_not_found', `Plan \`${planId}\` was not found.`);
    switch (ctx.request.text) {
      case ACTION_IDS.planRun:
        return this.run(ctx, plan);
      case ACTION_IDS.planEdit:
        return this.explainEdit(ctx, plan);
      case ACTION_IDS.planCancel:
        return this.cancel(ctx, plan);
    }
  }

  /** A reply in the thread of a proposed plan: the person's edited list of steps. */
  async edit(ctx: RequestContext, planning: Task): Promise<boolean> {
    const { context } = this;
    const plan = await context.repos.taskPlans.findByTask(planning.id);
    if (plan?.status !== 'proposed') return false;
    if (!(await requirePermission(context, ctx, 'task.run', 'edit plans'))) return true;
    const parsed = parseEditedPlan(ctx.request.text, plan.steps);
    if (!parsed.ok) {
      await reject(context, ctx, 'invalid_plan', `I couldn't read that as a plan: ${parsed.error}.`);
      return true;
    }
    const moved = await context.repos.taskPlans.move(plan.taskId, ['proposed'], 'proposed', parsed.subtasks);
    if (!moved) {
      await reject(context, ctx, 'plan_not_proposed', 'That plan is no longer waiting for approval.');
      return true;
    }
    await audit(context, ctx, 'decomposition.edited', 'task', plan.taskId, { steps: moved.steps.length });
    await this.show(await this.load(moved));
    return true;
  }

  private async run(ctx: RequestContext, plan: TaskPlan): Promise<void> {
    const moved = await this.context.repos.taskPlans.move(plan.taskId, ['proposed'], 'running');
    if (!moved) return this.notNow(ctx, plan);
    await audit(this.context, ctx, 'decomposition.approved', 'task', plan.taskId, {
      steps: moved.steps.length,
    });
    const run = await this.load(moved);
    await this.startStep(run, 0);
  }

  private async cancel(ctx: RequestContext, plan: TaskPlan): Promise<void> {
    const moved = await this.context.repos.taskPlans.move(plan.taskId, ['proposed', 'running'], 'cancelled');
    if (!moved) return this.notNow(ctx, plan);
    await audit(this.context, ctx, 'decomposition.cancelled', 'task', plan.taskId, { from: plan.status });
    const run = await this.load(moved);
    const active = run.subtasks.find((t) => !isTerminalStatus(t.status));
    if (!active) {
      await this.show(run);
      this.forget(run);
      return;
    }
    // The running step's cancellation renders the cancelled plan into the message.
    const reason = `Plan cancelled by ${ctx.request.userName ?? `<@${ctx.request.userId}>`}`;
    const result = await this.context.lifecycle.dispatcher.cancel(active.id, reason, ctx.request.userId);
    if (result.outcome === 'not-found')
      await this.context.lifecycle.tasks.cancel(active.id, reason, ctx.request.userId);
  }

  private async explainEdit(ctx: RequestContext, plan: TaskPlan): Promise<void> {
    if (plan.status !== 'proposed') return this.notNow(ctx, plan);
    const list = plan.steps.map((s, i) => `${i + 1}. ${s.title} — ${s.prompt.split('\n')[0]}`).join('\n');
    await ctx.request
      .respond(
        noticeMessage(
          `To change the plan, reply in this thread with the steps, one per line (\`1. title — what to do\`); a step that keeps its title keeps its instructions. Then press *Run plan*. The plan now:\n\`\`\`\n${escapeMrkdwn(list)}\n\`\`\``,
          ':pencil2:',
        ),
      )
      .catch(() => {});
  }

  private async notNow(ctx: RequestContext, plan: TaskPlan): Promise<void> {
    const current = (await this.context.repos.taskPlans.findByTask(plan.taskId)) ?? plan;
    const what: Record<PlanStatus, string> = {
      planning: 'is still being planned',
      proposed: 'is waiting for approval',
      running: 'is already running',
      done: 'has finished',
      cancelled: 'was cancelled',
    };
    await ctx.request.respond(noticeMessage(`That plan ${what[current.status]}.`)).catch(() => {});
  }

  // ---- the plan as its tasks end ----

  private settle(task: Task): Promise<PlanRun | undefined> {
    let settling = this.settling.get(task.id);
    if (!settling) {
      settling = (isPlanning(task) ? this.planned(task) : this.stepEnded(task)).catch((err: unknown) => {
        this.context.log.error({ err, taskId: task.id }, 'decomposition step failed');
        return undefined;
      });
      this.settling.set(task.id, settling);
    }
    return settling;
  }

  /** The planning task ended: its answer becomes the proposed plan. */
  private async planned(task: Task): Promise<PlanRun | undefined> {
    const { context } = this;
    const plan = await context.repos.taskPlans.findByTask(task.id);
    if (!plan) return undefined;
    if (plan.status !== 'planning') return this.load(plan);
    if (task.status !== 'completed') {
      await context.repos.taskPlans.move(plan.taskId, ['planning'], 'cancelled');
      return undefined;
    }
    const parsed = parsePlan(task.result ?? '');
    if (!parsed.ok) {
      await context.repos.taskPlans.move(plan.taskId, ['planning'], 'cancelled');
      await audit(context, null, 'decomposition.failed', 'task', task.id, { error: parsed.error });
      await context
        .surfaceFor(task)
        .post(
          task.channelId,
          noticeMessage(
            `I couldn't turn the plan into steps (${parsed.error}). The planning result is above; ask again without \`--decompose\` to run it as one task.`,
            ':warning:',
          ),
          task.threadTs,
        );
      return undefined;
    }
    const proposed = await context.repos.taskPlans.move(
      plan.taskId,
      ['planning'],
      'proposed',
      parsed.subtasks,
    );
    if (!proposed) return undefined;
    await audit(context, null, 'decomposition.planned', 'task', task.id, { steps: parsed.subtasks.length });
    return this.load(proposed);
  }

  /** A step ended: start the next one, or finish the plan with its summary. */
  private async stepEnded(task: Task): Promise<PlanRun | undefined> {
    const { context } = this;
    const plan = task.parentTaskId ? await context.repos.taskPlans.findByTask(task.parentTaskId) : undefined;
    if (!plan) return undefined;
    let run = await this.load(plan);
    const last = run.subtasks[run.subtasks.length - 1];
    // Only the latest step moves the plan on, and only once nothing else runs.
    if (plan.status !== 'running' || last?.id !== task.id) return run;
    if (task.status === 'completed' && run.subtasks.length < plan.steps.length) {
      await this.startStep(run, run.subtasks.length);
      return this.load(run.plan);
    }
    const done = await context.repos.taskPlans.move(plan.taskId, ['running'], 'done');
    if (!done) return this.load(plan);
    run = await this.load(done);
    await this.summarise(run);
    this.forget(run);
    return run;
  }

  private async startStep(run: PlanRun, index: number): Promise<void> {
    const { context } = this;
    const { planning: parent, plan } = run;
    const step = plan.steps[index];
    const bot = context.config.bots.get(parent.botName);
    const project = await context.repos.projects.findById(parent.projectId);
    if (!step || !bot || !project) return;
    const command =
      (step.command && findCommand(bot, step.command)?.name) ||
      (findCommand(bot, plan.originalCommand)?.name ?? bot.defaultCommand);
    const parsed = toParsedCommand(bot.name, command, parseArguments(''));
    parsed.args = subtaskPrompt(parent, index, plan.steps.length, step);
    if (parent.priority !== 'normal') parsed.flags.priority = parent.priority;
    const built = buildExecutionConfig(parsed, bot, project, context.config.modelStrategy);
    if (!built.ok) {
      context.log.error({ error: built.error, parent: parent.id }, 'subtask config failed');
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
    const launched = await this.launcher.launch(
      task,
      { surface: context.surfaceFor(parent), messageTs: run.planning.progressMessageTs ?? undefined },
      { subtask: index + 1, of: plan.steps.length, title: step.title },
    );
    if (!run.subtasks.some((t) => t.id === launched.id)) run.subtasks.push(launched);
  }

  // ---- reading and showing ----

  private async load(plan: TaskPlan): Promise<PlanRun> {
    const { tasks } = this.context.repos;
    const planning = await tasks.findById(plan.taskId);
    if (!planning) throw new Error(`planning task ${plan.taskId} is gone`);
    const subtasks = (await tasks.list({ parentTaskId: plan.taskId })).sort(
      (a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id),
    );
    const previous = this.runs.get(plan.taskId);
    const run: PlanRun = { plan, planning, subtasks, doing: previous?.doing ?? new Map() };
    this.runs.set(plan.taskId, run);
    return run;
  }

  private view(run: PlanRun): PlanMessageView {
    const state = (t: Task | undefined): PlanStepState => {
      if (!t) return 'todo';
      if (t.status === 'completed' || t.status === 'failed' || t.status === 'cancelled') return t.status;
      return 'running';
    };
    const first = run.subtasks[0];
    const lastEnd = Math.max(0, ...run.subtasks.map((t) => t.completedAt ?? 0));
    const finished = run.plan.status === 'done' || run.plan.status === 'cancelled';
    return {
      planId: run.plan.taskId,
      status: run.plan.status === 'planning' ? 'proposed' : run.plan.status,
      steps: run.plan.steps.map((s: PlanStep, i) => {
        const t = run.subtasks[i];
        return {
          title: s.title,
          ...(s.command ? { command: s.command } : {}),
          state: state(t),
          doing: t ? (run.doing.get(t.id) ?? null) : null,
        };
      }),
      costUsd: sumTaskMetrics([run.planning, ...run.subtasks]).costUsd,
      elapsedMs: first
        ? Math.max(0, (finished && lastEnd ? lastEnd : this.clock.now()) - first.createdAt)
        : null,
    };
  }

  /**
   * Redraws the plan message (the planning task's message, no longer updated by its own progress) through the
   * update scheduler, in order with the steps' updates of it; waits until it landed.
   */
  private async show(run: PlanRun): Promise<void> {
    if (!run.planning.progressMessageTs || !this.redraw) return;
    const landed = await this.redraw(run.planning, this.drawing(run));
    if (!landed) this.context.log.warn({ taskId: run.plan.taskId }, 'plan update failed');
  }

  private forget(run: PlanRun): void {
    this.runs.delete(run.plan.taskId);
    this.settling.delete(run.plan.taskId);
    for (const t of run.subtasks) this.settling.delete(t.id);
  }

  private async summarise(run: PlanRun): Promise<void> {
    const { planning: parent, plan, subtasks } = run;
    const metrics = sumTaskMetrics([parent, ...subtasks]);
    const filesChanged = [...new Set(subtasks.flatMap((t) => t.filesChanged))];
    const commandsRun = subtasks.flatMap((t) => t.commandsRun);
    const total = plan.steps.length;
    const allDone = subtasks.length === total && subtasks.every((t) => t.status === 'completed');
    const headline = allDone
      ? `All ${total} steps completed`
      : `Stopped after ${subtasks.length} of ${total} steps: the last one did not complete, so the rest were not started`;
    const totals = `${formatCost(metrics.costUsd)} · ${formatDuration(metrics.durationMs)} · ${formatTokens(metrics.inputTokens)} in / ${formatTokens(metrics.outputTokens)} out tokens · ${filesChanged.length} files changed`;
    const summary: ChatMessage = {
      text: `${headline}. Total ${totals}`,
      blocks: [
        sectionBlock(`${allDone ? ':tada:' : ':warning:'} *${headline}*\n*Total* ${totals}`),
        contextBlock(`Planning task \`${parent.id}\``, ...subtasks.map((t) => `\`${t.id}\``)),
      ],
    };
    await this.context.repos.tasks.update(parent.id, {
      ...metrics,
      filesChanged,
      commandsRun,
      result: `${headline}\n${plan.steps.map((s, i) => `${i + 1}. ${s.title}: ${subtasks[i]?.status ?? 'not run'}`).join('\n')}`,
    });
    await audit(this.context, null, 'decomposition.completed', 'task', parent.id, {
      subtasks: subtasks.length,
      planned: total,
      allDone,
      costUsd: metrics.costUsd,
    });
    await this.context.surfaceFor(parent).post(parent.channelId, summary, parent.threadTs);
  }
}
