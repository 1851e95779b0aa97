import type { Clock } from '@bematic/protocol';
import { createMessage, isTerminalStatus, type TaskAck, type TaskErrorCode } from '@bematic/protocol';
import type { Logger } from 'pino';
import type { Repositories, Task } from '../db/repositories/types.js';
import type { TaskLifecycle } from '../tasks/task-lifecycle.js';
import type { AgentManager } from './agent-manager.js';
import type { OfflineQueue } from './offline-queue.js';
import type { CancelResult, DispatchResult, TaskDispatcher } from './types.js';

export interface GatewayTaskDispatcherOptions {
  repos: Repositories;
  manager: AgentManager;
  outbox: OfflineQueue;
  lifecycle: TaskLifecycle;
  logger: Logger;
  clock: Clock;
}

/** An ACK refusal that means "not now" rather than "never". */
const CAPACITY_REFUSAL = /overload|capacity|busy|resource|limit|shutting down|not accepting/i;

/**
 * Routes tasks to agents: the project's primary agent when it can take work,
 * else the first healthy fallback agent, else the primary's offline queue.
 */
export class GatewayTaskDispatcher implements TaskDispatcher {
  /** Cancels sent to a connected agent and not yet confirmed; honoured if the agent is lost. */
  private readonly cancelRequests = new Map<string, { reason: string; actor: string }>();

  constructor(private readonly opts: GatewayTaskDispatcherOptions) {}

  async dispatch(task: Task): Promise<DispatchResult> {
    const { manager, outbox, lifecycle } = this.opts;
    const candidates = await this.candidatesFor(task);
    const primary = candidates[0] ?? task.agentId;
    const chosen = candidates.find((id) => manager.isHealthy(id)) ?? primary;
    // Outbox first: if the process dies after this line the task is still delivered.
    const row = await outbox.enqueue(task, chosen);
    if (manager.isHealthy(chosen)) {
      const outcome = await outbox.send(chosen, task.id, row.payload);
      if (outcome === 'sent')
        return { agentId: chosen, sent: true, queued: false, agentOnline: true, reconnectEtaMs: null };
    }
    const reason = this.whyNotNow(chosen);
    const agentOnline = manager.isConnected(chosen);
    const reconnectEtaMs = agentOnline ? null : manager.reconnectEtaMs(chosen);
    await lifecycle.markQueued(task.id, chosen, { reason, agentOnline, reconnectEtaMs });
    return { agentId: chosen, sent: false, queued: true, agentOnline, reason, reconnectEtaMs };
  }

  async cancel(taskId: string, reason: string, actor: string): Promise<CancelResult> {
    const { repos, manager, lifecycle } = this.opts;
    const task = await repos.tasks.findById(taskId);
    if (!task) return { outcome: 'not-found' };
    if (isTerminalStatus(task.status)) return { outcome: 'already-terminal' };

    const row = await repos.offlineQueue.findByTask(taskId);
    const neverReachedAgent = task.status === 'pending' || task.status === 'queued';
    if (row || neverReachedAgent) {
      await repos.offlineQueue.removeByTask(taskId);
      const outcome = await lifecycle.cancel(taskId, reason, actor);
      if (outcome.kind === 'ignored' && isTerminalStatus(outcome.task.status)) {
        return { outcome: 'already-terminal' };
      }
      // It may have been written to the agent already (awaiting ACK): tell it to drop it.
      if (task.status === 'submitted' && manager.isConnected(task.agentId)) {
        await manager.sendToAgent(task.agentId, createMessage('TASK_CANCEL', { taskId, reason }));
      }
      return { outcome: 'removed-from-queue' };
    }

    if (manager.isConnected(task.agentId)) {
      this.cancelRequests.set(taskId, { reason, actor });
      const sent = await manager.sendToAgent(task.agentId, createMessage('TASK_CANCEL', { taskId, reason }));
      if (sent) return { outcome: 'sent-to-agent' };
    }
    // The agent is away with the task: record the user's decision now; on reconnect
    // the task is in AUTH_RESPONSE.cancelTaskIds because the database has it terminal.
    this.cancelRequests.delete(taskId);
    const outcome = await lifecycle.cancel(taskId, reason, actor);
    if (outcome.kind === 'ignored') return { outcome: 'already-terminal' };
    return { outcome: 'cancelled-agent-offline' };
  }

  /** A cancel the agent has not confirmed yet, if any. */
  pendingCancel(taskId: string): { reason: string; actor: string } | undefined {
    return this.cancelRequests.get(taskId);
  }

  forgetCancel(taskId: string): void {
    this.cancelRequests.delete(taskId);
  }

  /** TASK_ACK from the task's agent. */
  async handleAck(agentId: string, task: Task, ack: TaskAck): Promise<void> {
    const { repos, manager, outbox, lifecycle } = this.opts;
    if (ack.accepted) {
      await repos.offlineQueue.removeByTask(task.id);
      await lifecycle.acknowledge(task, ack);
      return;
    }
    const reason = ack.reason ?? 'no reason given';
    if (CAPACITY_REFUSAL.test(reason)) {
      manager.markOverloaded(agentId);
      const alternative = (await this.candidatesFor(task)).find(
        (id) => id !== agentId && manager.isHealthy(id),
      );
      if (alternative) {
        const row = await outbox.enqueue(task, alternative);
        const outcome = await outbox.send(alternative, task.id, row.payload);
        if (outcome === 'sent') return;
      }
      await lifecycle.markQueued(task.id, task.agentId, {
        reason: `agent ${agentId} is at capacity (${reason})`,
        agentOnline: manager.isConnected(agentId),
        reconnectEtaMs: null,
      });
      return;
    }
    await repos.offlineQueue.removeByTask(task.id);
    await lifecycle.fail(task.id, {
      errorCode: refusalCode(reason),
      error: `Agent ${agentId} rejected the task: ${reason}`,
      recoverable: false,
      actor: `agent:${agentId}`,
    });
  }

  private async candidatesFor(task: Task): Promise<string[]> {
    const project = await this.opts.repos.projects.findById(task.projectId);
    const primary = project?.agentId ?? task.agentId;
    return [...new Set([primary, ...(project?.fallbackAgentIds ?? [])])];
  }

  private whyNotNow(agentId: string): string {
    const { manager } = this.opts;
    if (!manager.isConnected(agentId)) return `agent ${agentId} is offline`;
    if (manager.isOverloaded(agentId)) return `agent ${agentId} is overloaded`;
    const circuit = manager.circuitState(agentId);
    if (circuit !== 'closed') return `agent ${agentId} is unreliable right now (circuit ${circuit})`;
    return `agent ${agentId} could not be reached`;
  }
}

function refusalCode(reason: string): TaskErrorCode {
  if (/path/i.test(reason)) return 'PATH_NOT_ALLOWED';
  if (/budget/i.test(reason)) return 'BUDGET_EXCEEDED';
  return 'INVALID_REQUEST';
}
