import { EventEmitter } from 'node:events';
import os from 'node:os';
import {
  type AuthResponse,
  backgroundClock,
  type Clock,
  checkOutgoing,
  createMessage,
  type Message,
  type MessageType,
  type OverloadDetail,
  type PayloadOf,
  systemClock,
  type TimerHandle,
} from '@bematic/protocol';
import pino, { type Logger } from 'pino';
import { ApprovalBroker } from './approvals/approval-broker.js';
import type { AgentConfig } from './config.js';
import { Backoff } from './connection/backoff.js';
import { CloudConnection } from './connection/cloud-connection.js';
import { OutboundBuffer } from './connection/outbound-buffer.js';
import { TerminalStore } from './connection/terminal-store.js';
import type { Executor } from './executor/executor.js';
import { QueueProcessor, type TaskOutcomeKind } from './queue/queue-processor.js';
import { ResourceMonitor, type ResourceStatusChange } from './resources/resource-monitor.js';
import { PathValidator } from './security/path-validator.js';
import { WorkspaceActions } from './workspace/workspace-actions.js';
import { WorkspaceManager } from './workspace/workspace-manager.js';

export const AGENT_VERSION = '0.1.0';

/**
 * How long before the cloud gives a disconnected agent's tasks up (its reconnect grace, from AUTH_RESPONSE)
 * the agent stops them: time to end Claude Code's process group (SIGTERM, then SIGKILL after the kill
 * grace) and for frames still in flight. Never more than half the grace.
 */
export const PARTITION_STOP_MARGIN_MS = 10_000;

/** When, counted from the last frame heard from the cloud, a disconnected agent stops its runs. */
export function partitionStopAfterMs(reconnectGraceMs: number): number {
  return reconnectGraceMs - Math.min(PARTITION_STOP_MARGIN_MS, reconnectGraceMs / 2);
}

/** How long a graceful stop waits for running tasks before it stops them (BEMATIC_SHUTDOWN_GRACE_MS). */
export const DEFAULT_SHUTDOWN_GRACE_MS = 60_000;

export interface AgentOptions {
  config: AgentConfig;
  executor: Executor;
  logger?: Logger;
  resourceMonitor?: ResourceMonitor;
  clock?: Clock;
  /** Random source for reconnect jitter. */
  random?: () => number;
  hostname?: string;
  /** Delay before the second reconnect attempt (later ones double). Default 1000 ms. */
  reconnectBaseMs?: number;
  streamFlushMs?: number;
  authTimeoutMs?: number;
}

export interface AgentEvents {
  authenticated: [AuthResponse];
  'auth-failed': [string];
  disconnected: [{ code: number; reason: string }];
  'reconnect-scheduled': [number];
  'task-started': [{ taskId: string }];
  'task-finished': [{ taskId: string; outcome: TaskOutcomeKind }];
  status: [ResourceStatusChange];
  /** Disconnected for nearly the cloud's reconnect grace: these tasks were stopped (their processes are gone). */
  'runs-abandoned': [{ taskIds: string[] }];
  /** A graceful stop outlasted the shutdown grace: these tasks were stopped (reported AGENT_LOST). */
  'shutdown-grace-expired': [{ taskIds: string[] }];
}

/**
 * One agent: a link to the cloud, a queue of tasks it runs with an executor
 * in allowed directories, a resource gate, and a buffer that keeps results
 * until the cloud has them.
 */
export class Agent extends EventEmitter<AgentEvents> {
  readonly connection: CloudConnection;
  readonly queue: QueueProcessor;
  readonly outbound: OutboundBuffer;
  readonly resources: ResourceMonitor;
  readonly workspaces: WorkspaceManager;
  private readonly actions: WorkspaceActions;
  readonly approvals: ApprovalBroker;
  private readonly log: Logger;
  private readonly clock: Clock;
  private started = false;
  /** The cloud's reconnect grace, as its last AUTH_RESPONSE said. */
  private reconnectGraceMs: number | undefined;
  private partitionTimer: TimerHandle | undefined;

  get config(): AgentConfig {
    return this.options.config;
  }

  constructor(private readonly options: AgentOptions) {
    super();
    const { config } = options;
    this.log = (options.logger ?? pino({ level: 'silent' })).child({ agentId: config.agentId });
    this.clock = options.clock ?? systemClock;
    this.resources =
      options.resourceMonitor ??
      new ResourceMonitor({
        cpuThreshold: config.cpuThreshold,
        memoryThreshold: config.memoryThreshold,
        ...(config.cpuWindowMs !== undefined && { cpuWindowMs: config.cpuWindowMs }),
        clock: this.clock,
      });
    const backoff = new Backoff({
      maxMs: config.reconnectMaxMs,
      jitter: 'full',
      ...(options.random !== undefined && { random: options.random }),
      ...(options.reconnectBaseMs !== undefined && { baseMs: options.reconnectBaseMs }),
    });
    const paths = new PathValidator(config.roots);

    this.connection = new CloudConnection({
      urls: config.cloudUrls,
      agentId: config.agentId,
      apiKey: config.agentKey,
      agentVersion: AGENT_VERSION,
      hostname: options.hostname ?? os.hostname(),
      maxConcurrentTasks: config.maxConcurrentTasks,
      sandbox: config.sandbox ?? 'on',
      reconciliation: () => ({
        activeTaskIds: this.queue.activeTaskIds(),
        bufferedTaskIds: this.outbound.bufferedTaskIds(),
      }),
      metrics: () => this.resources.metrics(),
      backoff,
      logger: this.log,
      clock: this.clock,
      ...(options.authTimeoutMs !== undefined && { authTimeoutMs: options.authTimeoutMs }),
    });
    this.outbound = new OutboundBuffer({
      transport: this.connection,
      logger: this.log,
      ...(config.stateDir !== undefined && { store: new TerminalStore(config.stateDir) }),
    });
    this.workspaces = new WorkspaceManager({
      worktreeDir: config.worktreeDir,
      branchPrefix: config.branchPrefix,
      logger: this.log,
      now: () => this.clock.now(),
    });
    this.actions = new WorkspaceActions({
      workspaces: this.workspaces,
      validatePath: (p) => paths.validate(p),
      github: { apiUrl: config.githubApiUrl, token: config.githubToken },
      logger: this.log,
    });
    this.approvals = new ApprovalBroker({
      send: (request) => this.connection.send(createMessage('PERMISSION_REQUEST', request, this.clock.now())),
      logger: this.log,
    });
    this.queue = new QueueProcessor({
      executor: options.executor,
      maxConcurrentTasks: config.maxConcurrentTasks,
      projectConcurrency: config.projectConcurrency,
      ...(config.taskTimeoutMs !== undefined && { taskTimeoutMs: config.taskTimeoutMs }),
      workspaces: this.workspaces,
      validatePath: (p) => paths.validate(p),
      resources: {
        isOverloaded: () => this.resources.isOverloaded(),
        reason: () => this.resources.reason(),
        metrics: () => this.resources.metrics(),
        overload: () => this.overload(),
      },
      emit: (type, payload) => this.send(type, payload),
      requestApproval: (taskId, request, signal, attempt) =>
        this.approvals.ask(taskId, request, signal, attempt),
      onNewAttempt: (taskId, attempt) => this.outbound.restamp(taskId, attempt),
      logger: this.log,
      clock: this.clock,
      ...(options.streamFlushMs !== undefined && { streamFlushMs: options.streamFlushMs }),
    });
    this.resources.setTaskCounts(() => this.queue.counts());

    this.connection.on('authenticated', (response) => this.onAuthenticated(response));
    this.connection.on('auth-failed', (error) => this.emit('auth-failed', error));
    this.connection.on('disconnected', (info) => {
      // Nobody can answer over a lost link; the tasks carry on without what they asked for.
      this.approvals.denyAll('undeliverable');
      this.armPartitionStop();
      this.emit('disconnected', info);
    });
    this.connection.on('reconnect-scheduled', (ms) => this.emit('reconnect-scheduled', ms));
    this.connection.on('message', (message) => this.onMessage(message));
    this.queue.on('task-started', (e) => this.emit('task-started', e));
    this.queue.on('task-finished', (e) => this.emit('task-finished', e));
    this.resources.on('change', (change) => this.onResourceChange(change));
  }

  /** Connects to the cloud; what an earlier run left (stale worktrees, Claude Code processes) is cleared first. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.workspaces.prune().catch((err: unknown) => {
      this.log.warn({ err: String(err) }, 'could not prune stale worktrees');
    });
    await this.options.executor.reapLeftovers?.().catch((err: unknown) => {
      this.log.error({ err: String(err) }, 'could not end processes left by an earlier run');
    });
    this.resources.start();
    this.connection.start();
  }

  /**
   * Graceful: take no new work, let accepted tasks finish and their results
   * reach the cloud (if it is reachable), then disconnect. A graceful stop waits at most the shutdown grace
   * (BEMATIC_SHUTDOWN_GRACE_MS): then whatever still runs or waits is stopped as a hard stop does (Claude
   * Code's process groups ended, each task reported and journalled as recoverable AGENT_LOST).
   * Otherwise abort running tasks (reported as recoverable AGENT_LOST) at once and disconnect.
   */
  async stop({ graceful }: { graceful: boolean } = { graceful: true }): Promise<void> {
    if (graceful) await this.drain();
    else await this.queue.shutdown({ graceful: false });
    if (this.connection.isReady()) {
      await Promise.race([
        this.outbound.whenEmpty(),
        // Real time on purpose: the socket flushes in real time whatever clock the agent's logic runs on.
        new Promise<void>((resolve) => backgroundClock.setTimeout(resolve, graceful ? 5000 : 500)),
      ]);
    }
    this.disarmPartitionStop();
    this.resources.stop();
    await this.connection.stop();
  }

  /** Waits for accepted work to finish, for at most the shutdown grace; then stops what is left. */
  private async drain(): Promise<void> {
    const graceMs = this.options.config.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;
    let timer: TimerHandle | undefined;
    const expired = new Promise<'expired'>((resolve) => {
      timer = this.clock.setTimeout(() => resolve('expired'), graceMs);
    });
    const drained = this.queue.shutdown({ graceful: true });
    const first = await Promise.race([drained.then(() => 'drained' as const), expired]);
    if (timer !== undefined) this.clock.clearTimeout(timer);
    if (first === 'expired') {
      const taskIds = this.queue.activeTaskIds();
      this.log.warn(
        { taskIds, shutdownGraceMs: graceMs },
        'shutdown grace over; stopping the tasks still held',
      );
      this.emit('shutdown-grace-expired', { taskIds });
      await this.queue.shutdown({ graceful: false });
    }
    await drained;
  }

  /**
   * A network partition leaves the cloud no way to stop what runs here, and after its reconnect grace it
   * records the tasks failed (AGENT_LOST). So the agent stops them itself a margin before that, counted from
   * the last frame it heard (the cloud cannot have started counting earlier): once the cloud declares them
   * lost, nothing of theirs runs. What they report is a stale or duplicate result there, acknowledged and
   * dropped; after the reconnect the agent reports it holds none of them.
   */
  private armPartitionStop(): void {
    this.disarmPartitionStop();
    const grace = this.reconnectGraceMs;
    if (grace === undefined) return;
    const since = this.connection.lastHeardAt ?? this.clock.now();
    const delay = Math.max(0, since + partitionStopAfterMs(grace) - this.clock.now());
    this.partitionTimer = this.clock.setTimeout(() => {
      this.partitionTimer = undefined;
      if (this.connection.isReady()) return;
      const reason = `no contact with the cloud for ${Math.round(partitionStopAfterMs(grace) / 1000)} s, close to its reconnect grace`;
      this.log.warn({ reconnectGraceMs: grace }, 'cloud unreachable for too long; stopping every task');
      void this.queue.abandon(reason).then(
        (taskIds) => {
          if (taskIds.length > 0) this.log.warn({ taskIds }, 'tasks stopped: the cloud gives them up');
          this.emit('runs-abandoned', { taskIds });
        },
        (err: unknown) => this.log.error({ err: String(err) }, 'could not stop tasks'),
      );
    }, delay);
  }

  private disarmPartitionStop(): void {
    if (this.partitionTimer !== undefined) this.clock.clearTimeout(this.partitionTimer);
    this.partitionTimer = undefined;
  }

  /**
   * The one way the agent sends: the frame is checked against the protocol's schema first, so a bug that builds
   * a bad one is logged here and never reaches the wire (or the journal).
   */
  private send<T extends MessageType>(type: T, payload: PayloadOf<T>): void {
    const message = createMessage(type, payload, this.clock.now()) as Message;
    const problem = checkOutgoing(message);
    if (problem) {
      this.log.error({ type, err: problem.message }, 'refused to send an invalid frame');
      return;
    }
    this.outbound.enqueue(message);
  }

  /** What is busy, while the resource gate is closed (the monitor's reading, in wire shape). */
  private overload(): OverloadDetail | undefined {
    const o = this.resources.overload();
    return o === undefined
      ? undefined
      : { resource: o.resource, percent: o.percent, sustainedMs: Math.round(o.sustainedMs) };
  }

  private onAuthenticated(response: AuthResponse): void {
    this.disarmPartitionStop();
    this.reconnectGraceMs = response.reconnectGraceMs;
    this.outbound.reconnected();
    for (const taskId of response.cancelTaskIds ?? []) {
      this.queue.cancel(taskId, 'cancelled by the cloud while the agent was away');
    }
    if (this.resources.isOverloaded()) this.sendStatus();
    this.emit('authenticated', response);
  }

  private onMessage(message: Message): void {
    switch (message.type) {
      case 'TASK_SUBMIT':
        void this.queue.submit(message.payload).catch((err: unknown) => {
          this.log.error({ err: String(err), taskId: message.payload.taskId }, 'task submit failed');
        });
        return;
      case 'TASK_CANCEL':
        this.queue.cancel(message.payload.taskId, message.payload.reason);
        return;
      case 'WORKSPACE_COMMAND':
        void this.actions.handle(message.payload).then((result) => this.send('WORKSPACE_RESULT', result));
        return;
      case 'TASK_RESULT_ACK':
        this.outbound.acknowledge(message.payload.taskId);
        return;
      case 'PERMISSION_RESPONSE':
        if (!this.approvals.answer(message.payload))
          this.log.info(
            { requestId: message.payload.requestId },
            'answer to a permission request no longer waiting',
          );
        return;
      default:
        this.connection.reportError(
          'UNEXPECTED_TYPE',
          `the agent does not accept ${message.type} messages`,
          message.id,
        );
    }
  }

  private onResourceChange(change: ResourceStatusChange): void {
    this.log.warn({ overloaded: change.overloaded, reason: change.reason }, 'resource status changed');
    this.sendStatus();
    if (!change.overloaded) this.queue.pump();
    this.emit('status', change);
  }

  private sendStatus(): void {
    const reason = this.resources.reason();
    const overload = this.overload();
    this.send('AGENT_STATUS', {
      overloaded: this.resources.isOverloaded(),
      ...(reason !== undefined && { reason: reason.slice(0, 500) }),
      ...(overload !== undefined && { overload }),
      maxConcurrentTasks: this.options.config.maxConcurrentTasks,
      metrics: this.resources.metrics(),
    });
  }
}
