import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  type Cloud,
  type InboundRequest,
  loadCloudConfig,
  registerProject,
  startCloud,
} from '@bematic/cloud';
import { AGENT_WS_PATH, createMessage, serialize } from '@bematic/protocol';
import { WebSocketServer } from 'ws';
import { ClientProcess } from '../client-process.js';
import { type BenchDatabase, benchDatabases } from '../databases.js';
import { mapLimit, now, silentLogger, withTimeout } from '../harness.js';
import {
  type DatabaseSnapshot,
  type ReplayResult,
  StatementRecorder,
  snapshot,
} from '../statement-replay.js';
import { round } from '../stats.js';
import type { BenchRow, Scenario } from '../types.js';
import {
  completeOf,
  type LifecycleCommand,
  type LifecycleReply,
  MESSAGES_PER_TASK,
} from './lifecycle-client.js';

const AGENT_ID = 'bench-lifecycle';
const PROJECTS = 16;

type Client = ClientProcess<LifecycleCommand, LifecycleReply>;
const newClient = (): Client => new ClientProcess(new URL('./lifecycle-client.js', import.meta.url));

function consoleRequest(cloud: Cloud, channelId: string, text: string): InboundRequest {
  return {
    kind: 'mention',
    surface: cloud.console,
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

/**
 * The physical ceiling: frames the size of a TASK_COMPLETE from the client process to a raw `ws` server in
 * this process, as fast as it takes them; messages per second.
 */
async function rawMessageRate(client: Client, count: number): Promise<number> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  let received = 0;
  let first = 0;
  const all = new Promise<number>((resolve) => {
    server.on('connection', (ws) =>
      ws.on('message', () => {
        if (received++ === 0) first = now();
        if (received === count) resolve(now() - first);
      }),
    );
  });
  try {
    const frame = serialize(createMessage('TASK_COMPLETE', completeOf('task_rate', 1)));
    const { port } = server.address() as AddressInfo;
    const blasted = client.reply('blasted', 60_000);
    client.send({ type: 'blast', url: `ws://127.0.0.1:${port}`, frame, count });
    await blasted;
    const ms = await withTimeout(all, 60_000, 'raw ws frames');
    return ((count - 1) / ms) * 1000;
  } finally {
    for (const ws of server.clients) ws.terminate();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

interface Run {
  dialect: BenchDatabase['dialect'];
  tasks: number;
  enqueueMs: number;
  /** Agent authenticated → every TASK_ACK applied (offline queue drained and acknowledged). */
  allAckedMs: number;
  /** Agent authenticated → the last TASK_RESULT_ACK at the agent (every task completed, committed). */
  allCompletedMs: number;
  /** The same, as this process saw it (online event → the client's report over IPC). */
  lastResultAckAfterOnlineMs: number;
  completedRows: number;
  tasksPerSec: number;
  cloudCpuMsPerTask: number;
  /** The recorded statements run again on a copy with the bare driver. */
  floor: ReplayResult & { tasksPerSec: number };
}

function startBenchCloud(db: BenchDatabase, recorder: StatementRecorder): Promise<Cloud> {
  return startCloud({
    config: loadCloudConfig({
      DATABASE_URL: db.url,
      PORT: '0',
      BEMATIC_LOG_LEVEL: 'silent',
      // The per-user request limit is not what is measured.
      BEMATIC_RATE_LIMIT: '10000000',
    }),
    logger: silentLogger(),
    onQuery: recorder.observe,
  });
}

/**
 * Queues `count` tasks, then restarts the cloud (so the database can be copied while nothing holds it) and
 * lets the client drain and answer them, recording every statement the cloud runs meanwhile; finally runs
 * those statements again on the copy with the bare driver, the floor under the cloud's database work.
 */
async function runOn(db: BenchDatabase, count: number, client: Client): Promise<Run> {
  const root = await mkdtemp(path.join(tmpdir(), 'bematic-bench-lifecycle-'));
  const recorder = new StatementRecorder();
  let cloud = await startBenchCloud(db, recorder);
  let copy: DatabaseSnapshot | undefined;
  try {
    const { key } = await cloud.gateway.apiKeys.create(AGENT_ID, { label: 'bench', actor: 'bench' });
    const channels: string[] = [];
    for (let i = 0; i < PROJECTS; i++) {
      const localPath = path.join(root, `p${i}`);
      await mkdir(localPath, { recursive: true });
      const channelId = `console:lifecycle-${i}`;
      await registerProject(cloud.repos, { channelId, agentId: AGENT_ID, localPath, name: `lifecycle-${i}` });
      channels.push(channelId);
    }
    const e0 = now();
    const queuing = cloud;
    await mapLimit(
      Array.from({ length: count }, (_, i) => i),
      16,
      (i) => queuing.inbound.handle(consoleRequest(queuing, channels[i % PROJECTS]!, `code fix task ${i}`)),
    );
    const enqueueMs = now() - e0;
    await cloud.close();
    copy = await snapshot(db, path.join(root, 'floor.db'));
    cloud = await startBenchCloud(db, recorder);

    let acked = 0;
    let authAt = 0;
    let allAckedAt = 0;
    const offs = [
      cloud.events.on('task.acknowledged', () => {
        if (++acked === count) allAckedAt = now();
      }),
      cloud.events.on('agent.online', () => {
        authAt ||= now();
      }),
    ];
    try {
      const cpu0 = process.cpuUsage();
      const url = `${cloud.agentUrl}${AGENT_WS_PATH}`;
      const authenticated = client.reply('authenticated', 30_000);
      const done = client.reply('done', 120_000);
      recorder.recording = true;
      client.send({ type: 'connect', url, agentId: AGENT_ID, apiKey: key, expect: count });
      await authenticated;
      const result = await done;
      recorder.recording = false;
      const doneAt = now();
      const cpu = process.cpuUsage(cpu0);
      const completedRows = (await cloud.repos.tasks.countByStatus()).completed ?? 0;
      await cloud.close();
      const floor = await copy.replay(recorder.statements);
      return {
        dialect: db.dialect,
        tasks: count,
        enqueueMs: round(enqueueMs),
        allAckedMs: round(allAckedAt - authAt),
        allCompletedMs: round(result.lastResultAckMs),
        lastResultAckAfterOnlineMs: round(doneAt - authAt),
        completedRows,
        tasksPerSec: round((count / result.lastResultAckMs) * 1000),
        cloudCpuMsPerTask: round((cpu.user + cpu.system) / 1000 / count),
        floor: { ...floor, ms: round(floor.ms), tasksPerSec: round((count / floor.ms) * 1000) },
      };
    } finally {
      for (const off of offs) off();
    }
  } finally {
    await cloud.close();
    await copy?.drop();
    await rm(root, { recursive: true, force: true });
  }
}

/**
 * The cloud's side of the task lifecycle at full speed: `tasks` queued while the agent is away, then a raw
 * client authenticates and answers each TASK_SUBMIT at once with ACK, PROGRESS and COMPLETE; every state
 * change is committed before the cloud sends the TASK_RESULT_ACK the client counts. Measures the drain
 * (authenticated → every TASK_ACK applied) and the throughput (authenticated → last TASK_RESULT_ACK), on
 * SQLite and PostgreSQL, against the raw ws message rate of the same two processes.
 */
export const lifecycle: Scenario = {
  name: 'lifecycle',
  title: 'Lifecycle throughput and drain: raw agent answering at once, every change committed',
  async run(ctx) {
    // Quick mode keeps the enqueue (through the inbound pipeline, slow on PostgreSQL) short.
    const count = ctx.quick ? 60 : 1000;
    const makers = await benchDatabases(ctx.log);
    const rows: BenchRow[] = [];
    const runs: Run[] = [];
    let rate = 0;
    for (const make of makers) {
      const client = newClient();
      const db = await make();
      try {
        if (rate === 0) rate = await rawMessageRate(client, ctx.quick ? 5_000 : 100_000);
        const r = await runOn(db, count, client);
        runs.push(r);
        ctx.log(`  ${r.dialect}: ${r.tasksPerSec} tasks/s, all ACKed ${r.allAckedMs} ms after auth`);
      } finally {
        await client.stop({ type: 'stop' });
        await db.drop();
      }
    }
    const ceiling = rate / MESSAGES_PER_TASK;
    for (const r of runs) {
      rows.push(
        {
          metric: `${r.dialect}: lifecycle throughput`,
          value: r.tasksPerSec,
          unit: 'tasks/s',
          target: {
            text: `≥ ${r.dialect === 'sqlite' ? '2,000' : '1,000'}`,
            met: r.tasksPerSec >= (r.dialect === 'sqlite' ? 2000 : 1000),
          },
          notes: `${round((r.tasksPerSec / ceiling) * 100)} % of raw ws rate ÷ ${MESSAGES_PER_TASK} msgs/task (${round(ceiling)}); target ${r.dialect === 'sqlite' ? '2,000' : '1,000'}; ${r.cloudCpuMsPerTask} ms cloud CPU/task; ${r.completedRows}/${r.tasks} rows completed`,
        },
        {
          metric: `${r.dialect}: the same statements on the bare driver`,
          value: r.floor.tasksPerSec,
          unit: 'tasks/s',
          notes: `floor under the cloud's database work: the ${r.floor.statements} statements it ran (${round(r.floor.statements / r.tasks)} per task, ${round(r.floor.commits / r.tasks)} commits per task), replayed in order on a copy taken before, one after another${r.dialect === 'postgres' ? ' on one connection' : ''}; ${r.floor.ms} ms${r.floor.errors > 0 ? `, ${r.floor.errors} refused by the copy` : ''}; with the ${MESSAGES_PER_TASK} frames per task at the raw ws rate, ${round(1000 / (r.floor.ms / r.tasks + (MESSAGES_PER_TASK / rate) * 1000))} tasks/s; the cloud reached ${round((r.tasksPerSec / r.floor.tasksPerSec) * 100)} % of the database floor`,
        },
        {
          metric: `${r.dialect}: drain ${r.tasks} queued, all ACKed`,
          value: r.allAckedMs,
          unit: 'ms',
          target: { text: '< 500 ms for 1,000', met: r.allAckedMs < 500 && r.tasks >= 1000 },
          notes: `after the agent authenticated; all completed after ${r.allCompletedMs} ms`,
        },
      );
    }
    rows.push({
      metric: 'raw ws message rate',
      value: round(rate),
      unit: 'msgs/s',
      notes: 'baseline: TASK_COMPLETE-sized frames, client process → raw ws server, loopback',
    });
    return { rows, details: { rawMessagesPerSec: rate, messagesPerTask: MESSAGES_PER_TASK, runs } };
  },
};
