import { SleepExecutor } from '@bematic/agent';
import type { InboundRequest } from '@bematic/cloud';
import { SYSTEM_AGENT_ID, type TestSystem } from '@bematic/testkit';
import { type BenchDatabase, benchDatabases } from '../databases.js';
import { addProjects, mapLimit, now, startBenchSystem, TerminalLog, until, withTimeout } from '../harness.js';
import { round } from '../stats.js';
import type { BenchRow, Scenario, ScenarioResult } from '../types.js';

const PROJECTS = 16;

/** A console request straight into the inbound pipeline, resolved when the task is recorded and queued. */
function consoleRequest(system: TestSystem, channelId: string, text: string): InboundRequest {
  return {
    kind: 'mention',
    surface: system.cloud.console,
    userId: 'bench-user',
    userName: 'bench',
    channelId,
    text,
    threadTs: null,
    messageTs: null,
    receivedAt: Date.now(),
    respond: async () => {},
  };
}

async function queueDepth(system: TestSystem): Promise<number> {
  return (await system.cloud.repos.offlineQueue.countByAgent())[SYSTEM_AGENT_ID] ?? 0;
}

async function runOn(db: BenchDatabase, count: number, log: (line: string) => void): Promise<ScenarioResult> {
  const system = await startBenchSystem({
    databaseUrl: db.url,
    executor: () => new SleepExecutor({ durationMs: 0 }),
    startAgent: false,
    maxConcurrentTasks: 64,
  });
  const terminals = new TerminalLog(system.cloud);
  let acked = 0;
  let firstAckAt = 0;
  let onlineAt = 0;
  const offs = [
    system.cloud.events.on('task.acknowledged', () => {
      if (acked++ === 0) firstAckAt = now();
    }),
    system.cloud.events.on('agent.online', () => {
      onlineAt ||= now();
    }),
  ];
  try {
    const channels = await addProjects(system, PROJECTS, 'console', 'drain');
    const e0 = now();
    await mapLimit(
      Array.from({ length: count }, (_, i) => i),
      16,
      (i) =>
        system.cloud.inbound.handle(
          consoleRequest(system, channels[i % PROJECTS]!, `code fix queued task ${i}`),
        ),
    );
    const enqueueMs = now() - e0;
    const queued = await queueDepth(system);
    log(`  ${queued} tasks in the offline queue (enqueued in ${round(enqueueMs)} ms); connecting the agent`);

    const allAcked = until(() => acked >= count, `${count} ACKs`, 120_000, 2);
    const t0 = now();
    await system.startAgent();
    const authMs = now() - t0;
    await allAcked;
    const onlineMs = onlineAt - t0;
    const firstAckMs = firstAckAt - t0;
    await until(async () => (await queueDepth(system)) === 0, 'an empty offline queue', 30_000, 2);
    const drainMs = now() - t0;
    await terminals.waitForCount(count, 120_000);
    const completeMs = now() - t0;
    const completed = terminals.count('task.completed');
    await withTimeout(system.cloud.notifications.idle(), 30_000, 'notifications');
    return {
      rows: [
        {
          metric: `${db.dialect}: drain ${queued} queued tasks`,
          value: round(drainMs),
          unit: 'ms',
          target: { text: `< 500 ms (for 1,000)`, met: drainMs < 500 && queued >= 1000 },
          notes: `agent start → offline_queue empty (all ACKed); online after ${round(onlineMs)} ms, first ACK ${round(firstAckMs)} ms`,
        },
        {
          metric: '  drain rate',
          value: round((queued / drainMs) * 1000),
          unit: 'tasks/s',
          notes: `batches of 50 TASK_SUBMITs; enqueue while offline ${round((count / enqueueMs) * 1000)} tasks/s`,
        },
        {
          metric: '  until all completed',
          value: round(completeMs),
          unit: 'ms',
          notes: `${completed}/${count} completed, ${PROJECTS} projects, MAX_CONCURRENT_TASKS 64`,
        },
      ],
      details: {
        dialect: db.dialect,
        tasks: count,
        queued,
        enqueueMs,
        agentOnlineMs: onlineMs,
        agentAuthenticatedMs: authMs,
        firstAckMs,
        drainMs,
        completeMs,
        completed,
      },
    };
  } finally {
    for (const off of offs) off();
    terminals.close();
    await system.close();
  }
}

/**
 * Tasks dispatched while the agent is offline wait as outbox rows; when the
 * agent connects the cloud drains them. Measured: from starting the agent
 * (connect + authenticate included) until every row is gone, i.e. every
 * TASK_SUBMIT was ACKed, and until every task completed.
 */
export const offlineDrain: Scenario = {
  name: 'drain',
  title: 'Offline-queue drain on reconnect',
  async run(ctx) {
    const count = ctx.quick ? 100 : 1000;
    const rows: BenchRow[] = [];
    const details: Record<string, unknown>[] = [];
    // Quick mode: SQLite only (the lifecycle scenario drains on both); the full run adds PostgreSQL.
    for (const make of await benchDatabases(ctx.log, { postgres: !ctx.quick })) {
      const db = await make();
      try {
        const r = await runOn(db, count, ctx.log);
        rows.push(...r.rows);
        details.push(r.details);
      } finally {
        await db.drop();
      }
    }
    return { rows, details: { runs: details } };
  },
};
