import type { Clock, TimerHandle } from '@bematic/protocol';
import { type AuthRequest, isTerminalStatus } from '@bematic/protocol';
import type { Logger } from 'pino';
import type { Repositories, Task } from '../db/repositories/types.js';
import { formatDuration } from '../duration.js';
import type { TaskLifecycle } from '../tasks/task-lifecycle.js';
import type { AgentManager } from './agent-manager.js';
import type { OfflineQueue } from './offline-queue.js';
import type { GatewayTaskDispatcher } from './task-dispatcher.js';

export interface ReconcilerOptions {
  repos: Repositories;
  manager: AgentManager;
  dispatcher: GatewayTaskDispatcher;
  outbox: OfflineQueue;
  lifecycle: TaskLifecycle;
  logger: Logger;
  clock: Clock;
  /** How long an absent agent's in-flight tasks wait for it before they fail AGENT_LOST. */
  reconnectGraceMs: number;
  /** The agent's socket is on another live instance (presence): its tasks are not lost, only elsewhere. */
  heldElsewhere?: (agentId: string) => Promise<boolean>;
}

const IN_FLIGHT = ['submitted', 'running', 'queued'] as const;

/**
 * Makes the cloud's view of in-flight tasks agree with the agents', after an
 * agent reconnects and after the cloud itself restarts, so that no task is
 * left submitted or running forever.
 */
export class Reconciler {
  private readonly lossTimers = new Map<string, TimerHandle>();

  constructor(private readonly opts: ReconcilerOptions) {}

  /**
   * Task ids the agent reports holding that the cloud no longer wants it to run:
   * unknown, already terminal (e.g. cancelled while it was away), reassigned, or
   * cancelled by a user with the agent's confirmation still owed (the cancel may
   * have been lost with the instance it went through): it stops them and reports
   * TASK_CANCELLED to the instance it is connected to now.
   */
  async unwantedTaskIds(agentId: string, auth: AuthRequest): Promise<string[]> {
    const unwanted: string[] = [];
    for (const taskId of auth.activeTaskIds) {
      const task = await this.opts.repos.tasks.findById(taskId);
      if (
        !task ||
        isTerminalStatus(task.status) ||
        task.agentId !== agentId ||
        (await this.opts.repos.cancelRequests.find(taskId))
      )
        unwanted.push(taskId);
    }
    return unwanted;
  }

  /**
   * Before the agent's queue is drained: tasks the cloud believes are at the agent
   * but the agent does not mention are resent if they never started, or failed
   * AGENT_LOST if they were running.
   */
  async afterAuth(agentId: string, auth: AuthRequest): Promise<void> {
    this.clearLossTimer(agentId);
    const known = new Set([...auth.activeTaskIds, ...auth.bufferedTaskIds]);
    const tasks = (await this.opts.repos.tasks.list({ agentId, status: [...IN_FLIGHT] })).filter(
      (t) => !known.has(t.id),
    );
    // One look-up for all of them: an agent back with a thousand tasks waiting starts its drain at once.
    const queued = await this.opts.repos.offlineQueue.withRows(
      tasks.filter((t) => t.status !== 'running').map((t) => t.id),
    );
    for (const task of tasks) {
      if (task.status === 'running') {
        await this.lose(task, 'the agent restarted while running this task');
      } else if (!queued.has(task.id)) {
        // Never started there: put it back in the outbox; the drain that follows resends it.
        await this.opts.outbox.enqueue(task, agentId);
      }
    }
  }

  /** The agent disconnected: give it the grace period to come back before its tasks are lost. */
  agentWentOffline(agentId: string): void {
    this.clearLossTimer(agentId);
    const timer = this.opts.clock.setTimeout(() => {
      this.lossTimers.delete(agentId);
      this.expireGrace(agentId).catch((err: unknown) =>
        this.opts.logger.error({ err, agentId }, 'reconnect grace check failed'),
      );
    }, this.opts.reconnectGraceMs);
    this.lossTimers.set(agentId, timer);
  }

  /**
   * After a cloud restart: pending tasks are dispatched; tasks that were with an
   * agent wait the grace period for it to reconnect.
   */
  async reconcileOnStartup(): Promise<void> {
    const pending = await this.opts.repos.tasks.list({ status: 'pending' });
    for (const task of pending) {
      await this.opts.dispatcher
        .dispatch(task)
        .catch((err: unknown) => this.opts.logger.error({ err, taskId: task.id }, 'startup dispatch failed'));
    }
    const inFlight = await this.opts.repos.tasks.list({ status: [...IN_FLIGHT] });
    const agents = new Set(inFlight.map((t) => t.agentId));
    for (const agentId of agents) {
      if (!this.opts.manager.isConnected(agentId) && !this.lossTimers.has(agentId)) {
        this.agentWentOffline(agentId);
      }
    }
    this.opts.logger.info(
      { dispatched: pending.length, awaitingAgents: agents.size },
      'task reconciliation after startup',
    );
  }

  close(): void {
    for (const t of this.lossTimers.values()) this.opts.clock.clearTimeout(t);
    this.lossTimers.clear();
  }

  /**
   * Grace over and the agent is still away (here and on every other instance): tasks it held (no outbox row) fail AGENT_LOST.
   */
  private async expireGrace(agentId: string): Promise<void> {
    if (this.opts.manager.isConnected(agentId)) return;
    if (await this.opts.heldElsewhere?.(agentId)) return;
    const tasks = await this.opts.repos.tasks.list({ agentId, status: [...IN_FLIGHT] });
    for (const task of tasks) {
      // Still in the outbox: it never reached the agent, so the queue TTL governs it.
      if (await this.opts.repos.offlineQueue.findByTask(task.id)) continue;
      await this.lose(
        task,
        `agent ${agentId} did not reconnect within ${formatDuration(this.opts.reconnectGraceMs, 'approx')}`,
      );
    }
  }

  private async lose(task: Task, why: string): Promise<void> {
    const cancel = await this.opts.dispatcher.pendingCancel(task.id);
    if (cancel) {
      await this.opts.dispatcher.forgetCancel(task.id);
      await this.opts.lifecycle.cancel(task.id, cancel.reason, cancel.actor);
      return;
    }
    await this.opts.lifecycle.fail(task.id, {
      errorCode: 'AGENT_LOST',
      error: `Lost track of the task: ${why}`,
      recoverable: true,
      context: { agentId: task.agentId, status: task.status },
    });
  }

  private clearLossTimer(agentId: string): void {
    const t = this.lossTimers.get(agentId);
    if (t !== undefined) this.opts.clock.clearTimeout(t);
    this.lossTimers.delete(agentId);
  }
}
