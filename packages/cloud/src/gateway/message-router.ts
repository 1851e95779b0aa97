import type { Clock } from '@bematic/protocol';
import {
  type AgentTaskMessageType,
  CLOUD_ONLY_TYPES,
  createMessage,
  isAgentTaskMessage,
  isTerminalStatus,
  type Message,
  type MessageType,
  type PermissionRequest,
  redactDeep,
  redactInternalAddresses,
  type SystemErrorCode,
} from '@bematic/protocol';
import type { Logger } from 'pino';
import { BatchedLookup } from '../db/batched-lookup.js';
import type { Repositories, Task } from '../db/repositories/types.js';
import type { TaskEvents } from '../tasks/task-events.js';
import type { ApplyOutcome, TaskLifecycle } from '../tasks/task-lifecycle.js';
import type { AgentManager } from './agent-manager.js';
import type { GatewayObserver, SubmitRoundTrips } from './observer.js';
import type { GatewayTaskDispatcher } from './task-dispatcher.js';

export interface MessageRouterOptions {
  repos: Repositories;
  manager: AgentManager;
  dispatcher: GatewayTaskDispatcher;
  lifecycle: TaskLifecycle;
  logger: Logger;
  clock: Clock;
  /** Times each TASK_SUBMIT until its ACK (metrics). */
  roundTrips?: SubmitRoundTrips;
  /** Where workspace results go (the cloud's workspace requests listen). */
  events?: TaskEvents;
  /** Where an agent's PERMISSION_REQUEST goes; without it every request is answered `undeliverable`. */
  approvals?: PermissionRequestHandler;
  /** Counts messages ignored as stale. */
  observer?: GatewayObserver;
}

export interface PermissionRequestHandler {
  /** Asks a person; the answer goes back to the agent later as PERMISSION_RESPONSE. */
  request(agentId: string, task: Task, request: PermissionRequest): Promise<void>;
}

/**
 * What an agent reports passes the one redaction rule set before it is stored or shown (the agent redacts
 * too; an older or misconfigured agent must not be able to leak). An error also loses the addresses of
 * the agent's network (a model endpoint at 127.0.0.1:43767, a gateway host): they mean nothing to a person.
 */
function secretFree(message: TaskMessage): TaskMessage {
  const clean = redactDeep(message);
  if (clean.type === 'TASK_ERROR') clean.payload.error = redactInternalAddresses(clean.payload.error);
  return clean;
}

/** An agent's message about a task that it holds by an attempt (all of them but WORKSPACE_RESULT). */
type TaskMessage = Message<Exclude<AgentTaskMessageType, 'WORKSPACE_RESULT'>>;

const CLOUD_ONLY: ReadonlySet<MessageType> = new Set(CLOUD_ONLY_TYPES);

export interface RouteProblem {
  code: SystemErrorCode;
  message: string;
}

const TERMINAL_TYPES: ReadonlySet<MessageType> = new Set(['TASK_COMPLETE', 'TASK_ERROR', 'TASK_CANCELLED']);

/**
 * Applies what an authenticated agent tells the cloud. Returns a problem for
 * the gateway to report back (SYSTEM_ERROR) and audit; never throws for bad input.
 */
export class MessageRouter {
  private approvals: PermissionRequestHandler | undefined;
  /** Every task frame reads its task first; the frames of one tick share that read. */
  private readonly tasks: BatchedLookup<Task>;

  constructor(private readonly opts: MessageRouterOptions) {
    this.approvals = opts.approvals;
    this.tasks = new BatchedLookup(
      async (ids) => new Map((await opts.repos.tasks.findByIds(ids)).map((t) => [t.id, t])),
    );
  }

  /** Where PERMISSION_REQUESTs go from now on (the approval service is built after the gateway). */
  useApprovals(handler: PermissionRequestHandler): void {
    this.approvals = handler;
  }

  async route(agentId: string, message: Message): Promise<RouteProblem | null> {
    const { manager } = this.opts;
    manager.noteActivity(agentId);
    if (message.type === 'TASK_ACK') this.opts.roundTrips?.acknowledged(agentId, message.payload.taskId);
    if (isAgentTaskMessage(message)) {
      return message.type === 'WORKSPACE_RESULT'
        ? this.workspaceResult(agentId, message)
        : this.routeTaskMessage(agentId, message);
    }
    switch (message.type) {
      case 'HEARTBEAT_PONG':
        manager.handlePong(agentId, message.payload);
        return null;
      case 'HEARTBEAT_PING': {
        const now = this.opts.clock.now();
        const pong = createMessage(
          'HEARTBEAT_PONG',
          { seq: message.payload.seq, sentAt: message.payload.sentAt, metrics: manager.cloudMetrics() },
          now,
        );
        await manager.sendToAgent(agentId, pong);
        return null;
      }
      case 'AGENT_STATUS':
        manager.handleStatus(agentId, message.payload);
        return null;
      case 'SYSTEM_SHUTDOWN':
        manager.noteShutdown(agentId, message.payload.reconnectInMs);
        return null;
      case 'SYSTEM_ERROR':
        this.opts.logger.warn({ agentId, error: message.payload }, 'agent reported an error');
        return null;
      case 'AUTH_REQUEST':
        return { code: 'ALREADY_AUTHENTICATED', message: 'this connection is already authenticated' };
      default:
        if (CLOUD_ONLY.has(message.type)) {
          return { code: 'UNEXPECTED_TYPE', message: `${message.type} is sent by the cloud, not by agents` };
        }
        return { code: 'UNEXPECTED_TYPE', message: `${message.type} is not handled` };
    }
  }

  /** A workspace command's answer: for the task's owner only; a task archived meanwhile is only audited. */
  private async workspaceResult(
    agentId: string,
    message: Message<'WORKSPACE_RESULT'>,
  ): Promise<RouteProblem | null> {
    const task = await this.opts.repos.tasks.findById(message.payload.taskId);
    if (!task) {
      // Cleanup after archival: the task row is gone by the time the agent answers.
      await this.audit('workspace.result', agentId, message.payload.taskId, {
        action: message.payload.action,
        code: message.payload.code,
      });
      return null;
    }
    if (task.agentId !== agentId) {
      await this.audit('agent.foreign_task', agentId, message.payload.taskId, { type: message.type });
      return {
        code: 'TASK_NOT_OWNED',
        message: `task ${message.payload.taskId} is not one of agent ${agentId}'s`,
      };
    }
    this.opts.events?.emit('workspace.result', { agentId, task, result: message.payload });
    return null;
  }

  private async routeTaskMessage(agentId: string, raw: TaskMessage): Promise<RouteProblem | null> {
    const message = secretFree(raw);
    const { lifecycle, dispatcher } = this.opts;
    const taskId = message.payload.taskId;
    const terminal = TERMINAL_TYPES.has(message.type);
    const task = await this.tasks.get(taskId);
    if (!task) {
      await this.audit('agent.unknown_task', agentId, taskId, { type: message.type });
      // Nothing left to apply it to (archived, deleted): let the agent forget the result.
      if (terminal && message.payload.attempt !== undefined)
        await this.ackResult(agentId, taskId, message.payload.attempt);
      return { code: 'UNKNOWN_TASK', message: `task ${taskId} is not known to the cloud` };
    }
    if (task.agentId !== agentId) {
      await this.audit('agent.foreign_task', agentId, taskId, { type: message.type, owner: task.agentId });
      if (terminal && isTerminalStatus(task.status) && message.payload.attempt !== undefined) {
        await this.ackResult(agentId, taskId, message.payload.attempt);
        return null;
      }
      return { code: 'TASK_NOT_OWNED', message: `task ${taskId} is not assigned to agent ${agentId}` };
    }
    const actor = `agent:${agentId}`;
    const current = message.payload.attempt === undefined || message.payload.attempt === task.attempt;
    switch (message.type) {
      case 'TASK_ACK':
        if (!current) return this.stale(agentId, task, message, 'attempt');
        await dispatcher.handleAck(agentId, task, message.payload);
        return null;
      case 'TASK_PROGRESS': {
        const outcome = await lifecycle.progress(task, message.payload);
        if (outcome.kind === 'stale') return this.stale(agentId, task, message, outcome.stale);
        await this.agentHasIt(agentId, task);
        return null;
      }
      case 'TASK_STREAM': {
        const outcome = await lifecycle.stream(task, message.payload);
        if (outcome.kind === 'stale') return this.stale(agentId, task, message, outcome.stale);
        return null;
      }
      case 'TASK_COMPLETE':
        return this.terminal(agentId, task, message, await lifecycle.complete(task, message.payload, actor));
      case 'TASK_ERROR':
        return this.terminal(agentId, task, message, await lifecycle.error(task, message.payload, actor));
      case 'TASK_CANCELLED':
        return this.terminal(agentId, task, message, await lifecycle.cancelled(task, message.payload, actor));
      case 'PERMISSION_REQUEST':
        if (!current) return this.stale(agentId, task, message, 'attempt');
        if (this.approvals) await this.approvals.request(agentId, task, message.payload);
        else await this.answerUndeliverable(agentId, message.payload);
        return null;
    }
  }

  /**
   * After a terminal message: acknowledge it once it is committed — or when the task was terminal already
   * (a duplicate, idempotent) — so the agent can forget it; a stale one is not acknowledged. A real change
   * frees a slot on the agent, so what waits for it is sent now.
   */
  private async terminal(
    agentId: string,
    task: Task,
    message: Extract<TaskMessage, { type: 'TASK_COMPLETE' | 'TASK_ERROR' | 'TASK_CANCELLED' }>,
    outcome: ApplyOutcome,
  ): Promise<RouteProblem | null> {
    if (outcome.kind === 'stale') return this.stale(agentId, task, message, outcome.stale);
    const { dispatcher, manager } = this.opts;
    await this.agentHasIt(agentId, task);
    manager.answered(agentId, task.id);
    if (isTerminalStatus(outcome.task.status))
      await this.ackResult(agentId, task.id, message.payload.attempt);
    if (outcome.kind === 'applied') manager.nudge(agentId);
    // Ended: a cancel still owed (asked for on any instance) is settled. Off the result's path.
    if (isTerminalStatus(outcome.task.status))
      await dispatcher
        .forgetCancel(task.id)
        .catch((err: unknown) =>
          this.opts.logger.warn({ err, taskId: task.id }, 'cancel request not removed'),
        );
    return null;
  }

  private async ackResult(agentId: string, taskId: string, attempt: number): Promise<void> {
    await this.opts.manager.sendToAgent(
      agentId,
      createMessage('TASK_RESULT_ACK', { taskId, attempt }, this.opts.clock.now()),
    );
  }

  /** A message from an earlier attempt (or from an agent that lost the task): audited, counted, ignored. */
  private async stale(
    agentId: string,
    task: Task,
    message: TaskMessage,
    reason: 'agent' | 'attempt',
  ): Promise<null> {
    this.opts.logger.info(
      {
        agentId,
        taskId: task.id,
        type: message.type,
        attempt: message.payload.attempt,
        current: task.attempt,
      },
      'stale task message ignored',
    );
    this.opts.observer?.observeStaleMessage?.(message.type, reason);
    await this.audit('task.stale_message', agentId, task.id, {
      code: 'STALE_ATTEMPT',
      type: message.type,
      reason,
      attempt: message.payload.attempt ?? null,
      currentAttempt: task.attempt,
      owner: task.agentId,
    });
    return null;
  }

  private async answerUndeliverable(agentId: string, request: PermissionRequest): Promise<void> {
    const { taskId, requestId, attempt } = request;
    await this.audit('permission.undeliverable', agentId, taskId, { requestId, tool: request.tool });
    await this.opts.manager.sendToAgent(
      agentId,
      createMessage(
        'PERMISSION_RESPONSE',
        { taskId, requestId, decision: 'undeliverable', ...(attempt !== undefined && { attempt }) },
        this.opts.clock.now(),
      ),
    );
  }

  /** The agent is working on (or finished) the task, so its TASK_SUBMIT need not be resent. */
  private async agentHasIt(agentId: string, task: Task): Promise<void> {
    if (task.status === 'submitted' || task.status === 'queued') {
      this.opts.manager.answered(agentId, task.id);
      await this.opts.repos.offlineQueue.removeByTask(task.id);
    }
  }

  private async audit(action: string, agentId: string, taskId: string, details: Record<string, unknown>) {
    await this.opts.repos.audit.log({
      action,
      actor: `agent:${agentId}`,
      resourceType: 'task',
      resourceId: taskId,
      details,
    });
  }
}
