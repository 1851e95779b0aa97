import type { Clock } from '@bematic/protocol';
import {
  createMessage,
  isRetryable,
  isTerminalStatus,
  KeyedRerun,
  type Message,
  type OverloadDetail,
  refusalErrorCode,
  type TaskAck,
} from '@bematic/protocol';
import type { Logger } from 'pino';
import type { AgentPresenceHealth, Repositories, Task } from '../db/repositories/types.js';
import { formatDuration } from '../duration.js';
import type { TaskLifecycle } from '../tasks/task-lifecycle.js';
import type { AgentManager } from './agent-manager.js';
import type { AgentRoutes } from './agent-routes.js';
import type { OfflineQueue } from './offline-queue.js';
import type { CancelResult, DispatchResult, TaskDispatcher } from './types.js';

export interface GatewayTaskDispatcherOptions {
  repos: Repositories;
  manager: AgentManager;
  outbox: OfflineQueue;
  lifecycle: TaskLifecycle;
  logger: Logger;
  clock: Clock;
  /** Agents whose socket another instance holds (default: this instance only). */
  routes?: AgentRoutes;
}

/**
 * Routes tasks to agents: the project's primary agent when it can take work here, else the first healthy
 * fallback agent here, else one another instance holds that can take work by the health its holder wrote to
 * presence, a free slot first (its outbox row, the attempt and the notice handing it to that instance, in
 * one transaction), else the queue of one held elsewhere that cannot take work now, else the primary's.
 */
export class GatewayTaskDispatcher implements TaskDispatcher {
  /** Per agent, the pass over what a freed slot can take. */
  private readonly availability = new KeyedRerun();

  constructor(private readonly opts: GatewayTaskDispatcherOptions) {}

  async dispatch(task: Task): Promise<DispatchResult> {
    const { manager, outbox, lifecycle } = this.opts;
    const candidates = await this.candidatesFor(task);
    const primary = candidates[0] ?? task.agentId;
    const here = candidates.find((id) => manager.isHealthy(id));
    if (here) {
      // Outbox row and attempt in one transaction before the socket write: if the process dies after it,
      // the task is still delivered.
      const outcome = await outbox.submit(task, here);
      if (outcome === 'sent')
        return { agentId: here, sent: true, queued: false, agentOnline: true, reconnectEtaMs: null };
    }
    const remote = here ? undefined : await this.elsewhere(candidates);
    if (remote?.canTakeWork && this.opts.routes) {
      // Row, attempt and the notice to the holder in one transaction: the holder only claims and sends.
      const { routes } = this.opts;
      const { agentId } = remote;
      if (await outbox.handOver(task, agentId, (begun) => routes.submitNotice(agentId, begun))) {
        return { agentId, sent: false, queued: false, agentOnline: true, reconnectEtaMs: null };
      }
    }
    // An agent held elsewhere that cannot take work now beats one that is nowhere: its holder sends the row
    // when it can (the agent becomes available there, or the holder's sweep).
    const chosen = here ?? remote?.agentId ?? primary;
    await outbox.enqueue(task, chosen);
    const away = remote !== undefined && chosen === remote.agentId;
    const reason = away ? remoteWhy(remote) : this.whyNotNow(chosen);
    const agentOnline = away || manager.isConnected(chosen);
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
      if (task.status === 'submitted') await this.sendWherever(task.agentId, cancelMessage(task, reason));
      return { outcome: 'removed-from-queue' };
    }

    if (manager.isConnected(task.agentId) || (await this.opts.routes?.heldElsewhere(task.agentId))) {
      // In the database, not this instance's memory: whichever instance hears from the agent next (its
      // confirmation, its loss, its reconnect) finishes the cancellation.
      await repos.cancelRequests.put(taskId, reason, actor);
      const sent = await this.sendWherever(task.agentId, cancelMessage(task, reason));
      if (sent) return { outcome: 'sent-to-agent' };
    }
    // The agent is away with the task: record the user's decision now; on reconnect
    // the task is in AUTH_RESPONSE.cancelTaskIds because the database has it terminal.
    await repos.cancelRequests.remove(taskId);
    const outcome = await lifecycle.cancel(taskId, reason, actor);
    if (outcome.kind === 'ignored') return { outcome: 'already-terminal' };
    return { outcome: 'cancelled-agent-offline' };
  }

  /** A cancel sent to the agent (from any instance) that it has not confirmed yet, if any. */
  async pendingCancel(taskId: string): Promise<{ reason: string; actor: string } | undefined> {
    return this.opts.repos.cancelRequests.find(taskId);
  }

  /** The task ended (the agent confirmed the cancel, or finished first): nothing is left to cancel. */
  async forgetCancel(taskId: string): Promise<void> {
    await this.opts.repos.cancelRequests.remove(taskId);
  }

  /**
   * TASK_ACK from the task's agent, for the attempt in force (the router has checked). What a refusal means
   * is read from its code (TASK_REFUSALS): "not now" waits and is resent as soon as the reason clears,
   * "never" fails the task with a coded error, DUPLICATE waits for the result the agent already has.
   */
  async handleAck(agentId: string, task: Task, ack: TaskAck): Promise<void> {
    const { repos, manager, outbox, lifecycle } = this.opts;
    manager.answered(agentId, task.id);
    if (ack.accepted) {
      const removed = repos.offlineQueue.removeByTask(task.id);
      // Queued at the agent: nothing to write but the removal, which must be done before the event goes out.
      if (ack.queued) await removed;
      // Otherwise the two writes are asked for in the same tick and share one commit.
      await Promise.all([removed, lifecycle.acknowledge(task, ack)]);
      return;
    }
    const code = ack.code ?? 'INVALID_TASK';
    const guard = { agentId, attempt: ack.attempt };
    if (code === 'DUPLICATE') {
      await repos.offlineQueue.removeByTask(task.id);
      return;
    }
    if (isRetryable(code)) {
      if (code === 'OVERLOADED' || code === 'SHUTTING_DOWN') manager.markOverloaded(agentId, ack.overload);
      const alternative = (await this.candidatesFor(task)).find(
        (id) => id !== agentId && manager.isHealthy(id),
      );
      if (alternative) {
        if ((await outbox.submit(task, alternative)) === 'sent') return;
      }
      await lifecycle.markQueued(
        task.id,
        agentId,
        { reason: this.whyRefused(agentId, code, ack.overload), agentOnline: true, reconnectEtaMs: null },
        guard,
      );
      // Resent when the reason clears: AGENT_STATUS {overloaded:false}, a freed slot, another agent online.
      return;
    }
    await repos.offlineQueue.removeByTask(task.id);
    await lifecycle.fail(task.id, {
      errorCode: refusalErrorCode(code) ?? 'INVALID_REQUEST',
      error: `Agent ${agentId} cannot run this task: ${ack.reason ?? code}`,
      recoverable: false,
      actor: `agent:${agentId}`,
      context: { refusal: code },
    });
  }

  /**
   * Another instance began the task's attempt for an agent connected here and handed it over (its outbox
   * row is written): send it now, or, if the agent cannot take work now, the task waits as queued and is
   * sent when it can.
   */
  async handedOver(agentId: string, taskId: string, attempt: number): Promise<void> {
    const { manager, outbox, lifecycle } = this.opts;
    if (!manager.isConnected(agentId)) return;
    if (manager.isHealthy(agentId)) {
      await outbox.sendBegun(agentId, taskId, attempt);
      return;
    }
    await lifecycle.markQueued(
      taskId,
      agentId,
      { reason: this.whyNotNow(agentId), agentOnline: true, reconnectEtaMs: null },
      { agentId, attempt },
    );
  }

  /**
   * The agent can take work (came online, its circuit closed, it stopped being overloaded, a slot freed):
   * send what waits for it, and take over what waits for an agent of the same project that cannot. A burst
   * of freed slots is one pass, and one more if any came while it ran.
   */
  agentAvailable(agentId: string): Promise<void> {
    return this.availability.run(agentId, () => this.takeWaiting(agentId));
  }

  private async takeWaiting(agentId: string): Promise<void> {
    const { repos, manager, outbox } = this.opts;
    const others = manager.connectedAgentIds().filter((id) => id !== agentId);
    for (const other of others.length > 0 ? await repos.offlineQueue.agentsWithWaiting(others) : []) {
      // Only an agent that is connected and answered "not now" surely does not hold the task; one that went
      // away may be running it (its ACK lost with the connection) and gets it back when it returns. "Not now"
      // includes AT_CAPACITY from an agent that is otherwise healthy: a full agent's refused task moves too.
      for (const row of await repos.offlineQueue.listForAgent(other)) {
        if (manager.isAwaitingAck(other, row.taskId)) continue;
        const task = await repos.tasks.findById(row.taskId);
        if (task?.status !== 'queued') continue;
        if (!(await this.candidatesFor(task)).includes(agentId)) continue;
        await outbox.enqueue(task, agentId);
      }
    }
    await outbox.drain(agentId);
  }

  private sendWherever(agentId: string, message: Message): Promise<boolean> {
    const { routes, manager } = this.opts;
    return routes ? routes.send(agentId, message) : manager.sendToAgent(agentId, message);
  }

  /**
   * Among the candidates whose socket another instance holds, the one to route to, judged by the health its
   * holder wrote to presence: the first that can take work and has a free slot, else the first that can
   * take work (it queues the task itself), else the first of them (it cannot take work now).
   */
  private async elsewhere(candidates: string[]): Promise<RemoteCandidate | undefined> {
    const { routes } = this.opts;
    if (!routes) return undefined;
    const seen: RemoteCandidate[] = [];
    for (const agentId of candidates) {
      const presence = await routes.presenceElsewhere(agentId);
      if (!presence) continue;
      const health = presence.health;
      // A holder that has not written health yet (an older instance, a claim in flight) is trusted as before.
      const canTakeWork = health === null || health.health === 'healthy';
      const candidate = { agentId, health, canTakeWork };
      if (canTakeWork && hasFreeSlot(health)) return candidate;
      seen.push(candidate);
    }
    return seen.find((c) => c.canTakeWork) ?? seen[0];
  }

  private async candidatesFor(task: Task): Promise<string[]> {
    const project = await this.opts.repos.projects.findById(task.projectId);
    const primary = project?.agentId ?? task.agentId;
    return [...new Set([primary, ...(project?.fallbackAgentIds ?? [])])];
  }

  /** For the thread: why the task waits, from the refusal's code and detail. */
  private whyRefused(agentId: string, code: TaskAck['code'], overload: OverloadDetail | undefined): string {
    if (code === 'OVERLOADED') return busyText(agentId, overload ?? this.opts.manager.overloadOf(agentId));
    if (code === 'SHUTTING_DOWN') return `agent ${agentId} is restarting; your task is next`;
    return `agent ${agentId} has no free slot; your task is next`;
  }

  private whyNotNow(agentId: string): string {
    const { manager } = this.opts;
    if (!manager.isConnected(agentId)) return `agent ${agentId} is offline`;
    if (manager.isOverloaded(agentId)) return busyText(agentId, manager.overloadOf(agentId));
    const circuit = manager.circuitState(agentId);
    if (circuit !== 'closed') return `agent ${agentId} is unreliable right now (circuit ${circuit})`;
    return `agent ${agentId} could not be reached`;
  }
}

interface RemoteCandidate {
  agentId: string;
  health: AgentPresenceHealth | null;
  canTakeWork: boolean;
}

function hasFreeSlot(health: AgentPresenceHealth | null): boolean {
  if (health?.activeTasks == null || health.maxConcurrentTasks == null) return true;
  return health.activeTasks < health.maxConcurrentTasks;
}

function remoteWhy(remote: RemoteCandidate): string {
  if (remote.health?.health === 'unreliable')
    return `agent ${remote.agentId} is unreliable right now; your task is next`;
  return busyText(remote.agentId, null);
}

function busyText(agentId: string, overload: OverloadDetail | null | undefined): string {
  if (!overload) return `agent ${agentId} is busy; your task is next`;
  const what = overload.resource === 'cpu' ? 'CPU' : 'memory';
  const percent = Math.round(overload.percent);
  return `agent ${agentId} is busy: ${what} ${percent} % for ${formatDuration(overload.sustainedMs, 'approx')}; your task is next`;
}

function cancelMessage(task: Task, reason: string) {
  return createMessage('TASK_CANCEL', {
    taskId: task.id,
    attempt: Math.max(1, task.attempt),
    reason: reason.slice(0, 500),
  });
}
