import type { ExecutionOutcome, ExecutionSink, Executor } from '@bematic/agent';
import { type TaskSubmit, ZERO_TASK_METRICS } from '@bematic/protocol';
import { addProjects, BENCH_USER, now, startBenchSystem, TerminalLog } from '../harness.js';
import { round } from '../stats.js';
import type { Scenario } from '../types.js';

const TICK_MS = 10;

/** An executor that streams `chunks` small pieces of text spread over `durationMs`, as a chatty model would. */
class ChattyExecutor implements Executor {
  readonly emitted = new Map<string, { chunks: number; startedAt: number; endedAt: number }>();

  constructor(
    private readonly chunks: number,
    private readonly durationMs: number,
  ) {}

  async execute(task: TaskSubmit, sink: ExecutionSink, signal: AbortSignal): Promise<ExecutionOutcome> {
    const startedAt = now();
    sink.progress({ kind: 'status', message: 'Streaming' });
    const ticks = Math.max(1, Math.round(this.durationMs / TICK_MS));
    const perTick = Math.ceil(this.chunks / ticks);
    let sent = 0;
    while (sent < this.chunks && !signal.aborted) {
      for (let i = 0; i < perTick && sent < this.chunks; i++) sink.stream(`token ${sent++} `);
      await new Promise((r) => setTimeout(r, TICK_MS));
    }
    this.emitted.set(task.taskId, { chunks: sent, startedAt, endedAt: now() });
    const metrics = {
      ...ZERO_TASK_METRICS,
      outputTokens: sent,
      durationMs: Math.round(now() - startedAt),
      numTurns: 1,
    };
    if (signal.aborted) return { kind: 'cancelled', payload: { metrics } };
    return {
      kind: 'completed',
      payload: { result: `streamed ${sent} chunks`, metrics, filesChanged: [], commandsRun: [] },
    };
  }
}

/**
 * Many tiny stream chunks per task → the agent's coalescer → TASK_STREAM frames
 * → the cloud's throttled progress message. With the default 3 s interval a
 * task of a couple of seconds may update its Slack message only a few times.
 */
export const streamFanIn: Scenario = {
  name: 'stream',
  title: 'Stream fan-in: executor chunks → TASK_STREAM → Slack updates',
  async run(ctx) {
    const tasks = 3;
    const chunks = ctx.quick ? 1000 : 2000;
    const durationMs = ctx.quick ? 1500 : 2500;
    const executor = new ChattyExecutor(chunks, durationMs);
    const system = await startBenchSystem({ executor: () => executor, maxConcurrentTasks: tasks });
    const intervalMs = system.config.BEMATIC_PROGRESS_INTERVAL_MS;
    const terminals = new TerminalLog(system.cloud);
    const frames = new Map<string, number>();
    const off = system.cloud.events.on('task.stream', ({ task }) => {
      frames.set(task.id, (frames.get(task.id) ?? 0) + 1);
    });
    try {
      const channels = await addProjects(system, tasks, 'slack', 'stream');
      await Promise.all(
        channels.map((channel, i) =>
          system.emulator.mention({
            user: BENCH_USER,
            channel,
            text: `<@${system.emulator.botUserId}> code fix streaming task ${i}`,
          }),
        ),
      );
      await terminals.waitForCount(tasks, 60_000);
      await system.cloud.notifications.idle();

      const perTask = await Promise.all(
        channels.map(async (channel) => {
          const ended = [...terminals.at.values()].find((t) => t.task.channelId === channel);
          const task = ended ? await system.cloud.repos.tasks.findById(ended.task.id) : undefined;
          const calls = system.emulator.calls().filter((c) => c.params.channel === channel);
          const updates = calls.filter(
            (c) => c.method === 'chat.update' && c.params.ts === task?.progressMessageTs,
          ).length;
          const emitted = task ? executor.emitted.get(task.id) : undefined;
          return {
            taskId: task?.id ?? null,
            status: task?.status ?? null,
            chunks: emitted?.chunks ?? 0,
            runMs: emitted ? emitted.endedAt - emitted.startedAt : 0,
            startedAt: emitted?.startedAt ?? 0,
            endedAt: emitted?.endedAt ?? 0,
            streamFrames: task ? (frames.get(task.id) ?? 0) : 0,
            progressUpdates: updates,
            slackCalls: calls.length,
            slackCallsByMethod: calls.reduce<Record<string, number>>((acc, c) => {
              acc[c.method] = (acc[c.method] ?? 0) + 1;
              return acc;
            }, {}),
          };
        }),
      );
      const sum = (f: (p: (typeof perTask)[number]) => number) => perTask.reduce((a, p) => a + f(p), 0);
      const runMs = sum((p) => p.runMs) / tasks;
      // Aggregate rates over the window in which the tasks streamed side by side.
      const windowS =
        (Math.max(...perTask.map((p) => p.endedAt)) - Math.min(...perTask.map((p) => p.startedAt))) / 1000;
      const maxUpdates = Math.max(...perTask.map((p) => p.progressUpdates));
      const bound = Math.ceil(runMs / intervalMs) + 1;
      return {
        rows: [
          {
            metric: 'stream chunks in',
            value: round(sum((p) => p.chunks) / windowS),
            unit: 'chunks/s',
            notes: `${tasks} concurrent tasks × ${chunks} sink.stream calls over ~${durationMs} ms each`,
          },
          {
            metric: 'TASK_STREAM frames',
            value: round(sum((p) => p.streamFrames) / windowS),
            unit: 'frames/s',
            notes: `${round(
              sum((p) => p.chunks) /
                Math.max(
                  1,
                  sum((p) => p.streamFrames),
                ),
            )} chunks per frame (agent coalescer)`,
          },
          {
            metric: 'progress message updates per task',
            value: round(sum((p) => p.progressUpdates) / tasks),
            unit: 'chat.update',
            notes: `max ${maxUpdates}; bound ${bound} for a ${round(runMs)} ms run at ${intervalMs} ms interval`,
          },
          {
            metric: 'Slack Web API calls per task',
            value: round(sum((p) => p.slackCalls) / tasks),
            unit: 'calls',
            notes: `${round(
              sum((p) => p.chunks) /
                Math.max(
                  1,
                  sum((p) => p.slackCalls),
                ),
            )} chunks per Slack call`,
          },
        ],
        details: { progressIntervalMs: intervalMs, chunksPerTask: chunks, durationMs, perTask },
      };
    } finally {
      off();
      terminals.close();
      await system.close();
    }
  },
};
