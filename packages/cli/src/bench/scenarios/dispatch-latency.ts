import { SleepExecutor } from '@bematic/agent';
import { createMessage, serialize, type TaskSubmit } from '@bematic/protocol';
import { BENCH_USER, now, startBenchSystem, TerminalLog, TimingExecutor } from '../harness.js';
import { round, summarize } from '../stats.js';
import type { Scenario } from '../types.js';
import { wsEchoRoundTrips } from './ws-echo.js';

const PROGRESS_INTERVAL_MS = 100;

/**
 * Slack mention → TASK_SUBMIT at the agent, one task at a time on an idle
 * system: emulator delivers the event over Socket Mode, Bolt, middleware,
 * command service (task row, "Task started"), outbox row, WebSocket, agent
 * queue processor, executor. Compared with a raw `ws` echo round trip of a
 * frame the same size.
 */
export const dispatchLatency: Scenario = {
  name: 'dispatch',
  title: 'Dispatch latency: Slack mention → TASK_SUBMIT at the agent',
  async run(ctx) {
    const count = ctx.quick ? 30 : 150;
    const warmup = 5;
    let arrived: ((task: TaskSubmit, at: number) => void) | null = null;
    const system = await startBenchSystem({
      // Short throttle so each task's last progress update lands quickly and the next mention meets an idle system.
      settings: { BEMATIC_PROGRESS_INTERVAL_MS: String(PROGRESS_INTERVAL_MS) },
      executor: () =>
        new TimingExecutor(new SleepExecutor({ durationMs: 0 }), (task, at) => arrived?.(task, at)),
    });
    const terminals = new TerminalLog(system.cloud);
    const created = new Map<string, number>();
    const offCreated = system.cloud.events.on('task.created', ({ task }) => void created.set(task.id, now()));
    const submitted = new Map<string, number>();
    const offSubmitted = system.cloud.events.on('task.submitted', ({ task }) => {
      if (!submitted.has(task.id)) submitted.set(task.id, now());
    });
    const total: number[] = [];
    const toCreated: number[] = [];
    const createdToSubmitted: number[] = [];
    const submittedToAgent: number[] = [];
    let lastSubmit: TaskSubmit | undefined;
    try {
      for (let i = 0; i < warmup + count; i++) {
        const reached = new Promise<{ task: TaskSubmit; at: number }>((resolve) => {
          arrived = (task, at) => resolve({ task, at });
        });
        const t0 = now();
        const [, { task, at }] = await Promise.all([
          system.emulator.mention({
            user: BENCH_USER,
            channel: system.channel,
            text: `<@${system.emulator.botUserId}> code fix bench task ${i}`,
          }),
          reached,
        ]);
        // Let the task finish and its Slack messages go out, so the next one meets an idle system.
        await terminals.waitForTask(task.taskId, 30_000);
        await system.cloud.notifications.idle();
        lastSubmit = task;
        if (i < warmup) continue;
        total.push(at - t0);
        const c = created.get(task.taskId);
        const sent = submitted.get(task.taskId);
        if (c !== undefined && sent !== undefined) {
          toCreated.push(c - t0);
          createdToSubmitted.push(sent - c);
          submittedToAgent.push(at - sent);
        }
        if ((i - warmup + 1) % 50 === 0) ctx.log(`  dispatch: ${i - warmup + 1}/${count}`);
      }
    } finally {
      offCreated();
      offSubmitted();
      terminals.close();
      await system.close();
    }

    const frame = serialize(createMessage('TASK_SUBMIT', lastSubmit as TaskSubmit));
    const echo = wsEchoRoundTrips(frame, ctx.quick ? 200 : 1000);
    const rtt = summarize(await echo);
    const d = summarize(total);
    const a = summarize(toCreated);
    const b = summarize(createdToSubmitted);
    const e = summarize(submittedToAgent);
    return {
      rows: [
        {
          metric: 'dispatch latency p50',
          value: round(d.p50),
          unit: 'ms',
          notes: `${count} mentions, one at a time; ${round(d.p50 / rtt.p50)}× ws echo RTT p50`,
        },
        { metric: 'dispatch latency p99', value: round(d.p99), unit: 'ms', notes: `max ${round(d.max)} ms` },
        {
          metric: '  mention → task recorded p50',
          value: round(a.p50),
          unit: 'ms',
          notes: 'Socket Mode, Bolt, middleware, command service',
        },
        {
          metric: '  task recorded → TASK_SUBMIT sent p50',
          value: round(b.p50),
          unit: 'ms',
          notes: 'outbox row, WebSocket write ("Task started" and the reaction follow it)',
        },
        {
          metric: '  TASK_SUBMIT sent → executor p50',
          value: round(e.p50),
          unit: 'ms',
          notes: 'WebSocket, agent parse, path check, queue admission',
        },
        {
          metric: 'raw ws echo RTT p50',
          value: round(rtt.p50),
          unit: 'ms',
          notes: `baseline: ${frame.length}-byte frame, loopback`,
        },
        { metric: 'raw ws echo RTT p99', value: round(rtt.p99), unit: 'ms', notes: 'baseline' },
      ],
      details: {
        mentions: count,
        warmup,
        dispatchMs: d,
        mentionToRecordedMs: a,
        recordedToSubmittedMs: b,
        submittedToExecutorMs: e,
        progressIntervalMs: PROGRESS_INTERVAL_MS,
        wsEcho: { frameBytes: frame.length, rttMs: rtt },
      },
    };
  },
};
