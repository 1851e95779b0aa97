import { type Clock, isTerminalStatus, systemClock } from '@bematic/protocol';
import pino, { type Logger } from 'pino';
import type { BotRegistry } from '../bots/bot-registry.js';
import type { ChatMessage, ChatSurface } from '../chat/chat-surface.js';
import type { Task, TaskRepository } from '../db/repositories/types.js';
import type { TaskEvents } from '../tasks/task-events.js';
import {
  agentOfflineMessage,
  cancellationMessage,
  completionMessage,
  errorMessage,
  noticeMessage,
  type ProgressView,
  progressMessage,
  REACTIONS,
  type TaskLabel,
} from './blocks.js';
import { planFromProgress } from './plan.js';
import type { StartedPosts } from './started-posts.js';
import { StreamAccumulator } from './stream-accumulator.js';
import type { TaskMessageOwner } from './task-message-owner.js';
import { type UpdateBudget, UpdateScheduler } from './update-scheduler.js';

export interface NotificationServiceDeps {
  events: TaskEvents;
  tasks: TaskRepository;
  bots: BotRegistry;
  /** Slack or console, decided by the composer (e.g. by channel prefix). */
  surfaceFor(task: Task): ChatSurface;
  logger?: Logger;
  clock?: Clock;
  /** Least time between two updates of one task's message (default 3 s). */
  updateIntervalMs?: number;
  /**
   * Per surface (one workspace each): the update budget shared by all its tasks' messages
   * (default: no limit beyond the per-task interval).
   */
  updateBudget?: Partial<Record<ChatSurface['name'], Omit<UpdateBudget, 'taskIntervalMs'>>>;
  /** Idle re-render for the elapsed time (default 15 s; 0 disables). */
  refreshMs?: number;
  /** Lines of streamed text shown in the progress message. */
  tailLines?: number;
  /** Characters of the final result shown in the completion message. */
  resultLimit?: number;
  /** The dashboard page of a task, linked from its progress and completion messages (undefined: no link). */
  taskUrl?: (task: Task) => string | undefined;
  /** Draws the messages of the tasks it owns (a plan's); the rest get the usual blocks. */
  owner?: TaskMessageOwner;
  /** Where agent resource warnings go. */
  adminChannel?: { surface: ChatSurface; channelId: string };
  /** "Task started" posts on their way (the launcher posts after dispatching): waited for, never doubled. */
  startedPosts?: StartedPosts;
  /**
   * Several instances: the launcher's "Task started" post may be on its way in another process, which
   * `startedPosts` cannot see. For this long after a task was created, an instance that finds no message
   * for it does not post one of its own but retries the update later (default 0: one process).
   */
  startedPostGraceMs?: number;
}

/** How long an instance on a shared database waits for another's "Task started" post before posting its own. */
export const STARTED_POST_GRACE_MS = 10_000;

/** The task's message is not known yet; another instance's "Task started" post may still land. */
class StartedPostPending extends Error {
  constructor(taskId: string) {
    super(`the "Task started" message of ${taskId} is not recorded yet`);
  }
}

interface Tracked {
  task: Task;
  view: Omit<ProgressView, 'elapsedMs'>;
  buffer: string;
  acc: StreamAccumulator;
  messageTs: Promise<string> | null;
}

const ACTIVE_STATUSES = ['queued', 'submitted', 'running'] as const;

/** One chat message, whichever task draws into it (the scheduler's key). */
const messageKey = (channelId: string, ts: string) => `${channelId}:${ts}`;

/**
 * Renders task and agent events into each task's thread: one throttled
 * progress message, a completion/error/cancellation message, reactions on the
 * user's message, and offline notices.
 */
export class NotificationService {
  private readonly tracked = new Map<string, Tracked>();
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly unsubscribe: (() => void)[] = [];
  /** Pending renders, so callers (tests, shutdown) can wait for quiet. */
  private readonly pending = new Set<Promise<unknown>>();
  /** One scheduler per surface: the single place deciding when a task message is updated. */
  private readonly schedulers = new Map<ChatSurface, UpdateScheduler>();

  constructor(private readonly deps: NotificationServiceDeps) {
    this.log = deps.logger ?? pino({ level: 'silent' });
    this.clock = deps.clock ?? systemClock;
  }

  start(): this {
    const e = this.deps.events;
    this.deps.owner?.useRedraw?.((task, render) => this.redraw(task, render));
    this.unsubscribe.push(
      e.on('task.queued', (p) =>
        this.track(p.task, (t) => {
          t.view.status = p.agentOnline ? 'Queued' : 'Queued — agent offline';
          t.view.step = p.reason;
        }),
      ),
      e.on('task.submitted', (p) =>
        this.track(p.task, (t) => {
          t.view.status = 'Sent to agent';
        }),
      ),
      e.on('task.acknowledged', (p) =>
        this.track(p.task, (t) => {
          t.view.status = p.queued ? 'Waiting on the agent' : 'Accepted';
          if (p.queued && p.queuePosition !== null)
            t.view.step = `Position ${p.queuePosition + 1} in the agent's queue`;
        }),
      ),
      e.on('task.started', (p) =>
        this.track(p.task, (t) => {
          t.view.status = 'Running';
        }),
      ),
      e.on('task.progress', (p) =>
        this.track(p.task, (t) => {
          t.view.status = 'Running';
          if (p.progress.usage) t.view.usage = p.progress.usage;
          if (p.progress.kind === 'tool') t.view.working = true;
          const plan = planFromProgress(p.progress);
          if (plan) t.view.plan = plan;
          // Kept as a notice of its own, so the next step cannot coalesce it away.
          if (p.progress.kind === 'continuation')
            t.view.notices = [...(t.view.notices ?? []), p.progress.message].slice(-3);
          else if (!plan) t.view.step = p.progress.message;
        }),
      ),
      e.on('task.stream', (p) =>
        this.track(p.task, (t) => {
          t.view.status = 'Running';
          t.view.working = true;
          t.buffer = (t.buffer + p.text).slice(-8000);
          t.view.tail = this.tail(t.buffer);
        }),
      ),
      e.on('task.completed', (p) =>
        this.finish(p.task, REACTIONS.completed, (plan) =>
          completionMessage(p.task, this.label(p.task), p.message, {
            resultLimit: this.deps.resultLimit,
            taskUrl: this.deps.taskUrl?.(p.task),
            plan,
          }),
        ),
      ),
      e.on('task.failed', (p) =>
        this.finish(p.task, REACTIONS.failed, () => errorMessage(p.task, this.label(p.task), p.message)),
      ),
      e.on('task.cancelled', (p) =>
        this.finish(p.task, REACTIONS.cancelled, () =>
          cancellationMessage(p.task, this.label(p.task), p.message),
        ),
      ),
      e.on('agent.offline', (p) => this.track$(this.agentOffline(p.agentId, p.reconnectEtaMs, p.reason))),
      e.on('agent.status', (p) => {
        if (!p.status.overloaded || !this.deps.adminChannel) return;
        const { surface, channelId } = this.deps.adminChannel;
        return this.track$(
          surface.post(
            channelId,
            noticeMessage(
              `Agent \`${p.agentId}\` is overloaded${p.status.reason ? `: ${p.status.reason}` : ''} (CPU ${Math.round(p.status.metrics.cpuPercent)}%, memory ${Math.round(p.status.metrics.memoryPercent)}%). New tasks go to other agents or wait.`,
              ':warning:',
            ),
          ),
        );
      }),
    );
    return this;
  }

  stop(): void {
    for (const off of this.unsubscribe.splice(0)) off();
    for (const t of this.tracked.values()) t.acc.dispose();
    this.tracked.clear();
    for (const scheduler of this.schedulers.values()) scheduler.stop();
    this.schedulers.clear();
  }

  /** The scheduler of a surface: its workspace's update budget, shared by every task shown there. */
  schedulerFor(surface: ChatSurface): UpdateScheduler {
    let scheduler = this.schedulers.get(surface);
    if (!scheduler) {
      const budget = this.deps.updateBudget?.[surface.name] ?? { perMinute: 0, channelIntervalMs: 0 };
      scheduler = new UpdateScheduler(
        { ...budget, taskIntervalMs: this.deps.updateIntervalMs ?? 3000 },
        this.clock,
      );
      this.schedulers.set(surface, scheduler);
    }
    return scheduler;
  }

  /** Resolves when every render started so far has settled. */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  private track$<T>(p: Promise<T>): Promise<void> {
    const wrapped = p.then(
      () => undefined,
      (err: unknown) => this.log.warn({ err }, 'notification failed'),
    );
    this.pending.add(wrapped);
    void wrapped.finally(() => this.pending.delete(wrapped));
    return wrapped;
  }

  private label(task: Task): TaskLabel {
    return { bot: this.deps.bots.get(task.botName)?.displayName ?? task.botName };
  }

  private tail(buffer: string): string | null {
    const lines = buffer.split('\n').filter((l) => l.trim() !== '');
    const shown = lines.slice(-(this.deps.tailLines ?? 6)).join('\n');
    return shown || null;
  }

  private render(t: Tracked, now: number): ChatMessage {
    const started = t.task.startedAt ?? t.task.createdAt;
    const view = { ...t.view, elapsedMs: Math.max(0, now - started), taskUrl: this.deps.taskUrl?.(t.task) };
    return this.deps.owner?.progress(t.task, view) ?? progressMessage(t.task, this.label(t.task), view);
  }

  private entry(task: Task): Tracked {
    const existing = this.tracked.get(task.id);
    if (existing) {
      existing.task = {
        ...task,
        progressMessageTs: task.progressMessageTs ?? existing.task.progressMessageTs,
      };
      return existing;
    }
    const t: Tracked = {
      task,
      view: { status: 'Starting', step: null, tail: null, plan: null, notices: [] },
      buffer: '',
      messageTs: task.progressMessageTs ? Promise.resolve(task.progressMessageTs) : null,
      acc: undefined as unknown as StreamAccumulator,
    };
    t.acc = new StreamAccumulator({
      channelId: task.channelId,
      // The message exists: it was just posted, or another instance updated it before a failover. Either way
      // its next update waits one interval, so the per-task rule holds whichever instance sends.
      ...(task.progressMessageTs && { changedAt: this.clock.now() }),
      scheduler: this.schedulerFor(this.deps.surfaceFor(task)),
      key: () =>
        t.task.progressMessageTs ? messageKey(t.task.channelId, t.task.progressMessageTs) : undefined,
      render: (now) => this.render(t, now),
      send: async (message) => {
        const ts = await this.progressTs(t);
        await this.deps.surfaceFor(t.task).update(t.task.channelId, ts, message, { scheduled: true });
      },
      refreshMs: this.deps.refreshMs,
      clock: this.clock,
      onError: (err) =>
        err instanceof StartedPostPending
          ? this.log.debug({ taskId: task.id }, 'task message not recorded yet; update retried')
          : this.log.warn({ err, taskId: task.id }, 'progress update failed'),
    });
    this.tracked.set(task.id, t);
    return t;
  }

  /** The progress message's ts, posting one if the "Task started" message is missing. */
  private progressTs(t: Tracked): Promise<string> {
    if (!t.messageTs) {
      t.messageTs = (async () => {
        await this.deps.startedPosts?.landed(t.task.id);
        const fresh = await this.deps.tasks.findById(t.task.id);
        if (fresh?.progressMessageTs) {
          t.task = { ...t.task, progressMessageTs: fresh.progressMessageTs };
          return fresh.progressMessageTs;
        }
        // The scheduler tries again after one task interval; by then the launcher's post has landed.
        if (this.clock.now() - t.task.createdAt < (this.deps.startedPostGraceMs ?? 0))
          throw new StartedPostPending(t.task.id);
        const posted = await this.deps
          .surfaceFor(t.task)
          .post(t.task.channelId, this.render(t, this.clock.now()), t.task.threadTs);
        await this.deps.tasks.update(t.task.id, { progressMessageTs: posted.ts });
        t.task = { ...t.task, progressMessageTs: posted.ts };
        return posted.ts;
      })();
      t.messageTs.catch(() => {
        t.messageTs = null;
      });
    }
    return t.messageTs;
  }

  private track(task: Task, apply: (t: Tracked) => void): void {
    if (isTerminalStatus(task.status) && !this.tracked.has(task.id)) return;
    const t = this.entry(task);
    apply(t);
    t.acc.changed();
  }

  /**
   * The progress message becomes the outcome (updated in place), so the thread holds the request, one bot
   * message and follow-ups. Only if that update cannot land is the outcome posted as a new message.
   */
  private finish(
    task: Task,
    reaction: string,
    usual: (plan: ProgressView['plan']) => ChatMessage,
  ): Promise<void> {
    return this.track$(
      (async () => {
        const t = this.entry(task);
        this.tracked.delete(task.id);
        if (await this.deps.owner?.handedOver?.(task)) {
          // Another task draws into the message now: this one's pending updates are dropped.
          t.acc.dispose();
          return;
        }
        const drawn = await this.deps.owner?.outcome(task);
        const message = drawn ?? usual(t.view.plan);
        const surface = this.deps.surfaceFor(task);
        const updating = t.acc.finish(message);
        const reacting = this.react(surface, task, reaction);
        const [landed] = await Promise.allSettled([updating, reacting]);
        if (landed.status === 'fulfilled' && landed.value) return;
        this.log.warn({ taskId: task.id }, 'final update of the task message gave up; posting the outcome');
        await surface.post(
          task.channelId,
          typeof message === 'function' ? message() : message,
          task.threadTs,
        );
      })(),
    );
  }

  /**
   * A redraw of a task's message by its owner (a plan edited or cancelled), not tied to a task event: a final
   * update through the workspace's scheduler, so it keeps the budget, is never coalesced away, and lands in
   * order with the tasks' own updates of that message. Rendered when sent; resolves true once it landed.
   */
  redraw(task: Task, render: () => ChatMessage): Promise<boolean> {
    const ts = task.progressMessageTs;
    if (!ts) return Promise.resolve(false);
    const surface = this.deps.surfaceFor(task);
    const once = new StreamAccumulator({
      channelId: task.channelId,
      key: () => messageKey(task.channelId, ts),
      scheduler: this.schedulerFor(surface),
      render: () => render(),
      send: (message) => surface.update(task.channelId, ts, message, { scheduled: true }),
      refreshMs: 0,
      clock: this.clock,
      onError: (err) => this.log.warn({ err, taskId: task.id }, 'task message redraw failed'),
    });
    const landed = once.finish(render);
    void this.track$(landed);
    return landed;
  }

  private async react(surface: ChatSurface, task: Task, name: string): Promise<void> {
    if (!task.messageTs) return;
    await surface.removeReaction(task.channelId, task.messageTs, REACTIONS.working).catch(() => {});
    await surface.addReaction(task.channelId, task.messageTs, name);
  }

  /** One offline notice per thread with a task waiting on this agent. */
  private async agentOffline(agentId: string, etaMs: number | null, reason: string): Promise<void> {
    const tasks = await this.deps.tasks.list({ agentId, status: [...ACTIVE_STATUSES] });
    const seen = new Set<string>();
    for (const task of tasks) {
      const key = `${task.channelId}:${task.threadTs ?? ''}`;
      if (seen.has(key)) continue;
      seen.add(key);
      await this.deps
        .surfaceFor(task)
        .post(task.channelId, agentOfflineMessage(agentId, etaMs, reason), task.threadTs);
      this.track(task, (t) => {
        t.view.status = 'Waiting — agent offline';
      });
    }
  }
}
