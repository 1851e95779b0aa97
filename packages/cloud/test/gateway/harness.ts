import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  AGENT_WS_PATH,
  type AuthRequest,
  type Clock,
  createMessage,
  type Message,
  type MessageType,
  type PayloadOf,
  parse,
  type ResourceMetrics,
  serialize,
  systemClock,
  type TaskMetrics,
  type TaskPriority,
} from '@bematic/protocol';
import { pino } from 'pino';
import { WebSocket } from 'ws';
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

/** A payload whose attempt may be left out: RawAgent fills in the attempt of the task's latest TASK_SUBMIT. */
export type LooseAttempt<P> = P extends { attempt: number } ? Omit<P, 'attempt'> & { attempt?: number } : P;

const ATTEMPTED: ReadonlySet<MessageType> = new Set([
  'TASK_ACK',
  'TASK_PROGRESS',
  'TASK_STREAM',
  'TASK_COMPLETE',
  'TASK_ERROR',
  'TASK_CANCELLED',
  'PERMISSION_REQUEST',
]);

/** A hand-driven agent speaking the protocol over a raw `ws` socket. */
export class RawAgent {
  readonly received: Message[] = [];
  /** The attempt of the latest TASK_SUBMIT received for each task. */
  readonly attempts = new Map<string, number>();
  readonly invalid: string[] = [];
  private waiters: Array<{ pred: (m: Message) => boolean; resolve: (m: Message) => void }> = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const r = parse(data as Buffer);
      if (!r.ok) {
        this.invalid.push(r.error.message);
        return;
      }
      if (r.message.type === 'TASK_SUBMIT')
        this.attempts.set(r.message.payload.taskId, r.message.payload.attempt);
      this.received.push(r.message);
      for (const w of [...this.waiters]) {
        if (w.pred(r.message)) {
          this.waiters = this.waiters.filter((x) => x !== w);
          w.resolve(r.message);
        }
      }
    });
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
  }

  static async open(url: string): Promise<RawAgent> {
    const ws = new WebSocket(url);
    const agent = new RawAgent(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return agent;
  }

  /** Opens, authenticates and waits for AUTH_RESPONSE. */
  static async connect(
    url: string,
    agentId: string,
    apiKey: string,
    extra: Partial<AuthRequest> = {},
  ): Promise<{ agent: RawAgent; response: Message<'AUTH_RESPONSE'> }> {
    const agent = await RawAgent.open(url);
    agent.send('AUTH_REQUEST', {
      agentId,
      apiKey,
      agentVersion: '0.1.0',
      hostname: 'test-host',
      maxConcurrentTasks: 3,
      activeTaskIds: [],
      bufferedTaskIds: [],
      ...extra,
    });
    const response = await agent.next('AUTH_RESPONSE');
    return { agent, response };
  }

  /** Sends through the protocol's validating serializer; a task message without an attempt gets the latest one. */
  send<T extends MessageType>(type: T, payload: LooseAttempt<PayloadOf<T>>): void {
    const p = payload as { taskId?: unknown; attempt?: unknown };
    const filled =
      typeof p.taskId === 'string' && p.attempt === undefined && ATTEMPTED.has(type)
        ? { ...p, attempt: this.attempts.get(p.taskId) ?? 1 }
        : p;
    this.ws.send(serialize(createMessage(type, filled as PayloadOf<T>) as unknown as Message));
  }

  sendRaw(data: string | Buffer): void {
    this.ws.send(data);
  }

  /** The first message of this type (already received or future) matching pred, not yet consumed. */
  next<T extends MessageType>(type: T, pred: (m: Message<T>) => boolean = () => true): Promise<Message<T>> {
    const match = (m: Message): boolean => m.type === type && pred(m as unknown as Message<T>);
    const seen = this.received.find(match);
    if (seen) {
      this.received.splice(this.received.indexOf(seen), 1);
      return Promise.resolve(seen as unknown as Message<T>);
    }
    return new Promise((resolve) => {
      this.waiters.push({
        pred: match,
        resolve: (m) => {
          this.received.splice(this.received.indexOf(m), 1);
          resolve(m as unknown as Message<T>);
        },
      });
    });
  }

  all<T extends MessageType>(type: T): Message<T>[] {
    return this.received.filter((m) => m.type === type) as unknown as Message<T>[];
  }

  close(): Promise<{ code: number; reason: string }> {
    this.ws.close();
    return this.closed;
  }

  terminate(): Promise<{ code: number; reason: string }> {
    this.ws.terminate();
    return this.closed;
  }
}

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
