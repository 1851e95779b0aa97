import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  AGENT_WS_PATH,
  type Clock,
  type ResourceMetrics,
  systemClock,
  type TaskMetrics,
  type TaskPriority,
} from '@bematic/protocol';
import { pino } from 'pino';
import type { AgentRelay } from '../../src/cluster/agent-relay.js';
import { trackPresence } from '../../src/cluster/presence.js';
import { createDatabase, type Database } from '../../src/db/database.js';
import { migrateToLatest } from '../../src/db/migrations/index.js';
import { createRepositories } from '../../src/db/repositories/index.js';
import type { Project, Repositories, Task } from '../../src/db/repositories/types.js';
import { createGateway, type Gateway, type GatewayConfig } from '../../src/gateway/index.js';
import { type TaskEventMap, type TaskEventName, TaskEvents } from '../../src/tasks/task-events.js';

export const METRICS: ResourceMetrics = {
  cpuPercent: 5,
  memoryPercent: 10,
  rssMb: 50,
  loadAvg1m: 0.1,
  activeTasks: 0,
  queuedTasks: 0,
};

export const TASK_METRICS: TaskMetrics = {
  inputTokens: 10,
  outputTokens: 20,
  cacheReadTokens: 0,
  cacheCreationTokens: 0,
  costUsd: 0.01,
  durationMs: 1000,
  numTurns: 1,
  continuations: 0,
};

/** A temp SQLite database with the schema applied. */
export async function openTestDb(
  dir: string,
  now?: () => number,
): Promise<{ db: Database; repos: Repositories }> {
  const db = await createDatabase(`sqlite:${path.join(dir, 'bematic.db')}`);
  await migrateToLatest(db);
  return { db, repos: createRepositories(db.db, now ? { now } : {}) };
}

/** Records every event emitted, and lets a test await one. */
export class EventLog {
  readonly all: Array<{ name: TaskEventName; payload: unknown }> = [];
  private waiters: Array<{
    name: TaskEventName;
    pred: (p: unknown) => boolean;
    resolve: (p: unknown) => void;
  }> = [];

  constructor(events: TaskEvents) {
    const names: TaskEventName[] = [
      'task.created',
      'task.queued',
      'task.submitted',
      'task.acknowledged',
      'task.started',
      'task.progress',
      'task.stream',
      'task.completed',
      'task.failed',
      'task.cancelled',
      'agent.online',
      'agent.offline',
      'agent.status',
      'agent.heartbeat',
      'circuit.changed',
    ];
    for (const name of names) {
      events.on(name, (payload) => {
        this.all.push({ name, payload });
        for (const w of [...this.waiters]) {
          if (w.name === name && w.pred(payload)) {
            this.waiters = this.waiters.filter((x) => x !== w);
            w.resolve(payload);
          }
        }
      });
    }
  }

  of<E extends TaskEventName>(name: E): TaskEventMap[E][] {
    return this.all.filter((e) => e.name === name).map((e) => e.payload as TaskEventMap[E]);
  }

  /** Resolves with the first matching event, including one already seen. */
  wait<E extends TaskEventName>(
    name: E,
    pred: (p: TaskEventMap[E]) => boolean = () => true,
  ): Promise<TaskEventMap[E]> {
    const seen = this.of(name).find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => {
      this.waiters.push({
        name,
        pred: (p) => pred(p as TaskEventMap[E]),
        resolve: (p) => resolve(p as TaskEventMap[E]),
      });
    });
  }
}

export interface CloudHarness {
  dir: string;
  db: Database;
  repos: Repositories;
  events: TaskEvents;
  log: EventLog;
  server: Server;
  gateway: Gateway;
  url: string;
  port: number;
  stop(): Promise<void>;
}

/** Boots an HTTP server on 127.0.0.1:0 with the gateway attached, over a SQLite file in `dir`. */
export async function startCloud(
  opts: {
    dir?: string;
    config?: Partial<GatewayConfig>;
    clock?: Clock;
    port?: number;
    instanceId?: string;
    /** Another database than a SQLite file in `dir` (migrated already), e.g. PostgreSQL shared by instances. */
    database?: Database;
    relay?: AgentRelay;
  } = {},
): Promise<CloudHarness> {
  const dir = opts.dir ?? mkdtempSync(path.join(tmpdir(), 'bematic-gw-'));
  const now = opts.clock ? () => opts.clock!.now() : undefined;
  const { db, repos } = opts.database
    ? { db: opts.database, repos: createRepositories(opts.database.db, now ? { now } : {}) }
    : await openTestDb(dir, now);
  const events = new TaskEvents();
  const log = new EventLog(events);
  const server = createServer((_req, res) => res.writeHead(404).end());
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', resolve));
  const gateway = createGateway({
    server,
    repos,
    events,
    config: { reconcileOnStartup: false, ...opts.config },
    ...(opts.clock && { clock: opts.clock }),
    ...(opts.instanceId && { instanceId: opts.instanceId }),
    ...(opts.relay && { relay: opts.relay }),
  });
  const stopPresence = opts.instanceId
    ? trackPresence({
        events,
        agents: repos.agents,
        instanceId: opts.instanceId,
        health: (agentId) => gateway.manager.presenceOf(agentId),
        clock: opts.clock ?? systemClock,
        logger: pino({ level: 'silent' }),
      })
    : () => undefined;
  const port = (server.address() as AddressInfo).port;
  return {
    dir,
    db,
    repos,
    events,
    log,
    server,
    gateway,
    port,
    url: `ws://127.0.0.1:${port}${AGENT_WS_PATH}`,
    async stop() {
      stopPresence();
      await gateway.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await db.close();
    },
  };
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export async function seedProject(
  repos: Repositories,
  agentId: string,
  fallbackAgentIds: string[] = [],
  localPath = '/tmp/checkout',
): Promise<Project> {
  return repos.projects.create({
    name: `proj-${agentId}`,
    channelId: `C-${Math.random().toString(36).slice(2)}`,
    agentId,
    fallbackAgentIds,
    localPath,
    defaultModel: null,
    maxBudgetUsd: null,
  });
}

let taskSeq = 0;
export async function seedTask(
  repos: Repositories,
  project: Project,
  opts: { priority?: TaskPriority; prompt?: string } = {},
): Promise<Task> {
  taskSeq += 1;
  const id = `task_t${taskSeq}_${Math.random().toString(36).slice(2, 8)}`;
  const priority = opts.priority ?? 'normal';
  const prompt = opts.prompt ?? `do thing ${taskSeq}`;
  return repos.tasks.create({
    id,
    projectId: project.id,
    agentId: project.agentId,
    botName: 'coder',
    command: 'fix',
    prompt,
    model: 'claude-sonnet-4-5',
    priority,
    userId: 'U1',
    channelId: project.channelId,
    submission: {
      taskId: id,
      projectId: project.id,
      localPath: project.localPath,
      botName: 'coder',
      command: 'fix',
      prompt,
      systemPrompt: 'You are a coder.',
      model: 'claude-sonnet-4-5',
      allowedTools: ['Read'],
      priority,
    },
  });
}

/** A hand-driven agent over a raw socket: the testkit's one raw protocol client. */
export { RawAgent } from '@bematic/testkit';

/** Polls an async condition; for state that is not announced by any event (e.g. a row removed). */
export async function until(
  cond: () => Promise<boolean> | boolean,
  what: string,
  tries = 500,
): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}
