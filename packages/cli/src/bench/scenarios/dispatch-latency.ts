import { SleepExecutor } from '@bematic/agent';
import { createMessage, serialize, type TaskSubmit } from '@bematic/protocol';
import type { TestSystem } from '@bematic/testkit';
import { ClientProcess } from '../client-process.js';
import { type BenchDatabase, benchDatabases } from '../databases.js';
import {
  addProjects,
  BENCH_USER,
  consoleMessage,
  now,
  startBenchSystem,
  TerminalLog,
  TimingExecutor,
  watchAgentFrames,
  withTimeout,
} from '../harness.js';
import { round, type Summary, summarize } from '../stats.js';
import type { BenchRow, Scenario } from '../types.js';
import type { RelayCommand, RelayReply } from './relay-client.js';
import { wsEchoRoundTrips } from './ws-echo.js';

const PROGRESS_INTERVAL_MS = 100;
/** Background tasks started per second while dispatch is measured. */
const BACKGROUND_PER_SEC = 5;
const RATIO_TARGET = 2;

type Relay = ClientProcess<RelayCommand, RelayReply>;

/** The baseline in its own process (relay-client.ts): POST → frame on an open ws, timed there. */
async function startRelay(): Promise<Relay> {
  const relay: Relay = new ClientProcess(new URL('./relay-client.js', import.meta.url));
  await relay.reply('ready', 30_000);
  return relay;
}

/** Console tasks started at a steady rate on other projects, so nothing is measured on an idle cloud. */
function backgroundLoad(system: TestSystem, channels: string[]): { stop(): Promise<number> } {
  let running = true;
  let sent = 0;
  const gap = 1000 / BACKGROUND_PER_SEC;
  const loop = (async () => {
    while (running) {
      const t0 = now();
      await consoleMessage(system.cloud, channels[sent % channels.length] ?? '', `code background ${sent}`);
      sent++;
      await new Promise((r) => setTimeout(r, Math.max(0, gap - (now() - t0))));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return sent;
    },
  };
}

interface Run {
  dialect: BenchDatabase['dialect'];
  relay: Summary;
  console: Summary;
  slack: Summary;
  slackToRecorded: Summary;
  recordedToSent: Summary;
  sentToAgent: Summary;
  agentToExecutor: Summary;
  backgroundTasks: number;
  submitFrame: string;
}

async function runOn(db: BenchDatabase, count: number, warmup: number): Promise<Run> {
  // Dispatch is measured to the TASK_SUBMIT frame on the agent's socket; the executor moment is a breakdown.
  const atExecutor = new Map<string, number>();
  const system = await startBenchSystem({
    databaseUrl: db.url,
    settings: { BEMATIC_PROGRESS_INTERVAL_MS: String(PROGRESS_INTERVAL_MS) },
    maxConcurrentTasks: 32,
    executor: () =>
      new TimingExecutor(new SleepExecutor({ durationMs: 0 }), (task, at) => atExecutor.set(task.taskId, at)),
  });
  const relay = await startRelay();
  const terminals = new TerminalLog(system.cloud);
  const created = new Map<string, number>();
  const submitted = new Map<string, number>();
  const offs = [
    system.cloud.events.on('task.created', ({ task }) => void created.set(task.id, now())),
    system.cloud.events.on('task.submitted', ({ task }) => {
      if (!submitted.has(task.id)) submitted.set(task.id, now());
    }),
  ];
  // The frame of the measured task: found by the marker in its prompt.
  let waiting: { marker: string; resolve: (r: { at: number; frame: string }) => void } | null = null;
  const frames = watchAgentFrames(system, (data, at) => {
    if (waiting && data.includes(waiting.marker)) {
      waiting.resolve({ at, frame: data.toString('utf8') });
      waiting = null;
    }
  });
  const arrival = (marker: string) =>
    withTimeout(
      new Promise<{ at: number; frame: string }>((resolve) => {
        waiting = { marker, resolve };
      }),
      30_000,
      `TASK_SUBMIT ${marker} at the agent`,
    );
  const taskIdOf = (frame: string) => (JSON.parse(frame) as { payload: TaskSubmit }).payload.taskId;

  const relayMs: number[] = [];
  const consoleMs: number[] = [];
  const slackMs: number[] = [];
  const parts = {
    toRecorded: [] as number[],
    toSent: [] as number[],
    toAgent: [] as number[],
    toExec: [] as number[],
  };
  let submitFrame = '';
  let background = { stop: async () => 0 };
  try {
    const [consoleChannel] = await addProjects(system, 1, 'console', 'dispatch');
    const bgChannels = await addProjects(system, 4, 'console', 'dispatchbg');
    background = backgroundLoad(system, bgChannels);
    for (let i = 0; i < warmup + count; i++) {
      frames.rehook();
      const measured = i >= warmup;
      // Console: POST /api/console/messages → TASK_SUBMIT frame at the agent.
      let marker = `dispatch-console-${i}-`;
      let got = arrival(marker);
      let t0 = now();
      await consoleMessage(system.cloud, consoleChannel ?? '', `code fix ${marker}`);
      let { at, frame } = await got;
      if (measured) consoleMs.push(at - t0);
      await terminals.waitForTask(taskIdOf(frame), 30_000);

      // Slack: the event delivered over Socket Mode → TASK_SUBMIT frame at the agent.
      marker = `dispatch-slack-${i}-`;
      got = arrival(marker);
      t0 = now();
      await system.emulator.mention({
        user: BENCH_USER,
        channel: system.channel,
        text: `<@${system.emulator.botUserId}> code fix ${marker}`,
      });
      ({ at, frame } = await got);
      const id = taskIdOf(frame);
      if (measured) {
        slackMs.push(at - t0);
        const c = created.get(id);
        const s = submitted.get(id);
        if (c !== undefined && s !== undefined) {
          parts.toRecorded.push(c - t0);
          parts.toSent.push(s - c);
          parts.toAgent.push(at - s);
        }
      }
      submitFrame = frame;
      await terminals.waitForTask(id, 30_000);
      const e = atExecutor.get(id);
      if (measured && e !== undefined) parts.toExec.push(e - at);

      // Baseline: the same frame through a bare HTTP → WebSocket relay, under the same load.
      const { ms } = await relay.request({ type: 'sample', body: frame }, 'sample', 30_000);
      if (measured) relayMs.push(ms);
    }
    const backgroundTasks = await background.stop();
    return {
      dialect: db.dialect,
      relay: summarize(relayMs),
      console: summarize(consoleMs),
      slack: summarize(slackMs),
      slackToRecorded: summarize(parts.toRecorded),
      recordedToSent: summarize(parts.toSent),
      sentToAgent: summarize(parts.toAgent),
      agentToExecutor: summarize(parts.toExec),
      backgroundTasks,
      submitFrame,
    };
  } finally {
    await background.stop();
    for (const off of offs) off();
    terminals.close();
    await relay.stop({ type: 'stop' });
    await system.close();
  }
}

const ratio = (a: number, b: number) => round(a / b);

/**
 * Chat event → TASK_SUBMIT at the agent, with every write it needs durable, while background tasks keep the
 * cloud busy: through the web console (HTTP POST) and through a Slack mention (the event delivered over
 * Socket Mode), each to the TASK_SUBMIT frame arriving on the agent's socket. Beside it, measured in the
 * same loop under the same load, a bare HTTP → WebSocket relay of the same frame; on SQLite and
 * PostgreSQL. p50 and p99 are printed as ratios to the relay's.
 */
export const dispatchLatency: Scenario = {
  name: 'dispatch',
  title: 'Dispatch: chat event → TASK_SUBMIT at the agent, background load, vs a bare HTTP→ws relay',
  async run(ctx) {
    const count = ctx.quick ? 10 : 150;
    const warmup = ctx.quick ? 2 : 10;
    const runs: Run[] = [];
    for (const make of await benchDatabases(ctx.log)) {
      const db = await make();
      try {
        const r = await runOn(db, count, warmup);
        runs.push(r);
        ctx.log(
          `  ${r.dialect}: console p50 ${round(r.console.p50)} / p99 ${round(r.console.p99)} ms, slack p99 ${round(r.slack.p99)} ms, relay p99 ${round(r.relay.p99)} ms`,
        );
      } finally {
        await db.drop();
      }
    }
    const frame =
      runs[0]?.submitFrame || serialize(createMessage('TASK_SUBMIT', { taskId: 'x' } as TaskSubmit));
    const rtt = summarize(await wsEchoRoundTrips(frame, ctx.quick ? 200 : 1000));
    const rows: BenchRow[] = [];
    for (const r of runs) {
      const p50 = ratio(r.console.p50, r.relay.p50);
      const p99 = ratio(r.console.p99, r.relay.p99);
      const slack50 = ratio(r.slack.p50, r.relay.p50);
      const slack99 = ratio(r.slack.p99, r.relay.p99);
      const slackVsConsole = ratio(r.slack.p99, r.console.p99);
      rows.push(
        {
          metric: `${r.dialect}: console → TASK_SUBMIT p50`,
          value: round(r.console.p50),
          unit: 'ms',
          notes: `${p50}× relay p50 (${round(r.relay.p50)} ms); ${count} tasks, ${r.backgroundTasks} background tasks meanwhile`,
          target: { text: `≤ ${RATIO_TARGET}× relay p50`, met: p50 <= RATIO_TARGET },
        },
        {
          metric: `${r.dialect}: console → TASK_SUBMIT p99`,
          value: round(r.console.p99),
          unit: 'ms',
          notes: `${p99}× relay p99 (${round(r.relay.p99)} ms); max ${round(r.console.max)} ms`,
          target: { text: `≤ ${RATIO_TARGET}× relay p99`, met: p99 <= RATIO_TARGET },
        },
        {
          metric: `${r.dialect}: Slack mention → TASK_SUBMIT p50`,
          value: round(r.slack.p50),
          unit: 'ms',
          notes: `${slack50}× relay p50; event delivered over Socket Mode → frame at the agent`,
        },
        {
          metric: `${r.dialect}: Slack mention → TASK_SUBMIT p99`,
          value: round(r.slack.p99),
          unit: 'ms',
          notes: `${slackVsConsole}× console p99, ${slack99}× relay p99; max ${round(r.slack.max)} ms`,
          target: { text: `≤ ${RATIO_TARGET}× console p99`, met: slackVsConsole <= RATIO_TARGET },
        },
        {
          metric: '  mention → task recorded p50',
          value: round(r.slackToRecorded.p50),
          unit: 'ms',
          notes: `Socket Mode, Bolt, middleware, command service; p99 ${round(r.slackToRecorded.p99)} ms`,
        },
        {
          metric: '  task recorded → TASK_SUBMIT sent p50',
          value: round(r.recordedToSent.p50),
          unit: 'ms',
          notes: `outbox row, claim, WebSocket write; p99 ${round(r.recordedToSent.p99)} ms`,
        },
        {
          metric: '  TASK_SUBMIT sent → frame at the agent p50',
          value: round(r.sentToAgent.p50),
          unit: 'ms',
          notes: `loopback WebSocket; p99 ${round(r.sentToAgent.p99)} ms`,
        },
        {
          metric: '  frame at the agent → executor p50',
          value: round(r.agentToExecutor.p50),
          unit: 'ms',
          notes: `agent parse, path check, queue admission; p99 ${round(r.agentToExecutor.p99)} ms`,
        },
        {
          metric: `${r.dialect}: HTTP → ws relay p50 / p99`,
          value: round(r.relay.p50),
          unit: 'ms',
          notes: `baseline, own process, same loop and load: p99 ${round(r.relay.p99)} ms; handler forwards the ${r.submitFrame.length}-byte frame over an open ws`,
        },
      );
    }
    rows.push({
      metric: 'raw ws echo RTT p50 / p99',
      value: round(rtt.p50),
      unit: 'ms',
      notes: `baseline, idle: p99 ${round(rtt.p99)} ms; ${frame.length}-byte frame, loopback`,
    });
    return {
      rows,
      details: {
        tasksPerPath: count,
        warmup,
        backgroundTasksPerSec: BACKGROUND_PER_SEC,
        progressIntervalMs: PROGRESS_INTERVAL_MS,
        runs: runs.map(({ submitFrame, ...r }) => ({ ...r, frameBytes: submitFrame.length })),
        wsEcho: { frameBytes: frame.length, rttMs: rtt },
      },
    };
  },
};
