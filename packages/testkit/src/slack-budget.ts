import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  BotRegistry,
  createDatabase,
  createRepositories,
  migrateToLatest,
  NotificationService,
  SLACK_CHANNEL_INTERVAL_MS,
  SlackChatSurface,
  slackUpdateClient,
  type Task,
  TaskEvents,
} from '@bematic/cloud';
import { type TaskSubmission, ZERO_TASK_METRICS } from '@bematic/protocol';
import { WebClient } from '@slack/web-api';
import { pino } from 'pino';
import { ManualClock } from './manual-clock.js';
import type { RateLimitRule } from './slack-emulator/rate-limits.js';
import { startSlackEmulator } from './slack-emulator/slack-emulator.js';

export interface SlackBudgetOptions {
  /** Tasks running at once in one workspace. */
  tasks: number;
  /** Channels they are spread over (round-robin). */
  channels: number;
  /** How long task `i` runs (virtual ms). */
  durationMs(i: number): number;
  /** A progress step and a streamed line per task this often (virtual ms; default 500). */
  eventEveryMs?: number;
  /** The workspace budget (default 45, as BEMATIC_SLACK_UPDATES_PER_MINUTE). */
  perMinute?: number;
  /** Slack's real limits that the emulator enforces (default: chat.update tier 3 = 50/min, 1/s per channel). */
  slackPerMinute?: number;
  /** A 429 storm injected on chat.update at this virtual time after the start. */
  inject429?: { atMs: number; rule: RateLimitRule };
}

export interface SlackBudgetUpdate {
  /** Virtual ms since the start. */
  at: number;
  status: 'ok' | 'rate_limited' | 'error' | 'auth_error';
}

export interface SlackBudgetTask {
  id: string;
  channel: string;
  startedAt: number;
  endedAt: number;
  /** chat.postMessage calls for this task (the "Task started" message). */
  posts: number;
  /** Every chat.update of this task's message, in order; the last ok one is the final. */
  updates: SlackBudgetUpdate[];
}

export interface SlackBudgetResult {
  tasks: SlackBudgetTask[];
  /** 429s the emulator answered, over every method. */
  rateLimited: number;
  /** When the injected 429s ended and the one after which updates resumed (virtual ms), if injected. */
  storm?: { from: number; retryAfterMs: number };
  progressIntervalMs: number;
}

const START = 1_800_000_000_000;
const startedText = (taskId: string) => `Task started: ${taskId}`;
const PROGRESS_INTERVAL_MS = 3000;

/**
 * Runs `tasks` tasks at once in one Slack workspace on a virtual clock: the cloud's NotificationService,
 * SlackChatSurface and Web API clients against the Slack emulator, which enforces Slack's per-channel and
 * per-minute limits on the same clock. Each task posts its "Task started" message, streams and reports
 * progress, then completes; the result is every Slack call per task, with virtual times.
 */
export async function runSlackBudget(options: SlackBudgetOptions): Promise<SlackBudgetResult> {
  const clock = new ManualClock(START);
  const emulator = await startSlackEmulator({ now: () => clock.now() });
  const dir = mkdtempSync(path.join(tmpdir(), 'bematic-budget-'));
  const database = await createDatabase(`sqlite:${path.join(dir, 'budget.db')}`);
  const log = pino({ level: 'silent' });
  const channelLimit = { perChannelPerSecond: 1 };
  emulator.enforceRateLimit('chat.postMessage', channelLimit);
  emulator.enforceRateLimit('chat.update', { ...channelLimit, perMinute: options.slackPerMinute ?? 50 });
  const surface = new SlackChatSurface(
    new WebClient(emulator.botToken, { slackApiUrl: emulator.apiUrl, retryConfig: { retries: 0 } }),
    log,
    slackUpdateClient(emulator.botToken, { slackApiUrl: emulator.apiUrl }),
  );
  const events = new TaskEvents();
  let notifications: NotificationService | undefined;
  try {
    await migrateToLatest(database);
    const repos = createRepositories(database.db);
    notifications = new NotificationService({
      events,
      tasks: repos.tasks,
      bots: new BotRegistry(),
      surfaceFor: () => surface,
      clock,
      logger: log,
      updateIntervalMs: PROGRESS_INTERVAL_MS,
      updateBudget: {
        slack: { perMinute: options.perMinute ?? 45, channelIntervalMs: SLACK_CHANNEL_INTERVAL_MS },
      },
    }).start();
    const scheduler = notifications.schedulerFor(surface);
    const channels = Array.from({ length: options.channels }, (_, i) => `CBUDGET${i}`);
    for (const id of channels) emulator.addChannel({ id, name: id.toLowerCase() });
    const project = await repos.projects.create({
      name: 'budget',
      channelId: channels[0]!,
      agentId: 'agent-budget',
      localPath: '/srv/budget',
      defaultModel: null,
      maxBudgetUsd: null,
    });

    const tasks: (SlackBudgetTask & { row: Task })[] = [];
    for (let i = 0; i < options.tasks; i++) {
      const id = `task_budget_${i}`;
      const channel = channels[i % channels.length]!;
      const submission: TaskSubmission = {
        taskId: id,
        projectId: project.id,
        localPath: '/srv/budget',
        botName: 'coder',
        command: 'fix',
        prompt: `task ${i}`,
        systemPrompt: 's',
        model: 'claude-sonnet-4-5',
        allowedTools: ['Read'],
        priority: 'normal',
      };
      const row = await repos.tasks.create({
        id,
        projectId: project.id,
        agentId: 'agent-budget',
        botName: 'coder',
        command: 'fix',
        prompt: `task ${i}`,
        model: 'claude-sonnet-4-5',
        priority: 'normal',
        userId: 'U1',
        channelId: channel,
        threadTs: null,
        messageTs: null,
        submission,
      });
      tasks.push({ id, channel, startedAt: 0, endedAt: 0, posts: 0, updates: [], row });
    }

    const since = () => clock.now() - START;
    const every = options.eventEveryMs ?? 500;
    /** Work outside the scheduler (the "Task started" posts) that must answer before time moves on. */
    const outside = new Set<Promise<unknown>>();
    for (const [i, t] of tasks.entries()) {
      // Posts into one channel a little over a second apart, as people mentioning the bot would.
      const startAt = Math.floor(i / channels.length) * 1100;
      clock.setTimeout(() => {
        // As the launcher does: the "Task started" post becomes the task's one message.
        const starting = surface.post(t.channel, { text: startedText(t.id) }).then(async (posted) => {
          const updated = await repos.tasks.update(t.id, { progressMessageTs: posted.ts });
          t.row = { ...updated, status: 'running', startedAt: clock.now() };
          t.startedAt = since();
          events.emit('task.started', { task: t.row });
          let step = 0;
          const ticker = clock.setInterval(() => {
            step++;
            events.emit('task.stream', { task: t.row, text: `line ${step}\n` });
            events.emit('task.progress', {
              task: t.row,
              progress: { taskId: t.id, attempt: 1, kind: 'tool', message: `Step ${step}` },
            });
          }, every);
          clock.setTimeout(() => {
            clock.clearInterval(ticker);
            t.endedAt = since();
            events.emit('task.completed', {
              task: { ...t.row, status: 'completed', completedAt: clock.now() },
              message: {
                taskId: t.id,
                attempt: 1,
                result: `done ${i}`,
                metrics: ZERO_TASK_METRICS,
                filesChanged: [],
                commandsRun: [],
              },
            });
          }, options.durationMs(i));
        });
        outside.add(starting);
        void starting.finally(() => outside.delete(starting));
      }, startAt);
    }
    let storm: SlackBudgetResult['storm'];
    if (options.inject429) {
      const { atMs, rule } = options.inject429;
      clock.setTimeout(() => {
        emulator.rateLimit('chat.update', rule);
        storm = { from: since(), retryAfterMs: (rule.retryAfterSec ?? 1) * 1000 };
      }, atMs);
    }

    // Step virtual time from one timer to the next, letting every Slack call in flight answer first, so the
    // emulator sees each call at the virtual time it was made. Without timers every task has ended and every
    // final update has landed (a waiting update always holds the scheduler's timer).
    const settle = async () => {
      do {
        await Promise.allSettled([...outside]);
        await scheduler.idle();
        await new Promise<void>((resolve) => setImmediate(resolve));
      } while (outside.size > 0);
    };
    for (;;) {
      await settle();
      const next = clock.nextTimerAt;
      if (next === undefined) break;
      await clock.advance(Math.max(0, next - clock.now()));
    }
    await notifications.idle();
    if (tasks.some((t) => t.endedAt === 0)) throw new Error('slack budget run: a task never ended');

    const tsOf = new Map<string, SlackBudgetTask>();
    for (const t of tasks) {
      const fresh = await repos.tasks.findById(t.id);
      if (fresh?.progressMessageTs) tsOf.set(`${t.channel}:${fresh.progressMessageTs}`, t);
    }
    for (const call of emulator.calls()) {
      const channel = call.params.channel;
      if (call.method === 'chat.postMessage') {
        const owner = tasks.find((t) => call.params.text === startedText(t.id));
        if (owner) owner.posts++;
      }
      if (call.method === 'chat.update') {
        const owner = tsOf.get(`${channel}:${call.params.ts}`);
        owner?.updates.push({ at: call.at - START, status: call.status });
      }
    }
    return {
      tasks: tasks.map(({ row: _row, ...t }) => t),
      rateLimited: emulator.calls().filter((c) => c.status === 'rate_limited').length,
      ...(storm && { storm }),
      progressIntervalMs: PROGRESS_INTERVAL_MS,
    };
  } finally {
    notifications?.stop();
    await emulator.stop();
    await database.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
