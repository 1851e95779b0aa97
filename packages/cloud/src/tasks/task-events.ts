import { EventEmitter } from 'node:events';
import type {
  AgentStatus,
  ResourceMetrics,
  TaskCancelled,
  TaskComplete,
  TaskError,
  TaskProgress,
  WorkspaceResult,
} from '@bematic/protocol';
import type { Task } from '../db/repositories/types.js';
import type { CircuitState } from '../http/api-types.js';

/**
 * What happens to tasks and agents, as recorded by the cloud. The gateway and
 * task lifecycle emit these after the database has been updated; chat surfaces
 * (Slack, the web console), metrics and the cache subscribe. Terminal events
 * are emitted once per task, however many duplicate messages arrive.
 */
export interface TaskEventMap {
  'task.created': { task: Task };
  /** Waiting in the durable offline queue because the agent is away or overloaded. */
  'task.queued': { task: Task; reason: string; agentOnline: boolean; reconnectEtaMs: number | null };
  'task.submitted': { task: Task };
  /** The agent acknowledged; `queued` means it waits in the agent's local queue. */
  'task.acknowledged': { task: Task; queued: boolean; queuePosition: number | null };
  'task.started': { task: Task };
  'task.progress': { task: Task; progress: TaskProgress };
  'task.stream': { task: Task; text: string };
  'task.completed': { task: Task; message: TaskComplete };
  'task.failed': { task: Task; message: TaskError };
  'task.cancelled': { task: Task; message: TaskCancelled };
  'agent.online': { agentId: string };
  'agent.offline': { agentId: string; reason: string; reconnectEtaMs: number | null };
  'agent.status': { agentId: string; status: AgentStatus };
  'agent.heartbeat': { agentId: string; rttMs: number; metrics: ResourceMetrics };
  /** Whether the agent can take work now changed (online, circuit, overload; e.g. a refusal as busy). */
  'agent.health': { agentId: string; healthy: boolean };
  'circuit.changed': { agentId: string; from: CircuitState; to: CircuitState };
  /** An agent answered a Create PR / Show diff / Discard request for the task's branch. */
  'workspace.result': { agentId: string; task: Task; result: WorkspaceResult };
}

export type { CircuitState } from '../http/api-types.js';
export type TaskEventName = keyof TaskEventMap;

/** The events that mean a task's row changed (its status, or its creation). */
export const TASK_ROW_EVENTS = [
  'task.created',
  'task.queued',
  'task.submitted',
  'task.acknowledged',
  'task.started',
  'task.completed',
  'task.failed',
  'task.cancelled',
] as const satisfies readonly TaskEventName[];

/** A typed EventEmitter. Listener errors are isolated so one bad subscriber cannot break the lifecycle. */
export class TaskEvents {
  private readonly emitter = new EventEmitter();

  constructor(private readonly onListenerError: (event: string, err: unknown) => void = () => {}) {
    this.emitter.setMaxListeners(100);
  }

  on<E extends TaskEventName>(
    event: E,
    listener: (payload: TaskEventMap[E]) => void | Promise<void>,
  ): () => void {
    const wrapped = (payload: TaskEventMap[E]) => {
      try {
        const r = listener(payload);
        if (r instanceof Promise) r.catch((err) => this.onListenerError(event, err));
      } catch (err) {
        this.onListenerError(event, err);
      }
    };
    this.emitter.on(event, wrapped);
    return () => this.emitter.off(event, wrapped);
  }

  emit<E extends TaskEventName>(event: E, payload: TaskEventMap[E]): void {
    this.emitter.emit(event, payload);
  }
}
