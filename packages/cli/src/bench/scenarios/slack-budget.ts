import { runSlackBudget, type SlackBudgetResult } from '@bematic/testkit';
import { round } from '../stats.js';
import type { BenchRow, Scenario } from '../types.js';

interface Summary {
  tasks: number;
  callsPerTask: { mean: number; max: number };
  /** Mean of duration/3 s + 3 over the tasks, and how many went over their own. */
  bound: { mean: number; over: number };
  progressUpdatesPerTask: { min: number; max: number };
  finalLatencyMs: { max: number };
  rateLimited: number;
}

function summarize(run: SlackBudgetResult): Summary {
  const per = run.tasks.map((t) => {
    const ok = t.updates.filter((u) => u.status === 'ok');
    const calls = t.posts + t.updates.length;
    const bound = (t.endedAt - t.startedAt) / run.progressIntervalMs + 3;
    return {
      calls,
      bound,
      progress: ok.filter((u) => u.at < t.endedAt).length,
      finalLatency: (ok.at(-1)?.at ?? t.endedAt) - t.endedAt,
    };
  });
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  return {
    tasks: run.tasks.length,
    callsPerTask: { mean: round(mean(per.map((p) => p.calls))), max: Math.max(...per.map((p) => p.calls)) },
    bound: { mean: round(mean(per.map((p) => p.bound))), over: per.filter((p) => p.calls > p.bound).length },
    progressUpdatesPerTask: {
      min: Math.min(...per.map((p) => p.progress)),
      max: Math.max(...per.map((p) => p.progress)),
    },
    finalLatencyMs: { max: Math.max(...per.map((p) => p.finalLatency)) },
    rateLimited: run.rateLimited,
  };
}

function rows(label: string, s: Summary, durationS: number): BenchRow[] {
  return [
    {
      metric: `Slack calls per task, ${label}`,
      value: s.callsPerTask.mean,
      unit: 'calls',
      target: { text: 'every task ≤ duration/3 s + 3', met: s.bound.over === 0 },
      notes: `max ${s.callsPerTask.max}; bound duration/3 s + 3 = ${s.bound.mean} for ${durationS} s tasks; ${s.bound.over} of ${s.tasks} over it; progress updates per task ${s.progressUpdatesPerTask.min}–${s.progressUpdatesPerTask.max}; final ≤ ${round(s.finalLatencyMs.max / 1000)} s after the end`,
    },
    {
      metric: `429s provoked, ${label}`,
      value: s.rateLimited,
      unit: '429s',
      target: { text: '0', met: s.rateLimited === 0 },
      notes: "emulator enforcing Slack's limits: chat.update 1/s per channel and 50/min per workspace",
    },
  ];
}

/**
 * The workspace's Slack call budget: the cloud's notifications, Slack surface and Web API clients against the
 * Slack emulator enforcing Slack's limits, on a virtual clock (the figures are calls and 429s, not speed), for
 * one task alone and for 50 at once in one workspace (10 per channel), ending spread out and all together, with, as the baseline, the same 50
 * tasks with only the per-task 3 s interval and no workspace budget.
 */
export const slackBudget: Scenario = {
  name: 'slack-budget',
  title: 'Slack call budget per workspace: calls per task vs duration/3 s + 3, 429s provoked',
  async run(ctx) {
    const durationMs = ctx.quick ? 30_000 : 300_000;
    const durationS = durationMs / 1000;
    // Tasks that end over two minutes (25 finals a minute, inside the budget), not all in the same second.
    const spread = (i: number) => durationMs + (i % 10) * 12_000 + i * 61;
    ctx.log(`slack-budget: 1 task, ${durationS} s (virtual)`);
    const one = summarize(await runSlackBudget({ tasks: 1, channels: 1, durationMs: () => durationMs }));
    ctx.log(`slack-budget: 50 tasks in one workspace, ${durationS}–${durationS + 111} s each (virtual)`);
    const many = summarize(await runSlackBudget({ tasks: 50, channels: 5, durationMs: spread }));
    ctx.log('slack-budget: 50 tasks ending in the same second');
    const together = summarize(
      await runSlackBudget({ tasks: 50, channels: 5, durationMs: () => durationMs }),
    );
    ctx.log('slack-budget: 50 tasks without a workspace budget (baseline)');
    const unbudgeted = summarize(
      await runSlackBudget({ tasks: 50, channels: 5, durationMs: spread, perMinute: 0 }),
    );
    return {
      rows: [
        ...rows('1 task', one, durationS),
        ...rows('50 concurrent tasks', many, durationS),
        {
          metric: 'last final after the end, 50 tasks ending together',
          value: round(together.finalLatencyMs.max / 1000),
          unit: 's',
          notes: `50 finals need ${round((50 * 60) / 45)} s of a 45/min budget; ${together.rateLimited} 429s`,
        },
        {
          metric: '429s provoked, 50 tasks, per-task 3 s and per-channel 1 s only (baseline)',
          value: unbudgeted.rateLimited,
          unit: '429s',
          notes: `what the same run provokes without the workspace budget; ${unbudgeted.callsPerTask.mean} calls per task`,
        },
      ],
      details: {
        durationMs,
        oneTask: one,
        fiftyTasks: many,
        fiftyTasksEndingTogether: together,
        fiftyTasksWithoutBudget: unbudgeted,
      },
    };
  },
};
