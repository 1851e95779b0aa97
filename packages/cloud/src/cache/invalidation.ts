import type { Task } from '../db/repositories/types.js';
import type { TaskEventName, TaskEvents } from '../tasks/task-events.js';
import type { Cache } from './cache.js';
import { ALL_PROJECTS, cacheKeys } from './cache-keys.js';

/**
 * The seed's cache invalidation triggers, in one place. Lifecycle events are
 * wired through `attachToEvents`; changes that do not travel on the event bus
 * (project configuration, user roles, bot definitions, API keys, migrations)
 * are explicit calls made by the code that performs them.
 *
 * Beyond the seed's minimum (creation → lists, completion → details + stats,
 * cancellation → details + agent stats), every status change also drops the
 * task's details and lists, so the dashboard never shows a stale status.
 */
export class CacheInvalidation {
  constructor(private readonly cache: Cache) {}

  attachToEvents(events: TaskEvents): () => void {
    const offs: Array<() => void> = [];
    const onTask = (name: TaskEventName, fn: (task: Task) => void) =>
      offs.push(events.on(name, (p) => fn((p as { task: Task }).task)));
    onTask('task.created', (t) => this.taskCreated(t));
    for (const name of ['task.queued', 'task.submitted', 'task.acknowledged', 'task.started'] as const) {
      onTask(name, (t) => this.taskChanged(t));
    }
    onTask('task.completed', (t) => this.taskCompleted(t));
    onTask('task.failed', (t) => this.taskCompleted(t));
    onTask('task.cancelled', (t) => this.taskCancelled(t));
    offs.push(events.on('agent.online', ({ agentId }) => this.agentChanged(agentId)));
    offs.push(events.on('agent.offline', ({ agentId }) => this.agentChanged(agentId)));
    offs.push(events.on('agent.status', ({ agentId }) => this.agentChanged(agentId)));
    offs.push(events.on('circuit.changed', ({ agentId }) => this.agentChanged(agentId)));
    return () => {
      for (const off of offs) off();
    };
  }

  taskCreated(task: Pick<Task, 'projectId'>): void {
    this.dropLists(task.projectId);
    this.dropStats(task.projectId);
  }

  taskChanged(task: Pick<Task, 'id' | 'projectId'>): void {
    this.cache.invalidate(cacheKeys.task(task.id));
    this.dropLists(task.projectId);
    this.dropStats(task.projectId);
  }

  taskCompleted(task: Pick<Task, 'id' | 'projectId' | 'agentId'>): void {
    this.taskChanged(task);
    this.cache.invalidate(cacheKeys.agentStats(task.agentId));
  }

  taskCancelled(task: Pick<Task, 'id' | 'projectId' | 'agentId'>): void {
    this.taskChanged(task);
    this.cache.invalidate(cacheKeys.agentStats(task.agentId));
  }

  taskArchived(task: Pick<Task, 'id' | 'projectId' | 'agentId'>): void {
    this.taskCompleted(task);
  }

  /** A restored task is stored under its new id straight away (the seed's Cache.warm). */
  taskRestored(task: Task): void {
    this.taskCompleted(task);
    this.cache.set(cacheKeys.task(task.id), task);
  }

  agentChanged(agentId: string): void {
    this.cache.invalidate(cacheKeys.agentStatus(agentId));
    this.cache.invalidate(cacheKeys.agentList());
  }

  projectConfigChanged(projectId: string): void {
    this.cache.invalidate(cacheKeys.project(projectId));
    this.cache.invalidate(cacheKeys.projectList());
  }

  userPermissionChanged(userId: string): void {
    this.cache.invalidate(cacheKeys.user(userId));
  }

  /** One bot, or every bot persona when no name is given. */
  botDefinitionUpdated(botName?: string): void {
    this.cache.invalidate(botName === undefined ? { prefix: cacheKeys.bots() } : cacheKeys.bot(botName));
  }

  /** One key's validation, or all of them (rotation of an agent's keys). */
  apiKeyRotated(keyPrefix?: string): void {
    this.cache.invalidate(
      keyPrefix === undefined ? { prefix: cacheKeys.apiKeys() } : cacheKeys.apiKey(keyPrefix),
    );
  }

  /** Schema migrations change what every cached row means. */
  migrationsApplied(): void {
    this.cache.flush();
  }

  private dropLists(projectId: string): void {
    this.cache.invalidate({ prefix: cacheKeys.projectTasks(projectId) });
    this.cache.invalidate({ prefix: cacheKeys.projectTasks(ALL_PROJECTS) });
  }

  private dropStats(projectId: string): void {
    this.cache.invalidate(cacheKeys.projectStats(projectId));
    this.cache.invalidate(cacheKeys.globalStats());
  }
}
