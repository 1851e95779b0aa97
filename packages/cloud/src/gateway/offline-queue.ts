import type { Clock, TimerHandle } from '@bematic/protocol';
import { createMessage, isTerminalStatus, KeyedRerun, type TaskSubmission } from '@bematic/protocol';
import type { Logger } from 'pino';
import type {
  NewOfflineQueueEntry,
  OfflineQueueEntry,
  Repositories,
  Task,
} from '../db/repositories/types.js';
import { formatDuration } from '../duration.js';
import type { TaskLifecycle } from '../tasks/task-lifecycle.js';
import type { AgentManager } from './agent-manager.js';
import type { SubmitRoundTrips } from './observer.js';

export interface OfflineQueueOptions {
  repos: Repositories;
  manager: AgentManager;
  lifecycle: TaskLifecycle;
  logger: Logger;
  clock: Clock;
  /** How long a TASK_SUBMIT may wait for its agent (default 24 h). */
  ttlMs: number;
  /** How often expired rows are swept (default 60 s). */
  sweepIntervalMs?: number;
  /** TASK_SUBMITs written in parallel while draining (default 50). */
  drainBatchSize?: number;
  /** Times each TASK_SUBMIT until its ACK (metrics). */
  roundTrips?: SubmitRoundTrips;
}

export type SendOutcome = 'sent' | 'not-sent' | 'skipped';

/**
 * The outbox for TASK_SUBMIT. A row is written before anything is sent and
 * removed only when the agent acknowledges the task, so a submit lost on the
 * wire, or to a cloud restart, is sent again when the agent is next reachable.
 * Rows that outlive their TTL fail their task with QUEUE_EXPIRED.
 */
export class OfflineQueue {
  /** Tasks with a send in progress, so a drain and a dispatch never race on one task. */
  private readonly inFlight = new Set<string>();
  /** Agents being drained; a request arriving meanwhile runs one more pass afterwards. */
  private readonly drains = new KeyedRerun();
  private sweeper: TimerHandle | null = null;

  constructor(private readonly opts: OfflineQueueOptions) {}

  start(): void {
    if (this.sweeper !== null) return;
    this.sweeper = this.opts.clock.setInterval(() => {
      this.sweep().catch((err: unknown) => this.opts.logger.error({ err }, 'offline queue sweep failed'));
    }, this.opts.sweepIntervalMs ?? 60_000);
  }

  stop(): void {
    if (this.sweeper !== null) this.opts.clock.clearInterval(this.sweeper);
    this.sweeper = null;
  }

  /** Writes (or re-targets) the task's row. */
  enqueue(task: Task, agentId: string): Promise<OfflineQueueEntry> {
    return this.opts.repos.offlineQueue.enqueue(this.entryFor(task, agentId));
  }

  /**
   * Dispatch to an agent connected here: the outbox row and the task's new attempt are one transaction (one
   * durable write), then the TASK_SUBMIT goes on the socket.
   */
  submit(task: Task, agentId: string): Promise<SendOutcome> {
    return this.send(agentId, task.id, task.submission, this.entryFor(task, agentId));
  }

  /**
   * Dispatch to an agent whose socket another instance holds: the outbox row, the task's new attempt and the
   * notice handing that attempt to the holder are one transaction (the notice is delivered on commit). The
   * holder only claims the row and writes the TASK_SUBMIT (sendBegun). False when the task could not take a
   * new attempt (finished, cancelled, running).
   */
  async handOver(
    task: Task,
    agentId: string,
    notice: (task: Task) => { channel: string; payload: string } | null,
  ): Promise<boolean> {
    const at = this.opts.clock.now();
    const begun = await this.opts.lifecycle.markSubmitted(task.id, agentId, {
      kind: 'write',
      entry: this.entryFor(task, agentId),
      at,
      notify: notice,
    });
    return begun.kind === 'applied' || begun.kind === 'duplicate';
  }

  /**
   * The holder's half of a hand-over: claims the row of the attempt another instance began (one statement,
   * SKIP LOCKED; a task that moved on meanwhile is not sent) and writes its TASK_SUBMIT. Nothing is read
   * before the write; the task row is read afterwards, for task.submitted.
   */
  async sendBegun(agentId: string, taskId: string, attempt: number): Promise<SendOutcome> {
    const { manager, repos, lifecycle } = this.opts;
    if (this.inFlight.has(taskId) || manager.isAwaitingAck(agentId, taskId)) return 'skipped';
    this.inFlight.add(taskId);
    try {
      const row = await repos.offlineQueue.claimBegun(taskId, agentId, attempt, this.opts.clock.now());
      if (!row) return 'skipped';
      const sentAt = this.opts.clock.now();
      const ok = await manager.sendToAgent(
        agentId,
        createMessage('TASK_SUBMIT', { ...row.payload, taskId, attempt }, sentAt),
      );
      if (ok) {
        this.opts.roundTrips?.sent(agentId, taskId, sentAt);
        const task = await repos.tasks.findById(taskId);
        if (task) lifecycle.emitSubmitted(task);
        return 'sent';
      }
      await lifecycle.markQueued(
        taskId,
        agentId,
        {
          reason: `could not reach agent ${agentId}`,
          agentOnline: manager.isConnected(agentId),
          reconnectEtaMs: manager.reconnectEtaMs(agentId),
        },
        { agentId, attempt },
      );
      return 'not-sent';
    } finally {
      this.inFlight.delete(taskId);
    }
  }

  /**
   * Claims the task's row (another instance sending it wins: skipped), marks the task submitted with its next
   * attempt in the same transaction, and writes its TASK_SUBMIT (carrying that attempt) to the agent. The row
   * stays until TASK_ACK. If the write fails the task goes back to queued. `entry`: the row does not exist yet
   * and is written in that transaction.
   */
  async send(
    agentId: string,
    taskId: string,
    payload: TaskSubmission,
    entry?: NewOfflineQueueEntry,
  ): Promise<SendOutcome> {
    // Written on this connection and not answered yet: a second send would only start a needless attempt.
    if (this.inFlight.has(taskId) || this.opts.manager.isAwaitingAck(agentId, taskId)) return 'skipped';
    this.inFlight.add(taskId);
    try {
      if (!entry) {
        const task = await this.opts.repos.tasks.findById(taskId);
        if (!task || isTerminalStatus(task.status) || task.status === 'running') {
          // Finished, cancelled or already running elsewhere: the row is stale.
          await this.opts.repos.offlineQueue.removeByTask(taskId);
          return 'skipped';
        }
      }
      const at = this.opts.clock.now();
      const submitted = await this.opts.lifecycle.markSubmitted(
        taskId,
        agentId,
        entry ? { kind: 'write', entry, at } : { kind: 'claim', at },
      );
      if (submitted.kind === 'ignored' || submitted.kind === 'stale') return 'skipped';
      return await this.deliver(agentId, submitted.task, payload, submitted.kind);
    } finally {
      this.inFlight.delete(taskId);
    }
  }

  /**
   * `send` for a batch of rows waiting for the agent (a drain): the rows claimed and the tasks' new attempts
   * written in one transaction for the whole batch, then every TASK_SUBMIT written to the socket. False when
   * one could not be written (the agent is going away: stop draining).
   */
  private async sendMany(agentId: string, taskIds: readonly string[]): Promise<boolean> {
    const mine = taskIds.filter(
      (id) => !this.inFlight.has(id) && !this.opts.manager.isAwaitingAck(agentId, id),
    );
    if (mine.length === 0) return true;
    for (const id of mine) this.inFlight.add(id);
    try {
      const begun = await this.opts.lifecycle.markSubmittedMany(mine, agentId, this.opts.clock.now());
      const taken = new Set(begun.map((b) => b.task.id));
      await Promise.all(mine.filter((id) => !taken.has(id)).map((id) => this.dropIfStale(id)));
      const outcomes = await Promise.all(begun.map((b) => this.deliver(agentId, b.task, b.payload, b.kind)));
      return !outcomes.includes('not-sent');
    } finally {
      for (const id of mine) this.inFlight.delete(id);
    }
  }

  /** A row not taken for a send: removed when its task is gone, finished or running; else another holds it. */
  private async dropIfStale(taskId: string): Promise<void> {
    const task = await this.opts.repos.tasks.findById(taskId);
    if (!task || isTerminalStatus(task.status) || task.status === 'running')
      await this.opts.repos.offlineQueue.removeByTask(taskId);
  }

  /** Writes the TASK_SUBMIT of an attempt just begun; if that fails the task goes back to queued. */
  private async deliver(
    agentId: string,
    task: Task,
    payload: TaskSubmission,
    kind: 'applied' | 'duplicate',
  ): Promise<SendOutcome> {
    const taskId = task.id;
    const attempt = task.attempt;
    const sentAt = this.opts.clock.now();
    const ok = await this.opts.manager.sendToAgent(
      agentId,
      createMessage('TASK_SUBMIT', { ...payload, taskId, attempt }, sentAt),
    );
    if (ok) {
      this.opts.roundTrips?.sent(agentId, taskId, sentAt);
      if (kind === 'applied') this.opts.lifecycle.emitSubmitted(task);
      return 'sent';
    }
    await this.opts.lifecycle.markQueued(
      taskId,
      agentId,
      {
        reason: `could not reach agent ${agentId}`,
        agentOnline: this.opts.manager.isConnected(agentId),
        reconnectEtaMs: this.opts.manager.reconnectEtaMs(agentId),
      },
      { agentId, attempt },
    );
    return 'not-sent';
  }

  /**
   * Sends everything waiting for the agent, urgent first, in parallel batches.
   * Rows sent on the agent's current connection and not answered yet are left to their ACK; a row the agent
   * refused ("not now") is sent again, with a new attempt.
   */
  drain(agentId: string): Promise<void> {
    return this.drains
      .run(
        agentId,
        () => this.drainOnce(agentId),
        () => this.opts.manager.isHealthy(agentId),
      )
      .catch((err: unknown) => this.opts.logger.error({ err, agentId }, 'offline queue drain failed'));
  }

  /**
   * The slow safety net under the wake-ups and hand-overs (a notice lost with the relay's session, or sent
   * while the agent was moving between instances): agents connected here that have rows never sent, or
   * whose attempt was begun at least `handOverGraceMs` ago and not written on their current connection
   * while the task still waits as submitted, are drained (a new attempt).
   */
  async sweepUnsent(agentIds: string[], handOverGraceMs: number): Promise<void> {
    const { manager, repos } = this.opts;
    const before = this.opts.clock.now() - handOverGraceMs;
    const swept = agentIds.filter((id) => manager.isHealthy(id) && !this.drains.isRunning(id));
    // One read for all of them: a query per agent, every few seconds, kept the event loop busy for
    // hundreds of milliseconds with thousands of agents connected.
    const byAgent = new Map<string, OfflineQueueEntry[]>();
    for (const row of await repos.offlineQueue.listUnsent(swept, before)) {
      const rows = byAgent.get(row.agentId);
      if (rows) rows.push(row);
      else byAgent.set(row.agentId, [row]);
    }
    for (const [agentId, rows] of byAgent) {
      if (!manager.isHealthy(agentId) || this.drains.isRunning(agentId)) continue;
      let unsent = rows.some((r) => r.attempts === 0);
      for (const r of rows) {
        if (unsent) break;
        if (r.lastAttemptAt === null || r.lastAttemptAt > before || manager.isAwaitingAck(agentId, r.taskId))
          continue;
        unsent = (await repos.tasks.findById(r.taskId))?.status === 'submitted';
      }
      if (unsent) void this.drain(agentId);
    }
  }

  /** Wait for any drains in progress (tests, shutdown). */
  async idle(): Promise<void> {
    await this.drains.settled();
  }

  /**
   * The agent went away: tasks whose TASK_SUBMIT was written but never
   * acknowledged are waiting in the queue again, and are reported as such.
   */
  async requeueUnacknowledged(agentId: string, reason: string): Promise<void> {
    const rows = await this.opts.repos.offlineQueue.listForAgent(agentId);
    const reconnectEtaMs = this.opts.manager.reconnectEtaMs(agentId);
    for (const row of rows) {
      const task = await this.opts.repos.tasks.findById(row.taskId);
      if (task?.status !== 'submitted') continue;
      await this.opts.lifecycle.markQueued(row.taskId, agentId, {
        reason,
        agentOnline: false,
        reconnectEtaMs,
      });
    }
  }

  /** Fails every task whose row expired. Returns how many were failed. */
  async sweep(): Promise<number> {
    const now = this.opts.clock.now();
    const expired = await this.opts.repos.offlineQueue.takeExpired(now);
    let failed = 0;
    for (const row of expired) {
      const online = this.opts.manager.isConnected(row.agentId);
      const waited = formatDuration(now - row.enqueuedAt, 'approx');
      const error = online
        ? `Agent ${row.agentId} did not accept the task within ${waited}; the task expired from the queue`
        : `Agent ${row.agentId} was offline for ${waited}; the task expired from the queue`;
      const outcome = await this.opts.lifecycle.fail(row.taskId, {
        errorCode: 'QUEUE_EXPIRED',
        error,
        recoverable: true,
        context: { agentId: row.agentId, waitedMs: now - row.enqueuedAt, attempts: row.attempts },
      });
      if (outcome.kind === 'applied') failed += 1;
    }
    if (expired.length > 0) this.opts.logger.info({ expired: expired.length, failed }, 'offline queue swept');
    return failed;
  }

  private entryFor(task: Task, agentId: string): NewOfflineQueueEntry {
    const now = this.opts.clock.now();
    return {
      agentId,
      taskId: task.id,
      priority: task.priority,
      payload: task.submission,
      enqueuedAt: now,
      expiresAt: now + this.opts.ttlMs,
    };
  }

  /** One pass: the waiting tasks' ids (no payloads), then a batch at a time, one transaction per batch. */
  private async drainOnce(agentId: string): Promise<void> {
    const batchSize = this.opts.drainBatchSize ?? 50;
    const ids = await this.opts.repos.offlineQueue.taskIdsForAgent(agentId);
    const pending = ids.filter((id) => !this.opts.manager.isAwaitingAck(agentId, id));
    for (let i = 0; i < pending.length; i += batchSize) {
      if (!this.opts.manager.isHealthy(agentId)) return;
      if (!(await this.sendMany(agentId, pending.slice(i, i + batchSize)))) return;
    }
  }
}
