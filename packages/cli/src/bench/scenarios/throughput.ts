import { SleepExecutor } from '@bematic/agent';
import type { TestSystem } from '@bematic/testkit';
import { type BenchDatabase, benchDatabases } from '../databases.js';
import {
  addProjects,
  BENCH_USER,
  consoleMessage,
  mapLimit,
  now,
  startBenchSystem,
  TerminalLog,
} from '../harness.js';
import { round, summarize } from '../stats.js';
import type { BenchRow, Scenario, ScenarioResult } from '../types.js';

const PROJECTS = 16;

interface Run {
  tasks: number;
  elapsedMs: number;
  completed: number;
  persisted: number;
  lifecycleMs: ReturnType<typeof summarize>;
  slackCallsPerTask?: number;
}

/** Fires `count` requests `inFlight` at a time and waits until every task is completed and persisted. */
async function drive(
  system: TestSystem,
  count: number,
  inFlight: number,
  send: (i: number) => Promise<void>,
): Promise<Run> {
  const terminals = new TerminalLog(system.cloud);
  const created = new Map<string, number>();
  const off = system.cloud.events.on('task.created', ({ task }) => void created.set(task.id, now()));
  try {
    const before = (await system.cloud.repos.tasks.countByStatus()).completed ?? 0;
    const t0 = now();
    const done = terminals.waitForCount(count, 120_000);
    await mapLimit(
      Array.from({ length: count }, (_, i) => i),
      inFlight,
      send,
    );
    await done;
    const elapsedMs = now() - t0;
    const persisted = ((await system.cloud.repos.tasks.countByStatus()).completed ?? 0) - before;
    const lifecycle = [...terminals.at].flatMap(([id, t]) => {
      const c = created.get(id);
      return c === undefined ? [] : [t.at - c];
    });
    return {
      tasks: count,
      elapsedMs,
      completed: terminals.count('task.completed'),
      persisted,
      lifecycleMs: summarize(lifecycle),
    };
  } finally {
    off();
    terminals.close();
  }
}

async function runOn(
  db: BenchDatabase,
  consoleTasks: number,
  slackTasks: number,
  log: (line: string) => void,
): Promise<ScenarioResult> {
  const system = await startBenchSystem({
    databaseUrl: db.url,
    executor: () => new SleepExecutor({ durationMs: 0 }),
    maxConcurrentTasks: 64,
  });
  try {
    const consoleChannels = await addProjects(system, PROJECTS, 'console', 'tput');
    const slackChannels = await addProjects(system, PROJECTS, 'slack', 'tputs');

    const c = await drive(system, consoleTasks, 32, (i) =>
      consoleMessage(system.cloud, consoleChannels[i % PROJECTS]!, `code fix console task ${i}`),
    );
    log(`  ${db.dialect}: console: ${c.completed}/${consoleTasks} in ${round(c.elapsedMs)} ms`);
    await system.cloud.notifications.idle();

    const callsBefore = system.emulator.calls().length;
    const s = await drive(system, slackTasks, 16, async (i) => {
      await system.emulator.mention({
        user: BENCH_USER,
        channel: slackChannels[i % PROJECTS]!,
        text: `<@${system.emulator.botUserId}> code fix slack task ${i}`,
      });
    });
    await system.cloud.notifications.idle();
    s.slackCallsPerTask = (system.emulator.calls().length - callsBefore) / slackTasks;
    log(`  ${db.dialect}: slack: ${s.completed}/${slackTasks} in ${round(s.elapsedMs)} ms`);

    const rows: BenchRow[] = [
      {
        metric: `${db.dialect}: throughput via console`,
        value: round((c.completed / c.elapsedMs) * 1000),
        unit: 'tasks/s',
        notes: `${c.completed}/${consoleTasks} completed, ${c.persisted} rows; ${PROJECTS} projects, HTTP API`,
      },
      {
        metric: '  task lifecycle p50 / p99',
        value: round(c.lifecycleMs.p50),
        unit: 'ms',
        notes: `created → completed; p99 ${round(c.lifecycleMs.p99)} ms under load`,
      },
      {
        metric: `${db.dialect}: throughput via Slack`,
        value: round((s.completed / s.elapsedMs) * 1000),
        unit: 'tasks/s',
        notes: `${s.completed}/${slackTasks} completed, ${s.persisted} rows; mentions, 16 in flight`,
      },
      {
        metric: '  Slack Web API calls per task',
        value: round(s.slackCallsPerTask),
        unit: 'calls',
        notes: 'post started, reactions, updates, completion',
      },
    ];
    return {
      rows,
      details: { dialect: db.dialect, projects: PROJECTS, maxConcurrentTasks: 64, console: c, slack: s },
    };
  } finally {
    await system.close();
  }
}

/**
 * Tasks per second through the whole lifecycle — request, task row, outbox,
 * TASK_SUBMIT, ACK, progress, stream, TASK_COMPLETE, terminal transition —
 * with a no-op executor, first through the web console's HTTP API, then
 * through Slack mentions (Socket Mode in, Web API out).
 */
export const throughput: Scenario = {
  name: 'throughput',
  title: 'Lifecycle throughput: submit → ack → progress → complete → persisted',
  async run(ctx) {
    const consoleTasks = ctx.quick ? 60 : 300;
    const slackTasks = ctx.quick ? 20 : 100;
    const rows: BenchRow[] = [];
    const runs: Record<string, unknown>[] = [];
    // Quick mode: SQLite only (the lifecycle scenario covers both databases); the full run adds PostgreSQL.
    for (const make of await benchDatabases(ctx.log, { postgres: !ctx.quick })) {
      const db = await make();
      try {
        const r = await runOn(db, consoleTasks, slackTasks, ctx.log);
        rows.push(...r.rows);
        runs.push(r.details);
      } finally {
        await db.drop();
      }
    }
    return { rows, details: { runs } };
  },
};
