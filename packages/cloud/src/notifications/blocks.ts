import type {
  TaskCancelled,
  TaskComplete,
  TaskError,
  TaskUsage,
  WorkspaceNotice,
  WorkspaceReport,
} from '@bematic/protocol';
import type { ChatBlock, ChatMessage } from '../chat/chat-surface.js';
import { DECOMPOSE_COMMAND } from '../commands/decomposition.js';
import type { Task } from '../db/repositories/types.js';
import { formatDuration } from '../duration.js';
import { formatCost, formatTokens, plural, progressBar } from './format.js';
import { escapeMrkdwn, markdownToMrkdwn, mrkdwnToPlain } from './mrkdwn.js';
import type { PlanItem } from './plan.js';
import { SECTION_TEXT_LIMIT, splitIntoSections, truncateText } from './truncate.js';

/** Button action ids the chat surfaces route back as `action` requests. */
export const ACTION_IDS = {
  retry: 'task_retry',
  cancel: 'task_cancel',
  createPr: 'workspace_pr',
  showDiff: 'workspace_diff',
  discard: 'workspace_discard',
  planRun: 'plan_run',
  planEdit: 'plan_edit',
  planCancel: 'plan_cancel',
  planFirst: 'task_plan_first',
} as const;

export const REACTIONS = {
  working: 'eyes',
  completed: 'white_check_mark',
  failed: 'x',
  cancelled: 'no_entry_sign',
} as const;

export const section = (text: string): ChatBlock => ({
  type: 'section',
  text: { type: 'mrkdwn', text: truncateText(text, SECTION_TEXT_LIMIT) },
});
export const context = (...parts: string[]): ChatBlock => ({
  type: 'context',
  elements: parts.filter(Boolean).map((t) => ({ type: 'mrkdwn', text: truncateText(t, 2000) })),
});
const fields = (pairs: [string, string][]): ChatBlock => ({
  type: 'section',
  fields: pairs.slice(0, 10).map(([k, v]) => ({ type: 'mrkdwn', text: `*${k}*\n${v}` })),
});
const button = (
  text: string,
  actionId: string,
  value: string,
  style?: 'primary' | 'danger',
): Record<string, unknown> => ({
  type: 'button',
  text: { type: 'plain_text', text },
  action_id: actionId,
  value,
  ...(style ? { style } : {}),
});
const actions = (...elements: Record<string, unknown>[]): ChatBlock => ({ type: 'actions', elements });
const divider: ChatBlock = { type: 'divider' };

export interface TaskLabel {
  /** Bot display name, e.g. "Coder". */
  bot: string;
}

const headline = (task: Task, label: TaskLabel) => `*${escapeMrkdwn(label.bot)}* · \`${task.command}\``;
const taskContext = (task: Task) =>
  context(`Model \`${task.model}\``, `Task \`${task.id}\``, `Priority ${task.priority}`);

/**
 * A request that changes code, asked directly (not a plan, not a plan's step), can still be planned first:
 * the Plan first button starts the same request as `--decompose` would have, in place of this task.
 */
export function offersPlanFirst(task: Task): boolean {
  return (
    task.command !== DECOMPOSE_COMMAND &&
    !task.parentTaskId &&
    task.submission.allowedTools.some((t) => t === 'Edit' || t === 'Write')
  );
}

/** Plan first (while the task has not done anything yet) and Cancel. */
function taskButtons(task: Task, planFirst: boolean): ChatBlock {
  return actions(
    ...(planFirst ? [button('Plan first', ACTION_IDS.planFirst, task.id)] : []),
    button('Cancel', ACTION_IDS.cancel, task.id, 'danger'),
  );
}

export function taskStartedMessage(task: Task, label: TaskLabel): ChatMessage {
  return {
    text: `Task started: ${label.bot} ${task.command} (${task.id})`,
    blocks: [
      section(
        `:rocket: *Task started* — ${headline(task, label)}\n>${escapeMrkdwn(truncateText(task.prompt, 300)).replace(/\n/g, '\n>')}`,
      ),
      taskContext(task),
      taskButtons(task, offersPlanFirst(task)),
    ],
  };
}

export interface ProgressView {
  /** "Queued", "Running", … */
  status: string;
  step: string | null;
  /** The last lines of streamed text. */
  tail: string | null;
  elapsedMs: number;
  /** Claude Code's plan (its last TodoWrite), shown as a checklist. */
  plan?: PlanItem[] | null;
  /** Notices that must stay visible (auto-continuation), newest last. */
  notices?: string[];
  /** The task's dashboard page: the full transcript as it streams. */
  taskUrl?: string;
  /** Running totals the agent reported with its latest progress (tokens, turns, cost so far). */
  usage?: TaskUsage;
  /** Claude Code has used a tool or written text: too late to plan first. */
  working?: boolean;
}

/** "Tokens 1.2k in · 340 out", "Turns 3", "Cost $0.01" (cost once an invocation reported one). */
function usageParts(usage: TaskUsage | undefined): string[] {
  if (!usage) return [];
  return [
    `Tokens ${formatTokens(usage.inputTokens)} in · ${formatTokens(usage.outputTokens)} out`,
    `Turns ${usage.turns}`,
    ...(usage.costUsd !== undefined ? [`Cost ${formatCost(usage.costUsd)}`] : []),
  ];
}

const MAX_PLAN_ITEMS = 20;

/** ☑ done, ☐ to do; the item in progress is bold. */
export function checklistBlock(plan: PlanItem[]): ChatBlock {
  const done = plan.filter((i) => i.status === 'completed').length;
  const lines = plan.slice(0, MAX_PLAN_ITEMS).map((i) => {
    const text = escapeMrkdwn(truncateText(i.content, 200));
    if (i.status === 'completed') return `☑ ~${text}~`;
    return i.status === 'in_progress' ? `☐ *${text}*` : `☐ ${text}`;
  });
  if (plan.length > MAX_PLAN_ITEMS) lines.push(`… and ${plan.length - MAX_PLAN_ITEMS} more`);
  return section(`*Plan* (${done}/${plan.length})\n${lines.join('\n')}`);
}

export function progressMessage(task: Task, label: TaskLabel, view: ProgressView): ChatMessage {
  const lines = [`:hourglass_flowing_sand: *${escapeMrkdwn(view.status)}* — ${headline(task, label)}`];
  if (view.step) lines.push(`_${escapeMrkdwn(truncateText(view.step, 300))}_`);
  const blocks: ChatBlock[] = [section(lines.join('\n'))];
  if (view.plan?.length) blocks.push(checklistBlock(view.plan));
  for (const notice of view.notices ?? [])
    blocks.push(context(`:repeat: ${escapeMrkdwn(truncateText(notice, 300))}`));
  if (view.tail) {
    blocks.push(section(`\`\`\`\n${escapeMrkdwn(truncateText(view.tail, 1500))}\n\`\`\``));
  }
  blocks.push(
    context(
      `Elapsed ${formatDuration(view.elapsedMs)}`,
      ...usageParts(view.usage),
      `Model \`${task.model}\``,
      `Task \`${task.id}\``,
    ),
  );
  if (view.taskUrl) blocks.push(taskPageLink(view.taskUrl));
  blocks.push(taskButtons(task, !view.working && offersPlanFirst(task)));
  // The fallback (notifications, screen readers) says what the blocks say, in plain lines.
  const text = [
    `${escapeMrkdwn(view.status)}: ${escapeMrkdwn(label.bot)} ${task.command} (${task.id})`,
    view.step ? escapeMrkdwn(truncateText(view.step, 300)) : '',
    ...(view.plan ?? [])
      .slice(0, MAX_PLAN_ITEMS)
      .map((i) => `${i.status === 'completed' ? '☑' : '☐'} ${escapeMrkdwn(truncateText(i.content, 200))}`),
    ...(view.notices ?? []).map((n) => escapeMrkdwn(truncateText(n, 300))),
    [`Elapsed ${formatDuration(view.elapsedMs)}`, ...usageParts(view.usage)].join(' · '),
  ].filter(Boolean);
  return { text: text.join('\n'), blocks };
}

function listBlock(title: string, items: string[], max = 15): ChatBlock {
  const shown = items.slice(0, max).map((i) => `• \`${escapeMrkdwn(truncateText(i, 200))}\``);
  if (items.length > max) shown.push(`… and ${items.length - max} more`);
  return section(`*${title}* (${items.length})\n${shown.join('\n')}`);
}

export interface CompletionOptions {
  /** Total characters of the result shown across sections. */
  resultLimit?: number;
  /** The task's page on the dashboard (transcript, diff, audit), when it can be reached. */
  taskUrl?: string;
  /** The plan as it stood at the end. */
  plan?: PlanItem[] | null;
}

/** A link to the task's page on the dashboard. */
function taskPageLink(url: string): ChatBlock {
  return {
    type: 'context',
    elements: [
      { type: 'mrkdwn', text: `:mag: <${url}|Open the task page> — transcript, diff and audit trail` },
    ],
  };
}

export function completionMessage(
  task: Task,
  label: TaskLabel,
  done: TaskComplete,
  opts: CompletionOptions = {},
): ChatMessage {
  const m = done.metrics;
  const blocks: ChatBlock[] = [section(`:white_check_mark: *Task completed* — ${headline(task, label)}`)];
  const result = done.result.trim() ? markdownToMrkdwn(done.result) : '_No summary was returned._';
  for (const chunk of splitIntoSections(result, SECTION_TEXT_LIMIT, opts.resultLimit ?? 12_000)) {
    blocks.push(section(chunk));
  }
  if (opts.plan?.length) blocks.push(checklistBlock(opts.plan));
  if (done.warning) blocks.push(section(`:warning: ${escapeMrkdwn(done.warning)}`));
  // With a branch, the per-file diff stat below says more than a list of names.
  if (done.filesChanged.length && !done.workspace?.files.length) {
    blocks.push(listBlock('Files changed', done.filesChanged));
  }
  if (done.commandsRun.length) blocks.push(listBlock('Commands run', done.commandsRun, 10));
  if (done.workspace) blocks.push(...workspaceBlocks(task, done.workspace));
  blocks.push(divider);
  blocks.push(
    fields([
      ['Tokens', `${formatTokens(m.inputTokens)} in · ${formatTokens(m.outputTokens)} out`],
      ['Cache', `${formatTokens(m.cacheReadTokens)} read · ${formatTokens(m.cacheCreationTokens)} written`],
      ['Cost', formatCost(m.costUsd)],
      ['Duration', formatDuration(m.durationMs)],
      [
        'Turns',
        m.continuations ? `${m.numTurns} (${plural(m.continuations, 'continuation')})` : String(m.numTurns),
      ],
      ['Files changed', String(done.filesChanged.length)],
    ]),
  );
  blocks.push(taskContext(task));
  if (opts.taskUrl) blocks.push(taskPageLink(opts.taskUrl));
  return {
    text: `Task completed: ${label.bot} ${task.command} — ${formatCost(m.costUsd)}, ${formatDuration(m.durationMs)}`,
    blocks,
  };
}

/** What to do when the agent's Claude Code has no credentials. */
export const CREDENTIALS_HINT =
  ":key: *Claude Code is not signed in on this agent.* Set `ANTHROPIC_API_KEY` (or `CLAUDE_CODE_OAUTH_TOKEN` from `claude setup-token`) in the agent's environment, or run `claude login` as the user the agent runs as, then restart the agent and retry.";

export function errorMessage(task: Task, label: TaskLabel, err: TaskError): ChatMessage {
  if (err.errorCode === 'BUDGET_EXCEEDED') return budgetErrorMessage(task, label, err);
  const blocks: ChatBlock[] = [
    section(`:x: *Task failed* — ${headline(task, label)}\n${escapeMrkdwn(truncateText(err.error, 2500))}`),
    ...(err.errorCode === 'CREDENTIALS_MISSING' ? [section(CREDENTIALS_HINT)] : []),
    context(
      `Error \`${err.errorCode}\``,
      err.recoverable ? 'You can retry this task.' : 'This error is not retryable.',
      `Task \`${task.id}\``,
    ),
  ];
  if (err.recoverable) blocks.push(actions(button('Retry', ACTION_IDS.retry, task.id, 'primary')));
  // Work committed before the failure stays on the branch until someone decides what to do with it.
  if (err.workspace?.commit) blocks.push(...workspaceBlocks(task, err.workspace));
  return { text: `Task failed: ${err.error.slice(0, 200)}`, blocks };
}

export function budgetErrorMessage(task: Task, label: TaskLabel, err: TaskError): ChatMessage {
  const m = err.metrics;
  const budget = task.submission.maxBudgetUsd;
  const spent = m?.costUsd ?? 0;
  const pairs: [string, string][] = [
    ['Budget', budget !== undefined ? formatCost(budget) : 'project default'],
    ['Spent', formatCost(spent)],
  ];
  if (m) {
    pairs.push(
      ['Input tokens', formatTokens(m.inputTokens)],
      ['Output tokens', formatTokens(m.outputTokens)],
    );
    pairs.push(['Cache read', formatTokens(m.cacheReadTokens)], ['Duration', formatDuration(m.durationMs)]);
  }
  return {
    text: `Task stopped: budget exceeded (${formatCost(spent)})`,
    blocks: [
      section(
        `:money_with_wings: *Budget exceeded* — ${headline(task, label)}\n${escapeMrkdwn(truncateText(err.error, 1500))}`,
      ),
      fields(pairs),
      context(
        'Raise the limit with `--budget <usd>` or the project budget, then ask again.',
        `Task \`${task.id}\``,
      ),
    ],
  };
}

export function cancellationMessage(task: Task, label: TaskLabel, c: TaskCancelled): ChatMessage {
  const blocks: ChatBlock[] = [
    section(
      `:no_entry_sign: *Task cancelled* — ${headline(task, label)}${c.reason ? `\n${escapeMrkdwn(c.reason)}` : ''}`,
    ),
  ];
  if (c.partialResult?.trim()) {
    blocks.push(section(`*Partial result*\n${truncateText(markdownToMrkdwn(c.partialResult), 2800)}`));
  }
  if (c.workspace?.commit) blocks.push(...workspaceBlocks(task, c.workspace));
  blocks.push(taskContext(task));
  return { text: `Task cancelled: ${label.bot} ${task.command} (${task.id})`, blocks };
}

export function agentOfflineMessage(
  agentId: string,
  reconnectEtaMs: number | null,
  reason?: string,
): ChatMessage {
  const eta =
    reconnectEtaMs === null
      ? 'unknown'
      : `about ${formatDuration(reconnectEtaMs, 'approx', { roundUp: true })}`;
  return {
    text: `Agent ${agentId} is offline; the task is queued and will run when it reconnects (ETA ${eta}).`,
    blocks: [
      section(
        `:electric_plug: *Agent \`${escapeMrkdwn(agentId)}\` is offline.* Your task is safely queued and will start when the agent reconnects.`,
      ),
      context(`Expected back in ${eta}`, reason ? escapeMrkdwn(reason) : ''),
    ],
  };
}

/** The agent is connected but cannot take the task yet (overloaded or at capacity). */
export function agentBusyMessage(agentId: string, reason?: string): ChatMessage {
  return {
    text: `Agent ${agentId} is busy; the task is queued and will start as soon as it has room.`,
    blocks: [
      section(
        `:hourglass_flowing_sand: *Agent \`${escapeMrkdwn(agentId)}\` is busy.* Your task is safely queued and will start as soon as it has room.`,
      ),
      context(reason ? escapeMrkdwn(reason) : 'waiting for a free slot'),
    ],
  };
}

export interface RateLimitView {
  used: number;
  limit: number;
  resetInMs: number;
}

export function rateLimitMessage(s: RateLimitView): ChatMessage {
  const minutes = Math.max(1, Math.ceil(s.resetInMs / 60_000));
  const text = `Rate limit exceeded, try again in ${minutes} minute${minutes === 1 ? '' : 's'}`;
  return {
    text,
    blocks: [
      section(`:traffic_light: *${text}.*`),
      section(`\`${progressBar(s.used, s.limit)}\` ${s.used}/${s.limit} used, resets in ${minutes} min`),
    ],
  };
}

const shortSha = (sha: string | undefined) => (sha ? sha.slice(0, 7) : '');

function noticeText(notice: WorkspaceNotice, ws: WorkspaceReport): string {
  const base = ws.base ? `\`${escapeMrkdwn(ws.base)}\`` : 'the base';
  switch (notice) {
    case 'NOT_A_GIT_REPO':
      return ':information_source: This project is not a git repository, so tasks work directly in its directory, one writing task at a time. Make it a git repository to get a branch per task.';
    case 'BASE_DIRTY':
      return `:warning: Your checkout had uncommitted changes${ws.dirtyFiles ? ` in ${ws.dirtyFiles} file${ws.dirtyFiles === 1 ? '' : 's'}` : ''}; this branch starts from the last commit of ${base} and does not include them.`;
    case 'HEAD_MOVED':
      return `:information_source: The checkout moved on while the task ran; the branch stays on ${base} at \`${shortSha(ws.baseCommit)}\`.`;
    case 'WORKTREE_RECREATED':
      return ":information_source: The task's worktree had been removed; it was recreated from its branch.";
    case 'BRANCH_RECREATED':
      return `:information_source: The earlier branch of this thread was discarded, so this task started a new one from ${base}.`;
  }
}

function fileStatLine(f: WorkspaceReport['files'][number]): string {
  const name = `\`${escapeMrkdwn(truncateText(f.path, 200))}\``;
  return f.binary ? `• ${name} (binary)` : `• ${name} +${f.added} −${f.removed}`;
}

/**
 * Where the task's changes are: branch, base and commit, a diff stat per file,
 * what the person should know about the checkout, and the Create PR / Show diff
 * / Discard buttons. Button values name the task; the cloud finds its worktree.
 */
export function workspaceBlocks(task: Task, ws: WorkspaceReport): ChatBlock[] {
  const blocks: ChatBlock[] = [];
  // A thread's follow-ups would repeat it; the first answer in the thread says it once.
  const notices = ws.notices.filter((n) => n !== 'NOT_A_GIT_REPO' || !task.submission.resumeSessionId);
  if (ws.mode === 'worktree' && ws.branch) {
    const from = ws.base
      ? ` from \`${escapeMrkdwn(ws.base)}\`${ws.baseCommit ? ` (\`${shortSha(ws.baseCommit)}\`)` : ''}`
      : '';
    const commit = ws.commit ? ` · commit \`${shortSha(ws.commit)}\`` : ' · _no changes to commit_';
    const lines = [`*Branch* \`${escapeMrkdwn(ws.branch)}\`${from}${commit}`];
    const shown = ws.files.slice(0, 15).map(fileStatLine);
    if (ws.files.length > 15) shown.push(`… and ${ws.files.length - 15} more`);
    if (shown.length) lines.push(...shown);
    if (task.pullRequestUrl) lines.push(`*Pull request* <${task.pullRequestUrl}>`);
    blocks.push(section(lines.join('\n')));
  }
  for (const n of notices) blocks.push(context(noticeText(n, ws)));
  if (ws.mode === 'worktree' && ws.branch) {
    blocks.push(
      actions(
        button('Create PR', ACTION_IDS.createPr, task.id, 'primary'),
        button('Show diff', ACTION_IDS.showDiff, task.id),
        button('Discard', ACTION_IDS.discard, task.id, 'danger'),
      ),
    );
  }
  return blocks;
}

/** A short notice (errors, confirmations) as one section. */
export function noticeMessage(text: string, emoji = ':information_source:'): ChatMessage {
  return { text: mrkdwnToPlain(text), blocks: [section(`${emoji} ${text}`)] };
}

export { context as contextBlock, divider as dividerBlock, section as sectionBlock };

export type PlanStepState = 'todo' | 'running' | 'completed' | 'failed' | 'cancelled';

export interface PlanStepView {
  title: string;
  command?: string;
  state: PlanStepState;
  /** What the running step is doing now ("Editing src/a.ts", "Queued"). */
  doing?: string | null;
}

export interface PlanMessageView {
  /** The planning task's id: the buttons' value. */
  planId: string;
  status: 'proposed' | 'running' | 'done' | 'cancelled';
  steps: PlanStepView[];
  costUsd: number;
  /** Since Run plan (running, done). */
  elapsedMs: number | null;
}

const STEP_MARK: Record<PlanStepState, string> = {
  todo: '☐',
  running: '☐',
  completed: '☑',
  failed: '✗',
  cancelled: '✗',
};

function planStepLine(step: PlanStepView, i: number, mrkdwn: boolean): string {
  // Slack reads the fallback text with the same escaping as mrkdwn.
  const title = escapeMrkdwn(truncateText(step.title, 200));
  const command = step.command
    ? mrkdwn
      ? ` · \`${escapeMrkdwn(step.command)}\``
      : ` (${escapeMrkdwn(step.command)})`
    : '';
  const doing = step.state === 'running' && step.doing ? escapeMrkdwn(truncateText(step.doing, 200)) : '';
  const suffix = step.state === 'failed' || step.state === 'cancelled' ? ` — ${step.state}` : '';
  if (!mrkdwn)
    return `${STEP_MARK[step.state]} ${i + 1}. ${title}${command}${suffix}${doing ? ` — ${doing}` : ''}`;
  const shown = step.state === 'completed' ? `~${title}~` : step.state === 'running' ? `*${title}*` : title;
  return `${STEP_MARK[step.state]} ${i + 1}. ${shown}${command}${suffix}${doing ? ` — _${doing}_` : ''}`;
}

function planHeadline(view: PlanMessageView): string {
  const n = view.steps.length;
  const done = view.steps.filter((s) => s.state === 'completed').length;
  const running = view.steps.findIndex((s) => s.state === 'running');
  switch (view.status) {
    case 'proposed':
      return `:clipboard: Plan — ${plural(n, 'step')}, run one after another. Run it, edit it, or cancel it.`;
    case 'running':
      return `:hourglass_flowing_sand: Running the plan — step ${running === -1 ? done + 1 : running + 1} of ${n}`;
    case 'done':
      return done === n
        ? `:white_check_mark: Plan done — all ${plural(n, 'step')} completed`
        : `:warning: Plan stopped after ${done} of ${n} steps — a step did not complete, so the rest were not started`;
    case 'cancelled':
      return `:no_entry_sign: Plan cancelled — ${done} of ${n} steps completed`;
  }
}

/** A decomposed request: one message, its steps as a checklist, with Run plan / Edit / Cancel while proposed. */
export function planMessage(view: PlanMessageView): ChatMessage {
  const headline = planHeadline(view);
  const facts = [`Planning task \`${view.planId}\``];
  if (view.status !== 'proposed') facts.unshift(`Cost ${formatCost(view.costUsd)}`);
  if (view.elapsedMs !== null) facts.unshift(`Elapsed ${formatDuration(view.elapsedMs)}`);
  const blocks: ChatBlock[] = [
    section(`*${headline.replace(/ — /, '* — ')}`),
    section(view.steps.map((s, i) => planStepLine(s, i, true)).join('\n')),
    context(...facts),
  ];
  if (view.status === 'proposed')
    blocks.push(
      actions(
        button('Run plan', ACTION_IDS.planRun, view.planId, 'primary'),
        button('Edit', ACTION_IDS.planEdit, view.planId),
        button('Cancel', ACTION_IDS.planCancel, view.planId, 'danger'),
      ),
    );
  if (view.status === 'running')
    blocks.push(actions(button('Cancel', ACTION_IDS.planCancel, view.planId, 'danger')));
  const plainFacts = facts.map((f) => f.replace(/`/g, ''));
  return {
    text: [
      mrkdwnToPlain(headline.replace(/^:[a-z_]+: /, '')),
      ...view.steps.map((s, i) => planStepLine(s, i, false)),
      plainFacts.join(' · '),
    ].join('\n'),
    blocks,
  };
}
